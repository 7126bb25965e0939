"""A real SMTP server on loopback for the tests (aiosmtpd), and the engine wired to it: what
leaves the process is read as the server received it."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scheduler.clock import ManualClock
from tests.harness import Harness, ScriptedGenerator, Transport
from tests.panel_helpers import LONG_SESSIONS
from web import create_app
from web.extensions import db


class Inbox:
    """A mailbox behind a real SMTP server. It offers PIPELINING (RFC 2920) as large providers
    do, unless told not to."""

    def __init__(self, pipelining: bool = True) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []  # exactly what the server received
        self.pipelining = pipelining
        self.commands: list[str] = []  # MAIL and RCPT as they came

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.commands.append(f"MAIL {address}")
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.content)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server: (its port, its inbox)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def mail_config(port: int) -> dict[str, Any]:
    """The app's settings for sending to the server on `port`."""
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
        "MAIL_TIMEOUT_SECONDS": 5,
    }


@contextmanager
def mailed(database_url: str, port: int, clock: ManualClock, **config: Any) -> Iterator[Harness]:
    """The engine on `database_url` sending to the server on `port`, its automations run by
    the test (a horizon of ten years), one admin, inside the app's context."""
    transport = Transport()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": None,
            "SEND_HOUR": 9,
            **mail_config(port),
            **LONG_SESSIONS,
            **config,
        },
        clock=clock,
        dispatcher=transport,
        generator=ScriptedGenerator(),
    )
    app.extensions["journey"].horizon = timedelta(days=3650)
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        h = Harness(app, clock, transport, None, app.extensions["journey"].generator)  # type: ignore[arg-type]
        h.add_admin("coach@example.com")
        yield h
        db.session.remove()
        db.engine.dispose()
