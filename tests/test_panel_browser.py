"""The admin panel in a real headless browser: HTMX, CSRF and the session work together as a
coach uses them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scheduler import lookups, review
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import DeliverableStatus as D
from tests.browser import csp_violations, serve, shot
from tests.panel_helpers import PASSWORD, set_password


@pytest.fixture
def site(harness):
    set_password()
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def log_in(page, site):
    page.goto(site + "/")
    assert "/login" in page.url
    page.get_by_label("Email").fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")  # where it was going


def test_a_coach_runs_the_program_from_the_panel(harness, site, page, tmp_path):
    harness.clock.set(datetime(2026, 1, 20, 12, tzinfo=UTC))
    sarah = harness.enroll(date(2026, 1, 10), "America/New_York")  # M1 generated, in review
    harness.run_until(datetime(2026, 1, 20, 12, tzinfo=UTC))
    violations = csp_violations(page)
    page.goto(site + "/login")
    shot(page, "panel-login", tmp_path)
    log_in(page, site)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    shot(page, "panel-dashboard", tmp_path)

    # Enroll a client.
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_label("Name").fill("Tom Baker")
    page.get_by_label("Email").fill("tom@example.com")
    page.get_by_label("Time zone").fill("Europe/London")
    page.get_by_label("Start date").fill("2026-02-02")
    page.get_by_role("button", name="Enroll").click()
    page.wait_for_url("**/clients/*")
    assert page.locator("h1").inner_text().startswith("Tom Baker")
    tom = lookups.find_client(harness.ctx, "tom@example.com")
    assert len(harness.automations(tom)) == 32

    # Pause and resume, in place.
    page.get_by_text("Place on hold").click()
    page.get_by_label("Reason").fill("Surgery")
    page.locator("input[name=days]").fill("10")
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("status").filter(has_text="on hold until").wait_for()
    assert harness.refresh(tom).paused_at is not None
    page.get_by_role("button", name="Undo: resume").click()
    page.get_by_role("status").filter(has_text="is back").wait_for()
    assert harness.refresh(tom).paused_at is None

    # Adjust the start date: preview first, then confirm.
    page.get_by_text("Adjust start date").click()
    page.get_by_label("New start date").fill("2026-02-09")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Confirm new start date").wait_for()
    assert harness.refresh(tom).start_date == date(2026, 2, 2)  # nothing changed yet
    page.get_by_role("button", name="Confirm new start date").click()
    page.get_by_role("status").filter(has_text="Start date is now").wait_for()
    assert harness.refresh(tom).start_date == date(2026, 2, 9)

    # Skip a month.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_text("Skip a month").click()
    page.get_by_label("Month to skip").select_option("8")
    page.get_by_role("button", name="Skip month").click()
    page.get_by_role("status").filter(has_text="Month 8 is skipped").wait_for()
    assert harness.deliverable(tom, 8).status == D.SKIPPED

    # Trigger an automation now.
    page.get_by_role("button", name="Trigger REMINDER_UPCOMING M1 now").click()
    page.get_by_role("status").filter(has_text="runs now").wait_for()
    upcoming = harness.one(tom, template="REMINDER_UPCOMING", month=1)
    assert harness.refresh(upcoming).trigger_at == harness.clock.now()
    shot(page, "panel-client", tmp_path)

    # Review: reject with notes, then approve the regenerated month.
    page.get_by_role("link", name="Review", exact=True).click()
    shot(page, "panel-review", tmp_path)
    page.get_by_label(f"Notes for {sarah.name} M1").fill("Add pricing")
    page.get_by_role("button", name="Reject").click()
    page.get_by_role("status").filter(has_text="rejected").wait_for()
    assert harness.deliverable(sarah, 1).status == D.REJECTED
    harness.do(review.generate_by_hand, sarah, 1, "Add pricing")
    harness.run_until(harness.clock.now())
    page.reload()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("status").filter(has_text="is delivered").wait_for()
    assert harness.deliverable(sarah, 1).status == D.DELIVERED

    # The log, filtered.
    page.get_by_role("link", name="Log", exact=True).click()
    page.get_by_label("Client", exact=True).fill("tom")
    page.get_by_label("Status", exact=True).select_option("CANCELLED")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=CANCELLED**")
    rows = page.locator("#log-rows").inner_text()
    assert "Tom Baker" in rows and "Sarah" not in rows
    shot(page, "panel-log", tmp_path)
    assert all(a.status == S.CANCELLED for a in harness.automations(tom, month=8))

    page.get_by_role("link", name="Clients", exact=True).click()
    shot(page, "panel-clients", tmp_path)
    assert violations == []  # everything above worked under the panel's CSP


def test_every_panel_page_works_under_its_content_security_policy(harness, site, page):
    """The pages not driven above, and the ones whose policy differs (flask-admin's records,
    the email preview's frame): no CSP violation, and they work."""
    sarah = harness.enroll(date(2026, 1, 1), "America/New_York")
    harness.run_until(datetime(2026, 1, 2, 12, tzinfo=UTC))
    harness.add_admin("lead@example.com")
    violations = csp_violations(page)
    log_in(page, site)
    # HTMX under the policy (no eval): the search box filters as one types.
    page.get_by_label("Search clients").fill("nobody")
    page.get_by_text("No client matches.").wait_for()
    page.get_by_label("Search clients").fill("sarah")
    page.get_by_role("link", name="Sarah Johnson").wait_for()
    # The journey strip and the dashboard's bars are drawn (SVG, no inline style).
    page.goto(f"{site}/clients/{sarah.id}")
    assert page.locator("svg.strip rect.m").count() == 8
    assert page.locator("svg.strip rect.m").first.bounding_box()["width"] > 20
    page.goto(site + "/dashboard")
    assert page.locator("svg.bars rect").count() == 14
    # The email preview: the email's own styles, in its sandboxed frame.
    page.goto(f"{site}/clients/{sarah.id}/emails/DELIVERABLE_READY")
    frame = page.frame_locator("iframe.preview")
    assert "Hi Sarah" in frame.locator("body").inner_text()
    page.goto(site + "/sessions")
    assert "this session" in page.locator("main").inner_text()
    page.goto(site + "/records/records_clients/")
    page.get_by_text("sarah@example.com").wait_for()
    page.goto(site + f"/records/records_clients/details/?id={sarah.id}")
    page.get_by_text("America/New_York").first.wait_for()
    assert violations == []  # the API docs (Swagger UI): tests/test_api_browser.py
