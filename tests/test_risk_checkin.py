"""The at-risk check-in: a program setting (`at_risk_checkin_days`, off by default) that plans
an earlier check-in email N days before each milestone from M2. It is decided on the client's
kept risk score, refreshed as it runs: sent to a client at risk (received here by a real SMTP
server), skipped otherwise, the log row saying why in the words the journey page foretold; once,
like every automation. Every surface that states a client's risk (the clients list's badge and
filter, the journey page's card and foretelling, the API, the command line) shows that one kept
score, before the check-in and after it. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from scheduler import (
    controls,
    errors,
    execute,
    outcomes,
    overview,
    plan,
    programs,
    replan,
    review,
    risk,
    rules,
)
from scheduler.clock import ManualClock
from scheduler.models import Admin, AutomationLog, Client, Deliverable
from scheduler.program import ProgramError, load_program, parse_program, parse_toml, to_toml
from scheduler.program import program_data as data_of
from scheduler.vocab import AutomationType, DeliverableStatus, Template
from tests.harness import Harness
from tests.mailbox import mailed
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from web.api.inputs import contract
from web.api.tokens import issue
from web.cli import cli
from web.extensions import db

CHECKIN = Template.AT_RISK_CHECKIN
NY = "America/New_York"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def with_checkin(days: int):
    program = load_program()
    return dataclasses.replace(
        program, schedule=dataclasses.replace(program.schedule, at_risk_checkin_days=days)
    )


def draft_checkins(ctx, days: int) -> None:
    """A draft of the current program with check-ins `days` before each milestone."""
    definition = programs.start_draft(ctx, "coach@example.com").definition
    schedule = {**definition["schedule"], "at_risk_checkin_days": days}
    programs.update_draft(ctx, "coach@example.com", definition={**definition, "schedule": schedule})
    ctx.commit()


# -- the setting and the verdict, as pure functions ----------------------------------------------


def test_the_setting_is_off_by_default_planned_from_m2_when_on_and_checked():
    shipped = load_program()
    assert shipped.schedule.at_risk_checkin_days == 0
    assert not [s for s in plan.journey_steps(shipped) if s.template is CHECKIN]
    on = with_checkin(7)
    steps = [s for s in plan.journey_steps(on) if s.template is CHECKIN]
    assert [(s.month, s.offset_days, s.type) for s in steps] == [
        (m, -7, AutomationType.SEND_REMINDER) for m in range(2, 9)
    ]
    assert steps[0].key == "plan:AT_RISK_CHECKIN:2"
    assert parse_toml(to_toml(on)) == on  # exported as TOML and read back
    too_far = data_of(on) | {"schedule": data_of(on)["schedule"] | {"at_risk_checkin_days": 30}}
    with pytest.raises(ProgramError, match="at_risk_checkin_days: must be less than month_len"):
        parse_program(too_far)


def test_the_verdict_says_why_in_the_words_the_log_keeps():
    def decide(risk_now, status=None):
        this = rules.MonthView(status)
        return rules.decide(AutomationType.SEND_REMINDER, CHECKIN, 3, this, None, risk=risk_now)

    sent = decide(rules.Risk(0.62, 0.35, ("takes long to open deliverables",)))
    assert sent.run and sent.reason == (
        "the client is at risk: 62% likely to run more than 7 days late (at risk from 35%; "
        "why: takes long to open deliverables)"
    )
    # Just under the threshold reads under it (never rounded up across it).
    below = decide(rules.Risk(0.3499, 0.35))
    assert not below.run and below.reason == (
        "the client is not at risk: 34% likely to run more than 7 days late (at risk from 35%)"
    )
    assert not rules.settled(below, CHECKIN, rules.MonthView())  # the score may rise by then
    assert decide(rules.Risk(None)).reason.startswith("no risk model is trained yet")
    assert decide(None).reason == "the client's program version plans no at-risk check-in"
    delivered = decide(rules.Risk(0.9, 0.35), DeliverableStatus.DELIVERED)
    assert delivered.reason == "M3 is already delivered"
    assert rules.settled(delivered, CHECKIN, rules.MonthView(DeliverableStatus.DELIVERED))
    assert "only if the client is at risk then" in rules.condition(
        AutomationType.SEND_REMINDER, CHECKIN, 3
    )
    # An optional reminder: the client's choices and the frequency cap apply to it.
    assert rules.unwanted(CHECKIN, rules.Preferences(reminders=False)) is not None
    assert rules.unwanted(CHECKIN, rules.Preferences(unsubscribed=True)) is not None
    now = at(2026, 1, 4, 9)
    two = [now - timedelta(hours=3), now - timedelta(hours=1)]
    assert rules.capped_until(CHECKIN, two, 2, now) == now + timedelta(hours=21)


# -- planned with the program (SQLite and PostgreSQL) ----------------------------------------------


def test_off_by_default_nothing_is_planned_and_none_can_be_added_by_hand(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    assert harness.automations(client, template=CHECKIN) == []
    with pytest.raises(errors.Invalid, match="at-risk check-ins are off"):
        controls.schedule_by_hand(
            harness.ctx, client, "SEND_REMINDER", month=2, template="AT_RISK_CHECKIN"
        )


def test_turned_on_the_preview_knows_it_and_publishing_plans_it(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    draft_checkins(harness.ctx, 7)
    seen = programs.preview(harness.ctx, replan.IN_FLIGHT)
    [mine] = seen.clients
    assert {(c.kind, c.template) for c in mine.changes} == {("appears", "AT_RISK_CHECKIN")}
    assert [c.month for c in mine.changes] == list(range(2, 9))
    assert "7 automations appear for 1 client" in seen.summary()
    programs.publish(harness.ctx, "coach@example.com", replan.IN_FLIGHT)
    harness.ctx.commit()
    planned = harness.automations(client, template=CHECKIN)
    assert [(a.month, a.status, a.trigger_at) for a in planned] == [
        (c.month, "SCHEDULED", c.new_at) for c in mine.changes
    ]
    # M2's milestone is 4 February: the check-in goes 28 January at 9:00 in New York.
    assert planned[0].trigger_at == at(2026, 1, 28, 14)
    newcomer = harness.enroll(date(2026, 2, 2), NY, email="new@example.com", name="New Client")
    assert len(harness.automations(newcomer, template=CHECKIN)) == 7


# -- decided when it runs, sent over SMTP or skipped saying why -----------------------------------


@pytest.fixture
def mailed_world(database_url, smtp):
    """The engine with a real SMTP server, on 3 January 2026."""
    port, inbox = smtp
    with mailed(database_url, port, ManualClock(at(2026, 1, 3, 12))) as h:
        yield h, inbox


def four_months_of_history(h: Harness) -> tuple[list[Client], set[int]]:
    """Nine clients who started 10 September 2025 and had four months delivered; every third
    one's months ran 10 days late and were opened 6 days after that."""
    clients, slow = [], set()
    for i in range(9):
        client = h.enroll(date(2025, 9, 10), email=f"c{i}@example.com", name=f"Client {i}")
        clients.append(client)
        if i % 3 == 0:
            slow.add(client.id)
        for month in range(1, 5):
            milestone = h.one(client, type="GENERATE_DELIVERABLE", month=month).trigger_at
            delivered = milestone + timedelta(days=10 if client.id in slow else 1)
            opened = delivered + timedelta(days=6 if client.id in slow else 1)
            db.session.add(
                Deliverable(
                    client_id=client.id, month=month, version=1, status="DELIVERED",
                    generated_at=milestone, reviewed_at=delivered, delivered_at=delivered,
                    opened_at=opened, created_at=milestone,
                )
            )  # fmt: skip
    db.session.commit()
    h.run_until(h.clock.now())  # the past generations: skipped, their months exist
    return clients, slow


