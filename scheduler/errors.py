"""Refusals: an operation that cannot be done says why, for a person to read, with the HTTP
status the web shells answer with."""

from __future__ import annotations


class JourneyError(Exception):
    """An operation refused: the message says why, for a person to read."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(JourneyError):
    status = 422


class NotFound(JourneyError):
    status = 404


class Conflict(JourneyError):
    status = 409


class Changed(Conflict):
    """Another process changed the row between reading and writing it (optimistic locking)."""
