"""Signed links from emails to the client portal: each carries a token bound to one client,
signed with the app's secret and good for a limited time. No password: the link is the key.
A client email's portal links also carry the email's own short signed id (`?e=`), so that the
portal page it opens can record the click (`scheduler.portal.click`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeTimedSerializer,
)

from scheduler.clock import Clock


class ClockSigner(TimestampSigner):
    """Signing and expiry follow the engine's clock, not the machine's."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=64)
def derived_key(secret: str, purpose: str) -> bytes:
    """itsdangerous's default key derivation ("django-concat") for the purpose's salt."""
    salt = f"journey.{purpose}".encode()
    # The format `Links.client_id` verifies: SHA-1 is what itsdangerous derives and signs with.
    derived = hashlib.sha1(salt + b"signer" + secret.encode())  # nosec B324 # itsdangerous's KDF
    return derived.digest()


@lru_cache(maxsize=8192)
def signed(keys: tuple[str, ...], purpose: str, client_id: int, timestamp: int) -> str:
    """The token itsdangerous's `URLSafeTimedSerializer(keys, salt=f"journey.{purpose}")`
    makes for `client_id` at `timestamp`, signed with the newest key, written directly: a batch
    of emails signs thousands of them, and the serializer's generic path (JSON, an attempt to
    compress, a key derivation per call) costs ten times more. `Links.client_id` checks it
    with itsdangerous itself; a test holds the two formats equal."""
    value = b64(str(client_id).encode()) + b"." + b64(timestamp.to_bytes(8, "big").lstrip(b"\0"))
    mac = hmac.new(derived_key(keys[-1], purpose), value, hashlib.sha1).digest()
    return (value + b"." + b64(mac)).decode()


@lru_cache(maxsize=8)
def email_signer(keys: tuple[str, ...]) -> Signer:
    """Signs email ids: no timestamp (the portal token beside it expires), so a tag is short
    ("123.<27 characters>") and costs one HMAC."""
    return Signer(list(keys), salt="journey.email")  # signs with the last key, the newest


@lru_cache(maxsize=1024)
def email_signed(keys: tuple[str, ...], email: int) -> str:
    """Once per email: its links and its log line carry the same tag."""
    return email_signer(keys).sign(str(email)).decode()


class BadLink(Exception):
    """The token is forged, damaged, expired or made for another purpose."""


@dataclass(frozen=True)
class Links:
    """Makes and checks the portal's links for one deployment."""

    base_url: str
    secret: str
    clock: Clock
    max_age: timedelta = timedelta(days=30)
    # An unsubscribe link must keep working long after the email (RFC 8058 mail clients call it
    # whenever the reader clicks), so it lives longer than a portal link.
    unsubscribe_max_age: timedelta = timedelta(days=365)
    # Older keys being rotated out: links they signed still open until they are removed.
    fallbacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("portal links need a secret key")

    def _signer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            [*self.fallbacks, self.secret],  # itsdangerous signs with the last, the newest
            salt=f"journey.{purpose}",
            signer=ClockSigner,
            signer_kwargs={"clock": self.clock},
        )

    def token(self, client_id: int, purpose: str = "portal") -> str:
        now = int(self.clock.now().timestamp())
        return signed((*self.fallbacks, self.secret), purpose, client_id, now)

    def client_id(self, token: str, purpose: str = "portal") -> int:
        """The client the token was made for; BadLink when it cannot be trusted."""
        age = self.unsubscribe_max_age if purpose == "unsubscribe" else self.max_age
        try:
            value = self._signer(purpose).loads(token, max_age=int(age.total_seconds()))
        except SignatureExpired:
            raise BadLink("this link has expired") from None
        except BadSignature:
            raise BadLink("this link is not valid") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadLink("this link is not valid")
        return value

    def portal(self, client_id: int, page: str = "", email: int | None = None) -> str:
        """The URL of a portal page (`""`, `months/3`, `notifications`, `preferences`, ...);
        with `email`, tagged as a link of that email (`email_tag`)."""
        url = f"{self.base_url.rstrip('/')}/portal/{self.token(client_id)}"
        url = f"{url}/{page}" if page else url
        return f"{url}?e={self.email_tag(email)}" if email else url

    def email_tag(self, email: int) -> str:
        """The signed id of one email that its portal links carry. An email is named by the
        automation that sent it: its outbox row is keyed by the automation and the recipient,
        and a client email has one recipient, the client (the id exists before the row does,
        when the email is rendered)."""
        return email_signed((*self.fallbacks, self.secret), email)

    def email_of(self, tag: str) -> int:
        """The email id a tag names; BadLink when it is forged or damaged."""
        try:
            value = email_signer((*self.fallbacks, self.secret)).unsign(tag).decode()
        except (BadSignature, UnicodeError):
            raise BadLink("this link is not valid") from None
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise BadLink("this link is not valid")
        return int(value)

    def unsubscribe(self, client_id: int) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/portal/unsubscribe/{self.token(client_id, 'unsubscribe')}"
