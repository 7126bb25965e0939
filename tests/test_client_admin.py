"""Editing a client (a new time zone moves every pending send, previewed before it is saved;
the coach; onboarding answers), ending a journey early, and erasing a client with everything
kept about them. Panel, API and CLI."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import g
from sqlalchemy import func, select

from scheduler import review
from scheduler.models import (
    Admin,
    Automation,
    AutomationLog,
    Client,
    ClientChange,
    Deliverable,
    Email,
    Hold,
    IdempotencyKey,
)
from scheduler.vocab import AutomationStatus as S
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from tests.test_api import Api, new_token
from web.cli import cli
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return Panel(web)


def form(client, **changes):
    fields = {
        "name": client.name,
        "email": client.email,
        "timezone": client.timezone,
        "coach": "",
        "onboarding": "",
        "business_plan": client.business_plan,
    }
    return fields | changes


def test_a_new_time_zone_is_previewed_then_moves_every_pending_send(harness, panel):
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    upcoming = harness.one(client, template="REMINDER_UPCOMING", month=1)
    assert upcoming.trigger_at == at(2026, 1, 7, 14)  # 09:00 in New York
    preview = panel.post(
        f"/clients/{client.id}/edit/preview", form(client, timezone="Europe/London")
    )
    text = html.unescape(preview.get_data(True))
    assert preview.status_code == 200
    assert "timezone: America/New_York → <strong>Europe/London</strong>" in text
    assert "The time zone moves 32 pending send times" in text
    assert "Wed 07 Jan 2026 09:00" in text and "Save changes" in text
    assert harness.refresh(upcoming).trigger_at == at(2026, 1, 7, 14)  # nothing saved yet
    assert harness.refresh(client).timezone == "America/New_York"
    saved = panel.post(f"/clients/{client.id}/edit", form(client, timezone="Europe/London"))
    assert saved.status_code == 200
    assert "32 send times moved to Europe/London" in html.unescape(saved.get_data(True))
    assert harness.refresh(upcoming).trigger_at == at(2026, 1, 7, 9)  # 09:00 in London
    london = ZoneInfo("Europe/London")  # 09:00 there, in winter and in summer time
    assert {
        a.trigger_at.astimezone(london).hour
        for a in harness.automations(client, status=S.SCHEDULED)
    } == {9}
    change = db.session.scalar(select(ClientChange).where(ClientChange.what == "time zone"))
    assert change.actor == "coach@example.com"
    assert (change.before, change.after) == (
        {"timezone": "America/New_York"},
        {"timezone": "Europe/London"},
    )
    bad = panel.post(f"/clients/{client.id}/edit/preview", form(client, timezone="Europe/Lundon"))
    assert bad.status_code == 422 and "did you mean Europe/London" in bad.get_data(True)


def test_details_coach_and_onboarding_answers(harness, panel):
    harness.add_admin("lead@example.com")
    lead = db.session.scalar(select(Admin).where(Admin.email == "lead@example.com"))
    client = harness.enroll(date(2026, 1, 10))
    saved = panel.post(
        f"/clients/{client.id}/edit",
        form(
            client,
            name="Sarah J. Johnson",
            coach=str(lead.id),
            onboarding="Goal: 10 clients\nNiche: yoga studios\n",
        ),
    )
    assert saved.status_code == 200
    harness.refresh(client)
    assert client.name == "Sarah J. Johnson" and client.coach_id == lead.id
    assert client.onboarding == {"Goal": "10 clients", "Niche": "yoga studios"}
    bad = panel.post(f"/clients/{client.id}/edit", form(client, onboarding="just words"))
    assert bad.status_code == 422 and "line 1" in bad.get_data(True)
    taken = harness.enroll(date(2026, 1, 10), email="tom@example.com", name="Tom")
    clash = panel.post(f"/clients/{client.id}/edit", form(client, email=taken.email))
    assert clash.status_code == 409
    whats = {c.what for c in db.session.scalars(select(ClientChange))}
    assert {"client details", "coach"} <= whats


def test_ending_a_journey_early(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    refused = panel.post(f"/clients/{client.id}/offboard", {"reason": " "})
    assert refused.status_code == 422
    ended = panel.post(f"/clients/{client.id}/offboard", {"reason": "Moved to another program"})
    assert ended.status_code == 200
    assert "automations cancelled" in ended.get_data(True)
    assert harness.automations(client, status=S.SCHEDULED) == []
    harness.refresh(client)
    assert client.offboard_reason == "Moved to another program" and client.completed_at
    assert panel.post(f"/clients/{client.id}/offboard", {"reason": "again"}).status_code == 409
    cancelled = harness.automations(client, status=S.CANCELLED)
    assert cancelled[0].detail == "journey ended early: Moved to another program"
    # Approving a month afterwards does not bring the journey back.
    harness.do(review.approve, client, 1)
    assert harness.refresh(client).completed_at is not None


def rows_of(client_id, email):
    counts = {}
    for model, where in (
        (Client, Client.id == client_id),
        (Deliverable, Deliverable.client_id == client_id),
        (Automation, Automation.client_id == client_id),
        (AutomationLog, AutomationLog.client_id == client_id),
        (Email, Email.to_address == email),
        (Hold, Hold.client_id == client_id),
        (ClientChange, ClientChange.client_id == client_id),
        (IdempotencyKey, IdempotencyKey.response.like(f"%{email}%")),
    ):
        counts[model.__name__] = db.session.scalar(
            select(func.count()).select_from(model).where(where)
        )
    return counts


def test_erasure_names_what_goes_and_leaves_nothing(harness, panel):
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    created = api.post(
        "/api/clients",
        {"name": "Sarah Johnson", "email": "sarah@example.com", "start_date": "2026-01-01"},
        headers={"Idempotency-Key": "create-sarah"},
    )
    sarah_id = created.get_json()["id"]
    g.pop("journey", None)
    api.post(
        "/api/clients",
        {"name": "Tom Lee", "email": "tom@example.com", "start_date": "2026-01-01"},
        headers={"Idempotency-Key": "create-tom"},
    )
    g.pop("journey", None)
    sarah = db.session.get(Client, sarah_id)
    harness.run_until(at(2026, 1, 1, 10))
    harness.do(review.approve, sarah, 1)
    harness.run_for(timedelta(days=2))
    before = rows_of(sarah_id, "sarah@example.com")
    assert all(before[k] for k in ("Client", "Deliverable", "Automation", "AutomationLog", "Email"))
    assert before["IdempotencyKey"] == 1
    page = html.unescape(panel.get(f"/clients/{sarah_id}/delete").get_data(True))
    assert f"the client record, {before['Deliverable']} deliverables" in page
    assert f"{before['Automation']} automations" in page and "1 stored API answers" in page
    wrong = panel.web.post(
        f"/clients/{sarah_id}/delete", data={"confirm": "tom@example.com", "csrf_token": panel.csrf}
    )
    assert wrong.status_code == 422 and db.session.get(Client, sarah_id) is not None
    done = panel.web.post(
        f"/clients/{sarah_id}/delete",
        data={"confirm": "sarah@example.com", "csrf_token": panel.csrf},
    )
    assert done.status_code == 303
    db.session.expire_all()
    assert set(rows_of(sarah_id, "sarah@example.com").values()) == {0}
    tom = db.session.scalar(select(Client).where(Client.email == "tom@example.com"))
    assert rows_of(tom.id, "tom@example.com")["IdempotencyKey"] == 1  # Tom's stays
    assert panel.get(f"/clients/{sarah_id}").status_code == 404


def test_api_zone_preview_change_end_and_erase(harness):
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    preview = api.post(f"/api/clients/{client.id}/timezone/preview", {"timezone": "Asia/Tokyo"})
    moves = preview.get_json()["moves"]
    assert len(moves) == 32 and moves[0]["before"] != moves[0]["after"]
    assert harness.refresh(client).timezone == "America/New_York"
    assert (
        api.post(
            f"/api/clients/{client.id}/timezone/preview", {"timezone": "Mars/Base"}
        ).status_code
        == 422
    )
    g.pop("journey", None)
    changed = api.patch(f"/api/clients/{client.id}", {"timezone": "Asia/Tokyo", "coach_id": None})
    assert changed.status_code == 200 and changed.get_json()["timezone"] == "Asia/Tokyo"
    upcoming = harness.one(client, template="REMINDER_UPCOMING", month=1)
    assert upcoming.trigger_at == at(2026, 1, 7, 0)  # 09:00 in Tokyo
    g.pop("journey", None)
    ended = api.post(f"/api/clients/{client.id}/journey/end", {"reason": "Paused for good"})
    assert ended.status_code == 200 and ended.get_json()["status"] == "completed"
    assert api.post(f"/api/clients/{client.id}/journey/end", {"reason": "x"}).status_code == 409
    g.pop("journey", None)
    erased = api.delete(f"/api/clients/{client.id}")
    assert erased.status_code == 200 and erased.get_json()["removed"]["automations"] == 32
    assert api.get(f"/api/clients/{client.id}").status_code == 404


def test_cli_edit_offboard_and_delete(harness):
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    runner = harness.app.test_cli_runner()

    def run(*args, input=None):
        g.pop("journey", None)
        out = runner.invoke(cli, list(args), input=input)
        assert "Traceback" not in out.output
        return out

    dry = run("clients", "edit", "sarah@example.com", "--timezone", "Europe/Paris", "--dry-run")
    assert dry.exit_code == 0 and "dry run: nothing changed (32 sends would move)" in dry.output
    assert "09:00 America/New_York -> " in dry.output
    assert harness.refresh(client).timezone == "America/New_York"
    moved = run(
        "--as",
        "ops@example.com",
        "clients",
        "edit",
        "sarah@example.com",
        "--timezone",
        "Europe/Paris",
    )
    assert moved.exit_code == 0 and "32 sends moved" in moved.output
    assert harness.refresh(client).timezone == "Europe/Paris"
    change = db.session.scalar(select(ClientChange).where(ClientChange.what == "time zone"))
    assert change.actor == "ops@example.com"
    bad = run("clients", "edit", "sarah@example.com", "--coach", "nobody@example.com")
    assert bad.exit_code == 1 and "no admin" in bad.output
    assert run("clients", "offboard", "sarah@example.com", "--reason", "Left").exit_code == 0
    kept = run("clients", "delete", "sarah@example.com", input="n\n")
    assert kept.exit_code == 1 and "deletes the client record, 32 automations" in kept.output
    gone = run("clients", "delete", "sarah@example.com", "--yes")
    assert gone.exit_code == 0 and "erased: the client record" in gone.output
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0


def test_erasure_finds_stored_answers_that_spell_the_email_escaped(harness):
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    created = api.post(
        "/api/clients",
        {"name": "Zoë Martin", "email": "zoë@example.com", "start_date": "2026-01-01"},
        headers={"Idempotency-Key": "create-zoe"},
    )
    assert created.status_code == 201, created.get_json()
    stored = db.session.scalar(select(IdempotencyKey))
    assert "zo\\u00eb@example.com" in stored.response  # JSON spells it escaped
    g.pop("journey", None)
    assert (
        api.delete(f"/api/clients/{created.get_json()['id']}").get_json()["removed"]["idempotency"]
        == 1
    )
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    # A retry of the creation is a new request now, not a replay of the erased client.
    g.pop("journey", None)
    again = api.post(
        "/api/clients",
        {"name": "Zoë Martin", "email": "zoë@example.com", "start_date": "2026-01-01"},
        headers={"Idempotency-Key": "create-zoe"},
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
