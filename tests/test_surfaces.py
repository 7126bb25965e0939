"""One truth on every surface: driven through the panel, the panel, the portal, the API's
timeline and the emails a real SMTP server (aiosmtpd, on loopback) received state the same
dates, statuses and outcomes, scenario after scenario: a hold with and without an end date,
an approval during a hold, a rejection then an approval, a skipped month, an adjusted start,
an unsubscribe, a local time that does not exist, and an undo within the grace period."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scheduler import emails as wording
from scheduler import lookups
from scheduler.clock import ManualClock
from scheduler.models import Admin, Client
from scheduler.vocab import STATUS_LABELS, ClientStatus
from tests.harness import Harness
from tests.mailbox import Inbox, mailed
from tests.panel_helpers import Panel, browser, log_in, set_password
from web.api.tokens import issue
from web.extensions import db

GRACE = timedelta(minutes=2)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Surfaces:
    """Every surface of one client, read as a person (or a program) reads it."""

    def __init__(self, h: Harness, inbox: Inbox, panel: Panel, token: str, client: Client):
        self.h, self.inbox, self.panel, self.token = h, inbox, panel, token
        self.client_id = client.id
        self.api = h.app.test_client()

    @property
    def client(self) -> Client:
        return db.session.get(Client, self.client_id)

    def timeline(self) -> dict[str, Any]:
        answer = self.api.get(
            f"/api/clients/{self.client_id}/journey/timeline",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert answer.status_code == 200, answer.get_data(True)
        return answer.get_json()

    def journey_page(self) -> str:
        page = self.panel.get(f"/clients/{self.client_id}")
        assert page.status_code == 200
        return page.get_data(True)

    def portal_page(self) -> str:
        links = self.h.app.extensions["journey"].links
        page = self.h.app.test_client().get(links.portal(self.client_id).split("5000", 1)[-1])
        assert page.status_code == 200
        return page.get_data(True)

    def mail(self, subject_part: str) -> list[Any]:
        return [m for m in self.inbox.messages if subject_part in m["Subject"]]

    def day(self, iso: str) -> str:
        return wording.day(date.fromisoformat(iso), self.client.timezone)

    def agree(self) -> dict[str, Any]:
        """Panel, portal and API state the same dates, notes and status; returns the API's
        timeline."""
        t = self.timeline()
        panel = self.journey_page()
        rows = re.findall(
            r'<tr class="month-row"[^>]*><td>M(\d)</td><td>[^<]*</td><td><span class="date">'
            r'([0-9-]+)</span>(?:<br><span class="muted note">([^<]*)</span>)?',
            panel,
        )
        assert [(int(m), d, html.unescape(n)) for m, d, n in rows] == [
            (m["month"], m["date"], m["date_note"]) for m in t["months"]
        ]
        portal = html.unescape(self.portal_page())
        for m in t["months"]:
            shown = self.day(m["date"]) + (f" ({m['date_note']})" if m["date_note"] else "")
            assert shown in portal, (shown, m)
        status = t["client"]["status"]
        label = STATUS_LABELS[ClientStatus(status)]
        assert f'">{label}</span></h1>' in panel, label
        return t

    def email_dates_agree(self, message: Any, t: dict[str, Any]) -> int:
        """Each "Month N: title, date" line of an email states the API's date for month N."""
        text = message.get_body(("plain",)).get_content()
        found = re.findall(r"- Month (\d): [^,\n]+, ([^\n]+)", text)
        months = {m["month"]: m for m in t["months"]}
        for number, said in found:
            m = months[int(number)]
            wanted = self.day(m["date"]) + (f" ({m['date_note']})" if m["date_note"] else "")
            assert said.strip() == wanted, (number, said, wanted)
        return len(found)

    def expected(self, name_part: str) -> dict[str, Any]:
        """The API's word on what will happen to the one upcoming automation named so."""
        [found] = [e for e in self.timeline()["expected"] if name_part in e["name"]]
        return found


@pytest.fixture
def surfaces(database_url, smtp) -> Any:
    port, inbox = smtp
    clock = ManualClock(at(2026, 1, 1))
    grace = {"ACTION_EMAIL_GRACE_SECONDS": int(GRACE.total_seconds())}
    with mailed(database_url, port, clock, **grace) as h:
        app = h.app
        set_password()
        web = browser(app)
        assert log_in(web).status_code == 302
        admin = db.session.scalar(select(Admin))
        _, token = issue(db.session, admin, "surfaces", clock.now())
        db.session.commit()
        client = h.enroll(date(2026, 1, 5), "America/New_York")
        yield Surfaces(h, inbox, Panel(web), token, client)


