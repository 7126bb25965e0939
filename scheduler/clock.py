"""The one source of "now": every part of the engine asks a clock, never the system."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests and the simulator)."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        when = ensure_utc(when)
        with self._lock:
            if when < self._now:
                raise ValueError(f"time cannot go backwards ({when} < {self._now})")
            self._now = when

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)


def ensure_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: every instant must carry a time zone")
    return value.astimezone(UTC)
