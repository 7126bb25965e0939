"""The client portal in a real headless browser: from an email's link to progress, a
deliverable, messages, preferences and unsubscribe."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler import review
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import Template
from tests.browser import csp_violations, serve, shot


@pytest.fixture
def site(harness):
    base, server = serve(harness.app)
    harness.app.extensions["journey"].base_url = base
    yield base
    server.shutdown()


def test_a_client_follows_their_journey_from_an_email_link(harness, site, page, tmp_path):
    client = harness.enroll(
        date(2026, 1, 5), "America/New_York", onboarding={"business": "Sunrise Yoga"}
    )
    for month in (1, 2):
        harness.run_until(datetime(2026, 1, 5, 15, tzinfo=UTC) + timedelta(days=30 * (month - 1)))
        harness.do(review.approve, client, month)
    harness.run_for(timedelta(days=2))
    links = harness.app.extensions["journey"].links
    violations = csp_violations(page)
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=2)
    assert overdue.status == S.SCHEDULED

    page.goto(links.portal(client.id))
    assert page.locator("h1").inner_text() == "You're 25% through your journey"
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "25"
    shot(page, "portal-progress", tmp_path)

    page.get_by_role("link", name="Open").nth(1).click()
    assert "Month 2" in page.locator("main").inner_text()
    # A person reading it: the page's script records the open (a GET alone does not).
    page.get_by_role("status").filter(has_text="Marked as read").wait_for()
    shot(page, "portal-deliverable", tmp_path)
    assert harness.refresh(harness.deliverable(client, 2)).opened_at is not None
    assert harness.refresh(harness.deliverable(client, 1)).opened_at is None
    assert harness.refresh(overdue).status == S.CANCELLED
    page.get_by_role("link", name="← Back to your progress").click()
    page.get_by_role("link", name="Read again").first.wait_for()  # the page has loaded
    assert page.get_by_role("link", name="Read again").count() == 1

    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="deliverable is ready").first.click()
    frame = page.frame_locator("iframe")
    assert "Hi Sarah" in frame.locator("body").inner_text()
    shot(page, "portal-messages", tmp_path)

    page.get_by_role("link", name="Email preferences").click()
    page.get_by_label("Celebrations").uncheck()
    page.get_by_role("button", name="Save preferences").click()
    assert page.get_by_role("status").inner_text() == "Your preferences are saved."
    shot(page, "portal-preferences", tmp_path)
    assert harness.refresh(client).celebrations_enabled is False

    page.goto(links.unsubscribe(client.id))
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.locator("h1").inner_text() == "You're unsubscribed"
    assert harness.refresh(client).unsubscribed_at is not None

    page.goto(site + "/portal/forged-token")
    assert page.locator("h1").inner_text() == "This link can't be used"
    assert violations == []


def test_without_javascript_the_button_records_the_open(harness, site, chromium):
    client = harness.enroll(date(2026, 1, 5), "America/New_York")
    harness.run_until(datetime(2026, 1, 5, 15, tzinfo=UTC))
    harness.do(review.approve, client, 1)
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(harness.app.extensions["journey"].links.portal(client.id, "months/1"))
        assert harness.refresh(harness.deliverable(client, 1)).opened_at is None
        page.get_by_role("button", name="Mark as read").click()
        page.wait_for_load_state()
        assert page.get_by_role("button", name="Mark as read").count() == 0
    finally:
        context.close()
    assert harness.refresh(harness.deliverable(client, 1)).opened_at is not None
    assert harness.refresh(overdue).status == S.CANCELLED
