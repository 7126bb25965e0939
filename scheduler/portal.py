"""What a client sees and changes from the links in their emails: their progress, their
deliverables, the messages they were sent, and their email preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update

from scheduler import emails, rules, timeline
from scheduler.engine import Context
from scheduler.errors import NotFound
from scheduler.inputs import check_month
from scheduler.lookups import client_zone, latest_deliverable, local_today, open_hold
from scheduler.models import Client, Deliverable, Email, fits_id
from scheduler.review import open_deliverable
from scheduler.vocab import ADMIN_TEMPLATES, DeliverableStatus, Template

# How a month's state reads to the client: the review behind the scenes is not theirs to see.
CLIENT_STATE = {
    "generating": "in preparation",
    "pending review": "in preparation",
    "rejected": "in preparation",
}


@dataclass(frozen=True)
class MonthCard:
    month: int
    title: str
    date: str  # in the client's own style
    state: str
    opened: bool
    readable: bool  # delivered: the client can open it
    note: str = ""  # what the hold does to the date, if anything


@dataclass(frozen=True)
class Progress:
    name: str
    program: str
    done: int
    current: int
    percent: int
    length: int
    months: list[MonthCard]
    next_date: str | None  # the next month's date still to come
    paused: bool
    complete: bool
    resumes: str | None = None  # the hold's planned end, in the client's style


def progress(ctx: Context, client: Client) -> Progress:
    line = timeline.build(ctx, client, days_ahead=0, history=0)
    today = local_today(ctx, client)
    cards = [
        MonthCard(
            m.month,
            m.title,
            emails.day(m.date, client.timezone),
            CLIENT_STATE.get(m.state, m.state),
            m.opened,
            m.state == "delivered",
            m.note,
        )
        for m in line.months
    ]
    hold = open_hold(ctx, client) if client.paused_at else None
    coming = [m.date for m in line.months if m.date >= today and m.state != "delivered"]
    return Progress(
        name=client.name,
        program=ctx.program_of(client).name,
        done=line.done,
        current=line.current,
        percent=line.percent,
        length=ctx.program_of(client).length,
        months=cards,
        next_date=emails.day(min(coming), client.timezone) if coming else None,
        paused=client.paused_at is not None,
        complete=completed_on(ctx, client) is not None,
        resumes=emails.day(hold.until, client.timezone) if hold and hold.until else None,
    )


def deliverable(ctx: Context, client: Client, month: int) -> Deliverable:
    """The month's delivered deliverable, for the client to read."""
    check_month(ctx, month, client)
    found = latest_deliverable(ctx, client, month)
    if found is None or found.status != DeliverableStatus.DELIVERED:
        raise NotFound(f"Month {month} is not ready yet", "month")
    return found


def read(ctx: Context, client: Client, month: int) -> Deliverable:
    """A person is reading the month the client can read: the first open is recorded (its
    overdue reminder and escalation stop)."""
    deliverable(ctx, client, month)
    return open_deliverable(ctx, client, month)


def notifications(ctx: Context, client: Client, limit: int = 200) -> list[Email]:
    """Every message the client was sent, newest first (the in-app copy of each email)."""
    return list(
        ctx.session.scalars(
            select(Email)
            .where(
                Email.client_id == client.id,
                Email.to_address == client.email,
                Email.template.not_in([str(t) for t in ADMIN_TEMPLATES]),
                Email.status == "SENT",
            )
            .order_by(Email.created_at.desc(), Email.id.desc())
            .limit(limit)
        )
    )


def notification(ctx: Context, client: Client, email_id: int) -> Email:
    for row in notifications(ctx, client):
        if row.id == email_id:
            return row
    raise NotFound("no such message", "message")


def click(ctx: Context, client: Client, email: int) -> bool:
    """The client followed a portal link of their email `email` (named by the automation that
    sent it, `links.email_tag`): the page it opened posted it from its script. The first click
    is kept on the email's outbox row; False when it was already recorded. NotFound when the
    client has no such email (a tag from another client's email)."""
    where = (
        Email.automation_id == email,
        Email.client_id == client.id,
        Email.template.not_in([str(t) for t in ADMIN_TEMPLATES]),
    )
    if not fits_id(email) or ctx.session.scalar(select(Email.id).where(*where).limit(1)) is None:
        raise NotFound("no such email", "email")
    done = ctx.session.execute(
        update(Email)
        .where(*where, Email.clicked_at.is_(None))
        .values(clicked_at=ctx.now())
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)


@dataclass(frozen=True)
class Choices:
    """What the client receives, as their preferences page shows it: a reminder or a
    celebration is ticked only when one would really go (`rules.unwanted`)."""

    subscribed: bool
    reminders: bool
    celebrations: bool


def choices(client: Client) -> Choices:
    prefs = emails.preferences(client)
    return Choices(
        subscribed=not prefs.unsubscribed,
        reminders=rules.unwanted(Template.REMINDER_UPCOMING, prefs) is None,
        celebrations=rules.unwanted(Template.MONTH_COMPLETE, prefs) is None,
    )


def set_preferences(
    ctx: Context, client: Client, *, reminders: bool, celebrations: bool, subscribed: bool
) -> None:
    if subscribed:
        client.unsubscribed_at = None
        client.reminders_enabled = reminders
        client.celebrations_enabled = celebrations
    elif client.unsubscribed_at is None:
        # Unsubscribed from everything optional: the finer choices are kept for a return.
        client.unsubscribed_at = ctx.now()
    client.updated_at = ctx.now()


def unsubscribe(ctx: Context, client: Client) -> bool:
    """One-click unsubscribe from every optional email (idempotent). False when the client
    already was."""
    if client.unsubscribed_at is not None:
        return False
    client.unsubscribed_at = ctx.now()
    client.updated_at = ctx.now()
    return True


def completed_on(ctx: Context, client: Client) -> date | None:
    """The local date the client finished the program, if they have."""
    if client.completed_at is None or client.offboarded_at is not None:
        return None
    return client.completed_at.astimezone(client_zone(client)).date()
