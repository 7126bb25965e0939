"""Everyday admin work in a real browser (Chromium), under the panel's CSP: a rejected month
regenerated with the reviewer's notes, corrected in the browser and approved."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scheduler.models import Client
from scheduler.vocab import DeliverableStatus as D
from tests.browser import csp_violations, serve
from tests.panel_helpers import LONG_SESSIONS, set_password
from tests.test_panel_browser import log_in


@pytest.fixture
def site(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def test_reject_regenerate_correct_and_approve(harness, site, page):
    harness.clock.set(datetime(2026, 1, 20, 12, tzinfo=UTC))
    sarah = harness.enroll(date(2026, 1, 10), "America/New_York")
    harness.run_until(datetime(2026, 1, 20, 12, tzinfo=UTC))  # M1 waits in review
    violations = csp_violations(page)
    log_in(page, site)

    # Read the month in the queue: its text is loaded when it is opened.
    page.get_by_role("link", name="Review", exact=True).click()
    text = page.locator(".review-item .deliverable")
    assert "Foundation" not in text.inner_text()
    page.locator(".review-item summary").click()
    text.locator("h1").wait_for()
    assert "Business Plan" in text.locator("h1").inner_text()
    # Reject from the queue: the month stays in it, as waiting for a revision.
    page.get_by_label("Notes for Sarah Johnson M1").fill("Add a pricing section")
    page.get_by_role("button", name="Reject").click()
    page.get_by_role("status").filter(has_text="is rejected").wait_for()
    page.get_by_label("Show").select_option("rejected")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**show=rejected**")
    card = page.locator(".review-item")
    assert card.count() == 1 and "rejected, waiting for revision" in card.inner_text()
    assert "Add a pricing section" in card.inner_text()

    # Regenerate from the journey page: the reviewer's notes go to the generator.
    page.get_by_role("link", name="Sarah Johnson").click()
    row = page.locator("tr.month-row[data-month='1']")
    assert "rejected" in row.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Regenerate").click()
    page.get_by_role("status").filter(has_text="M1 is being generated now").wait_for()
    harness.run_until(harness.clock.now())
    v2 = harness.deliverable(sarah, 1)
    assert v2.version == 2 and "Add a pricing section" in v2.content
    generated = v2.content

    # Correct the text in the browser and approve it; the change is shown beside the month.
    page.reload()
    page.locator("tr.month-row[data-month='1']").get_by_role(
        "link", name="Edit and approve"
    ).click()
    box = page.get_by_label("The text the client will read")
    box.fill(box.input_value() + "\n\n## Pricing\n\nThree tiers: Starter, Growth, Scale.\n")
    page.get_by_role("button", name="Approve with these corrections").click()
    page.get_by_role("status").filter(has_text="approved with your corrections").wait_for()
    diff = page.get_by_label("Changes to the generated text").inner_text()
    assert "+Three tiers: Starter, Growth, Scale." in diff
    assert "Changed by coach@example.com" in page.locator("main").inner_text()
    d = harness.refresh(harness.deliverable(sarah, 1))
    assert d.status == D.DELIVERED and d.generated_content == generated
    page.goto(site + "/review")
    assert "Nothing awaits review." in page.locator("main").inner_text()
    assert violations == []


def test_the_communications_tab(harness, site, page):
    from tests.test_communications import lived

    sarah = lived(harness)  # sent, deferred by the cap, pending
    violations = csp_violations(page)
    log_in(page, site)
    page.goto(f"{site}/clients/{sarah.id}")
    page.get_by_role("link", name="Communications").click()
    page.wait_for_url("**/communications")
    states = page.locator("tr.comm-row").evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert {"sent", "deferred", "pending"} <= set(states)
    deferred = page.locator("tr.comm-row[data-state='deferred']").inner_text()
    assert "deferred by the frequency cap until" in deferred
    # Turn reminders off, in place: the change is said and recorded with who made it.
    page.get_by_label("Reminders").uncheck()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_role("status").filter(has_text="are saved").wait_for()
    assert "reminders_enabled on → off" in page.locator("ul.changes").inner_text()
    assert "coach@example.com" in page.locator("ul.changes").inner_text()
    assert harness.refresh(sarah).reminders_enabled is False
    # An email as it was sent: subject, recipient, the HTML in its frame.
    page.get_by_role("link", name="Deliverable ready email to client (M1)").click()
    page.wait_for_url("**/sent/*")
    assert "sarah@example.com" in page.locator("main").inner_text()
    assert "Hi Sarah" in page.frame_locator("iframe.preview").locator("body").inner_text()
    assert violations == []


def test_edit_the_time_zone_with_its_preview_then_erase_the_client(harness, site, page):
    sarah = harness.enroll(date(2026, 1, 10), "America/New_York")
    upcoming = harness.one(sarah, template="REMINDER_UPCOMING", month=1)
    violations = csp_violations(page)
    log_in(page, site)
    page.goto(f"{site}/clients/{sarah.id}")
    page.get_by_text("Edit details").click()
    page.get_by_label("Time zone", exact=True).fill("Europe/London")
    page.get_by_role("button", name="Preview changes").click()
    moves = page.locator("table.zone-moves")
    moves.wait_for()
    assert moves.locator("tr").count() == 33  # a heading and the 32 pending sends
    assert harness.refresh(sarah).timezone == "America/New_York"  # nothing saved yet
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("status").filter(has_text="send times moved to Europe/London").wait_for()
    assert harness.refresh(upcoming).trigger_at == datetime(2026, 1, 7, 9, tzinfo=UTC)
    assert "Europe/London" in page.locator("#journey p.muted").first.inner_text()

    # Erase: the confirmation names what goes; the email typed confirms.
    page.get_by_role("link", name="Erase this client…").click()
    assert "32 automations" in page.locator("strong.goes").inner_text()
    page.get_by_label("Email to confirm").fill("sarah@example.com")
    page.get_by_role("button", name="Erase Sarah Johnson").click()
    page.get_by_role("status").filter(has_text="Sarah Johnson is erased").wait_for()
    assert "/clients/" not in page.url
    assert harness.automations(sarah) == []
    assert violations == []


def test_import_a_thousand_rows_with_three_bad_ones_then_export(harness, site, page, tmp_path):
    from tests.test_import_export import sheet

    bad = tmp_path / "clients.csv"
    bad.write_text(sheet(1000).replace("nobody@example.com", ""), encoding="utf-8")  # 3 bad
    good = tmp_path / "fixed.csv"
    good.write_text(sheet(1000, bad=False), encoding="utf-8")
    violations = csp_violations(page)
    log_in(page, site)
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Check (dry run)").click()
    page.locator("tr.import-error").first.wait_for()
    assert page.locator("tr.import-error").count() == 3
    assert "3 of 1000 rows have errors" in page.locator("#import-report").inner_text()
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_role("alert").filter(has_text="nothing is imported").wait_for()
    assert harness.ctx.session.query(Client).count() == 0
    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Check (dry run)").click()
    page.get_by_text("Dry run: 1000 clients would be enrolled").wait_for()
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported: 1000 clients enrolled").wait_for(timeout=120_000)
    assert harness.ctx.session.query(Client).count() == 1000
    # Export the list as filtered.
    page.goto(site + "/?q=client 99")
    with page.expect_download() as download:
        page.locator("#export-clients").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,name,email,timezone,start_date,month,status,coach"
    assert len(text.splitlines()) == 1 + 11  # Client 99 and 990-999
    assert violations == []
