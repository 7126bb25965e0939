"""The program editor in Chromium, with a real SMTP server (aiosmtpd on loopback): a coach edits
an offset and an email, reads the impact on the clients in flight, publishes; the emails that
follow are the new version's for the clients it applies to, and the old one's for the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from scheduler.clock import ManualClock
from tests.browser import csp_violations, serve, shot
from tests.harness import Harness
from tests.mailbox import Inbox, mailed
from tests.panel_helpers import PASSWORD, set_password


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def world(database_url: str, smtp: tuple[int, Inbox]) -> Iterator[tuple[Harness, Inbox, str]]:
    port, inbox = smtp
    clock = ManualClock(at(2026, 1, 20, 12))
    with mailed(database_url, port, clock, ACTION_EMAIL_GRACE_SECONDS=0) as h:
        set_password()
        base, server = serve(h.app)
        yield h, inbox, base
        server.shutdown()


def received(
    h: Harness, inbox: Inbox, to: str, subject_part: str = ""
) -> list[tuple[datetime, str]]:
    """(when it was sent, subject) of the emails to `to`: the subjects as the SMTP server
    received them, the moments from the outbox (the engine's clock)."""
    # (A subject starting with "[" is folded onto its own line by the email package: the parsed
    # value keeps the folding space.)
    subjects = [
        str(m["Subject"]).strip()
        for m in inbox.messages
        if m["To"] == to and subject_part in str(m["Subject"])
    ]
    sent = [
        (e.sent_at, e.subject)
        for e in h.emails()
        if e.to_address == to and subject_part in e.subject
    ]
    assert [subject for _, subject in sent] == subjects
    return sent


def edit_draft(
    page: Any, site: str, offset: tuple[str, str], subject_prefix: str, shots: Any = None
) -> None:
    """In the browser: start a draft, change one offset, and the upcoming reminder's subject."""
    page.goto(site + "/program/")
    page.get_by_role("button", name="Start a draft").click()
    field = page.locator(f'input[name="schedule.{offset[0]}"]')
    field.fill(offset[1])
    page.get_by_role("button", name="Save the draft").click()
    page.get_by_text("The draft is saved.").wait_for()
    page.get_by_role("link", name="Upcoming reminder to client").click()
    text = page.get_by_label("Subject and text")
    source = text.input_value()
    text.fill(source.replace("{% block subject %}", "{% block subject %}" + subject_prefix, 1))
    page.get_by_role("button", name="Save and preview").click()
    page.get_by_text("Saved in the draft.").wait_for()
    assert page.locator(".subject").inner_text().startswith(subject_prefix)
    frame = page.frame_locator("iframe.preview")
    assert "Hi " in frame.locator("body").inner_text()
    if shots is not None:
        shot(page, "panel-program-email", shots)


def test_edit_preview_publish_and_the_emails_that_follow(world, page, tmp_path):
    h, inbox, site = world
    anna = h.enroll(date(2026, 2, 2), "America/New_York", email="anna@example.com", name="Anna Lee")
    violations = csp_violations(page)
    page.goto(site + "/")
    page.get_by_label("Email").fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")

    # v2: the "coming soon" reminder 5 days ahead instead of 3, and a new subject; the impact
    # on Anna is shown, but it is published for new enrollments only.
    edit_draft(page, site, ("upcoming_reminder_days_before", "5"), "[v2] ", tmp_path)
    page.goto(site + "/program/")
    page.get_by_role("button", name="Preview the impact").click()
    summary = page.locator(".impact-summary")
    summary.wait_for()
    assert summary.inner_text() == "8 automations move for 1 client"
    row = page.locator("table.impact tr.change").first
    assert "Upcoming reminder to client (M1)" in row.inner_text()
    assert "Fri 30 Jan 2026 09:00" in row.inner_text()  # old, in Anna's zone
    assert "Wed 28 Jan 2026 09:00" in row.inner_text()  # new
    shot(page, "panel-program", tmp_path)
    page.get_by_label("new enrollments only").check()
    page.get_by_role("button", name="Preview the impact").click()
    page.get_by_text("applies to new enrollments only: the 1 client in flight keep").wait_for()
    page.get_by_role("button", name="Publish (new enrollments only)").click()
    page.get_by_text("Version 2 is published").wait_for()

    ben = h.enroll(date(2026, 2, 9), "Europe/London", email="ben@example.com", name="Ben Ng")
    assert (h.refresh(anna).program_version, ben.program_version) == (1, 2)
    h.run_until(at(2026, 2, 5))
    # Anna keeps version 1: 3 days ahead, the old subject. Ben runs version 2.
    assert received(h, inbox, "anna@example.com", "coming soon") == [
        (
            at(2026, 1, 30, 14),
            "Your Month 1: Foundation & Business Plan deliverable is coming soon!",
        )
    ]
    assert received(h, inbox, "ben@example.com", "coming soon") == [
        (
            at(2026, 2, 4, 9),
            "[v2] Your Month 1: Foundation & Business Plan deliverable is coming soon!",
        )
    ]

    # v3, for the clients in flight too: 6 days ahead, another subject.
    edit_draft(page, site, ("upcoming_reminder_days_before", "6"), "[v3] ")
    page.goto(site + "/program/")
    page.get_by_role("button", name="Preview the impact").click()
    page.locator(".impact-summary").wait_for()
    assert page.locator(".impact-summary").inner_text() == "14 automations move for 2 clients"
    page.get_by_role("button", name="Publish (also clients in flight)").click()
    page.get_by_text("Version 3 is published").wait_for()
    assert "v3 by coach@example.com" in page.locator("main").inner_text()
    assert (h.refresh(anna).program_version, h.refresh(ben).program_version) == (3, 3)
    h.run_until(at(2026, 3, 6))
    assert received(h, inbox, "anna@example.com", "[v3]") == [
        (at(2026, 2, 26, 14), "[v3] [v2] Your Month 2: Brand Identity deliverable is coming soon!")
    ]
    assert received(h, inbox, "ben@example.com", "[v3]") == [
        (at(2026, 3, 5, 9), "[v3] [v2] Your Month 2: Brand Identity deliverable is coming soon!")
    ]
    # Each month's reminder went once, whatever the versions did to its messages.
    assert len(received(h, inbox, "anna@example.com", "coming soon")) == 2
    assert len(received(h, inbox, "ben@example.com", "coming soon")) == 2
    assert violations == []
