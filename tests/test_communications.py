"""What a client was sent and will be sent: the communications tab (every email with its
status — sent, pending, held by the hold, deferred by the frequency cap, skipped and why —,
each sent email as it went out) and the subscription an admin edits, the change recorded with
who made it. Panel and API."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import g

from scheduler import communications, controls, portal, review
from scheduler.models import ClientChange
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


def lived(harness):
    """Sarah: M1 delivered (sent), three reminders by hand at once (two sent, the third
    deferred by the frequency cap), her celebration and M2's reminder still to come."""
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(minutes=1))
    for _ in range(3):
        harness.do(
            controls.schedule_by_hand,
            client,
            "SEND_REMINDER",
            template="REMINDER_UPCOMING",
            month=2,
        )
    harness.run_for(timedelta(minutes=1))
    return client


def states(comms):
    return [(c.name, c.state) for c in comms]


def test_every_email_with_what_became_of_it(harness, panel):
    client = lived(harness)
    comms = communications.communications(harness.ctx, client)
    found = states(comms)
    assert ("Deliverable ready email to client (M1)", "sent") in found
    assert found.count(("Upcoming reminder to client (M2)", "sent")) == 2
    deferred = [c for c in comms if c.state == "deferred"]
    assert len(deferred) == 1 and deferred[0].text.startswith("deferred by the frequency cap until")
    assert ("Month complete celebration (M1)", "pending") in found
    assert all(c.template not in ("REVIEW_NEEDED",) for c in comms)  # admin emails are not hers
    page = html.unescape(panel.get(f"/clients/{client.id}/communications").get_data(True))
    for state in ("sent", "pending", "deferred"):
        assert f'data-state="{state}"' in page
    # Each sent email, as it went out.
    ready = next(c for c in comms if c.name.startswith("Deliverable ready"))
    sent = panel.get(f"/clients/{client.id}/sent/{ready.email_id}").get_data(True)
    assert html.escape(ready.subject, quote=False) in sent and "sarah@example.com" in sent
    frame = panel.get(f"/clients/{client.id}/sent/{ready.email_id}/html")
    assert frame.status_code == 200 and "sandbox" in frame.headers["Content-Security-Policy"]
    other = harness.enroll(date(2026, 1, 1), email="tom@example.com", name="Tom Lee")
    assert panel.get(f"/clients/{other.id}/sent/{ready.email_id}").status_code == 404
    assert panel.get(f"/clients/{client.id}/sent/999999").status_code == 404
    # The client followed a portal link of the email (the portal recorded it): "clicked".
    assert 'class="pill clicked"' not in page
    harness.do(portal.click, client, ready.automation_id)
    [clicked] = [c for c in communications.communications(harness.ctx, client) if c.clicked_at]
    assert (clicked.email_id, clicked.clicked_at) == (ready.email_id, harness.clock.now())
    page = panel.get(f"/clients/{client.id}/communications").get_data(True)
    assert page.count('class="pill clicked"') == 1
    # A hold keeps back what is pending.
    harness.do(controls.pause, client, reason="Travel")
    held = states(communications.communications(harness.ctx, client))
    assert ("Month complete celebration (M1)", "held") in held


def test_an_admin_changes_the_subscription_and_it_is_recorded(harness, panel):
    client = lived(harness)
    answer = panel.post(
        f"/clients/{client.id}/preferences", {"subscribed": "1", "celebrations": "1"}
    )
    assert answer.status_code == 200
    text = html.unescape(answer.get_data(True))
    assert "reminders <strong>off</strong>" in text
    assert "email preferences by coach@example.com: reminders_enabled on → off" in text
    harness.refresh(client)
    assert client.reminders_enabled is False and client.celebrations_enabled is True
    comms = communications.communications(harness.ctx, client)
    upcoming = [c for c in comms if c.name == "Upcoming reminder to client (M3)"]
    assert upcoming[0].state == "skipped"
    assert upcoming[0].text == "will be skipped because the client turned reminders off"
    # Unsubscribe from everything optional, through the API (the token's owner is recorded).
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    body = api.patch(f"/api/clients/{client.id}/subscription", {"subscribed": False}).get_json()
    assert body == {"subscribed": False, "reminders": False, "celebrations": False}
    g.pop("journey", None)
    listed = api.get(f"/api/clients/{client.id}/communications").get_json()
    assert listed["subscription"]["subscribed"] is False
    assert {c["state"] for c in listed["data"]} >= {"sent", "skipped"}
    assert {c["clicked_at"] for c in listed["data"]} == {None}
    assert (
        api.patch(f"/api/clients/{client.id}/subscription", {"subscribed": "no"}).status_code == 422
    )
    changes = (
        db.session.query(ClientChange)
        .filter_by(what="email preferences")
        .order_by(ClientChange.id)
        .all()
    )
    assert [(c.actor, c.before, c.after) for c in changes] == [
        ("coach@example.com", {"reminders_enabled": True}, {"reminders_enabled": False}),
        ("coach@example.com", {"unsubscribed": False}, {"unsubscribed": True}),
    ]
