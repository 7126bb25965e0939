"""Email over real SMTP: an aiosmtpd server on loopback receives what the engine sends."""

from __future__ import annotations

import email
import socket
from datetime import date, timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller

from scheduler import journey as ops
from scheduler.clock import ManualClock
from scheduler.engine import OutgoingMessage
from tests.conftest import START
from tests.harness import Transport
from web import create_app, journey_context
from web.extensions import db
from web.mailer import FlaskMailer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def mail_app(tmp_path, port, clock=None):
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}",
            "REDIS_URL": None,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "MAIL_SUPPRESS_SEND": False,
            "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
            "MAIL_TIMEOUT_SECONDS": 5,
        },
        clock=clock or ManualClock(START),
        dispatcher=Transport(),
    )


def test_flask_mailer_delivers_multipart_with_our_message_id(tmp_path, smtp):
    port, inbox = smtp
    app = mail_app(tmp_path, port)
    with app.app_context():
        FlaskMailer(app).send(
            OutgoingMessage(
                to="sarah@example.com",
                subject="Hello",
                text="plain body",
                html="<p>html body</p>",
                message_id="<journey.abc@coach.example>",
            )
        )
    [msg] = inbox.messages
    assert msg["Message-ID"] == "<journey.abc@coach.example>"
    assert msg["To"] == "sarah@example.com"
    assert msg.is_multipart()
    assert msg.get_body(("plain",)).get_content().strip() == "plain body"
    assert "html body" in msg.get_body(("html",)).get_content()


def test_an_unreachable_server_fails_fast(tmp_path):
    app = mail_app(tmp_path, free_port())
    with app.app_context(), pytest.raises(OSError):
        FlaskMailer(app).send(OutgoingMessage("a@example.com", "s", "t", "<p>h</p>", "<x@y>"))


def test_a_journey_email_arrives_over_smtp_once(tmp_path, smtp):
    port, inbox = smtp
    clock = ManualClock(START)
    app = mail_app(tmp_path, port, clock)
    with app.app_context():
        db.create_all()
        ctx = journey_context()
        client = ops.enroll(
            ctx,
            name="Sarah <b>Johnson</b>",
            email="sarah@example.com",
            start_date=date(2026, 1, 5),
            timezone="America/New_York",
        )
        ctx.commit()
        upcoming = ops.pending(ctx, client, template="REMINDER_UPCOMING", month=1)[0]
        clock.advance(timedelta(days=2))
        from scheduler import execute

        execute.run(ctx, upcoming.id, upcoming.version)
        execute.run(ctx, upcoming.id, upcoming.version)  # delivered twice: sent once
    [msg] = inbox.messages
    assert msg["Subject"].startswith("Your Month 1")
    html = msg.get_body(("html",)).get_content()
    assert "Sarah &lt;b&gt;Johnson&lt;/b&gt;" in html or "Sarah" in html
    assert "<b>Johnson</b>" not in html
