"""An admin's everyday changes to a client: a new time zone (with the send instants it moves,
shown before it is made), a coach, the journey ended early (offboarding), and the client
erased with everything kept about them (the right to erasure). Each change is recorded with
who made it (`audit`), except erasure, which leaves nothing behind."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select

from scheduler import audit, metrics
from scheduler.engine import Context
from scheduler.enrollment import update_client
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.inputs import clean_zone
from scheduler.lookups import pending
from scheduler.models import (
    Admin,
    Automation,
    AutomationLog,
    Client,
    ClientChange,
    Deliverable,
    Email,
    Hold,
    IdempotencyKey,
)
from scheduler.schedule import finish, move
from scheduler.vocab import AutomationStatus, Source, automation_name


@dataclass(frozen=True)
class Move:
    """One pending send instant a time-zone change moves: same local date and wall time, in
    the new zone."""

    automation: Automation
    name: str
    before: datetime
    after: datetime


def zone_moves(ctx: Context, client: Client, timezone: str) -> list[Move]:
    """What moving the client to `timezone` would do, without doing it: every pending
    automation at the send hour in the old zone (the plan's steps, celebrations, reminders, a
    hold's end) goes at the send hour of the same local date in the new one. Those at another
    time (an email waiting out its grace period, one deferred by the frequency cap) keep their
    instant."""
    new = clean_zone(timezone)
    if new == client.timezone:
        return []
    old_tz, new_tz = ZoneInfo(client.timezone), ZoneInfo(new)
    moves = []
    for a in pending(ctx, client):
        local = a.trigger_at.astimezone(old_tz)
        if (local.hour, local.minute, local.second) != (ctx.engine.send_hour, 0, 0):
            continue
        after = datetime.combine(local.date(), local.time(), tzinfo=new_tz).astimezone(UTC)
        if after != a.trigger_at:
            moves.append(Move(a, automation_name(a.type, a.template, a.month), a.trigger_at, after))
    return moves


def change_timezone(ctx: Context, client: Client, timezone: str) -> list[Move]:
    """Move the client to another zone, and every send instant with them (`zone_moves`); a
    reminder whose new moment has already passed is skipped, as when any plan is redrawn."""
    moves = zone_moves(ctx, client, timezone)
    old = client.timezone
    if clean_zone(timezone) == old:
        return []
    client.timezone = clean_zone(timezone)
    client.updated_at = ctx.now()
    for m in moves:
        move(ctx, m.automation, m.after, planned=m.automation.source == Source.PLAN)
    audit.record(ctx, client, "time zone", {"timezone": old}, {"timezone": client.timezone})
    return moves


UNSET = object()


def edit(
    ctx: Context,
    client: Client,
    *,
    name: str | None = None,
    email: str | None = None,
    timezone: str | None = None,
    coach_id: int | object | None = UNSET,
    onboarding: dict[str, object] | None = None,
    business_plan: str | None = None,
) -> list[Move]:
    """Change what is given (None, or UNSET for the coach, stays): details through
    `enrollment.update_client`, the zone with the sends it moves, the coach. Returns the moves."""
    update_client(
        ctx, client, name=name, email=email, onboarding=onboarding, business_plan=business_plan
    )
    moves = change_timezone(ctx, client, timezone) if timezone is not None else []
    if coach_id is not UNSET and coach_id != client.coach_id:
        change_coach(ctx, client, coach_id if isinstance(coach_id, int) else None)
    return moves


def change_coach(ctx: Context, client: Client, coach_id: int | None) -> None:
    """Who coaches the client (None: every admin hears about them)."""
    if coach_id is not None and ctx.session.get(Admin, coach_id) is None:
        raise NotFound(f"coach: no admin {coach_id}", "coach_id")
    before = {"coach": coach_email(ctx, client.coach_id)}
    metrics.forget_client(ctx, client.id)  # their kept metrics are counted again under the coach
    client.coach_id = coach_id
    client.updated_at = ctx.now()
    audit.record(ctx, client, "coach", before, {"coach": coach_email(ctx, coach_id)})


def coach_email(ctx: Context, coach_id: int | None) -> str | None:
    admin = ctx.session.get(Admin, coach_id) if coach_id is not None else None
    return admin.email if admin else None


def offboard(ctx: Context, client: Client, reason: str) -> int:
    """End the journey early: everything pending is cancelled with the reason, and the client
    counts as completed (nothing more happens; no certificate). Returns how many automations
    were cancelled."""
    why = str(reason or "").strip()
    if not why:
        raise Invalid("reason: say why the journey ends early", "reason")
    if len(why) > 2000:
        raise Invalid("reason: at most 2000 characters", "reason")
    if client.offboarded_at is not None:
        raise Conflict(f"the journey of {client.name} already ended early")
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program")
    cancelled = 0
    for a in pending(ctx, client):
        finish(ctx, a, AutomationStatus.CANCELLED, f"journey ended early: {why}")
        cancelled += 1
    now = ctx.now()
    if client.paused_at is not None:
        for hold in client.holds:
            if hold.ended_at is None:
                hold.ended_at, hold.ended_by, hold.days = now, "admin", 0
        client.paused_at = None
    client.offboarded_at = client.completed_at = now
    client.offboard_reason = why
    client.updated_at = now
    audit.record(ctx, client, "journey ended early", {"reason": None}, {"reason": why})
    return cancelled


# -- erasure ---------------------------------------------------------------------------------------

KINDS = (
    ("deliverables", "deliverables"),
    ("automations", "automations"),
    ("log", "log entries"),
    ("emails", "emails in the outbox"),
    ("holds", "holds"),
    ("changes", "recorded changes"),
    ("idempotency", "stored API answers"),
)


def erasure(ctx: Context, client: Client) -> dict[str, int]:
    """What erasing the client removes, by kind (said before it is confirmed)."""

    def count(model: type, *where: object) -> int:
        return int(ctx.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "deliverables": count(Deliverable, Deliverable.client_id == client.id),
        "automations": count(Automation, Automation.client_id == client.id),
        "log": count(AutomationLog, AutomationLog.client_id == client.id),
        "emails": count(Email, mentions_email(client)),
        "holds": count(Hold, Hold.client_id == client.id),
        "changes": count(ClientChange, ClientChange.client_id == client.id),
        "idempotency": count(IdempotencyKey, mentions_answer(client)),
    }


def mentions_email(client: Client) -> object:
    return or_(Email.client_id == client.id, Email.to_address == client.email)


def mentions_answer(client: Client) -> object:
    """Stored API answers (replayed to a client that retries a request) that carry the
    client's data: those naming their email address or id."""
    spelled = {client.email, json.dumps(client.email)[1:-1]}  # as is, and JSON-escaped
    patterns = [f"%{like_escape(e)}%" for e in spelled] + [
        f'%"client!_id":{sep}{client.id}{end}%' for sep in ("", " ") for end in (",", "}")
    ]
    return or_(*[IdempotencyKey.response.like(p, escape="!") for p in patterns])


def like_escape(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def summary(found: dict[str, int]) -> str:
    """The confirmation's words: what goes."""
    parts = [f"{found[key]} {label}" for key, label in KINDS if found.get(key)]
    return "the client record" + (", " + ", ".join(parts) if parts else "")


def erase(ctx: Context, client: Client) -> dict[str, int]:
    """Delete the client and everything kept about them, in one transaction: deliverables,
    automations, the log, outbox emails, holds, recorded changes and stored API answers.
    Returns what was removed, by kind."""
    found = erasure(ctx, client)
    metrics.forget_client(ctx, client.id)  # the kept metrics are counted again without them
    ids = select(Automation.id).where(Automation.client_id == client.id)
    ctx.session.execute(delete(IdempotencyKey).where(mentions_answer(client)))
    ctx.session.execute(
        delete(Email).where(or_(mentions_email(client), Email.automation_id.in_(ids)))
    )
    ctx.session.execute(delete(AutomationLog).where(AutomationLog.client_id == client.id))
    ctx.session.execute(delete(ClientChange).where(ClientChange.client_id == client.id))
    ctx.session.execute(delete(Deliverable).where(Deliverable.client_id == client.id))
    ctx.session.execute(delete(Automation).where(Automation.client_id == client.id))
    ctx.session.execute(delete(Hold).where(Hold.client_id == client.id))
    ctx.session.execute(delete(Client).where(Client.id == client.id))
    ctx.session.expunge(client)
    return found
