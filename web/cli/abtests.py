"""`journey ab simulate`: an A/B test of an email run on synthetic clients (`scheduler.ab_sim`),
to see how many clients a test needs before it can tell its variants apart."""

from __future__ import annotations

import json
import sys

import click

from scheduler import errors
from scheduler.abtests import GOALS, TESTABLE, goal_words
from scheduler.vocab import TEMPLATE_NAMES
from web.api import serialize


@click.group("ab")
def ab_group() -> None:
    """A/B tests of client emails (started, read and ended in the panel or the API)."""


@ab_group.command("simulate")
@click.option(
    "--template",
    type=click.Choice([t.value for t in TESTABLE]),
    default="DELIVERABLE_READY",
    show_default=True,
    help="The email tested.",
)
@click.option("--goal", type=click.Choice(list(GOALS)), default="click", show_default=True)
@click.option("--goal-days", type=int, default=7, show_default=True, help="The goal's window.")
@click.option("--split", type=int, default=50, show_default=True, help="% of clients given B.")
@click.option(
    "--rate-a",
    type=float,
    default=0.3,
    show_default=True,
    help="The chance that a client sent variant A reaches the goal within its window.",
)
@click.option("--rate-b", type=float, default=0.3, show_default=True, help="The same for B.")
@click.option("--clients", type=int, default=200, show_default=True)
@click.option(
    "--days",
    type=int,
    default=14,
    show_default=True,
    help="Days of sending; the run goes on for the goal's window after them.",
)
@click.option(
    "--spread", type=int, default=7, show_default=True, help="Start dates over so many days."
)
@click.option("--seed", type=int, default=16, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ab_simulate(
    template: str,
    goal: str,
    goal_days: int,
    split: int,
    rate_a: float,
    rate_b: float,
    clients: int,
    days: int,
    spread: int,
    seed: int,
    as_json: bool,
) -> None:
    """Run an A/B test on synthetic clients through the real engine on simulated time, each
    reaching the goal with the chance given for the variant they were sent; print the test's
    result as the panel shows it."""
    import logging

    from scheduler import ab_sim

    logging.getLogger("scheduler").setLevel(logging.ERROR)
    plan = ab_sim.Plan(
        template, goal, goal_days, split, rate_a, rate_b, clients, days, spread, seed
    )
    try:
        r = ab_sim.run(plan)
    except errors.JourneyError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(serialize.ab_result(r)))
        return
    name = TEMPLATE_NAMES[r.test.template]  # type: ignore[index]
    click.echo(
        f"{clients} simulated clients, the emails of {days} days counted; {name}: {split}% "
        f"given variant B; goal: {goal_words(r.test)}"
    )
    click.echo(f"behaviour: {rate_a:.0%} reach the goal after A, {rate_b:.0%} after B")
    for a in (r.a, r.b):
        rate = f"{a.rate:.1%}" if a.rate is not None else "n/a"
        click.echo(
            f"  {a.variant}: {a.sends} sends counted, {a.conversions} reached the goal ({rate})"
        )
    if r.pending:
        click.echo(f"  {r.pending} more sent after those days, their window still open")
    if r.difference is not None and r.low is not None and r.high is not None:
        click.echo(
            f"difference B - A: {100 * r.difference:+.1f} points "
            f"(95% confidence interval {100 * r.low:+.1f} to {100 * r.high:+.1f})"
        )
    click.echo(r.says)


COMMANDS = [ab_group]
