"""A synthetic history with known behaviour, to measure the clients-at-risk model honestly: a
population of simulated clients run through the real engine (`scheduler.simulate`), then the
model trained on what was known at a cut-off and judged on what happened after it.

The behaviour, by kind of client (drawn with a fixed seed):
- engaged (60%): opens a deliverable 2-30 h after delivery; the coach approves 12-72 h after
  generation; 5% of months are rejected 6 h after generation and regenerated 2 days later
  (waiting for the client's input), then approved after the same delay: never late;
- drifting (30%): opens after 40-160 h; approval after 90-165 h (in time on its own); 35% of
  months rejected and regenerated, which makes the month late when approval takes over 114 h;
- struggling (10%): opens after 100-300 h; approval after 170-260 h: late every month.
One client in ten (of the engaged and drifting) takes a 14-day hold in a random month, which
moves the rest of their journey."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from scheduler import risk
from scheduler.engine import Context
from scheduler.simulate import ClientSpec, EventSpec, Scenario, simulate

START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = (("engaged", 0.6), ("drifting", 0.3), ("struggling", 0.1))
BEHAVIOUR = {
    # (open after hours, approve after hours, share of months rejected once)
    "engaged": ((2, 30), (12, 72), 0.05),
    "drifting": ((40, 160), (90, 165), 0.35),
    "struggling": ((100, 300), (170, 260), 0.3),
}


def scenario(clients: int = 150, seed: int = 16) -> tuple[Scenario, dict[str, str]]:
    """The synthetic population (start dates over 120 days) and each client's kind."""
    rng = random.Random(seed)
    specs, events, kinds = [], [], {}
    for i in range(clients):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        opens, approves, rejected = BEHAVIOUR[kind]
        key = f"c{i}"
        kinds[key] = kind
        start = date(2026, 1, 5) + timedelta(days=rng.randrange(120))
        specs.append(
            ClientSpec(
                key, f"Client {i}", f"c{i}@example.com", "UTC", start,
                rng.uniform(*approves), rng.uniform(*opens),
            )
        )  # fmt: skip
        holds = kind != "struggling" and rng.random() < 0.1
        hold_month = rng.randrange(2, 8) if holds else 0
        for month in range(1, 9):
            milestone = datetime.combine(start + timedelta(days=30 * (month - 1)), time(9), UTC)
            if holds and month == hold_month:
                at = milestone + timedelta(days=2)
                until = (at + timedelta(days=14)).date()
                events.append(EventSpec(len(events), at, key, "pause", {"until": until}))
                break  # the later months move: no rejections after a hold
            if rng.random() < rejected:
                at = milestone + timedelta(hours=6)
                events.append(
                    EventSpec(len(events), at, key, "reject", {"month": month, "notes": "redo"})
                )
                events.append(
                    EventSpec(
                        len(events), at + timedelta(hours=48), key, "generate", {"month": month}
                    )
                )
    until = datetime.combine(date(2026, 5, 5) + timedelta(days=8 * 30 + 20), time(0), UTC)
    return Scenario(START, until, 9, ["coach@example.com"], specs, events), kinds


@dataclass(frozen=True)
class Measured:
    clients: int
    evaluation: risk.Evaluation
    weights: list[tuple[str, float]]


def measure(clients: int = 150, seed: int = 16, cutoff_days: int = 180) -> Measured:
    """Run the synthetic history; train at START + `cutoff_days`, judge the 60 days after."""
    plan, _ = scenario(clients, seed)
    found: list[risk.Evaluation] = []

    def judge(ctx: Context) -> None:
        found.append(risk.evaluate(ctx, START + timedelta(days=cutoff_days)))

    for _ in simulate(plan, at_end=judge):
        pass
    [evaluation] = found
    model = evaluation.model
    return Measured(
        clients,
        evaluation,
        [(f.code, round(w, 3)) for f, w in zip(risk.FEATURES, model.weights[1:], strict=True)],
    )
