"""Demo data for `make run`: a handful of clients at different points of their journey, whose
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

from scheduler import controls, enrollment, execute, lookups, review
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


def opened(month: int) -> Callable[[Context, object], object]:
    return lambda ctx, client: review.open_deliverable(ctx, client, month)


def script() -> list[Step]:
    steps: list[Step] = []
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
    first = today - timedelta(days=max(c[3] for c in CLIENTS) + 5)
    clock = ManualClock(datetime.combine(first, time(12), UTC))
    engine = dataclasses.replace(ctx.engine, clock=clock, dispatcher=NoTransport())
    engine.dispatches = False
    sim = engine.context(ctx.session)
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
    for name, email, zone, days_ago, onboarding in CLIENTS:
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
    events.sort(key=lambda e: e[0])
    for at, act in events:
        advance(sim, clock, at)
        act()
        sim.commit()
    advance(sim, clock, now)
    ctx.session.expire_all()
    return [c[0] for c in CLIENTS]


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
