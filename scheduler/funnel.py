"""The funnel of each month of the program (a success-metrics page): for the deliverables
generated in a window, or of a cohort's clients, how many were generated, approved, delivered
(deliverable-ready email sent) and opened, with the median time from each stage to the next.

A funnel is a state, not a sum over the log: a deliverable generated last week is approved,
sent and opened later, and a median does not add up over days. So each scope's funnel is
counted whole, for every coach at once (and for all of them together), and kept as a state
shown for SNAPSHOT_SECONDS: the worker counts the three windows' and every cohort's ahead
(`scheduler.precount`), and a page finding none recent enough counts its own."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, select, tuple_

from scheduler.engine import Context
from scheduler.metrics import (
    WINDOWS,
    Scope,
    as_date,
    at_start,
    cohort_of,
    dialect,
    in_cohort,
    is_fresh,
    keep_state,
    latest_state,
    minutes_between,
    quiet,
    window_start,
)
from scheduler.models import AutomationLog, Client, Deliverable
from scheduler.vocab import DeliverableStatus, LogStatus, Template

# The coach key of the funnel of every coach's clients together.
EVERY = -1
COHORTS = "funnel:cohorts"  # every cohort's funnel, counted together


@dataclass(frozen=True)
class Stage:
    count: int
    median_hours: float | None  # from the stage before


@dataclass(frozen=True)
class FunnelMonth:
    month: int
    generated: Stage
    approved: Stage
    delivered: Stage
    opened: Stage


@dataclass(frozen=True)
class Funnel:
    months: list[FunnelMonth]
    counted_at: datetime


def kind(where: Scope) -> str:
    return f"funnel:{where.cohort:%Y-%m}" if where.cohort is not None else f"funnel:{where.days}"


def funnel(ctx: Context, where: Scope) -> Funnel:
    """The funnel of `where` as counted at most SNAPSHOT_SECONDS ago (counted now if not)."""
    quiet(ctx)
    kinds = [kind(where)] if where.cohort is None else [kind(where), COHORTS]
    kept = latest_state(ctx, *kinds)
    if kept is None or kept.body is None or not is_fresh(ctx, kept):
        body = count(ctx, where).get(None, {})
        return Funnel(read(body, where), keep_state(ctx, kind(where), body))
    body = kept.body
    if kept.kind == COHORTS and where.cohort is not None:
        body = body.get(where.cohort.isoformat(), {})
    return Funnel(read(body, where), kept.counted_at)


def read(body: dict[str, Any], where: Scope) -> list[FunnelMonth]:
    """A kept funnel's months for `where`'s coach (or every coach) and month."""
    coach = str(EVERY if where.coach is None else where.coach)
    return [
        FunnelMonth(month, Stage(n, None), Stage(a, ma), Stage(s, ms), Stage(o, mo))
        for month, n, a, s, o, ma, ms, mo in sorted(body.get(coach, []), key=lambda r: r[0])
        if where.month is None or month == where.month
    ]


def keep_windows_and_cohorts(ctx: Context, older_than: float) -> int:
    """Count again the windows' funnels and every cohort's whose kept ones were counted more
    than `older_than` seconds ago; returns how many were counted."""
    counted = 0
    for days in WINDOWS:
        where = Scope(days=days)
        if not is_fresh(ctx, latest_state(ctx, kind(where)), older_than):
            keep_state(ctx, kind(where), count(ctx, where)[None])
            counted += 1
    if not is_fresh(ctx, latest_state(ctx, COHORTS), older_than):
        found = count(ctx, None)
        keep_state(ctx, COHORTS, {c.isoformat(): body for c, body in found.items() if c})
        counted += 1
    return counted


def _rows(ctx: Context, where: Scope | None) -> Select[Any]:
    """One row per deliverable generated in `where` (None: every cohort): its cohort, coach,
    month and the instants it was generated, approved, sent (the first deliverable-ready email
    of its month) and opened."""
    first_sent = (
        select(
            AutomationLog.client_id,
            AutomationLog.month,
            func.min(AutomationLog.at).label("at"),
        )
        .where(
            AutomationLog.template == Template.DELIVERABLE_READY,
            AutomationLog.status == LogStatus.COMPLETED,
        )
        .group_by(AutomationLog.client_id, AutomationLog.month)
    )
    window = where is not None and where.cohort is None
    if window:
        first_sent = first_sent.where(AutomationLog.at >= at_start(window_start(ctx, where)))
    sent_at = first_sent.subquery()
    approved = case(
        (Deliverable.status == DeliverableStatus.DELIVERED, Deliverable.reviewed_at), else_=None
    )
    query = (
        select(
            cohort_of(ctx, Client.start_date).label("cohort"),
            func.coalesce(Client.coach_id, 0).label("coach"),
            Deliverable.month.label("month"),
            Deliverable.generated_at.label("generated"),
            approved.label("approved"),
            sent_at.c.at.label("sent"),
            Deliverable.opened_at.label("opened"),
        )
        .join(Client, Client.id == Deliverable.client_id)
        .outerjoin(
            sent_at,
            and_(
                sent_at.c.client_id == Deliverable.client_id,
                sent_at.c.month == Deliverable.month,
                Deliverable.status == DeliverableStatus.DELIVERED,
            ),
        )
        .where(Deliverable.generated_at.is_not(None))
    )
    if window:
        query = query.where(Deliverable.generated_at >= at_start(window_start(ctx, where)))
    elif where is not None and where.cohort is not None:
        query = query.where(*in_cohort(where.cohort))
    return query


def count(ctx: Context, where: Scope | None) -> dict[date | None, dict[str, Any]]:
    """The funnel of `where` (its coach and month aside) counted now, or with None every
    cohort's: {cohort (None for `where`): {coach key: [[month, generated, approved, sent,
    opened, median hours to approved, to sent, to opened], ...]}}; coach key EVERY for all of
    them together."""
    sub = _rows(ctx, where).subquery()
    steps = [
        (sub.c.generated, sub.c.approved),
        (sub.c.approved, sub.c.sent),
        (sub.c.sent, sub.c.opened),
    ]
    by_cohort = where is None
    found: dict[date | None, dict[str, Any]] = {}

    def put(cohort: Any, coach: int, month: int, counts: list[int], medians: list[Any]) -> None:
        hours = [None if v is None else round(float(v), 1) for v in medians]
        key = as_date(cohort) if by_cohort else None
        found.setdefault(key, {}).setdefault(str(coach), []).append(
            [int(month), *map(int, counts), *hours]
        )

    if dialect(ctx) == "postgresql":
        keys = [sub.c.cohort] if by_cohort else []
        coach = case((func.grouping(sub.c.coach) == 1, EVERY), else_=sub.c.coach)
        columns: list[Any] = [*keys, coach, sub.c.month, func.count()]
        columns += [func.count(last) for _, last in steps]
        columns += [
            func.percentile_cont(0.5).within_group(minutes_between(ctx, first, last) / 60.0)
            for first, last in steps
        ]
        sets = func.grouping_sets(
            tuple_(*keys, sub.c.month), tuple_(*keys, sub.c.coach, sub.c.month)
        )
        for row in ctx.session.execute(select(*columns).group_by(sets)):
            *cohort, c, month, n, a, s, o, ma, ms, mo = row
            put(cohort[0] if cohort else None, int(c), month, [n, a, s, o], [ma, ms, mo])
        return found
    gathered: dict[tuple[Any, int, int], list[Any]] = {}
    for cohort, c, month, *instants in ctx.session.execute(select(sub)):
        for who in (EVERY, int(c)):
            gathered.setdefault((cohort, who, int(month)), []).append(instants)
    for (cohort, c, month), items in gathered.items():
        counts = [len(items)] + [sum(1 for it in items if it[i] is not None) for i in (1, 2, 3)]
        medians = []
        for i in (1, 2, 3):
            spans = [
                (_aware(it[i]) - _aware(it[i - 1])).total_seconds() / 3600
                for it in items
                if it[i] is not None and it[i - 1] is not None
            ]
            medians.append(statistics.median(spans) if spans else None)
        put(cohort, c, month, counts, medians)
    return found


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
