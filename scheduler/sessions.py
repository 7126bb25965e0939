"""Admin sessions: a login lasts until logout, until it has been idle too long, or until its
absolute lifetime is over, whichever comes first; no activity extends the lifetime. Each is a
row (`AdminSession`) whose token only the admin's cookie holds, so ending it (logout, the
sessions page, a password change) ends it everywhere at once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from scheduler.models import Admin, AdminSession

# Recording every request would make each page a write: `last_seen_at` moves at most this often
# (so a session ends between `idle` and `idle` + a minute after its last request).
TOUCH_EVERY = timedelta(minutes=1)
# Ended sessions are kept this long (who logged in, from where), then deleted.
KEEP_ENDED = timedelta(days=90)


@dataclass(frozen=True)
class Policy:
    idle: timedelta = timedelta(minutes=30)  # SESSION_IDLE_MINUTES
    lifetime: timedelta = timedelta(hours=12)  # SESSION_HOURS


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(
    session: Session, admin: Admin, now: datetime, address: str = "", user_agent: str = ""
) -> tuple[AdminSession, str]:
    """A new session for `admin`: the row (added to the session) and its token, for the
    cookie only. Sessions that ended long ago are cleared out on the way."""
    session.execute(
        delete(AdminSession).where(
            AdminSession.admin_id == admin.id, AdminSession.last_seen_at < now - KEEP_ENDED
        )
    )
    token = secrets.token_urlsafe(32)
    row = AdminSession(
        admin_id=admin.id,
        token_hash=digest(token),
        created_at=now,
        last_seen_at=now,
        address=address[:64],
        user_agent=user_agent[:300],
    )
    session.add(row)
    return row, token


def ended(row: AdminSession, now: datetime, policy: Policy) -> str | None:
    """Why the session is over, or None while it is live."""
    if row.revoked_at is not None:
        return row.revoked_why or "ended"
    if now - row.created_at >= policy.lifetime:
        return "expired"
    if now - row.last_seen_at >= policy.idle:
        return "idle"
    return None


def find(session: Session, token: str) -> AdminSession | None:
    if not token or len(token) > 200:
        return None
    return session.scalar(select(AdminSession).where(AdminSession.token_hash == digest(token)))


def resume(session: Session, token: str, now: datetime, policy: Policy) -> AdminSession | None:
    """The live session `token` stands for (its last request noted), or None: unknown, ended,
    idle too long, past its lifetime, or its admin can no longer log in. A session found over is
    recorded as ended, and why."""
    row = find(session, token)
    if row is None:
        return None
    why = ended(row, now, policy)
    if why is None and not row.admin.is_active:
        why = "admin inactive"
    if why is not None:
        if row.revoked_at is None:
            end(row, now, why)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def end(row: AdminSession, now: datetime, why: str) -> None:
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoked_why = why[:40]


def end_all(
    session: Session, admin_id: int, now: datetime, why: str, keep: int | None = None
) -> int:
    """End every live session of the admin (but `keep`, the one asking); how many ended."""
    query = update(AdminSession).where(
        AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AdminSession.id != keep)
    result = session.execute(
        query.values(revoked_at=now, revoked_why=why[:40]).execution_options(
            synchronize_session=False
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def live(session: Session, now: datetime, policy: Policy) -> list[AdminSession]:
    """Who is logged in: every live session, each admin's most recent first."""
    return list(
        session.scalars(
            select(AdminSession)
            .where(
                AdminSession.revoked_at.is_(None),
                AdminSession.created_at > now - policy.lifetime,
                AdminSession.last_seen_at > now - policy.idle,
            )
            .order_by(AdminSession.admin_id, AdminSession.last_seen_at.desc())
        )
    )
