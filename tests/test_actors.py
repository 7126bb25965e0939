"""Who did what: every action by a person records its actor — the admin in the panel, the API
token's owner, the command's `--as` (or OS user) — on the log rows it writes and in the
client's changes (with the values before and after); the log filters by actor."""

from __future__ import annotations

import html
from datetime import date

import pytest
from flask import g
from sqlalchemy import select

from scheduler.models import AutomationLog, ClientChange
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from tests.test_api import Api, new_token
from web.cli import cli
from web.extensions import db


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return Panel(web)


def test_every_surface_records_its_actor_and_the_log_filters_by_it(harness, panel):
    client = harness.enroll(date(2026, 1, 10))
    first, second, third = harness.automations(client, template="REMINDER_UPCOMING")[:3]
    # The panel: the admin logged in.
    assert panel.post(f"/automations/{first.id}/cancel").status_code == 200
    # The API: the token's owner.
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    assert api.delete(f"/api/automations/{second.id}").status_code == 200
    # The command line: --as.
    g.pop("journey", None)
    out = harness.app.test_cli_runner().invoke(
        cli, ["--as", "ops@example.com", "automations", "cancel", str(third.id)]
    )
    assert out.exit_code == 0, out.output
    g.pop("journey", None)
    actors = {
        row.automation_id: row.actor
        for row in db.session.scalars(
            select(AutomationLog).where(AutomationLog.status == "CANCELLED")
        )
    }
    assert actors == {
        first.id: "coach@example.com",
        second.id: "coach@example.com",
        third.id: "ops@example.com",
    }
    # The log filters by who acted; "engine" is what nobody did by hand.
    ops = panel.get("/log?actor=ops@").get_data(True)
    assert ops.count('class="log-row"') == 1 and "ops@example.com" in ops
    assert panel.get("/log?actor=coach").get_data(True).count('class="log-row"') == 2
    engine = panel.get("/log?actor=engine").get_data(True)
    assert "ops@example.com" not in engine.split('id="log-rows"')[1]
    assert panel.get("/log?actor=x&status=SCHEDULED").status_code == 422
    listed = api.get("/api/admin/automations/logs?actor=ops@example.com").get_json()
    assert [e["automation_id"] for e in listed["data"]] == [third.id]
    assert listed["data"][0]["actor"] == "ops@example.com"


def test_the_clients_history_lists_changes_with_before_and_after(harness, panel):
    client = harness.enroll(date(2026, 1, 10))
    panel.post(f"/clients/{client.id}/pause", {"days": "10", "reason": "Surgery"})
    panel.post(f"/clients/{client.id}/resume")
    panel.post(f"/clients/{client.id}/adjust", {"start_date": "2026-01-17"})
    page = html.unescape(panel.get(f"/clients/{client.id}").get_data(True))
    section = page.split("<h2>Changes by people</h2>")[1].split("<h2>History</h2>")[0]
    assert section.count('class="change-row"') == 3
    assert "start date: 2026-01-10 → <strong>2026-01-17</strong>" in section
    assert "reason: — → <strong>Surgery</strong>" in section
    assert section.count("coach@example.com") == 3
    whats = [c.what for c in db.session.scalars(select(ClientChange).order_by(ClientChange.id))]
    assert whats == ["on hold", "hold ended", "start date"]
