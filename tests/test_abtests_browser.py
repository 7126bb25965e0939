"""A/B tests in a real headless browser, with a real SMTP server (aiosmtpd on loopback): a coach
starts a test of an email with the click goal; the client's email arrives, the client opens its
link in the browser and the portal page records the click; the test counts it and the client's
communications tab says "clicked"; the coach ends the test keeping the variant. No
Content-Security-Policy violation."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from scheduler import abtests, review
from scheduler.models import AbTest
from tests.browser import csp_violations, shot
from tests.panel_helpers import PASSWORD
from tests.test_program_browser import at, world  # noqa: F401  (the fixture)
from web.extensions import db


def test_a_coach_runs_an_ab_test_of_clicks_on_an_email(world, page, tmp_path):  # noqa: F811
    h, inbox, site = world
    h.app.extensions["journey"].base_url = site  # the links in emails lead to this server
    violations = csp_violations(page)
    page.goto(site + "/")
    page.get_by_label("Email", exact=True).fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")
    page.get_by_role("link", name="A/B tests", exact=True).click()
    page.get_by_label("Email", exact=True).select_option("DELIVERABLE_READY")
    page.get_by_label("Name").fill("month in the subject")
    page.get_by_label("Share of clients given the variant (%)").fill("30")
    page.get_by_label("Goal", exact=True).select_option("click")
    page.get_by_label("Within (days of the email)").fill("3")
    page.get_by_label("Subject of the variant").fill("Your month {{ month }} plan is ready")
    page.get_by_role("button", name="Start the test").click()
    page.wait_for_url("**/ab/*")
    assert "is running" in page.locator(".msg.ok").inner_text()
    assert "No winner yet" in page.locator("p.verdict").inner_text()
    assert (
        "goal: a portal link in the email clicked within 3 days"
        in page.locator("main").inner_text()
    )
    test_url = page.url
    test = db.session.scalars(select(AbTest)).one()

    # The client's deliverable-ready email goes out through the SMTP server.
    client = h.enroll(date(2026, 1, 21), email="anna@example.com", name="Anna Lee")
    h.run_until(at(2026, 1, 21, 10))
    h.do(review.approve, client, 1)
    h.run_until(at(2026, 1, 21, 11))
    texts = [
        m.get_body(("plain",)).get_content()
        for m in inbox.messages
        if m["To"] == "anna@example.com"
    ]
    [link] = [x for t in texts for x in re.findall(r"http://\S+/months/1\?e=\S+", t)]
    [email] = h.emails("DELIVERABLE_READY")
    assert email.variant == abtests.assign(test, client.id) and email.clicked_at is None

    # The client follows it: the page's script posts the click (the GET alone records nothing).
    page.goto(link)
    page.wait_for_url(lambda url: "?e=" not in url)  # posted: the id leaves the address bar
    first = h.clock.now()
    assert h.refresh(email).clicked_at == first
    h.clock.advance(timedelta(hours=2))
    page.goto(link)  # again, later: the first click stays
    page.wait_for_url(lambda url: "?e=" not in url)
    assert "Month 1" in page.locator("main").inner_text()
    assert h.refresh(email).clicked_at == first
    page.goto(test_url)
    assert "1 more sent, still within their 3 days" in page.locator("p.verdict").inner_text()
    h.clock.advance(timedelta(days=3))  # the email's window closes: it counts, converted
    page.goto(test_url)
    row = page.locator(f'tr[data-variant="{email.variant}"] td')
    assert (row.nth(1).inner_text(), row.nth(2).inner_text()) == ("1", "1")
    shot(page, "panel-ab-test", tmp_path)
    page.goto(f"{site}/clients/{client.id}/communications")
    clicked = page.locator("tr.comm-row", has=page.locator(".pill.clicked"))
    assert "Deliverable ready email to client (M1)" in clicked.inner_text()

    page.goto(test_url)
    page.get_by_role("button", name="Keep B for every client").click()
    page.wait_for_url("**/ab/*")
    assert "variant B is kept" in page.locator(".msg.ok").inner_text()
    db.session.refresh(test)
    assert (test.kept, test.ended_by) == ("B", "coach@example.com")
    assert violations == []
