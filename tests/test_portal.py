"""The client portal over HTTP: signed links only, each client sees only their own journey."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler import review
from scheduler.models import Client
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import Template
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def web(harness):
    return harness.app.test_client()


def link(harness, client, page=""):
    url = harness.app.extensions["journey"].links.portal(client.id, page)
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def delivered(harness, months=1, **enroll):
    client = harness.enroll(date(2026, 1, 5), "America/New_York", **enroll)
    for month in range(1, months + 1):
        harness.run_until(at(2026, 1, 5, 15) + timedelta(days=30 * (month - 1)))
        harness.do(review.approve, client, month)
    harness.run_for(timedelta(days=2))
    return client


def test_progress_shows_months_dates_and_percent(harness, web):
    client = delivered(harness)
    page = web.get(link(harness, client))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Sarah Johnson" in body and "12% through your journey" in body
    assert "Foundation &amp; Business Plan" in body and "Monday, January 5, 2026" in body
    assert "1 of 8 months done" in body
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page.headers["Cache-Control"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_scanner_fetching_the_link_opens_nothing(harness, web):
    """Link checkers and mail scanners GET (or HEAD) the links in emails: that is not the client
    reading, and must not cancel the month's overdue reminder."""
    client = delivered(harness)
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    scanner = harness.app.test_client()  # no cookie, no script: curl, a mail gateway
    assert scanner.head(link(harness, client, "months/1")).status_code == 200
    page = scanner.get(link(harness, client, "months/1"), headers={"User-Agent": "curl/8.5"})
    assert page.status_code == 200 and "Month 1" in page.get_data(as_text=True)
    assert harness.refresh(harness.deliverable(client, 1)).opened_at is None
    assert harness.refresh(overdue).status == S.SCHEDULED


def test_reading_records_the_open_once_and_stops_its_reminders(harness, web):
    client = delivered(harness)
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    page = web.get(link(harness, client, "months/1")).get_data(as_text=True)
    assert "data-record-open" in page and "Mark as read" in page  # the no-script fallback
    assert "/static/portal.js" in page
    opened = link(harness, client, "months/1/opened")
    answer = web.post(opened, headers={"X-Requested-With": "fetch"})  # what portal.js sends
    assert answer.status_code == 204
    first = harness.refresh(harness.deliverable(client, 1)).opened_at
    assert first is not None
    assert harness.refresh(overdue).status == S.CANCELLED
    harness.clock.advance(timedelta(hours=3))
    button = web.post(opened)  # the button, without JavaScript: back to the page
    assert button.status_code == 303 and button.headers["Location"].endswith("/months/1")
    assert harness.refresh(harness.deliverable(client, 1)).opened_at == first
    assert "Mark as read" not in web.get(link(harness, client, "months/1")).get_data(True)
    assert web.post(link(harness, client, "months/2/opened")).status_code == 404  # not ready
    assert web.get(opened).status_code == 405


@pytest.mark.parametrize("page", ["months/2", "months/9", "months/0"])
def test_a_month_not_delivered_or_not_in_the_program_is_a_friendly_404(harness, web, page):
    client = delivered(harness)
    answer = web.get(link(harness, client, page))
    assert answer.status_code == 404
    assert "Traceback" not in answer.get_data(as_text=True)


def test_forged_expired_and_misused_links_get_403_and_no_data(harness, web):
    client = delivered(harness)
    good = link(harness, client)
    token = good.rsplit("/", 1)[1]
    bad = [
        good[:-3] + "abc",
        "/portal/not-a-token",
        "/portal/unsubscribe/" + token,  # a portal token is no unsubscribe token
    ]
    for url in bad:
        answer = web.get(url)
        assert answer.status_code == 403, url
        assert "Sarah" not in answer.get_data(as_text=True)
    harness.clock.advance(timedelta(days=31))  # links live 30 days
    answer = web.get(good + "/notifications")
    assert answer.status_code == 403 and "expired" in answer.get_data(as_text=True)


def test_a_clients_link_opens_only_their_own_journey(harness, web):
    ann = delivered(harness, email="ann@example.com", name="Ann Lee")
    bob = harness.enroll(date(2026, 2, 1), email="bob@example.com", name="Bob Ray")
    body = web.get(link(harness, bob)).get_data(as_text=True)
    assert "Bob Ray" in body and "Ann Lee" not in body
    assert web.get(link(harness, bob, "months/1")).status_code == 404  # Bob's M1: not Ann's
    ann_message = harness.emails(Template.DELIVERABLE_READY)[0]
    assert ann_message.client_id == ann.id
    answer = web.get(link(harness, bob, f"notifications/{ann_message.id}"))
    assert answer.status_code == 404
    db.session.delete(db.session.get(Client, bob.id))
    db.session.commit()
    assert web.get(link(harness, bob)).status_code == 403  # a deleted client's link


