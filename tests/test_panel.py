"""The admin panel over HTTP (Flask's test client; the browser tests drive the same pages in
Chromium): who may see it, and every control, with its refusals."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler import controls, lookups, review
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import DeliverableStatus as D
from scheduler.vocab import Template
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, Panel, browser, log_in, set_password, token
from web.extensions import db

PUBLIC = {"auth.login", "static", "main.healthz", "main.metrics"}  # metrics: its own token


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def web(harness):
    return browser(harness.app)


@pytest.fixture
def panel(harness, web):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    assert log_in(web).status_code == 302
    return Panel(web)


def fill(rule) -> str:
    """A URL for the rule, with made-up values for its parts."""
    values = {
        arg: 1 if "int" in str(rule._converters.get(arg, "")).lower() else "x"
        for arg in rule.arguments
    }
    path = rule.rule
    for arg, value in values.items():
        path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", str(value), path)
    return path


def test_every_admin_route_refuses_anonymous_visitors(harness, web):
    checked = 0
    for rule in harness.app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith(("portal.", "api.")):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = fill(rule)
            answer = web.open(url, method=method)
            assert answer.status_code in (302, 400), (method, url, answer.status_code)
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith("/login"), (method, url)
            # an HTMX request is told to send the whole page to the login form
            answer = web.open(
                url, method="GET" if method == "GET" else method, headers={"HX-Request": "true"}
            )
            assert answer.status_code in (401, 400), (method, url)
            if answer.status_code == 401:
                assert answer.headers["HX-Redirect"].startswith("/login")
            checked += 1
    assert checked > 40  # the panel, its controls, and the raw records


def test_login_logout_and_the_session(harness, web):
    set_password()
    assert log_in(web, password="wrong password").status_code == 401
    answer = log_in(web)
    assert answer.status_code == 302 and answer.headers["Location"] == "/dashboard"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    page = web.get("/")
    assert page.status_code == 200 and "Log out" in page.get_data(True)
    web.post("/logout", data={"csrf_token": token(page.get_data(True))})
    assert web.get("/").status_code == 302


def test_a_next_link_cannot_send_a_login_elsewhere(harness, web):
    set_password()
    page = web.get("/login?next=https://evil.example/")
    answer = web.post(
        "/login",
        data={
            "email": "coach@example.com",
            "password": PASSWORD,
            "next": "https://evil.example/",
            "csrf_token": token(page.get_data(True)),
        },
    )
    assert answer.headers["Location"] == "/dashboard"


def test_a_changed_password_ends_other_sessions(harness, web, panel):
    from web.cli import cli

    assert web.get("/").status_code == 200
    changed = harness.app.test_cli_runner().invoke(
        cli,
        ["admins", "password", "coach@example.com", "--password-stdin"],
        input="a new passphrase\n",
    )
    assert changed.exit_code == 0 and "1 session(s) ended" in changed.output
    assert web.get("/").status_code == 302


def test_posts_without_the_csrf_token_are_refused(harness, web, panel):
    client = harness.enroll(date(2026, 1, 10))
    answer = web.post(f"/clients/{client.id}/pause", data={"reason": "x"})
    assert answer.status_code == 400
    assert harness.refresh(client).paused_at is None


def test_clients_list_search_sort_and_status(harness, panel):
    harness.enroll(date(2026, 1, 10), email="ann@example.com", name="Ann Archer")
    late = harness.enroll(date(2025, 10, 1), email="bob@example.com", name="Bob Brown")
    harness.do(
        controls.pause, harness.enroll(date(2026, 1, 2), email="cy@example.com", name="Cy Cole")
    )
    page = panel.get("/").get_data(True)
    assert page.index("Ann Archer") < page.index("Bob Brown") < page.index("Cy Cole")
    assert "overdue" in page and "on hold" in page
    found = panel.get("/?q=bob", headers={"HX-Request": "true", "HX-Target": "client-rows"})
    body = found.get_data(True)
    assert "Bob Brown" in body and "Ann Archer" not in body and "<html" not in body
    overdue = panel.get("/?status=overdue").get_data(True)
    assert "Bob Brown" in overdue and "Ann Archer" not in overdue
    assert late.id


def test_enrolling_from_the_panel(harness, panel):
    answer = panel.post(
        "/clients",
        {
            "name": "Dee Dunn",
            "email": "dee@example.com",
            "timezone": "Europe/Paris",
            "start_date": "2026-02-01",
            "coach": "1",
        },
    )
    assert answer.status_code == 204 and answer.headers["HX-Redirect"].startswith("/clients/")
    dee = lookups.find_client(harness.ctx, "dee@example.com")
    assert dee.coach_id == 1 and len(harness.automations(dee)) == 32
    refused = panel.post(
        "/clients", {"name": "Dee", "email": "dee@example.com", "start_date": "2026-02-01"}
    )
    assert refused.status_code == 409 and "already enrolled" in refused.get_data(True)
    bad = panel.post("/clients", {"name": "E", "email": "e@example.com", "start_date": "soon"})
    assert bad.status_code == 422 and "not a date" in bad.get_data(True)
    zone = panel.post(
        "/clients",
        {
            "name": "E",
            "email": "e@example.com",
            "start_date": "2026-02-01",
            "timezone": "Mars/Olympus",
        },
    )
    assert zone.status_code == 422


def test_pause_resume_adjust_skip_from_the_journey_page(harness, panel):
    client = harness.enroll(date(2026, 1, 10))
    answer = panel.post(f"/clients/{client.id}/pause", {"days": "14", "reason": "Travel"})
    assert answer.status_code == 200 and "on hold until" in answer.get_data(True)
    assert "Undo: resume" in answer.get_data(True)
    assert harness.refresh(client).paused_at is not None
    again = panel.post(f"/clients/{client.id}/pause", {"reason": "again"})
    assert again.status_code == 409 and "msg error" in again.get_data(True)
    assert panel.post(f"/clients/{client.id}/resume").status_code == 200
    assert harness.refresh(client).paused_at is None
    # Adjust: a preview changes nothing; the confirmation does.
    preview = panel.post(f"/clients/{client.id}/adjust/preview", {"start_date": "2026-01-20"})
    assert preview.status_code == 200 and "2026-01-20" in preview.get_data(True)
    assert harness.refresh(client).start_date == date(2026, 1, 10)
    assert (
        panel.post(f"/clients/{client.id}/adjust", {"start_date": "2026-01-20"}).status_code == 200
    )
    assert harness.refresh(client).start_date == date(2026, 1, 20)
    gen = harness.one(client, template=None, type="GENERATE_DELIVERABLE", month=1)
    assert gen.trigger_at == at(2026, 1, 20, 9)
    assert panel.post(f"/clients/{client.id}/skip", {"month": "3"}).status_code == 200
    assert harness.deliverable(client, 3).status == D.SKIPPED
    assert panel.post(f"/clients/{client.id}/skip", {"month": "9"}).status_code == 422
    assert panel.post(f"/clients/{client.id}/pause", {"days": "soon"}).status_code == 422
    assert panel.post("/clients/999/resume").status_code == 404


def test_trigger_cancel_and_schedule_one_automation(harness, panel):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert panel.post(f"/automations/{upcoming.id}/trigger").status_code == 200
    assert harness.refresh(upcoming).trigger_at == harness.clock.now()
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    assert panel.post(f"/automations/{overdue.id}/cancel").status_code == 200
    assert harness.refresh(overdue).status == S.CANCELLED
    assert panel.post(f"/automations/{overdue.id}/cancel").status_code == 409
    made = panel.post(
        f"/clients/{client.id}/schedule",
        {
            "type": "SEND_REMINDER",
            "template": "REMINDER_UPCOMING",
            "month": "2",
            "at": "2026-01-20T15:30",
        },
    )
    told = html.unescape(made.get_data(True))
    assert made.status_code == 200 and "Upcoming reminder to client (M2) is added" in told
    assert "scheduled for Tuesday 20 January 2026 at 15:30" in told
    by_hand = harness.automations(client, source="MANUAL")
    assert [a.trigger_at for a in by_hand] == [at(2026, 1, 20, 15, 30)]
    bad = panel.post(
        f"/clients/{client.id}/schedule",
        {"type": "SEND_REMINDER", "template": "NOPE", "month": "2"},
    )
    assert bad.status_code == 422
    assert panel.post("/automations/99999/trigger").status_code == 404


def test_review_queue_approve_reject_regenerate(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    queue = panel.get("/review").get_data(True)
    assert "Sarah Johnson" in queue and "M1" in queue
    rejected = panel.post(f"/review/{client.id}/1/reject", {"notes": "More detail"})
    assert rejected.status_code == 200 and "rejected" in rejected.get_data(True)
    assert harness.deliverable(client, 1).reviewer_notes == "More detail"
    again = panel.post(f"/review/{client.id}/1/regenerate", {"notes": "More detail"})
    assert again.status_code == 200
    harness.run_for(timedelta(minutes=1))
    assert harness.deliverable(client, 1).version == 2
    assert panel.post(f"/review/{client.id}/1/approve").status_code == 200
    assert harness.deliverable(client, 1).status == D.DELIVERED
    assert panel.post(f"/review/{client.id}/1/approve").status_code == 409
    assert panel.post(f"/review/{client.id}/1/shred").status_code == 404


def test_dashboard_numbers_link_to_their_rows(harness, panel):
    """Every number of the dashboard links to the log (or the client list), and the page it
    links to lists exactly that many rows."""
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(days=3))
    board = panel.get("/dashboard").get_data(True)
    assert "Automation health" in board
    links = re.findall(
        r'<a class="big number" data-label="([^"]+)" href="([^"]+)">([^<]+)</a>', board
    )
    assert len(links) == 10
    for label, href, value in links:
        page = panel.get(html.unescape(href)).get_data(True)
        if label == "on-time delivery":
            assert value in ("100%", "n/a"), value
            continue
        shown = page.count('class="log-row"') if "/log" in href else page.count("<tr><td><a")
        assert shown == int(value), (label, href, value, shown)
    assert client.id


def test_log_filters_paginate_and_retry_a_failed_one(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.generator.fail_next = 10
    harness.run_until(at(2026, 1, 1, 11))
    failed = harness.one(client, type="GENERATE_DELIVERABLE", month=1)
    assert failed.status == S.FAILED
    page = panel.get("/log?status=FAILED").get_data(True)
    rows = page.split('id="log-rows"', 1)[1]
    assert "GENERATE_DELIVERABLE" in rows and "Retry" in rows
    assert "REMINDER_UPCOMING" not in rows and "1 row" in rows
    assert panel.get("/log?client=nobody").get_data(True).count("No row matches") == 1
    assert panel.get("/log?from=2026-13-01").status_code == 422
    harness.generator.fail_next = 0
    retry = panel.web.post(
        f"/automations/{failed.id}/trigger", data={"from": "log", "csrf_token": panel.csrf}
    )
    assert retry.status_code == 303
    assert harness.refresh(failed).status == S.SCHEDULED
    for n in range(60):
        harness.do(
            controls.schedule_by_hand,
            client,
            "SEND_REMINDER",
            template="REMINDER_UPCOMING",
            month=2,
            at=harness.clock.now() + timedelta(days=1, minutes=n),
        )
    first = panel.get("/log?status=SCHEDULED&client=sarah").get_data(True)
    assert "page 1 of 2" in first
    second = panel.get("/log?status=SCHEDULED&client=sarah&page=2").get_data(True)
    assert "page 2 of 2" in second


def test_raw_records_are_read_only(harness, panel):
    harness.enroll(date(2026, 1, 1))
    listing = panel.get("/records/records_clients/")
    assert listing.status_code == 200 and "sarah@example.com" in listing.get_data(True)
    assert panel.get("/records/records_clients/new/").status_code in (302, 403, 404)
    admins = panel.get("/records/records_admins/").get_data(True)
    assert "password_hash" not in admins and "pbkdf2" not in admins and "scrypt" not in admins


def test_any_email_template_previews_for_any_client(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    for template in Template:
        answer = panel.get(f"/clients/{client.id}/emails/{template}")
        expected = 404 if template is Template.WEEKLY_DIGEST else 200
        assert answer.status_code == expected, template
    assert panel.get(f"/clients/{client.id}/emails/NOPE").status_code == 404
    db.session.rollback()


def test_the_lists_status_follows_the_rule(harness):
    """Overdue once the month being worked on (the current one, or the next when the current
    is delivered) is 7 days past its milestone; paused and completed come first."""
    from scheduler import overview

    harness.clock.set(at(2026, 3, 1, 12))
    for i, start in enumerate(
        [
            date(2026, 2, 25),
            date(2026, 2, 21),
            date(2026, 1, 1),
            date(2025, 12, 1),
            date(2026, 2, 1),
        ]
    ):
        harness.enroll(start, email=f"c{i}@example.com", name=f"Client {i}")
    harness.do(controls.pause, lookups.find_client(harness.ctx, "c4@example.com"))
    done = harness.enroll(date(2026, 2, 21), email="c5@example.com", name="Client 5")
    harness.run_until(harness.clock.now())
    harness.do(review.approve, done, 1)
    statuses = {row.name: row.status for row in overview.clients(harness.ctx).rows}
    assert statuses == {
        "Client 0": "on_track",  # M1 on 25 Feb: overdue from 4 March
        "Client 1": "overdue",  # M1 on 21 Feb, not delivered: overdue since 28 Feb
        "Client 2": "overdue",  # M2 on 31 Jan, in review: overdue since 7 Feb
        "Client 3": "on_track",  # M4 on 1 March: generated this morning
        "Client 4": "on_hold",
        "Client 5": "on_track",  # M1 delivered: M2 on 23 March counts
    }
    assert overview.clients(harness.ctx, status="overdue").total == 2


def test_the_journey_page_shows_each_months_generation_progress(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.generator.fail_next = 1
    harness.run_until(at(2026, 1, 1, 10))
    page = panel.get(f"/clients/{client.id}").get_data(True)
    assert ">retrying</span>" in page and ">scheduled</span>" in page
    harness.run_for(timedelta(minutes=16))
    page = panel.get(f"/clients/{client.id}").get_data(True)
    assert ">done</span>" in page and "2 attempts" in page


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/?page=x", 422, "page: &#39;x&#39; is not a whole number"),
        ("/review?page=x", 422, "page: &#39;x&#39; is not a whole number"),
        ("/clients/99999999999999999999", 404, "Not Found"),
        ("/log?client=99999999999999999999", 200, "No row matches"),
        ("/log?to=9999-12-31", 422, "outside the years"),
        ("/automations/99999999999999999999/cancel", 404, "Not Found"),
    ],
)
def test_bad_query_parameters_get_a_message_not_a_500(harness, panel, url, status, says):
    answer = panel.post(url, htmx=False) if url.endswith("/cancel") else panel.get(url)
    assert answer.status_code == status, answer.get_data(True)
    assert says in answer.get_data(True)
