"""Sending email: the message's bytes built with the standard library, sent over Flask-Mail's
SMTP connection (a timeout on every connection, and one connection kept open per worker thread:
a new SMTP conversation per message costs more than the message)."""

from __future__ import annotations

import contextlib
import logging
import quopri
import re
import secrets
import smtplib
import threading
from email import policy as policies
from email.utils import formatdate, parseaddr
from functools import lru_cache
from typing import Any

from flask import Flask
from flask_mail import Connection

from scheduler.engine import NotSent, OutgoingMessage

log = logging.getLogger(__name__)

# -- the message's bytes -------------------------------------------------------------------------

# SMTP's conventions (CRLF, 78-character folding, RFC 2047 encoded-words for non-ASCII), except
# that a value stored raw is written as it is. The email package would refold a long unspaced
# value (a List-Unsubscribe URL, a long X-Journey-Key) into encoded-words (`=?utf-8?q?=3Chttps…?=`),
# which mail clients do not read as a URL (RFC 8058 one-click needs the URL itself).
POLICY = policies.SMTP.clone(refold_source="none")
MAX_LINE = 998  # RFC 5322: no line longer than this, folded or not


def verbatim(name: str, value: str) -> str:
    """A header value written as given: ASCII, one line, within the line limit."""
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ValueError(f"{name}: {value!r} is not ASCII on one line")
    if len(name) + 2 + len(value) > MAX_LINE:
        raise ValueError(f"{name}: longer than {MAX_LINE} characters")
    return value


@lru_cache(maxsize=4096)
def folded(name: str, value: str) -> str:
    """`name: value` as the email package writes it for SMTP: folded at 78 characters at
    whitespace, non-ASCII as RFC 2047 encoded-words (CRLF-terminated). Many emails share a
    subject and every one the sender: each is folded once."""
    return POLICY.header_factory(name, value).fold(policy=POLICY)


def quoted_printable(body: str) -> str:
    """The body as quoted-printable UTF-8 lines, CRLF-ended (no line over 76 characters)."""
    encoded = quopri.encodestring(body.encode("utf-8")).decode("ascii")
    return encoded.replace("\n", "\r\n")


def build(message: OutgoingMessage, sender: str) -> bytes:
    """The message as it goes on the wire: multipart/alternative (plain text, then HTML, both
    quoted-printable UTF-8), with its Message-ID, Date and extra headers. Subject and From are
    encoded where they are not ASCII; every other header is ASCII and written as it is. The
    structure is written directly (the email package's generator costs more than the rest of
    the send); tests parse what a real server received."""
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    boundary = f"=_{secrets.token_hex(16)}"
    head = [
        folded("Subject", message.subject),
        folded("From", sender),
        *(
            f"{name}: {verbatim(name, value)}\r\n"
            for name, value in (
                ("To", message.to),
                ("Date", formatdate(usegmt=True)),
                ("Message-ID", message.message_id),
                *message.headers.items(),
                ("MIME-Version", "1.0"),
            )
        ),
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n',
    ]
    parts = []
    for kind, body in (("plain", message.text), ("html", message.html)):
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Type: text/{kind}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            f"{quoted_printable(body)}\r\n"
        )
    return ("".join(head) + "\r\n" + "".join(parts) + f"--{boundary}--\r\n").encode("ascii")


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
            log.info(
                "email kept, not sent (no MAIL_SERVER): to %s, %s, %r, %s",
                message.to,
                message.template or "-",
                message.subject,
                message.link or "-",
            )
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
    then DATA (a refusal raises NotSent; a broken connection raises as it is). A server that
    offers PIPELINING (RFC 2920; every large provider does) gets MAIL, RCPT and DATA in one
    write: two round trips per message instead of four."""
    try:
        host.ehlo_or_helo_if_needed()
    except (smtplib.SMTPException, OSError) as exc:
        raise Before(str(exc)) from exc
    if host.has_extn("pipelining"):
        return pipelined(host, sender, to, data)
    try:
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


def pipelined(host: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """`transmit`'s transaction as one group (MAIL, RCPT, DATA), then the message. Each
    command still gets its own answer, read in order, with the same meaning as above."""
    try:
        host.send(
            f"MAIL FROM:{smtplib.quoteaddr(sender)}\r\nRCPT TO:{smtplib.quoteaddr(to)}\r\nDATA\r\n"
        )
        mail, rcpt, go = host.getreply(), host.getreply(), host.getreply()
        if go[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            host.send(b".\r\n")  # RFC 2920: an accepted DATA is ended; no recipient has it
            host.getreply()
        if mail[0] != 250:
            host.rset()
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        if rcpt[0] not in (250, 251):
            host.rset()
            raise smtplib.SMTPRecipientsRefused({to: rcpt})
    except (smtplib.SMTPException, OSError) as exc:
        raise Before(str(exc)) from exc
    if go[0] != 354:
        # A broken connection: the next message finds it so and opens another.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            host.rset()
        raise NotSent(f"the server refused the message: {go[0]} {go[1]!r}")
    # Dot-stuffed, as `SMTP.data` writes it (`data` is CRLF-ended: `build` writes it so).
    host.send(STUFFED.sub(b"..", data) + b".\r\n")
    code, answer = host.getreply()
    if code != 250:
        raise NotSent(f"the server refused the message: {code} {answer!r}")


STUFFED = re.compile(rb"(?m)^\.")
