"""What people changed: each change to a client or to one of their deliverables is recorded
with who made it (`Context.actor`) and the values before and after, for the client's history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from scheduler.engine import Context
from scheduler.models import Client, ClientChange


def record(
    ctx: Context, client: Client, what: str, before: dict[str, Any], after: dict[str, Any]
) -> ClientChange | None:
    """Record a change, keeping only the values that changed (nothing changed: no record)."""
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return None
    row = ClientChange(
        client_id=client.id,
        at=ctx.now(),
        actor=ctx.actor or None,
        what=what,
        before={k: before.get(k) for k in changed},
        after={k: after.get(k) for k in changed},
    )
    ctx.session.add(row)
    return row


def changes(ctx: Context, client: Client, limit: int = 200) -> list[ClientChange]:
    """The client's recorded changes, newest first."""
    return list(
        ctx.session.scalars(
            select(ClientChange)
            .where(ClientChange.client_id == client.id)
            .order_by(ClientChange.at.desc(), ClientChange.id.desc())
            .limit(limit)
        )
    )


def shown(value: Any) -> str:
    """A recorded value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"
