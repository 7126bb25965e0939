"""What every command shares: engine refusals become a message and an exit code, dates are
read by the domain's parser, and a command's unit of work is committed with its dispatches."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from scheduler import errors, inputs, rules
from scheduler.models import Automation
from web import journey_context
from web.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


class Parsed(click.ParamType):
    """A command-line value read by the domain's parser for its kind (the panel and the API
    use the same ones), so that a date means the same thing everywhere."""

    def __init__(self, name: str, parse: Callable[[str, str], Any]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        field = param.name if param and param.name else self.name
        try:
            return self.parse(value, field)
        except errors.Invalid as exc:  # click names the option itself
            self.fail(exc.message.removeprefix(f"{field}: "), param, ctx)


DATE = Parsed("date", inputs.parse_date)
UTC_TIME = Parsed("time", lambda value, field: inputs.parse_instant(value, field, ZoneInfo("UTC")))


def friendly(fn: F) -> F:
    """Turn the engine's refusals into a message and a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.JourneyError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if isinstance(exc, errors.Invalid) else 1)

    return wrapper  # type: ignore[return-value]


def commit() -> None:
    journey_context().commit()


def carry_out(operation: Callable[..., Any], *args: Any) -> Any:
    """Run one operation, commit, and say what it did to each automation it touched (the
    panel's words: `scheduler.outcomes`). Returns the operation's result."""
    from scheduler import outcomes

    ctx = journey_context()
    outcome = outcomes.carry_out(ctx, operation, *args)
    lines = [e.line for e in outcome.effects]
    ctx.commit()
    for line in lines:
        click.echo(f"  {line}")
    return outcome.result


def describe(a: Automation) -> str:
    month = f" M{a.month}" if a.month else ""
    template = f" {a.template}" if a.template else ""
    return f"{a.type}{month}{template}"


def risk_words(r: rules.Risk) -> str:
    """A kept risk score on one line: the month, the probability as the engine words it, the
    threshold, when it was scored, and why."""
    assert r.probability is not None and r.scored_at is not None
    reasons = f"  {'; '.join(r.reasons)}" if r.reasons else ""
    return (
        f"M{r.month}  {rules.percent(r.probability)}%{' at risk' if r.at_risk else ''}"
        f"  (at risk from {rules.percent(r.threshold)}%; scored {r.scored_at:%Y-%m-%d %H:%M} UTC)"
        f"{reasons}"
    )
