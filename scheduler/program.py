"""The program definition: months, what each delivers, and the schedule's offsets.

The program is data (a TOML file an operator can edit), loaded and validated here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROGRAM = Path(__file__).with_name("program.toml")


class ProgramError(ValueError):
    """The program file is unreadable or wrong; the message says where."""


@dataclass(frozen=True)
class Section:
    heading: str
    guidance: str


@dataclass(frozen=True)
class Month:
    number: int
    title: str
    summary: str
    deliverables: tuple[str, ...]
    achievements: tuple[str, ...]
    prepare: tuple[str, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Schedule:
    month_length_days: int = 30
    upcoming_reminder_days_before: int = 3
    overdue_reminder_days_after: int = 3
    escalation_days_after: int = 7
    revision_reminder_days_after: int = 3
    celebration_days_after: int = 1
    resume_reminder_days_before: int = 3
    retry_delay_minutes: int = 15
    max_retries: int = 3
    halfway_month: int = 4
    on_time_days: int = 7


@dataclass(frozen=True)
class Program:
    name: str
    months: tuple[Month, ...]
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def length(self) -> int:
        return len(self.months)

    def month(self, number: int) -> Month:
        if not 1 <= number <= self.length:
            raise ProgramError(f"month {number} is outside the program (1-{self.length})")
        return self.months[number - 1]


def load_program(path: str | Path | None = None) -> Program:
    """Read and validate a program file (the shipped one when `path` is None)."""
    source = Path(path) if path else DEFAULT_PROGRAM
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProgramError(f"{source}: no such program file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"{source}: not valid TOML: {exc}") from None
    try:
        return parse_program(data)
    except ProgramError as exc:
        raise ProgramError(f"{source}: {exc}") from None


def parse_program(data: dict[str, Any]) -> Program:
    name = _text(data, "name", "")
    schedule = _schedule(data.get("schedule", {}))
    raw_months = data.get("months")
    if not isinstance(raw_months, list) or not raw_months:
        raise ProgramError("months: at least one [[months]] entry is required")
    if len(raw_months) > 24:
        raise ProgramError(f"months: {len(raw_months)} months; at most 24 are supported")
    months = tuple(_month(i + 1, raw) for i, raw in enumerate(raw_months))
    if not 1 <= schedule.halfway_month <= len(months):
        raise ProgramError(
            f"schedule.halfway_month: {schedule.halfway_month} is not a month of the program"
        )
    return Program(name=name, months=months, schedule=schedule)


def _schedule(raw: Any) -> Schedule:
    if not isinstance(raw, dict):
        raise ProgramError("schedule: must be a table")
    known = Schedule.__dataclass_fields__
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key not in known:
            raise ProgramError(f"schedule.{key}: unknown setting (known: {', '.join(known)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProgramError(f"schedule.{key}: must be a whole number >= 0, not {value!r}")
        values[key] = value
    schedule = Schedule(**values)
    if schedule.month_length_days < 1:
        raise ProgramError("schedule.month_length_days: must be at least 1")
    if schedule.retry_delay_minutes < 1:
        raise ProgramError("schedule.retry_delay_minutes: must be at least 1")
    return schedule


def _month(number: int, raw: Any) -> Month:
    where = f"months[{number}]"
    if not isinstance(raw, dict):
        raise ProgramError(f"{where}: must be a table")
    sections_raw = raw.get("sections", [])
    if not isinstance(sections_raw, list):
        raise ProgramError(f"{where}.sections: must be a list")
    sections = tuple(
        Section(
            heading=_text(s, "heading", f"{where}.sections[{i}]"),
            guidance=_text(s, "guidance", f"{where}.sections[{i}]"),
        )
        for i, s in enumerate(sections_raw)
    )
    return Month(
        number=number,
        title=_text(raw, "title", where),
        summary=_text(raw, "summary", where),
        deliverables=_texts(raw, "deliverables", where),
        achievements=_texts(raw, "achievements", where),
        prepare=_texts(raw, "prepare", where),
        sections=sections,
    )


def _text(raw: Any, key: str, where: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ProgramError(f"{where + '.' if where else ''}{key}: a non-empty text is required")
    return value.strip()


def _texts(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ProgramError(f"{where}.{key}: must be a list of non-empty texts")
    return tuple(v.strip() for v in value)
