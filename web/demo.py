"""Demo data for `make run`: a few dozen clients at every point of their journey, whose
history happened on real past days. The engine is run on a clock of its own from the first
client's enrollment up to now, carrying out each automation at its moment and each admin's
action (approvals, a rejection, opens, a hold) at the moment the script gives it, so that the
dashboard, the log and every client's history read like a live account."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from scheduler import communications, controls, editing, enrollment, execute, lookups, review
from scheduler.clock import ManualClock
from scheduler.engine import Context
from scheduler.models import Admin, Automation
from scheduler.sweep import waiting

# The demo's admin login (a local demo only: production admins come from `admins create`).
DEMO_LOGIN = "coach@example.com"
DEMO_PASSWORD = "journey-demo"

CLIENTS = [
    # name, email, time zone, days since start, onboarding
    (
        "Ava Martinez",
        "ava@example.com",
        "America/New_York",
        -2,
        {
            "business": "Ava's Pottery Studio",
            "audience": "hobby potters",
            "goal": "sell 50 classes a month",
        },
    ),
    (
        "Ben Okafor",
        "ben@example.com",
        "Europe/London",
        40,
        {"business": "FitWithBen", "audience": "busy parents", "goal": "reach 1,000 subscribers"},
    ),
    (
        "Chloé Dubois",
        "chloe@example.com",
        "Europe/Paris",
        95,
        {
            "business": "Atelier Chloé",
            "audience": "sustainable fashion buyers",
            "goal": "launch a capsule line",
        },
    ),
    (
        "Diego Santos",
        "diego@example.com",
        "America/Sao_Paulo",
        215,
        {
            "business": "Santos Coffee Co.",
            "audience": "specialty coffee fans",
            "goal": "open an online store",
        },
    ),
]


@dataclass(frozen=True)
class Step:
    """One admin's (or client's) action of the script, `days` after the client's start, at
    `hour` UTC."""

    email: str
    days: float
    act: Callable[[Context, object], object]


def approve(month: int) -> Callable[[Context, object], object]:
    return lambda ctx, client: review.approve(ctx, client, month)


def reject(month: int) -> Callable[[Context, object], object]:
    return lambda ctx, client: review.reject(ctx, client, month, "Too generic: use their numbers")


def opened(month: int) -> Callable[[Context, object], object]:
    return lambda ctx, client: review.open_deliverable(ctx, client, month)


# A few dozen more, generated: every stage of the journey, and every habit a coach meets.
FIRST = [
    "Amara",
    "Bruno",
    "Carmen",
    "Dev",
    "Elif",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
    "Mei",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Arjun",
    "Bea",
    "Cyrus",
    "Dana",
]
LAST = [
    "Adeyemi",
    "Berg",
    "Castro",
    "Dutta",
    "Eriksen",
    "Fontaine",
    "Gallo",
    "Hayashi",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Ortiz",
    "Patel",
    "Quiroga",
    "Rossi",
    "Sato",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhou",
    "Alves",
    "Brandt",
    "Costa",
    "Dahl",
]
ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "America/Mexico_City",
    "Africa/Lagos",
    "Europe/Madrid",
]
HABITS = ("prompt", "unread", "behind", "revised", "edited", "quiet")


def crowd() -> list[tuple[str, str, str, int, dict[str, str], str]]:
    """Thirty more clients: (name, email, zone, days since start, onboarding, habit), their
    starts spread from ten days ahead to eight months ago."""
    out = []
    for i in range(30):
        first, last = FIRST[i], LAST[(i * 7) % len(LAST)]
        out.append(
            (
                f"{first} {last}",
                f"{first}.{last}@example.com".lower(),
                ZONES[i % len(ZONES)],
                -10 + (i * 37) % 260,
                {"business": f"{last} & Co.", "goal": f"{10 + i} new clients a month"},
                HABITS[i % len(HABITS)],
            )
        )
    return out


def habit_steps(email: str, days_ago: int, habit: str) -> list[Step]:
    """The script of one generated client, by habit: approved promptly and read (`prompt`),
    approved and never read (`unread`: overdue reminders, escalations), the latest month left
    in review or rejected (`behind`), M1 rejected then regenerated with notes and approved
    (`revised`), M1 corrected by the admin before approval (`edited`), reminders turned off
    (`quiet`)."""
    steps: list[Step] = []
    for month in range(1, 9):
        base = 30 * (month - 1)
        if base + 2 > days_ago:
            break
        last = base + 30 + 2 > days_ago
        if habit == "behind" and last:
            if days_ago % 4 == 0:  # sent back, and waiting for its revision since
                steps.append(Step(email, base + 1.0, reject(month)))
            break
        if habit == "revised" and month == 1:
            steps += [
                Step(
                    email,
                    base + 1.0,
                    lambda ctx, c: review.reject(ctx, c, 1, "Name the offer and its price"),
                ),
                Step(email, base + 1.05, lambda ctx, c: review.generate_by_hand(ctx, c, 1)),
                Step(email, base + 1.9, approve(1)),
            ]
        elif habit == "edited" and month == 1:
            steps.append(Step(email, base + 1.1, edit_and_approve(1)))
        else:
            steps.append(Step(email, base + 1.2 + (month % 3) * 0.3, approve(month)))
        if habit != "unread":
            steps.append(Step(email, base + 3.0, opened(month)))
    if habit == "quiet":
        steps.insert(0, Step(email, 0.5, reminders_off))
    return steps


def edit_and_approve(month: int) -> Callable[[Context, object], object]:
    def act(ctx: Context, client: object) -> object:
        found = lookups.latest_deliverable(ctx, client, month)  # type: ignore[arg-type]
        text = (
            found.content if found else ""
        ) + "\n\n## From your coach\n\nStart with the offer you already sell.\n"
        return review.approve(ctx, client, month, text)  # type: ignore[arg-type]

    return act


def reminders_off(ctx: Context, client: object) -> object:
    return communications.set_subscription(
        ctx,
        client,
        subscribed=True,
        reminders=False,
        celebrations=True,  # type: ignore[arg-type]
    )


def script() -> list[Step]:
    steps: list[Step] = []
    for _, email, _, days_ago, _, habit in crowd():
        steps += habit_steps(email, days_ago, habit)
    # Ben: M1 approved the next day, read the day after; M2 waits for review.
    steps += [Step("ben@example.com", 1.3, approve(1)), Step("ben@example.com", 2.4, opened(1))]
    # Chloé: M1 on time; M2 rejected with notes, regenerated and approved; M3 approved, not
    # read yet; then a family trip puts her on hold.
    steps += [
        Step("chloe@example.com", 0.4, approve(1)),
        Step("chloe@example.com", 1.5, opened(1)),
        Step(
            "chloe@example.com",
            30.6,
            lambda ctx, c: review.reject(ctx, c, 2, "Make the visual identity section concrete"),
        ),
        Step(
            "chloe@example.com",
            30.65,
            lambda ctx, c: review.generate_by_hand(ctx, c, 2, "Concrete colours and type"),
        ),
        Step("chloe@example.com", 31.4, approve(2)),
        Step("chloe@example.com", 33.6, opened(2)),
        Step("chloe@example.com", 62.1, approve(3)),
    ]
    # Diego: every month approved within a day or two, and read.
    for month in range(1, 9):
        base = 30 * (month - 1)
        steps += [
            Step("diego@example.com", base + 1.2 + (month % 3) * 0.5, approve(month)),
            Step("diego@example.com", base + 3.1, opened(month)),
        ]
    return steps


class NoTransport:
    """The demo runs what falls due itself, in time order."""

    def dispatch(self, *args: object, **kwargs: object) -> None:
        pass

    def waiting(self) -> int:
        return 0


def run_due(ctx: Context) -> None:
    """Carry out everything due by the clock, as the workers would (not what a hold keeps)."""
    while True:
        due = ctx.session.execute(
            waiting(Automation.id, ctx.now())
            .add_columns(Automation.version)
            .order_by(Automation.trigger_at, Automation.id)
        ).all()
        ran = [execute.run(ctx, automation_id, version) for automation_id, version in due]
        if not any(ran):
            return


def next_due(ctx: Context, after: datetime) -> datetime | None:
    query = waiting(func.min(Automation.trigger_at), datetime.max.replace(tzinfo=UTC))
    found = ctx.session.scalar(query.where(Automation.trigger_at > after))
    return found


def load_demo(ctx: Context) -> list[str]:
    now = ctx.now()
    today = now.date()
    first = today - timedelta(days=max(c[3] for c in [*CLIENTS, *crowd()]) + 5)
    clock = ManualClock(datetime.combine(first, time(12), UTC))
    engine = dataclasses.replace(ctx.engine, clock=clock, dispatcher=NoTransport())
    engine.dispatches = False
    sim = engine.context(ctx.session)
    sim.actor = DEMO_LOGIN  # the script's actions are the demo coach's
    if sim.session.scalar(select(Admin).limit(1)) is None:
        sim.session.add(
            Admin(
                email=DEMO_LOGIN,
                name="Demo Coach",
                timezone="UTC",
                active=True,
                password_hash=generate_password_hash(DEMO_PASSWORD),
                created_at=clock.now(),
            )
        )
        sim.commit()
    # What happens when: each client enrolls five days before their start, the script's
    # actions follow, and a hold begins two days ago for ten days.
    events: list[tuple[datetime, Callable[[], object]]] = []
    starts = {}
    for name, email, zone, days_ago, onboarding in [*CLIENTS, *(c[:5] for c in crowd())]:
        start = today - timedelta(days=days_ago)
        starts[email] = start
        enrolled = datetime.combine(start - timedelta(days=5), time(12), UTC)

        def enroll(name=name, email=email, zone=zone, start=start, onboarding=onboarding):
            enrollment.enroll(
                sim,
                name=name,
                email=email,
                timezone=zone,
                start_date=start,
                onboarding=onboarding,
            )

        events.append((min(enrolled, now), enroll))
    for step in script():
        at = datetime.combine(starts[step.email], time(0), UTC) + timedelta(days=step.days)
        if at < now:

            def act(step=step):
                step.act(sim, lookups.find_client(sim, step.email))

            events.append((at, act))

    def hold() -> None:
        chloe = lookups.find_client(sim, "chloe@example.com")
        until = lookups.local_today(sim, chloe) + timedelta(days=10)
        controls.pause(sim, chloe, until=until, reason="Family trip")

    events.append((now - timedelta(days=2), hold))
    people = crowd()

    def open_hold() -> None:  # on hold with no end date
        controls.pause(sim, lookups.find_client(sim, people[11][1]), reason="Parental leave")

    def offboard() -> None:
        editing.offboard(sim, lookups.find_client(sim, people[19][1]), "Moved to a group program")

    events.append((now - timedelta(days=3), open_hold))
    events.append((now - timedelta(days=10), offboard))
    events.sort(key=lambda e: e[0])
    for at, act in events:
        advance(sim, clock, at)
        act()
        sim.commit()
    advance(sim, clock, now)
    ctx.session.expire_all()
    return [c[0] for c in CLIENTS] + [f"{len(people)} more"]


def advance(ctx: Context, clock: ManualClock, until: datetime) -> None:
    """Move the clock to `until`, carrying out each automation at its own moment."""
    run_due(ctx)
    while True:
        due = next_due(ctx, clock.now())
        if due is None or due > until:
            break
        clock.set(due)
        run_due(ctx)
    clock.set(max(until, clock.now()))
    run_due(ctx)