def test_a_client_at_risk_gets_the_checkin_once_and_the_others_are_skipped_saying_why(mailed_world):
    h, inbox = mailed_world
    draft_checkins(h.ctx, 4)  # M5's milestone is 8 January: its check-in on the 4th
    h.do(programs.publish, "coach@example.com", replan.NEW_ONLY)
    clients, slow = four_months_of_history(h)
    quiet = clients[3]  # slow, but has turned reminders off
    quiet.reminders_enabled = False
    h.ctx.commit()
    # Before any model, the page foretells a skip, in the engine's words.
    pending = h.automations(clients[1], template=CHECKIN, status="SCHEDULED")
    first = outcomes.upcoming(h.ctx, clients[1], pending)[0]
    assert first.text.startswith("on the latest risk score, will be skipped because no risk model")
    h.do(risk.train, actor="coach@example.com")
    checkins = [h.one(c, template=CHECKIN, month=5) for c in clients]
    assert {a.trigger_at for a in checkins} == {at(2026, 1, 4, 9)}
    # What the journey page says now, for a client not at risk and one at risk.
    set_password()
    web = browser(h.app)
    assert log_in(web).status_code == 302
    panel = Panel(web)
    calm, worried = clients[1], clients[0]
    page = html.unescape(panel.get(f"/clients/{calm.id}").get_data(True))
    assert "At-risk check-in to client (M5)" in page
    assert "only if the client is at risk then" in page
    foretold = page.split("risk score, will be skipped because ", 1)[1].split("</td>")[0]
    assert foretold.startswith("the client is not at risk: ")
    worried_page = html.unescape(panel.get(f"/clients/{worried.id}").get_data(True))
    assert "on the latest risk score it goes, because the client is at risk: " in worried_page
    # The clients list's "next": the check-in for the client at risk only.
    nexts = overview.next_automations(h.ctx, [calm.id, worried.id])
    assert nexts[worried.id].name == "At-risk check-in to client (M5)"
    assert nexts[calm.id].name == "Upcoming reminder to client (M5)"
    # The moment comes: every check-in due then travels in one message, as the sweep sends them.
    h.clock.set(at(2026, 1, 4, 9))
    pairs = [(a.id, a.version) for a in checkins]
    execute.run_batch(h.ctx, pairs)
    execute.run_batch(h.ctx, pairs)  # delivered twice: nothing more happens
    scores = risk.kept_scores(h.ctx, [c.id for c in clients])  # refreshed by the check-ins
    assert {s.scored_at for s in scores.values()} == {at(2026, 1, 4, 9)}
    at_risk = {cid for cid, s in scores.items() if s.at_risk}
    assert at_risk == slow  # the model learned who runs late
    received = {m["To"]: m for m in inbox.messages}
    wanted = {c.email for c in clients if c.id in at_risk and c is not quiet}
    assert set(received) == wanted and len(inbox.messages) == len(wanted)
    mail = received[clients[0].email]
    assert mail["Subject"] == "Checking in before Month 5: Audience Growth"
    assert (
        "Your Month 5: Audience Growth milestone comes on"
        in mail.get_body(("plain",)).get_content()
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    logs = {
        row.client_id: row
        for row in db.session.scalars(
            select(AutomationLog).where(AutomationLog.template == CHECKIN.value)
        )
    }
    assert len(logs) == len(clients)  # one row each: run once
    for client in clients:
        row = logs[client.id]
        if client is quiet:
            assert (row.status, row.detail) == ("SKIPPED", "the client turned reminders off")
        elif client.id in at_risk:
            assert row.status == "COMPLETED"
            assert row.detail.startswith("the client is at risk: ") and "why: " in row.detail
        else:
            assert row.status == "SKIPPED" and row.detail.startswith("the client is not at risk")
    assert logs[calm.id].detail == foretold  # the page said what the log now says
    history = html.unescape(panel.get(f"/clients/{calm.id}").get_data(True))
    assert foretold in history


def test_the_program_editor_sets_it_previews_it_and_the_risk_page_says_it(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    panel = Panel(web)
    sarah = harness.enroll(date(2026, 1, 5), NY)
    assert "Earlier check-in: <strong>off</strong>" in panel.get("/risk").get_data(True)
    panel.post("/program/draft/start", htmx=False)
    page = html.unescape(panel.get("/program/").get_data(True))
    assert 'name="schedule.at_risk_checkin_days" inputmode="numeric" value="0"' in page
    assert "earlier check-in, days before each milestone from M2" in page
    form = {"name": "Wavelaunch Creator Program", "schedule.at_risk_checkin_days": "30"}
    refused = panel.post("/program/draft", form)
    assert refused.status_code == 422
    assert "schedule.at_risk_checkin_days: must be less than month_length_days (30), not 30" in (
        html.unescape(refused.get_data(True))
    )
    form["schedule.at_risk_checkin_days"] = "7"
    assert panel.post("/program/draft", form).status_code == 200
    impact = panel.get("/program/preview?applies_to=all", headers={"HX-Request": "true"})
    text = impact.get_data(True)
    assert "7 automations appear for 1 client" in text
    assert "At-risk check-in to client (M2)" in text
    # The check-in's email, as the draft has it, previewed for a client.
    email = panel.get(f"/program/draft/emails/AT_RISK_CHECKIN?client={sarah.id}")
    assert "Checking in before Month 2: Brand Identity" in email.get_data(True)
    published = panel.post("/program/publish", {"applies_to": "all"}, htmx=False)
    assert published.status_code == 303
    said = panel.get("/risk").get_data(True)
    assert "Earlier check-in: <strong>on</strong> in program version 2: 7 days" in said
    assert len(harness.automations(sarah, template=CHECKIN)) == 7


# -- one score on every surface: the kept one, refreshed by the check-in that decides on it ------


class RiskSurfaces:
    """Every surface that states one client's risk, read as a person (or a program) reads
    them: the clients list's badge and its "at risk" filter, the journey page's card and its
    foretelling of the check-in, the API's timeline, `journey risk show` and `journey
    timeline`."""

    def __init__(self, h: Harness, panel: Panel, token: str, client: Client) -> None:
        self.h, self.panel, self.token, self.client = h, panel, token, client

    def badge(self) -> str | None:
        """The percent on the clients list's badge on the client's row, or None."""
        page = html.unescape(self.panel.get(f"/?q={self.client.email}").get_data(True))
        assert f">{self.client.name}</a>" in page
        found = re.search(r'class="pill risk"[^>]*>at risk · (\d+)%</a>', page)
        return found.group(1) if found else None

    def filtered(self) -> bool:
        """Whether the "at risk" filter lists the client."""
        return f">{self.client.name}</a>" in self.panel.get("/?risk=1").get_data(True)

    def page(self) -> str:
        return html.unescape(self.panel.get(f"/clients/{self.client.id}").get_data(True))

    def card(self) -> tuple[float, bool, str, str]:
        """The journey page's card: its probability, at risk or not, the percent it says and
        when it was scored."""
        found = re.search(
            r'class="card risk-card ?(at-risk)?" data-risk="([0-9.]+)">\s*<strong>'
            r"(At risk|Not at risk)</strong>: (\d+)% likely.*?"
            r'Scored <time datetime="([^"]+)"',
            self.page(),
            re.S,
        )
        assert found, "no risk card"
        at_risk = found.group(3) == "At risk"
        assert (found.group(1) is not None) is at_risk
        return float(found.group(2)), at_risk, found.group(4), found.group(5)

    def foretold(self) -> str:
        """What the journey page says will happen to the M5 check-in."""
        found = re.search(r"check-in to client \(M5\).*?</td><td>(.*?)</td>", self.page(), re.S)
        assert found, "no check-in in the next 30 days"
        return found.group(1)

    def api(self) -> dict:
        answer = self.h.app.test_client().get(
            f"/api/clients/{self.client.id}/journey/timeline",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert answer.status_code == 200
        body = answer.get_json()
        contract().validator("/components/schemas/Timeline").validate(body)  # as documented
        return body

    def cli(self, *args: str) -> str:
        out = self.h.app.test_cli_runner().invoke(cli, list(args))
        assert out.exit_code == 0, out.output
        return out.output

    def agree(self) -> dict:
        """The badge, the filter, the card, the API, `journey risk show` and `journey timeline`
        state one score: the same probability, at risk or not, scored at the same moment.
        Returns the API's."""
        probability, at_risk, said, scored = self.card()
        score = self.api()["risk"]
        assert (score["probability"], score["at_risk"]) == (probability, at_risk)
        assert score["scored_at"] == scored
        assert said == str(rules.percent(probability))
        assert self.badge() == (said if at_risk else None)
        assert self.filtered() is at_risk
        line = f"M5  {said}%{' at risk' if at_risk else ''}  (at risk from 35%; scored "
        line += f"{datetime.fromisoformat(scored):%Y-%m-%d %H:%M} UTC)"
        listed = self.cli("risk", "show")
        assert (f"{self.client.name} <{self.client.email}>  {line}" in listed) is at_risk
        assert f"risk score: {line}" in self.cli("timeline", self.client.email)
        return score


def test_every_surface_shows_the_kept_score_and_the_checkin_refreshes_it_as_it_decides(
    mailed_world,
):
    h, inbox = mailed_world
    draft_checkins(h.ctx, 4)  # M5's check-ins on 4 January
    h.do(programs.publish, "coach@example.com", replan.NEW_ONLY)
    clients, _ = four_months_of_history(h)
    # A client who kept pace but has not opened M4 (delivered on 10 December) when the model
    # is trained; they open it an hour later: their facts change after the scoring.
    client = clients[1]
    m4 = db.session.scalar(
        select(Deliverable).where(Deliverable.client_id == client.id, Deliverable.month == 4)
    )
    m4.opened_at = None
    db.session.commit()
    h.do(risk.train, actor="coach@example.com")
    h.clock.set(at(2026, 1, 3, 13))
    h.do(review.open_deliverable, client, 4)
    set_password()
    web = browser(h.app)
    assert log_in(web).status_code == 302
    _, token = issue(db.session, db.session.scalar(select(Admin)), "risk", h.clock.now())
    db.session.commit()
    s = RiskSurfaces(h, Panel(web), token, client)
    # Before the check-in: every surface shows the kept score, and the page and the API foretell
    # the check-in on it, in the words the log would keep.
    before = s.agree()
    assert (before["probability"], before["scored_at"]) == (0.0262, "2026-01-03T12:00:00+00:00")
    assert not before["at_risk"]
    [expected] = [e for e in s.api()["expected"] if e["name"] == "At-risk check-in to client (M5)"]
    assert s.foretold() == expected["text"]
    assert expected["text"] == (
        "on the latest risk score, will be skipped because the client is not at risk: "
        "2% likely to run more than 7 days late (at risk from 35%)"
    )
    # Its moment: the check-in scores the client again (M4 opened yesterday, at last: this
    # account's model learned that the clients who run late visited the portal lately), decides
    # on that score (at risk now: sent), and every surface shows the very score that decided,
    # scored then.
    h.run_until(at(2026, 1, 4, 9))
    after = s.agree()
    assert after["scored_at"] == "2026-01-04T09:00:00+00:00" and after["at_risk"]
    said = rules.percent(after["probability"])
    [log] = db.session.scalars(
        select(AutomationLog).where(
            AutomationLog.client_id == client.id,
            AutomationLog.template == CHECKIN.value,
            AutomationLog.month == 5,
        )
    )
    assert (log.status, log.detail) == (
        "COMPLETED",
        f"the client is at risk: {said}% likely to run more than 7 days late (at risk from 35%; "
        f"why: {', '.join(after['reasons'])})",
    )
    assert client.email in {m["To"] for m in inbox.messages}
    assert "At-risk check-in to client (M5)" not in [e["name"] for e in s.api()["expected"]]
