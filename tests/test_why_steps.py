"""Why each step will or won't fire: every pending step says what it is, when (the client's
time and the admin's), and its condition; a step that will not fire as things stand says why,
in the words the engine logs when it skips it; an overdue client's page says what is overdue
and since when."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import g

from scheduler import outcomes, overview, review, timeline
from scheduler.models import Admin
from scheduler.vocab import AutomationStatus as S
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from tests.test_api import Api, new_token
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


def expected_of(harness, client):
    line = timeline.build(harness.ctx, client, days_ahead=60)
    return {
        (a.template or a.type, a.month): e
        for a, e in zip(
            line.upcoming, outcomes.upcoming(harness.ctx, client, line.upcoming), strict=True
        )
    }


def test_a_skip_foretold_is_the_skip_the_engine_logs(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    harness.do(review.approve, client, 1)
    # M2 generated and delivered early: its upcoming reminder (28 Jan) has no reason left.
    harness.do(review.generate_by_hand, client, 2)
    harness.run_for(timedelta(minutes=1))
    harness.do(review.approve, client, 2)
    told = expected_of(harness, client)
    upcoming = told["REMINDER_UPCOMING", 2]
    assert upcoming.state == "skipped"
    assert upcoming.text == "will be skipped because M2 is already delivered"
    assert upcoming.condition == "only if M2 is not delivered or skipped by then"
    # Delivered and not opened yet: its overdue reminder will go, on its condition.
    assert told["REMINDER_OVERDUE", 2].state == "scheduled"
    page = html.unescape(panel.get(f"/clients/{client.id}").get_data(True))
    assert "will be skipped because M2 is already delivered" in page
    assert "only if M2 is not delivered or skipped by then" in page
    harness.run_until(at(2026, 1, 29))
    reminder = harness.one(client, template="REMINDER_UPCOMING", month=2)
    assert reminder.status == S.SKIPPED
    logged = [entry.detail for entry in harness.logs(client) if entry.automation_id == reminder.id]
    assert logged == ["M2 is already delivered"]  # the very words the page foretold


def test_conditions_and_both_clocks(harness, panel):
    admin = db.session.query(Admin).filter_by(email="coach@example.com").one()
    admin.timezone = "Asia/Tokyo"
    db.session.commit()
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    told = expected_of(harness, client)
    assert told["REMINDER_OVERDUE", 1].condition == "only if M1 is delivered and not opened by then"
    assert told["REMINDER_OVERDUE", 1].state == "scheduled"  # M1 may be delivered by then
    assert told["GENERATE_DELIVERABLE", 2].condition == "only if M2 has no deliverable yet"
    page = panel.get(f"/clients/{client.id}").get_data(True)
    assert "Your time (Asia/Tokyo)" in page
    # The upcoming reminder of M1: 7 Jan 09:00 in New York is 7 Jan 23:00 in Tokyo.
    assert "Wed 07 Jan 2026 09:00" in page and "Wed 07 Jan 2026 23:00" in page
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    body = api.get(f"/api/clients/{client.id}/journey/timeline?days=60").get_json()
    conditions = {e["name"]: e["condition"] for e in body["expected"]}
    assert conditions["Overdue reminder to client (M1)"] == (
        "only if M1 is delivered and not opened by then"
    )
    assert body["overdue"] == ""


def test_an_overdue_client_says_what_is_overdue_and_since_when(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 8, 12))
    assert overview.overdue(harness.ctx, client) == ""
    harness.run_until(at(2026, 1, 9, 12))
    assert overview.client_status(harness.ctx, client) == "overdue"
    said = overview.overdue(harness.ctx, client)
    assert said == (
        "M1 Foundation & Business Plan is overdue since 09 Jan 2026: its milestone was "
        "01 Jan 2026 and it is waiting in review."
    )
    assert said in html.unescape(panel.get(f"/clients/{client.id}").get_data(True))
    harness.do(review.approve, client, 1)
    assert overview.overdue(harness.ctx, client) == ""
