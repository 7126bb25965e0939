"""The admin panel in a real headless browser: HTMX, CSRF and the session work together as a
coach uses them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from scheduler import lookups, review
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import DeliverableStatus as D
from tests.browser import csp_violations, serve, shot
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, set_password
from web.demo import load_demo


@pytest.fixture
def site(harness):
    harness.app.config.update(LONG_SESSIONS)
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

    # Trigger an automation now: the confirmation says who receives it.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Trigger Upcoming reminder to client (M1) now").click()
    page.get_by_role("status").filter(has_text="runs now").wait_for()
    upcoming = harness.one(tom, template="REMINDER_UPCOMING", month=1)
    assert harness.refresh(upcoming).trigger_at == harness.clock.now()
    assert asked == ["Send Upcoming reminder to client (M1) now? It goes to tom@example.com."]

    # Review: reject with notes, then approve the regenerated month.
    page.get_by_role("link", name="Review", exact=True).click()
    page.get_by_label(f"Notes for {sarah.name} M1").fill("Add pricing")
    page.get_by_role("button", name="Reject").click()
    page.get_by_role("status").filter(has_text="rejected").wait_for()
    assert harness.deliverable(sarah, 1).status == D.REJECTED
    harness.do(review.generate_by_hand, sarah, 1, "Add pricing")
    harness.run_until(harness.clock.now())
    page.reload()
    # Approving emails the client: the confirmation says who receives what.
    confirmed: list[str] = []
    page.once("dialog", lambda dialog: (confirmed.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("status").filter(has_text="is approved").wait_for()
    assert harness.deliverable(sarah, 1).status == D.DELIVERED
    assert "Sarah Johnson <sarah@example.com> will receive" in confirmed[0]

    # The log, filtered.
    page.get_by_role("link", name="Log", exact=True).click()
    page.get_by_label("Client", exact=True).fill("tom")
    page.get_by_label("Status", exact=True).select_option("CANCELLED")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=CANCELLED**")
    rows = page.locator("#log-rows").inner_text()
    assert "Tom Baker" in rows and "Sarah" not in rows
    assert all(a.status == S.CANCELLED for a in harness.automations(tom, month=8))

    page.get_by_role("link", name="Clients", exact=True).click()
    assert violations == []  # everything above worked under the panel's CSP


def test_every_dashboard_number_counts_the_rows_it_links_to(harness, site, page, tmp_path):
    """Click each number of the dashboard (on the demo, a live-looking account): the page it
    opens lists exactly that many rows."""
    load_demo(harness.ctx)
    harness.ctx.session.commit()
    log_in(page, site)
    page.goto(site + "/dashboard")
    shot(page, "panel-dashboard", tmp_path)
    count = page.locator("a.number").count()
    assert count == 10
    clicked = {}
    for i in range(count):
        page.goto(site + "/dashboard")
        number = page.locator("a.number").nth(i)
        label, value = number.get_attribute("data-label"), number.inner_text()
        hint = number.locator("xpath=..").get_attribute("title") or ""
        number.click()
        page.wait_for_load_state()
        if "/log" in page.url:
            rows = page.locator("tr.log-row").count()
        else:
            rows = page.locator("#client-rows tr:has(td a)").count()
        if value.endswith("%"):  # a rate: its rows are the deliveries it is a rate of
            timely, total = map(int, re.search(r"(\d+) of (\d+)", hint).groups())
            assert rows == total and value == f"{round(100 * timely / total)}%", (hint, rows)
        elif value != "n/a":
            assert rows == int(value), (label, value, rows, page.url)
        clicked[label] = value
    assert int(clicked["clients overdue"]) >= 1 and int(clicked["months delivered"]) >= 1
    # The 14-day bars: each links to that day's completed automations.
    # The README's screenshots: the demo account, as a coach sees it.
    page.goto(site + "/")
    shot(page, "panel-clients", tmp_path)
    chloe = lookups.find_client(harness.ctx, "chloe@example.com")
    page.goto(site + f"/clients/{chloe.id}")
    shot(page, "panel-client", tmp_path)
    page.goto(site + "/review")
    shot(page, "panel-review", tmp_path)
    page.goto(site + "/log")
    shot(page, "panel-log", tmp_path)
    page.goto(site + "/dashboard")
    bar = page.locator(".bars a").last
    n = int(bar.get_attribute("aria-label").split(": ")[1].split()[0])
    bar.click()
    page.wait_for_load_state()
    assert page.locator("tr.log-row").count() == n


def test_the_journey_page_fits_a_phone(harness, site, page, tmp_path):
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    harness.run_until(datetime(2026, 1, 20, 12, tzinfo=UTC))
    log_in(page, site)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/clients/{client.id}", "/", "/dashboard", "/log", "/review"):
        page.goto(site + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    # The email preview shows the whole email, footer included.
    page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(site + f"/clients/{client.id}/emails/DELIVERABLE_READY")
    frame = page.frame_locator("iframe")
    footer = frame.get_by_text("Unsubscribe from reminders and celebrations")
    inner = footer.evaluate("e => e.getBoundingClientRect().bottom")
    height = page.locator("iframe").evaluate("e => e.getBoundingClientRect().height")
    assert inner < height
    assert page.request.get(site + "/favicon.ico").status == 200


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
    assert page.locator("svg.bars rect.bar").count() == 14
    # The email preview: the email's own styles, in its sandboxed frame.
    page.goto(f"{site}/clients/{sarah.id}/emails/DELIVERABLE_READY")
    frame = page.frame_locator("iframe.preview")
    assert "Hi Sarah" in frame.locator("body").inner_text()
    page.goto(site + "/sessions")
    assert "this session" in page.locator("main").inner_text()
    page.goto(site + "/records/records_clients/")
    page.get_by_text("sarah@example.com").first.wait_for()
    page.goto(site + f"/records/records_clients/details/?id={sarah.id}")
    page.get_by_text("America/New_York").first.wait_for()
    assert violations == []  # the API docs (Swagger UI): tests/test_api_browser.py
