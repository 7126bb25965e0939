"""The program definition: months, what each delivers, and the schedule's offsets.

The program is data (a TOML file an operator can edit), loaded and validated here.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
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
    # An earlier check-in email this many days before each milestone from M2 on, sent only to a
    # client the risk model finds at risk when its moment comes (`scheduler.risk`); 0: off.
    at_risk_checkin_days: int = 0
    # Unset (None): the deployment's SEND_HOUR and EMAIL_FREQUENCY_CAP apply.
    send_hour: int | None = None
    frequency_cap: int | None = None


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
    schedule = Schedule(**values)  # type: ignore[arg-type]
    if schedule.send_hour is not None and schedule.send_hour > 23:
        raise ProgramError(f"schedule.send_hour: must be 0-23, not {schedule.send_hour}")
    for key, most in LIMITS.items():
        value = getattr(schedule, key)
        if value is not None and value > most:
            raise ProgramError(f"schedule.{key}: at most {most}, not {value}")
    if schedule.month_length_days < 1:
        raise ProgramError("schedule.month_length_days: must be at least 1")
    if schedule.retry_delay_minutes < 1:
        raise ProgramError("schedule.retry_delay_minutes: must be at least 1")
    if schedule.at_risk_checkin_days >= schedule.month_length_days:
        raise ProgramError(
            f"schedule.at_risk_checkin_days: must be less than month_length_days "
            f"({schedule.month_length_days}), not {schedule.at_risk_checkin_days}: the check-in "
            "comes between the previous milestone and the next (0 turns it off)"
        )
    return schedule


# Bounds that keep every date of a journey within a few years (and an admin's typo harmless).
LIMITS = {
    "month_length_days": 366,
    "upcoming_reminder_days_before": 366,
    "overdue_reminder_days_after": 366,
    "escalation_days_after": 366,
    "revision_reminder_days_after": 366,
    "celebration_days_after": 366,
    "resume_reminder_days_before": 366,
    "retry_delay_minutes": 10080,
    "max_retries": 20,
    "on_time_days": 366,
    "frequency_cap": 100,
}


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


# -- the program as data (what the database stores, what `program check` reads) --------------------


def program_data(program: Program) -> dict[str, Any]:
    """The program as the plain data `parse_program` reads: what a version stores."""
    schedule = {k: v for k, v in asdict(program.schedule).items() if v is not None}
    months = [
        {
            "title": m.title,
            "summary": m.summary,
            "deliverables": list(m.deliverables),
            "achievements": list(m.achievements),
            "prepare": list(m.prepare),
            "sections": [{"heading": s.heading, "guidance": s.guidance} for s in m.sections],
        }
        for m in program.months
    ]
    return {"name": program.name, "schedule": schedule, "months": months}


def to_toml(program: Program) -> str:
    """The program as a TOML file `load_program` reads back to the same program (so a version can
    live in git too)."""

    def text(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string

    def texts(values: tuple[str, ...]) -> str:
        return "[" + ", ".join(text(v) for v in values) + "]"

    lines = [f"name = {text(program.name)}", "", "[schedule]"]
    for key, value in asdict(program.schedule).items():
        if value is not None:
            lines.append(f"{key} = {value}")
    for m in program.months:
        lines += ["", "[[months]]", f"title = {text(m.title)}", f"summary = {text(m.summary)}"]
        lines += [
            f"deliverables = {texts(m.deliverables)}",
            f"achievements = {texts(m.achievements)}",
            f"prepare = {texts(m.prepare)}",
            "sections = [",
        ]
        lines += [
            f"  {{ heading = {text(s.heading)}, guidance = {text(s.guidance)} }},"
            for s in m.sections
        ]
        lines.append("]")
    return "\n".join(lines) + "\n"


def parse_toml(source: str) -> Program:
    """A program from TOML text, checked as `journey program check` checks a file."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"not valid TOML: {exc}") from None
    return parse_program(data)


def differences(old: Program, new: Program) -> list[tuple[str, str, str]]:
    """What changed from `old` to `new`, field by field: (field, old value, new value)."""
    found: list[tuple[str, str, str]] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(f"{path}.{key}" if path else key, a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and path.endswith("months"):
            for i in range(max(len(a), len(b))):
                walk(
                    f"{path}[{i + 1}]",
                    a[i] if i < len(a) else None,
                    b[i] if i < len(b) else None,
                )
        elif a != b:
            found.append((path, _shown(a), _shown(b)))

    walk("", program_data(old), program_data(new))
    return found


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
