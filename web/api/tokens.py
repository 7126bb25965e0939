"""API tokens: issued to an admin, shown once, stored as a SHA-256 hash, revocable.

A token reads `je_` followed by 43 random URL-safe characters; its first 11 characters (the
prefix) are kept in clear so that listings can tell tokens apart.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.models import Admin, ApiToken

PREFIX = "je_"
SHOWN = 11  # characters of a token kept in clear
# Recording every use would make each read a write: `last_used_at` moves at most this often.
TOUCH_EVERY = timedelta(minutes=1)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue(session: Session, admin: Admin, name: str, now: datetime) -> tuple[ApiToken, str]:
    """A new token for `admin`: the row (added to the session) and the secret, which is never
    stored and cannot be shown again."""
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        admin_id=admin.id,
        name=" ".join(str(name or "").split())[:200],
        prefix=raw[:SHOWN],
        secret_hash=digest(raw),
        created_at=now,
    )
    session.add(token)
    return token, raw


def verify(session: Session, raw: str, now: datetime) -> ApiToken | None:
    """The live token `raw` stands for, or None (unknown, revoked, or its admin inactive)."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.secret_hash == digest(raw)))
    if token is None or token.revoked_at is not None or not token.admin.active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        session.commit()
    return token


def revoke(session: Session, token: ApiToken, now: datetime) -> bool:
    """Revoke the token; False if it already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True
