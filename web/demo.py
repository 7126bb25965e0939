"""Demo data for `make run`: a handful of clients at different points of their journey."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from scheduler import controls, enrollment, execute, lookups, review
from scheduler.engine import Context
from scheduler.models import Admin, Automation
from scheduler.vocab import AutomationStatus

# The demo's admin login (a local demo only: production admins come from `admins create`).
DEMO_LOGIN = "coach@example.com"
DEMO_PASSWORD = "journey-demo"

CLIENTS = [
    # name, email, time zone, days since start, months approved, months opened, onboarding
    (
        "Ava Martinez",
        "ava@example.com",
        "America/New_York",
        -2,
        0,
        0,
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
        1,
        1,
        {"business": "FitWithBen", "audience": "busy parents", "goal": "reach 1,000 subscribers"},
    ),
    (
        "Chloé Dubois",
        "chloe@example.com",
        "Europe/Paris",
        95,
        3,
        2,
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
        8,
        8,
        {
            "business": "Santos Coffee Co.",
            "audience": "specialty coffee fans",
            "goal": "open an online store",
        },
    ),
]


def run_due(ctx: Context) -> None:
    """Carry out everything already due, here and now (the demo's clients start in the past)."""
    while True:
        due = ctx.session.execute(
            select(Automation.id, Automation.version).where(
                Automation.status == AutomationStatus.SCHEDULED, Automation.trigger_at <= ctx.now()
            )
        ).all()
        ran = [execute.run(ctx, automation_id, version) for automation_id, version in due]
        if not any(ran):
            return


def load_demo(ctx: Context) -> list[str]:
    if ctx.session.scalar(select(Admin).limit(1)) is None:
        ctx.session.add(
            Admin(
                email="coach@example.com",
                name="Demo Coach",
                timezone="UTC",
                active=True,
                password_hash=generate_password_hash(DEMO_PASSWORD),
                created_at=ctx.now(),
            )
        )
    names = []
    today = ctx.now().date()
    for name, email, zone, days_ago, approved, opened, onboarding in CLIENTS:
        client = enrollment.enroll(
            ctx,
            name=name,
            email=email,
            timezone=zone,
            start_date=today - timedelta(days=days_ago),
            onboarding=onboarding,
        )
        ctx.commit()
        run_due(ctx)
        for month in range(1, approved + 1):
            review.approve(ctx, client, month)
            if month <= opened:
                review.open_deliverable(ctx, client, month)
            ctx.commit()
        run_due(ctx)
        names.append(name)
    chloe = lookups.find_client(ctx, "chloe@example.com")
    controls.pause(
        ctx, chloe, until=lookups.local_today(ctx, chloe) + timedelta(days=10), reason="Family trip"
    )
    ctx.commit()
    run_due(ctx)
    return names
