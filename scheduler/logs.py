"""What a log line is about: the automation, client and broker message being handled, attached
to every record logged meanwhile (the JSON log format shows them as fields)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_about: ContextVar[dict[str, object] | None] = ContextVar("journey_log_about", default=None)


def attach(**ids: object) -> Token[dict[str, object] | None]:
    """From now on (in this thread) records carry these ids too; `detach` the token after."""
    return _about.set({**(_about.get() or {}), **ids})


def detach(token: Token[dict[str, object] | None]) -> None:
    _about.reset(token)


@contextmanager
def concerning(**ids: object) -> Iterator[None]:
    """Records logged inside the block carry these ids (nested blocks add to them)."""
    token = attach(**ids)
    try:
        yield
    finally:
        detach(token)


class Attach(logging.Filter):
    """Copies the ids the current block is about onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_about.get() or {}).items():
            setattr(record, name, value)
        return True
