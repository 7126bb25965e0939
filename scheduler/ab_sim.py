"""An A/B test run on synthetic clients, to see how many clients a test needs before it can
tell its variants apart: a population of simulated clients run through the real engine
(`scheduler.simulate`), with a test of one email started before they enrol.

The behaviour (drawn with a fixed seed): the run starts on January 1; the clients start on
January 5 and the `spread` - 1 days after it, in turn; the coach approves each month 2-24 hours
after it is generated; and a client sent an email of the test reaches the goal within its
window with the chance given for the email's variant (`rate_a`, `rate_b`), at a moment drawn
evenly over the window (a month not delivered yet is read once it is). A client who does not
clicks nothing; with the open goal they read the month after the window. With the click goal
clients open their deliverables 6-72 hours after delivery; with the open goal only the tested
emails make them read. The result is the one the panel shows (`abtests.result`) at the end of
the run, `goal_days` after the `days` of sending: each email sent in those days is counted,
and the later ones are pending."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scheduler import abtests
from scheduler.engine import Context
from scheduler.errors import Invalid
from scheduler.models import AbTest, Email
from scheduler.simulate import ClientSpec, Reaction, Scenario, simulate

START = datetime(2026, 1, 1, tzinfo=UTC)
COACH = "coach@example.com"
SUBJECT = "{{ client.first_name }}, variant B of this email"


@dataclass(frozen=True)
class Plan:
    template: str
    goal: str = "click"
    goal_days: int = 7
    split: int = 50
    rate_a: float = 0.3  # the chance that a client sent variant A reaches the goal in time
    rate_b: float = 0.3
    clients: int = 200
    days: int = 14  # the days the test's emails counted are sent in (then followed to the end)
    spread: int = 7  # the clients' start dates, over this many days
    seed: int = 16
    subject: str = SUBJECT  # variant B's subject (its bodies are the template's)


def checked(plan: Plan) -> Plan:
    """The plan's own numbers (the test's are checked by `abtests.start`)."""
    for name, rate in (("rate_a", plan.rate_a), ("rate_b", plan.rate_b)):
        if not 0 <= rate <= 1:
            raise Invalid(f"{name}: a chance between 0 and 1", name)
    for name, value, low, high in (
        ("clients", plan.clients, 1, 5000),
        ("days", plan.days, 1, 400),
        ("spread", plan.spread, 1, 60),
    ):
        if not low <= value <= high:
            raise Invalid(f"{name}: {low} to {high}", name)
    return plan


def scenario(plan: Plan) -> Scenario:
    rng = random.Random(plan.seed)
    first = date(2026, 1, 5)  # late enough for every month's upcoming reminder
    specs = [
        ClientSpec(
            f"c{i}",
            f"Client {i}",
            f"c{i}@example.com",
            "UTC",
            first + timedelta(days=i % plan.spread),
            rng.uniform(2, 24),
            rng.uniform(6, 72) if plan.goal == "click" else None,
        )
        for i in range(plan.clients)
    ]
    return Scenario(START, end(plan), 9, [COACH], specs, [])


def end(plan: Plan) -> datetime:
    """`days` of sending, then the goal's window: every email sent in those days is counted,
    the later ones are pending."""
    return START + timedelta(days=plan.days + plan.goal_days)


def run(plan: Plan) -> abtests.Result:
    """Run the plan; the test's result at the end."""
    checked(plan)
    rng = random.Random(plan.seed + 1)
    window = plan.goal_days * 24.0
    made: list[AbTest] = []
    found: list[abtests.Result] = []

    def start(ctx: Context) -> None:
        made.append(
            abtests.start(
                ctx,
                template=plan.template,
                name="simulated",
                subject=plan.subject,
                split=plan.split,
                goal=plan.goal,
                goal_days=plan.goal_days,
                actor=COACH,
            )
        )

    def react(email: Email) -> Reaction | None:
        if not made or email.ab_test_id != made[0].id:
            return None
        rate = plan.rate_b if email.variant == "B" else plan.rate_a
        if rng.random() < rate:
            hours = rng.uniform(0.1, window - 0.1)
        elif plan.goal == "open":
            hours = window + rng.uniform(1, 96)
        else:
            return None
        return Reaction("click" if plan.goal == "click" else "read", timedelta(hours=hours))

    def judge(ctx: Context) -> None:
        ctx.engine.clock.set(end(plan))  # type: ignore[attr-defined]
        found.append(abtests.result(ctx, made[0]))

    for _ in simulate(scenario(plan), at_start=start, react=react, at_end=judge):
        pass
    return found[0]
