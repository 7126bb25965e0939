"""Guardrails on actions that touch a client: a skipped month can be brought back within the
grace period (its automations scheduled again, the month as it was), and "trigger now" says who
will receive what before it runs."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler import controls
from scheduler.errors import Conflict
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import DeliverableStatus as D
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    harness.app.extensions["journey"].action_email_grace = timedelta(minutes=2)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return Panel(web)


def test_a_skip_undone_within_the_grace_period(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))  # M1 in review
    before = {a.id: a.trigger_at for a in harness.automations(client, month=3, status=S.SCHEDULED)}
    skipped = panel.post(f"/clients/{client.id}/skip", {"month": "3"})
    assert "Undo: bring M3 back" in skipped.get_data(True)
    assert harness.automations(client, month=3, status=S.SCHEDULED) == []
    harness.clock.advance(timedelta(seconds=90))
    back = panel.post(f"/clients/{client.id}/unskip", {"month": "3"})
    assert back.status_code == 200
    assert f"{len(before)} automations are scheduled again" in html.unescape(back.get_data(True))
    assert harness.deliverable(client, 3) is None  # as it was: nothing generated yet
    again = {a.id: a.trigger_at for a in harness.automations(client, month=3, status=S.SCHEDULED)}
    assert again == before
    # A month in review, skipped and brought back, is in review again.
    harness.do(controls.skip_month, client, 1)
    assert harness.deliverable(client, 1).status == D.SKIPPED
    harness.do(controls.unskip, client, 1)
    assert harness.deliverable(client, 1).status == D.PENDING_REVIEW
    # Past the grace period the skip stands.
    panel.post(f"/clients/{client.id}/skip", {"month": "4"})
    harness.clock.advance(timedelta(minutes=3))
    late = panel.post(f"/clients/{client.id}/unskip", {"month": "4"})
    assert late.status_code == 409 and "120 seconds only" in late.get_data(True)
    with pytest.raises(Conflict):
        controls.unskip(harness.ctx, client, 5)


def test_trigger_now_says_who_receives_what(harness, panel):
    client = harness.enroll(date(2026, 1, 10), "America/New_York")
    page = html.unescape(panel.get(f"/clients/{client.id}").get_data(True))
    assert (
        'hx-confirm="Send Upcoming reminder to client (M1) now? It goes to sarah@example.com."'
        in page
    )
    assert "Run Deliverable generation (M1) now? The month is written now" in page
