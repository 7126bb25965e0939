"""The program editor in the panel (through Flask's test client; the browser test drives the
same pages in Chromium): the draft's offsets and emails, the impact preview, publish."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scheduler import emails
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    log_in(web)
    return Panel(web)


def test_edit_preview_and_publish_from_the_panel(harness, panel):
    sarah = harness.enroll(date(2026, 1, 5), "America/New_York")
    harness.run_until(datetime(2026, 1, 6, tzinfo=UTC))
    page = panel.get("/program/").get_data(True)
    assert "version 1 is what new enrollments get" in page and "Start a draft" in page
    assert panel.post("/program/draft/start", htmx=False).status_code == 303
    page = panel.get("/program/").get_data(True)
    assert 'name="schedule.overdue_reminder_days_after"' in page
    form = {"name": "Wavelaunch Creator Program", "schedule.overdue_reminder_days_after": "5"}
    form |= {f"schedule.{k}": v for k, v in {"max_retries": "x"}.items()}
    refused = panel.post("/program/draft", form)
    assert refused.status_code == 422
    assert "schedule.max_retries: must be a whole number, not &#39;x&#39;" in refused.get_data(True)
    form["schedule.max_retries"] = "3"
    saved = panel.post("/program/draft", form)
    assert saved.status_code == 200 and "The draft is saved." in saved.get_data(True)

    # An email of the draft: variables listed, broken Jinja refused, a valid edit previewed.
    page = panel.get(f"/program/draft/emails/REMINDER_OVERDUE?client={sarah.id}").get_data(True)
    assert "<code>unsubscribe_url</code>" in page and "Sarah" in page
    source = emails.shipped_source("REMINDER_OVERDUE.txt")
    bad = panel.post("/program/draft/emails/REMINDER_OVERDUE", {"txt": source + "{% if %}"})
    assert bad.status_code == 422 and "REMINDER_OVERDUE.txt: line" in bad.get_data(True)
    edited = source.replace("{% block subject %}", "{% block subject %}[v2] ", 1)
    good = panel.post(
        "/program/draft/emails/REMINDER_OVERDUE", {"txt": edited, "client": str(sarah.id)}
    )
    assert good.status_code == 200 and "[v2]" in good.get_data(True)
    frame = panel.get(f"/program/draft/emails/REMINDER_OVERDUE/html?client={sarah.id}")
    assert frame.status_code == 200 and "sandbox" in frame.headers["Content-Security-Policy"]
    sent = panel.post("/program/draft/emails/REMINDER_OVERDUE/test", {"client": str(sarah.id)})
    assert sent.status_code == 200 and "A test email went to coach@example.com" in sent.get_data(
        True
    )
    assert harness.mailer.sent[-1].to == "coach@example.com"
    assert harness.mailer.sent[-1].subject.startswith("[test] [v2]")

    impact = panel.get("/program/preview?applies_to=all", headers={"HX-Request": "true"})
    text = impact.get_data(True)
    assert "8 automations move for 1 client" in text
    assert "Sarah Johnson" in text and "Overdue reminder to client (M2)" in text
    published = panel.post("/program/publish", {"applies_to": "all", "note": "later"}, htmx=False)
    assert published.status_code == 303
    page = panel.get("/program/").get_data(True)
    assert "Version 2 is published" in page and "by coach@example.com" in page
    assert harness.refresh(sarah).program_version == 2
    assert panel.get("/program/versions/2.toml").get_data(True).count("[[months]]") == 8
    assert "overdue_reminder_days_after" in panel.get("/program/diff?old=1&new=2").get_data(True)
    assert panel.get("/program/diff?old=x").status_code == 422
    assert panel.get("/program/draft/emails/NOPE").status_code == 404
    # Rolling back: the same preview, then a publish of version 1's content as version 3.
    page = panel.get("/program/preview?applies_to=all&rollback_to=1").get_data(True)
    assert "Rolling back to v1: 8 automations move for 1 client" in page
    assert "Roll back to v1 (also clients in flight)" in page
    back = panel.post("/program/publish", {"applies_to": "all", "rollback_to": "1"}, htmx=False)
    assert back.status_code == 303
    page = panel.get("/program/").get_data(True)
    assert "Version 3 is published" in page and "(v1 again)" in page
    assert harness.refresh(sarah).program_version == 3
    refused = panel.post("/program/publish", {"applies_to": "later"}, htmx=False)
    assert refused.status_code == 303
    assert "applies_to: &#39;later&#39; is not one of new, all" in panel.get("/program/").get_data(
        True
    )
