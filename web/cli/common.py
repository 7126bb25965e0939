"""What every command shares: engine refusals become a message and an exit code, dates are
read by the domain's parser, and a command's unit of work is committed with its dispatches."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from typing import Any, TypeVar

import click

from scheduler import errors
from scheduler.models import Automation
from web import journey_context
from web.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

DATE = click.DateTime(formats=["%Y-%m-%d"])


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


def as_date(value: datetime | None) -> date | None:
    return value.date() if value else None


def commit() -> None:
    journey_context().commit()


def describe(a: Automation) -> str:
    month = f" M{a.month}" if a.month else ""
    template = f" {a.template}" if a.template else ""
    return f"{a.type}{month}{template}"
