"""Sending email with Flask-Mail over SMTP: a timeout on every connection, and one connection
kept open per worker thread (a new SMTP conversation per message costs more than the message)."""

from __future__ import annotations

import logging
import smtplib
import threading

from flask import Flask
from flask_mail import Connection, Message

from scheduler.engine import OutgoingMessage

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
    """The engine's mailer."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.local = threading.local()

    def send(self, message: OutgoingMessage) -> None:
        state = self.app.extensions["mail"]
        msg = Message(
            subject=message.subject,
            recipients=[message.to],
            body=message.text,
            html=message.html,
            sender=self.app.config["MAIL_DEFAULT_SENDER"],
            extra_headers=dict(message.headers),
        )
        msg.msgId = message.message_id
        if state.suppress:
            log.info(
                "email kept, not sent (no MAIL_SERVER): to %s, %s, %r, %s",
                message.to,
                message.template or "-",
                message.subject,
                message.link or "-",
            )
            return
        connection: TimedConnection | None = getattr(self.local, "connection", None)
        if connection is not None:
            try:
                connection.send(msg)
                return
            except (smtplib.SMTPServerDisconnected, OSError):
                connection.close()  # the server hung up on an idle connection: open a new one
        self.local.connection = None
        connection = TimedConnection(state)
        connection.timeout = float(self.app.config["MAIL_TIMEOUT_SECONDS"])
        connection.__enter__()
        try:
            connection.send(msg)
        except BaseException:
            connection.close()
            raise
        self.local.connection = connection
