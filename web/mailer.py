"""Sending email: the message's bytes built with the standard library, sent by Flask-Mail's
SMTP connection (a timeout on every connection, and one connection kept open per worker thread:
a new SMTP conversation per message costs more than the message)."""

from __future__ import annotations

import logging
import quopri
import secrets
import smtplib
import threading
import time
from email import policy as policies
from email.message import EmailMessage
from email.utils import formatdate

from flask import Flask
from flask_mail import Connection, Message

from scheduler.engine import OutgoingMessage

log = logging.getLogger(__name__)

# -- the message's bytes -------------------------------------------------------------------------

# SMTP's conventions (CRLF, 78-character folding, RFC 2047 encoded-words for non-ASCII), except
# that a value stored raw is written as it is. The email package would refold a long unspaced
# value (a List-Unsubscribe URL, a long X-Journey-Key) into encoded-words (`=?utf-8?q?=3Chttps…?=`),
# which mail clients do not read as a URL (RFC 8058 one-click needs the URL itself).
POLICY = policies.SMTP.clone(refold_source="none")
MAX_LINE = 998  # RFC 5322: no line longer than this, folded or not

# The parts' headers never change: parsed once, shared (header objects are immutable), so the
# generator does not parse them again for every message.
TEXT_TYPE = {
    kind: POLICY.header_factory("Content-Type", f'text/{kind}; charset="utf-8"')
    for kind in ("plain", "html")
}
QUOTED_PRINTABLE = POLICY.header_factory("Content-Transfer-Encoding", "quoted-printable")


def verbatim(name: str, value: str) -> str:
    """A header value written as given: ASCII, one line, within the line limit."""
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ValueError(f"{name}: {value!r} is not ASCII on one line")
    if len(name) + 2 + len(value) > MAX_LINE:
        raise ValueError(f"{name}: longer than {MAX_LINE} characters")
    return value


def text_part(kind: str, body: str) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part.set_raw("Content-Type", TEXT_TYPE[kind])
    part.set_raw("Content-Transfer-Encoding", QUOTED_PRINTABLE)
    part.set_payload(quopri.encodestring(body.encode("utf-8")).decode("ascii"))
    return part


def build(message: OutgoingMessage, sender: str) -> bytes:
    """The message as it goes on the wire: multipart/alternative (plain text, then HTML, both
    quoted-printable UTF-8), with its Message-ID, Date and extra headers. Subject and From are
    encoded where they are not ASCII; every other header is ASCII and written as it is."""
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = message.subject
    msg["From"] = sender
    for name, value in (
        ("To", message.to),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message.message_id),
        *message.headers.items(),
        ("MIME-Version", "1.0"),
    ):
        msg.set_raw(name, verbatim(name, value))
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    msg["Content-Type"] = f'multipart/alternative; boundary="=_{secrets.token_hex(16)}"'
    msg.set_payload([text_part("plain", message.text), text_part("html", message.html)])
    return msg.as_bytes()


class Prepared(Message):
    """A message whose bytes are built: Flask-Mail's connection only sends them. (Flask-Mail's
    own constructor makes a Message-ID with `socket.getfqdn()`, a name lookup, for every
    message; this one has its own, so it sets only what the connection reads.)"""

    def __init__(self, raw: bytes, sender: str, to: str) -> None:
        self.raw = raw
        self.sender = sender
        self.recipients = [to]
        self.cc: list[str | tuple[str, str]] = []
        self.bcc: list[str | tuple[str, str]] = []
        self.reply_to = None
        self.subject = ""
        self.date = time.time()
        self.mail_options: list[str] = []
        self.rcpt_options: list[str] = []

    def as_bytes(self) -> bytes:
        return self.raw

    def has_bad_headers(self) -> bool:
        return False  # `build` refuses a line break in any header it writes


# -- sending ---------------------------------------------------------------------------------------


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
        sender = self.app.config["MAIL_DEFAULT_SENDER"]
        msg = Prepared(build(message, sender), sender, message.to)
        if state.suppress:
            log.info("email (not sent: no MAIL_SERVER) to %s: %s", message.to, message.subject)
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
