"""Sending email with Flask-Mail over SMTP: a timeout on every connection, and one connection
kept open per worker thread (a new SMTP conversation per message costs more than the message)."""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from email.utils import parseaddr
from typing import Any

from flask import Flask
from flask_mail import Connection, Message

from scheduler.engine import NotSent, OutgoingMessage

log = logging.getLogger(__name__)


class TimedConnection(Connection):
    """Flask-Mail's connection, but one that cannot hang forever on a silent server."""

    timeout: float = 30.0

    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        smtp = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp(self.mail.server, self.mail.port, timeout=self.timeout)
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def close(self) -> None:
        try:
            if self.host is not None:
                self.host.quit()
        except (smtplib.SMTPException, OSError):
            pass
        self.host = None


class FlaskMailer:
    """The engine's mailer: one SMTP connection kept per worker thread, and a transaction whose
    steps tell what the server got. A refusal, or a broken connection before the message went
    out, raises NotSent (and a connection found closed before the message is simply replaced);
    a failure while the message itself is going out raises as it is: the server may have it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.local = threading.local()

    def send(self, message: OutgoingMessage) -> None:
        state = self.app.extensions["mail"]
        sender = self.app.config["MAIL_DEFAULT_SENDER"]
        if state.suppress:
            log.info("email (not sent: no MAIL_SERVER) to %s: %s", message.to, message.subject)
            return
        data = build(message, sender)
        envelope_from = parseaddr(sender)[1]
        for fresh in (False, True):
            connection = self.connection(state, fresh)
            try:
                transmit(connection.host, envelope_from, message.to, data)
                return
            except Before as exc:
                connection.close()
                self.local.connection = None
                closed = isinstance(exc.__cause__, smtplib.SMTPServerDisconnected | ConnectionError)
                if fresh or not closed:
                    raise NotSent(str(exc.__cause__ or exc)) from None
                # An idle connection the server had closed: nothing went out; a new one.
            except BaseException:
                connection.close()
                self.local.connection = None
                raise

    def connection(self, state: Any, fresh: bool) -> TimedConnection:
        connection: TimedConnection | None = getattr(self.local, "connection", None)
        if connection is not None and not fresh:
            return connection
        connection = TimedConnection(state)
        connection.timeout = float(self.app.config["MAIL_TIMEOUT_SECONDS"])
        try:
            connection.__enter__()
        except (smtplib.SMTPException, OSError) as exc:
            raise NotSent(f"cannot reach the mail server: {exc}") from None
        self.local.connection = connection
        return connection


class Before(Exception):
    """The transaction failed before the message itself went out."""


def transmit(host: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """One SMTP transaction: MAIL and RCPT (a failure there raises Before: nothing went out),
    then DATA (a refusal raises NotSent; a broken connection raises as it is)."""
    try:
        host.ehlo_or_helo_if_needed()
        code, answer = host.mail(sender)
        if code != 250:
            host.rset()
            raise smtplib.SMTPSenderRefused(code, answer, sender)
        code, answer = host.rcpt(to)
        if code not in (250, 251):
            host.rset()
            raise smtplib.SMTPRecipientsRefused({to: (code, answer)})
    except (smtplib.SMTPException, OSError) as exc:
        raise Before(str(exc)) from exc
    try:
        code, answer = host.data(data)
    except smtplib.SMTPDataError as exc:  # the server answered no (to DATA or to the message)
        raise NotSent(
            f"the server refused the message: {exc.smtp_code} {exc.smtp_error!r}"
        ) from None
    if code != 250:
        raise NotSent(f"the server refused the message: {code} {answer!r}")


def build(message: OutgoingMessage, sender: str) -> bytes:
    """The message as it goes on the wire."""
    msg = Message(
        subject=message.subject,
        recipients=[message.to],
        body=message.text,
        html=message.html,
        sender=sender,
        extra_headers=dict(message.headers),
    )
    msg.msgId = message.message_id
    msg.date = time.time()
    return msg.as_bytes()
