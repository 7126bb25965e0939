"""Clients in bulk: enroll many from a CSV file (name, email, time zone, start date, coach,
and any other column as an onboarding answer), checked first row by row (a dry run says what
is wrong with each row and what would be scheduled), then imported all or nothing; and the
clients list and the log written out as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

from sqlalchemy import select

from scheduler import plan
from scheduler.engine import Context
from scheduler.enrollment import Enrollment, enroll_many
from scheduler.errors import Invalid, JourneyError
from scheduler.inputs import clean_email, clean_name, clean_zone, parse_date
from scheduler.models import Admin, AutomationLog, Client
from scheduler.overview import LogFilter, client_query, log_query, named
from scheduler.vocab import STATUS_LABELS, ClientStatus, automation_name

COLUMNS = ("name", "email", "timezone", "start_date", "coach")
REQUIRED = ("name", "email", "start_date")
MAX_ROWS = 20_000
MAX_BYTES = 10 * 1024 * 1024
CHUNK = 500


@dataclass
class Row:
    """One line of the file, as read, and what the check found."""

    line: int
    name: str
    email: str
    timezone: str
    start_date: str
    coach: str
    onboarding: dict[str, str]
    errors: list[str] = field(default_factory=list)
    status: str = "new"  # new, enrolled (already, the same: nothing to do), error
    client_id: int | None = None
    first_milestone: date | None = None


@dataclass
class Report:
    rows: list[Row]
    steps: int  # automations each new client gets
    done: bool = False  # imported (not a dry run)

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows if r.errors]

    @property
    def new(self) -> list[Row]:
        return [r for r in self.rows if r.status == "new" and not r.errors]

    @property
    def already(self) -> list[Row]:
        return [r for r in self.rows if r.status == "enrolled"]

    def summary(self) -> str:
        if self.errors:
            return (
                f"{len(self.errors)} of {len(self.rows)} rows have errors: nothing is imported "
                "until every row is right"
            )
        verb = "enrolled" if self.done else "would be enrolled"
        return (
            f"{len(self.new)} clients {verb}, {len(self.new) * self.steps} automations "
            f"scheduled; {len(self.already)} already enrolled (unchanged)"
        )


def read(text: str) -> list[Row]:
    """The file's rows, by its header (case and spaces in names do not matter)."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise Invalid(f"file: at most {MAX_BYTES // (1024 * 1024)} MB", "file")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("file: it is empty (a header line is needed)", "file") from None
    except csv.Error as exc:
        raise Invalid(f"file: not CSV ({exc})", "file") from None
    names = [h.strip().lower().replace(" ", "_") for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise Invalid(f"file: the header has no {', '.join(missing)} column", "file")
    if len(set(names)) != len(names):
        raise Invalid("file: a column appears twice in the header", "file")
    rows: list[Row] = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise Invalid(f"file: at most {MAX_ROWS} rows", "file")
            cells = dict(zip(names, [v.strip() for v in values], strict=False))
            rows.append(
                Row(
                    line=reader.line_num,
                    name=cells.get("name", ""),
                    email=cells.get("email", ""),
                    timezone=cells.get("timezone", "") or "UTC",
                    start_date=cells.get("start_date", ""),
                    coach=cells.get("coach", ""),
                    onboarding={
                        header[i].strip(): v
                        for i, (n, v) in enumerate(zip(names, values, strict=False))
                        if n not in COLUMNS and v.strip()
                    },
                    errors=(
                        [f"{len(values)} cells for {len(names)} columns"]
                        if len(values) != len(names)
                        else []
                    ),
                )
            )
    except csv.Error as exc:
        raise Invalid(f"file: line {reader.line_num} is not CSV ({exc})", "file") from None
    if not rows:
        raise Invalid("file: no client rows under the header", "file")
    return rows


def check(ctx: Context, rows: list[Row]) -> Report:
    """Each row's errors (bad date, unknown zone, duplicate email, unknown coach...), and for
    a good one what would be scheduled; a row already enrolled with the same name and start is
    left as it is (so that a file imported twice changes nothing the second time)."""
    coaches = {e.lower(): i for e, i in ctx.session.execute(select(Admin.email, Admin.id)).all()}
    seen: dict[str, int] = {}
    for row in rows:
        for fix, attribute in (
            (clean_name, "name"),
            (clean_email, "email"),
            (clean_zone, "timezone"),
        ):
            try:
                setattr(row, attribute, fix(getattr(row, attribute)))
            except JourneyError as exc:
                row.errors.append(exc.message)
        try:
            start = parse_date(row.start_date, "start_date")
            row.start_date = start.isoformat()
        except JourneyError as exc:
            row.errors.append(exc.message)
        if row.coach and row.coach.lower() not in coaches:
            row.errors.append(f"coach: no admin {row.coach}")
        if row.email in seen:
            row.errors.append(f"email: {row.email} is also on line {seen[row.email]}")
        else:
            seen[row.email] = row.line
    emails = sorted(seen)
    existing: dict[str, Client] = {}
    for i in range(0, len(emails), 1000):
        for c in ctx.session.scalars(select(Client).where(Client.email.in_(emails[i : i + 1000]))):
            existing[c.email] = c
    steps = len(plan.journey_steps(ctx.program))
    for row in rows:
        found = existing.get(row.email)
        if found is not None:
            row.client_id = found.id
            if found.name == row.name and found.start_date.isoformat() == row.start_date:
                row.status = "enrolled"
            else:
                row.errors.append(
                    f"email: {row.email} is already enrolled (client {found.id}) with other details"
                )
        if row.errors:
            row.status = "error"
        elif row.status == "new":
            row.first_milestone = date.fromisoformat(row.start_date)
    return Report(rows, steps)


def dry_run(ctx: Context, text: str) -> Report:
    return check(ctx, read(text))


def run(ctx: Context, text: str, progress: Callable[[int, int], None] | None = None) -> Report:
    """Import the file: every new row enrolled and planned, or (when any row has an error)
    none — the caller commits once. `progress(done, total)` after each chunk."""
    report = dry_run(ctx, text)
    if report.errors:
        first = report.errors[0]
        raise Invalid(
            f"file: {len(report.errors)} rows have errors (line {first.line}: "
            f"{first.errors[0]}); nothing is imported",
            "file",
        )
    todo = report.new
    coaches = {e.lower(): i for e, i in ctx.session.execute(select(Admin.email, Admin.id)).all()}
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        made = enroll_many(
            ctx,
            [
                Enrollment(
                    r.name, r.email, date.fromisoformat(r.start_date), r.timezone, r.onboarding
                )
                for r in chunk
            ],
        )
        for r, client in zip(chunk, made, strict=True):
            r.client_id = client.id
            if r.coach:
                client.coach_id = coaches[r.coach.lower()]
        ctx.session.flush()
        if progress is not None:
            progress(min(start + CHUNK, len(todo)), len(todo))
    report.done = True
    return report


# -- export ----------------------------------------------------------------------------------------


def csv_text(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    """A CSV document, line by line (streamed to the reader)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutral(v) for v in row])
        yield buffer.getvalue()


def neutral(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


CLIENT_HEADER = ["id", "name", "email", "timezone", "start_date", "month", "status", "coach"]


def clients_csv(
    ctx: Context, *, q: str = "", status: str = "", sort: str = "name"
) -> Iterator[str]:
    """The clients list as CSV, with the list's filters and order (every page)."""
    query = client_query(ctx, q=q, status=status, sort=sort)
    coaches = dict(ctx.session.execute(select(Admin.id, Admin.email)).all())

    def rows() -> Iterator[list[Any]]:
        for c, state in ctx.session.execute(query.execution_options(yield_per=1000)):
            yield [
                c.id,
                c.name,
                c.email,
                c.timezone,
                c.start_date.isoformat(),
                c.current_month,
                STATUS_LABELS[ClientStatus(state)],
                coaches.get(c.coach_id, "") if c.coach_id else "",
            ]

    return csv_text(CLIENT_HEADER, rows())


LOG_HEADER = [
    "at_utc",
    "client_id",
    "client",
    "automation",
    "type",
    "template",
    "month",
    "status",
    "detail",
    "error",
    "who",
]
LOG_EXPORT_CAP = 100_000


def log_csv(ctx: Context, where: LogFilter) -> Iterator[str]:
    """The log rows `where` names, newest first, as CSV (at most LOG_EXPORT_CAP rows)."""
    query, table, when = log_query(ctx, where)
    query = query.order_by(when.desc(), table.id.desc()).limit(LOG_EXPORT_CAP)

    def rows() -> Iterator[list[Any]]:
        found = ctx.session.scalars(query.execution_options(yield_per=1000))
        for row, name in (pair for part in found.partitions() for pair in named(ctx, part)):
            at = row.at if isinstance(row, AutomationLog) else row.trigger_at
            yield [
                at.astimezone(UTC).isoformat(),
                row.client_id,
                name,
                automation_name(row.type, row.template, row.month),
                row.type,
                row.template or "",
                row.month or "",
                row.status,
                row.detail or "",
                row.error or "",
                (row.actor or "engine") if isinstance(row, AutomationLog) else "",
            ]

    return csv_text(LOG_HEADER, rows())