def test_a_hold_with_an_end_date_and_an_approval_during_it(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))  # M1 generated, in review
    before = s.agree()
    # On hold for 10 days, from the panel: the message says what happens, in the engine's words.
    told = s.panel.post(f"/clients/{s.client_id}/pause", {"days": "10", "reason": "Surgery"})
    message = html.unescape(told.get_data(True))
    assert "on hold until Thursday, January 15, 2026" in message
    assert "Hold confirmation to client: goes at" in message and "grace period" in message
    during = s.agree()
    assert during["client"]["status"] == "on_hold"
    for old, new in zip(before["months"][1:], during["months"][1:], strict=True):
        assert date.fromisoformat(new["date"]) - date.fromisoformat(old["date"]) == timedelta(10)
        assert new["date_note"] == "moved 10 days by the hold"
    # The confirmation waits out the grace period, then tells the same dates.
    assert s.mail("paused") == []
    h.run_for(GRACE)
    [confirmation] = s.mail("paused")
    assert s.email_dates_agree(confirmation, during) == 8
    # Approving M1 during the hold: the message says it is held, not that the client hears now.
    answer = s.panel.post(f"/review/{s.client_id}/1/approve")
    approved = html.unescape(answer.get_data(True))
    assert "they hear now" not in approved
    assert (
        "Deliverable ready email to client (M1): held until the hold ends on "
        "Thursday, January 15, 2026: goes Thursday, January 15, 2026 at 10:04" in approved
    )
    assert s.expected("Deliverable ready email to client (M1)")["state"] == "held"
    assert s.expected("Deliverable ready email to client (M1)")["text"] in approved
    h.run_until(at(2026, 1, 15, 15, 3))
    assert s.mail("is ready") == []  # held, as said
    # The hold ends by itself on its date, and the email goes when it was said to; the
    # welcome back tells the dates everyone else states.
    h.run_until(at(2026, 1, 15, 15, 5))
    assert len(s.mail("is ready")) == 1
    after = s.agree()
    assert after["client"]["status"] == "on_track"
    assert [m["date"] for m in after["months"]] == [m["date"] for m in during["months"]]
    [welcome] = s.mail("Welcome back")
    assert s.email_dates_agree(welcome, after) == 7  # M1 is delivered
    assert "moved 10 days later" in welcome.get_body(("plain",)).get_content()