def test_notifications_list_what_the_client_was_sent(harness, web):
    client = delivered(harness)
    body = web.get(link(harness, client, "notifications")).get_data(as_text=True)
    assert "deliverable is ready" in body and "coming soon" in body
    assert "Review needed" not in body  # admin emails are not the client's
    ready = harness.emails(Template.DELIVERABLE_READY)[0]
    copy = web.get(link(harness, client, f"notifications/{ready.id}")).get_data(as_text=True)
    assert "srcdoc=" in copy and "&lt;p&gt;Hi Sarah" in copy


def test_preferences_persist_and_unsubscribe_works_in_one_click(harness, web):
    client = delivered(harness)
    answer = web.post(link(harness, client, "preferences"), data={"subscribed": "on"})
    assert answer.status_code == 200 and "saved" in answer.get_data(as_text=True)
    client = harness.refresh(client)
    assert (client.reminders_enabled, client.celebrations_enabled) == (False, False)
    assert client.unsubscribed_at is None
    unsubscribe = harness.app.extensions["journey"].links.unsubscribe(client.id)
    path = "/" + unsubscribe.split("://", 1)[1].split("/", 1)[1]
    fresh = harness.app.test_client()  # a mail client: no cookie, no form token
    asked = fresh.get(path).get_data(as_text=True)
    assert "Unsubscribe from optional emails?" in asked
    assert "/portal/" not in asked.replace(path, "")  # a year-long link opens nothing else
    answer = fresh.post(path, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    first = harness.refresh(client).unsubscribed_at
    assert first is not None
    assert fresh.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert harness.refresh(client).unsubscribed_at == first
    assert fresh.post(path, data={"undo": "1"}).status_code == 200  # a change of mind
    assert harness.refresh(client).unsubscribed_at is None


def test_the_certificate_is_there_once_month_8_is_done(harness, web):
    client = harness.enroll(date(2026, 1, 5), "Europe/Paris", name="Chloé Dubois")
    assert web.get(link(harness, client, "certificate.pdf")).status_code == 404
    for month in range(1, 9):
        harness.run_until(at(2026, 1, 5, 12) + timedelta(days=30 * (month - 1)))
        harness.do(review.approve, client, month)
    answer = web.get(link(harness, client, "certificate.pdf"))
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert answer.data.startswith(b"%PDF") and b"Chlo" in answer.data
    assert "Download your certificate" in web.get(link(harness, client)).get_data(as_text=True)


def email_link(harness, email):
    """The deliverable link in an email as sent (its path and query), and the email's tag."""
    found = re.search(r"(/portal/[^\s?]+/months/\d+)\?e=([\w.-]+)", email.text_body)
    assert found, email.text_body
    return f"{found[1]}?e={found[2]}", found[2]


def test_an_emails_link_records_its_click_only_from_the_pages_script_and_once(harness, web):
    """A scanner's GET of the email's link records nothing; the portal page's script posts the
    email's signed id, and the first click is kept. A forged or another client's id: 403."""
    client = delivered(harness)
    ready = harness.emails(Template.DELIVERABLE_READY)[0]
    url, tag = email_link(harness, ready)
    assert tag.split(".")[0] == str(ready.automation_id)
    scanner = harness.app.test_client()
    assert scanner.head(url).status_code == 200
    page = scanner.get(url).get_data(as_text=True)
    assert harness.refresh(ready).clicked_at is None
    assert "data-record-click" in page and f'value="{tag}"' in page and "/portal.js" in page
    assert "data-record-click" not in web.get(link(harness, client, "months/1")).get_data(True)
    clicked = link(harness, client, "clicked")
    answer = web.post(clicked, data={"e": tag}, headers={"X-Requested-With": "fetch"})
    assert answer.status_code == 204
    first = harness.refresh(ready).clicked_at
    assert first == harness.clock.now()
    harness.clock.advance(timedelta(hours=5))
    assert web.post(clicked, data={"e": tag}).status_code == 204  # a reload, a second click
    assert harness.refresh(ready).clicked_at == first
    other = delivered(harness, email="bob@example.com", name="Bob Ray")
    bobs = [e for e in harness.emails(Template.DELIVERABLE_READY) if e.client_id == other.id]
    _, bob_tag = email_link(harness, bobs[0])
    number, signature = tag.split(".")
    for bad in (
        f"{int(number) + 1}.{signature}",  # tampered id
        number,  # no signature
        "x" * 40,
        bob_tag,  # signed, but Bob's email: not Sarah's
        "1.\u00e9",
    ):
        answer = web.post(clicked, data={"e": bad})
        assert answer.status_code == 403, bad
        shown = web.get(url.split("?")[0], query_string={"e": bad}).get_data(True)
        assert ("data-record-click" in shown) is (bad == bob_tag)  # only a signature is checked
    assert web.post(clicked).status_code == 400
    assert harness.refresh(bobs[0]).clicked_at is None
