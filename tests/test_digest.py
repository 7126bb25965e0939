"""The weekly digest (Monday 08:00 in each admin's zone, once) and the alert webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scheduler.models import Admin
from scheduler.sweep import sweep
from scheduler.vocab import Template
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def digests(harness):
    return [m for m in harness.mailer.sent if "Weekly digest" in m.subject]


def test_each_admin_gets_one_digest_at_monday_8_in_their_zone(harness):
    paris = db.session.query(Admin).one()
    paris.timezone = "Europe/Paris"
    db.session.commit()
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 12, 6, 59))  # Monday 07:59 in Paris
    assert client.id and harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    sweep(harness.ctx)
    assert digests(harness) == []
    harness.clock.set(at(2026, 1, 12, 7, 0))  # 08:00 in Paris
    sweep(harness.ctx)
    sweep(harness.ctx)  # a second sweeper, or the next minute: not again
    [digest] = digests(harness)
    assert digest.to == "coach@example.com"
    assert "automations last week" in digest.subject
    assert "Sarah Johnson: Upcoming reminder to client (M1), done" in digest.text
    assert "Sarah Johnson: Deliverable generation (M1), done" in digest.text
    assert "THE NEXT 7 DAYS" in digest.text and "Overdue reminder to client (M1)" in digest.text
    # The counts are the log's rows for the same filters, and link to them.
    assert "/log?status=SCHEDULED&from=2026-01-12&to=2026-01-18" in digest.text
    harness.clock.set(at(2026, 1, 13, 9))  # Tuesday: this week's is sent, none late
    sweep(harness.ctx)
    assert len(digests(harness)) == 1


def test_a_failed_digest_is_tried_again_minutes_later(harness):
    harness.clock.set(at(2026, 1, 12, 8, 0))
    harness.mailer.fail_next = 1
    sweep(harness.ctx)
    assert digests(harness) == []
    harness.clock.advance(timedelta(minutes=1))
    sweep(harness.ctx)  # the first attempt may still be under way: wait
    assert digests(harness) == []
    harness.clock.advance(timedelta(minutes=5))
    sweep(harness.ctx)
    assert len(digests(harness)) == 1
    row = harness.emails(Template.WEEKLY_DIGEST)[0]
    assert (row.status, row.attempts) == ("SENT", 2)


class Hook(BaseHTTPRequestHandler):
    posts: list[dict] = []
    status = 200

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        Hook.posts.append(json.loads(self.rfile.read(length)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    Hook.posts, Hook.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/alerts"
    server.shutdown()


def test_escalations_also_go_to_the_alert_webhook_once(harness, hook):
    harness.app.extensions["journey"].alert_webhook_url = hook
    harness.enroll(date(2026, 1, 10))
    Hook.status = 500  # the first post fails: the automation is retried
    harness.run_until(at(2026, 1, 17, 9, 1))
    assert len(Hook.posts) == 1
    assert len(harness.emails(Template.ADMIN_ESCALATION)) == 2  # the email and the post
    Hook.status = 200
    harness.run_for(timedelta(minutes=16))
    assert len(Hook.posts) == 2  # the retry posted; the email was not sent again
    assert Hook.posts[1]["text"].startswith("*")
    assert "Sarah Johnson" in Hook.posts[1]["text"]
    sent = [m for m in harness.mailer.sent if m.subject.startswith("🚨")]
    assert len(sent) == 1
    harness.run_for(timedelta(days=2))
    assert len(Hook.posts) == 2