def test_a_hold_without_an_end_date_says_the_dates_will_move(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    s.panel.post(f"/clients/{s.client_id}/pause", {"reason": "Unknown"})
    t = s.agree()
    notes = {m["month"]: m["date_note"] for m in t["months"]}
    assert notes[1] == ""  # already under way: its date stands
    assert all(notes[m] == "on hold: dates move when the hold ends" for m in range(2, 9))
    page = html.unescape(s.journey_page())
    assert "held: it waits for the hold to end (no end date is set)" in page
    h.run_for(GRACE)
    [confirmation] = s.mail("paused")
    assert "resumes when you're ready" in confirmation.get_body(("plain",)).get_content()


def test_reject_then_approve_skip_and_adjust(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    # A rejection needs notes, in the panel as in the API.
    assert s.panel.post(f"/review/{s.client_id}/1/reject", {"notes": " "}).status_code == 422
    told = s.panel.post(f"/review/{s.client_id}/1/reject", {"notes": "Add pricing"})
    assert "Revision reminder to admins (M1): scheduled for" in html.unescape(told.get_data(True))
    s.panel.post(f"/review/{s.client_id}/1/regenerate", {"notes": "Add pricing"})
    h.run_for(timedelta(minutes=1))
    approved = html.unescape(s.panel.post(f"/review/{s.client_id}/1/approve").get_data(True))
    assert "after a 2-minute grace period" in approved
    h.run_for(GRACE)
    [ready] = s.mail("is ready")
    t = s.agree()
    m2 = s.day(t["months"][1]["date"])
    assert f"Next up: Month 2: Brand Identity on {m2}." in ready.get_body(("plain",)).get_content()
    # Skip a month: every surface says so.
    s.panel.post(f"/clients/{s.client_id}/skip", {"month": "8"})
    t = s.agree()
    assert t["months"][7]["state"] == "skipped"
    assert "skipped" in s.portal_page()
    # Adjust the start date: the new dates, everywhere.
    s.panel.post(f"/clients/{s.client_id}/adjust", {"start_date": "2026-01-12"})
    t = s.agree()
    assert t["months"][1]["date"] == "2026-02-11"


def test_unsubscribe_and_the_reminder_that_will_not_go(surfaces):
    s, h = surfaces, surfaces.h
    links = h.app.extensions["journey"].links
    web = h.app.test_client()
    path = links.unsubscribe(s.client_id).split("5000", 1)[-1]
    assert "Unsubscribe from optional emails?" in html.unescape(web.get(path).get_data(True))
    web.post(path)
    assert "You're already unsubscribed" in html.unescape(web.get(path).get_data(True))
    preferences = web.get(links.portal(s.client_id, "preferences").split("5000", 1)[-1])
    assert "checked" not in preferences.get_data(True)
    reason = "will be skipped because the client unsubscribed from optional emails"
    assert s.expected("Upcoming reminder to client (M1)")["text"] == reason
    assert reason in html.unescape(s.journey_page())
    h.run_until(at(2026, 1, 3, 15))
    assert s.mail("coming soon") == []


def test_a_local_time_that_does_not_exist_is_refused_with_a_reason(surfaces):
    s = surfaces
    sydney = s.h.enroll(date(2027, 9, 1), "Australia/Sydney", email="liam@example.com")
    refused = s.panel.post(
        f"/clients/{sydney.id}/schedule",
        {"type": "SEND_REMINDER", "template": "REMINDER_UPCOMING", "month": "2"}
        | {"at": "2027-10-03T02:30"},
    )
    assert refused.status_code == 422
    assert "does not exist in Australia/Sydney" in html.unescape(refused.get_data(True))
    # The API takes instants with their offset: one that names the same moment is exact.
    answer = s.api.post(
        f"/api/clients/{sydney.id}/automations/schedule",
        json={
            "type": "SEND_REMINDER",
            "template": "REMINDER_UPCOMING",
            "month": 2,
            "at": "2027-10-03T03:30:00+11:00",
        },
        headers={"Authorization": f"Bearer {s.token}"},
    )
    assert answer.status_code == 201
    assert answer.get_json()["trigger_at"] == "2027-10-02T16:30:00+00:00"


def test_an_undo_within_the_grace_period_sends_nothing(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    sent = len(s.inbox.messages)
    paused = s.panel.post(f"/clients/{s.client_id}/pause", {"days": "10"})
    assert "Undo: resume" in paused.get_data(True)
    h.run_for(timedelta(seconds=16))
    undone = html.unescape(s.panel.post(f"/clients/{s.client_id}/resume").get_data(True))
    assert "cancelled: the hold was undone before the client was told of it" in undone
    h.run_for(GRACE * 3)
    assert len(s.inbox.messages) == sent  # neither the pause nor the welcome back
    assert lookups.open_hold(h.ctx, s.client) is None


# -- the strip's geometry ------------------------------------------------------------------------


def months_from(start: date, moved: int = 0) -> list[Any]:
    from scheduler.timeline import MonthLine

    return [
        MonthLine(m, f"M{m}", start + timedelta(days=30 * (m - 1) + moved), "scheduled", False)
        for m in range(1, 9)
    ]


def hold(start: date, *, until: date | None = None, end: date | None = None) -> Any:
    from scheduler.models import Hold

    days = (end - start).days if end else None
    ended = at(2026, 1, 1) if end else None
    return Hold(start_date=start, until=until, end_date=end, days=days, ended_at=ended)


def inside(strip: Any) -> None:
    for block in [*strip.months, *strip.holds]:
        assert 0 <= block.left <= 100 and block.width > 0, block
        assert block.left + block.width <= 100.01, block


def test_the_strip_draws_every_block_within_it():
    from scheduler.timeline import strip

    start = date(2026, 2, 1)
    # A hold that began before the start date: within the strip, M1 still at its date.
    early = strip(months_from(start, 5), [hold(date(2026, 1, 27), end=start)], start, start, 30)
    inside(early)
    [gap] = early.holds
    assert gap.left == 0 and early.months[0].left > 0
    assert gap.left + gap.width <= early.months[0].left + 0.01
    # A hold undone the day it began moved nothing: it is not drawn.
    undone = strip(months_from(start), [hold(start, end=start)], start, start, 30)
    assert undone.holds == []
    # Holds have a lane of their own: they never cover a month's label.
    open_ended = strip(months_from(start), [hold(date(2026, 3, 1))], start, date(2026, 3, 9), 30)
    inside(open_ended)
    assert open_ended.holds[0].open and open_ended.holds[0].end == date(2026, 3, 9)
    planned = strip(
        months_from(start), [hold(date(2026, 3, 1), until=date(2026, 3, 11))], start, start, 30
    )
    inside(planned)
    assert planned.holds[0].end == date(2026, 3, 11) and not planned.holds[0].open
    assert planned.today == 0.0


# -- inputs that were silently wrong -----------------------------------------------------------


def test_the_log_refuses_filters_that_mean_nothing(surfaces):
    s = surfaces
    s.h.run_until(at(2026, 1, 5, 15))
    for query, said in [
        ("type=NOPE", "unknown automation type"),
        ("status=LOST", "unknown status"),
        ("template=NOPE", "unknown template"),
        ("from=2026-02-01&to=2026-01-01", "is after to"),
    ]:
        answer = s.panel.get(f"/log?{query}")
        assert answer.status_code == 422 and said in html.unescape(answer.get_data(True)), query
    # % and _ are what they are, not wildcards.
    assert "No row matches" in s.panel.get("/log?client=%25").get_data(True)
    assert "No row matches" not in s.panel.get("/log?client=sarah").get_data(True)
    assert s.panel.get("/?q=%25").get_data(True).count("<tr><td><a") == 0


def test_an_unknown_time_zone_gets_the_closest_names(surfaces):
    s = surfaces
    answer = s.api.post(
        "/api/clients",
        json={"name": "Léa", "email": "lea@example.com", "start_date": "2026-02-01"}
        | {"timezone": "Europe/Pari"},
        headers={"Authorization": f"Bearer {s.token}"},
    )
    message = answer.get_json()["error"]["message"]
    assert answer.status_code == 422 and "did you mean Europe/Paris" in message
    assert len(message) < 200
    enrolled = s.panel.post(
        "/clients",
        {"name": "Léa", "email": "lea@example.com", "start_date": "2026-02-01"}
        | {"timezone": "america/new york"},
    )
    assert enrolled.status_code == 422 and "America/New_York" in enrolled.get_data(True)


def test_records_read_as_what_they_are_and_link_to_the_panel(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    for listing in ("records_automation_logs", "records_automations", "records_clients"):
        page = s.panel.get(f"/records/{listing}/").get_data(True)
        assert "object at 0x" not in page, listing
        assert f'href="/clients/{s.client_id}"' in page, listing
        assert "Sarah Johnson &lt;sarah@example.com&gt;" in page or "Sarah Johnson" in page
    assert 'href="/"' in s.panel.get("/records/").get_data(True)


def test_the_api_statistics_count_what_the_dashboard_counts(surfaces):
    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    s.panel.post(f"/review/{s.client_id}/1/approve")
    h.run_for(timedelta(days=2))
    stats = s.api.get(
        "/api/admin/automations/stats", headers={"Authorization": f"Bearer {s.token}"}
    ).get_json()
    board = html.unescape(s.panel.get("/dashboard").get_data(True))
    numbers = dict(re.findall(r'data-label="([^"]+)" href="[^"]+">([^<]+)</a>', board))
    assert numbers["months delivered"] == str(stats["week"]["months_completed"]) == "1"
    assert numbers["on-time delivery"] == f"{round(100 * stats['week']['on_time_rate'])}%"
    assert numbers["to generate"] == str(stats["upcoming"]["generations"])
    assert numbers["celebrations"] == str(stats["upcoming"]["celebrations"])
    assert numbers["clients overdue"] == str(stats["clients"]["overdue"])


def test_the_welcome_back_preview_lists_the_dates_it_says_moved(surfaces):
    s = surfaces
    page = html.unescape(s.panel.get(f"/clients/{s.client_id}/emails/WELCOME_BACK").get_data(True))
    assert "every date ahead moved 14 days later" in page
    t = s.timeline()
    m2 = date.fromisoformat(t["months"][1]["date"]) + timedelta(days=14)
    assert f"Month 2: Brand Identity, {wording.day(m2, 'America/New_York')}" in page


def test_an_admin_reads_lists_in_their_own_zone(surfaces):
    from web.cli import cli

    s, h = surfaces, surfaces.h
    h.run_until(at(2026, 1, 5, 15))
    runner = h.app.test_cli_runner()
    out = runner.invoke(cli, ["admins", "timezone", "coach@example.com", "Asia/Tokyo"])
    assert out.exit_code == 0, out.output
    log = s.panel.get("/log").get_data(True)
    assert "At (Asia/Tokyo)" in log
    # 2026-01-05 14:00 UTC is 23:00 in Tokyo; the UTC moment on hover.
    assert 'title="2026-01-05 14:00 UTC">Mon 05 Jan 2026 23:00</time>' in log
