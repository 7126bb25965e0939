"""Where the actors get their unit of work. The process's composition root (the app factory,
through `web.worker` in a worker process or `journey serve` in embedded mode) binds a factory
before any message runs; the actors never build an app themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from scheduler.engine import Context

Units = Callable[[], AbstractContextManager[Context]]

_units: Units | None = None


def bind(units: Units) -> None:
    """Give the actors their units of work (each one a context manager yielding a Context)."""
    global _units
    _units = units


@contextmanager
def context() -> Iterator[Context]:
    """One unit of work, closed afterwards."""
    if _units is None:
        raise RuntimeError("no unit of work bound: start workers with `dramatiq web.worker`")
    with _units() as ctx:
        yield ctx
