"""Reading what people type: one checker per kind of value (names, email addresses, time zones,
dates, months), used alike by the panel, the CLI and the API."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from scheduler import plan
from scheduler.engine import Context
from scheduler.errors import Invalid
from scheduler.models import Client

EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[A-Za-z]{2,}$")


def clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise Invalid("name: required", "name")
    if len(name) > 200:
        raise Invalid("name: at most 200 characters", "name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid("name: control characters are not allowed", "name")
    return name


def clean_email(email: str) -> str:
    email = str(email).strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise Invalid(f"email: {email!r} is not an email address", "email")
    return email


def closest(value: str, names: list[str], n: int = 3) -> list[str]:
    """The names most like `value` (a misspelt time zone: "Europe/Pari" gives Europe/Paris)."""
    by_lower = {name.lower(): name for name in names}
    found = difflib.get_close_matches(value.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[f] for f in found]


def clean_zone(name: str) -> str:
    try:
        plan.zone(name)
    except ValueError:
        close = closest(str(name), sorted(zoneinfo.available_timezones()))
        hint = (
            f"; did you mean {' or '.join(close)}?"
            if close
            else " (an IANA name such as Europe/Paris)"
        )
        raise Invalid(f"timezone: unknown time zone {str(name)[:80]!r}{hint}", "timezone") from None
    return name


# Dates the engine plans with: a journey (8 months and any holds) must stay inside the calendar.
YEARS = (1900, 2999)


def check_date(value: object, field: str) -> date:
    if not isinstance(value, date):
        raise Invalid(f"{field}: a date (YYYY-MM-DD) is required", field)
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise Invalid(f"{field}: {value} is outside the years {YEARS[0]}-{YEARS[1]}", field)
    return value


def check_month(ctx: Context, month: int, client: Client | None = None) -> int:
    """A month of the program (the client's version of it, when there is a client)."""
    length = (ctx.program_of(client) if client is not None else ctx.program).length
    if not isinstance(month, int) or not 1 <= month <= length:
        raise Invalid(f"month: must be 1-{length}, not {month!r}", "month")
    return month


# -- text as people type it (forms, command lines, query strings, JSON) ---------------------------

DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
LOCAL_TIME_TEXT = re.compile(
    r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_date(raw: object, field: str) -> date:
    """A calendar date: a `date`, or text YYYY-MM-DD, in the years the engine plans with."""
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return check_date(raw, field)
    text = str(raw).strip()
    if not DATE_TEXT.fullmatch(text):
        raise Invalid(f"{field}: {text[:40]!r} is not a date (YYYY-MM-DD)", field)
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{field}: {text!r} is not a day of the calendar", field) from None
    return check_date(value, field)


def parse_int(raw: object, field: str, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    """A whole number between `low` and `high`."""
    if isinstance(raw, bool):
        raise Invalid(f"{field}: a whole number is required", field)
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if not INTEGER_TEXT.fullmatch(text):
            raise Invalid(f"{field}: {text[:40]!r} is not a whole number", field)
        value = int(text)
    if not low <= value <= high:
        raise Invalid(f"{field}: must be between {low} and {high}, not {value}", field)
    return value


def parse_instant(raw: object, field: str, zone: ZoneInfo) -> datetime:
    """A moment, as UTC: text `YYYY-MM-DD HH:MM[:SS]` read in `zone`, or with its own offset
    (`…Z`, `…+02:00`); an aware `datetime` as it is. A local time that does not exist in
    `zone` (the hour skipped when clocks go forward) is refused, saying why; one that
    happens twice (clocks go back) is its first occurrence."""
    if isinstance(raw, datetime):
        if raw.tzinfo is None or raw.utcoffset() is None:
            raise Invalid(f"{field}: the time needs a time zone", field)
        value = raw.astimezone(UTC)
    else:
        text = str(raw).strip()
        found = LOCAL_TIME_TEXT.fullmatch(text)
        if found is None:
            raise Invalid(
                f"{field}: {text[:40]!r} is not a date and time (YYYY-MM-DD HH:MM)", field
            )
        try:
            naive = datetime.fromisoformat(f"{found['day']}T{found['time']}")
        except ValueError:
            raise Invalid(f"{field}: {text!r} is not a date and time", field) from None
        check_date(naive.date(), field)
        if found["offset"]:
            offset = "+00:00" if found["offset"] in "Zz" else found["offset"]
            try:
                value = naive.replace(
                    tzinfo=datetime.fromisoformat(f"2000-01-01T00:00{offset}").tzinfo
                )
            except ValueError:
                raise Invalid(f"{field}: {text!r} has no valid offset", field) from None
            value = value.astimezone(UTC)
        else:
            value = local_instant(naive, zone, field)
    check_date(value.date(), field)
    return value


def local_instant(naive: datetime, zone: ZoneInfo, field: str) -> datetime:
    """`naive` wall-clock time in `zone`, as UTC; refused when that wall time does not exist."""
    local = naive.replace(tzinfo=zone, fold=0)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != naive:
        raise Invalid(
            f"{field}: {naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip "
            f"ahead that night, so {naive:%H:%M} would be {back:%H:%M}; choose another time",
            field,
        )
    return local.astimezone(UTC)


def parse_answers(text: str, field: str = "onboarding") -> dict[str, str]:
    """Onboarding answers written one per line as "question: answer" (blank lines ignored)."""
    answers: dict[str, str] = {}
    for number, line in enumerate(str(text or "").splitlines(), 1):
        if not line.strip():
            continue
        question, colon, answer = line.partition(":")
        if not colon or not question.strip():
            raise Invalid(f'{field}: line {number} is not "question: answer"', field)
        answers[question.strip()[:200]] = answer.strip()[:5000]
    return answers
