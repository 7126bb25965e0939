"""Counting the success metrics ahead of the people who read them: `keep` runs every minute (a
periodic actor beside the sweep, which `journey serve`'s timer sends to its own worker;
`journey metrics --keep` by hand), so that a metrics page only adds up kept numbers.

Each run, each step in a transaction of its own:
1. yesterday's and today's kept spans whose log holds another number of rows than when they
   were counted (a row committed late, rows erased) are dropped (`metrics.recheck`);
2. the hours kept of days that are over are dropped, so that those days are counted whole;
3. the log is counted up to the last settled hour: the widest window (90 days) first, then
   the rest of the history, newest first, CHUNK_DAYS a transaction, within `budget` seconds (a
   new installation's history takes a few runs; cohort pages count their rows directly until
   it is done);
4. the clients' states and the funnels (the three windows', every cohort's) are counted again
   once they are REFRESH_SECONDS old, so that a page finds one younger than SNAPSHOT_SECONDS.
One process keeps at a time (an advisory lock on PostgreSQL); another finding it busy stops."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, text

from scheduler import funnel, metrics
from scheduler.engine import Context
from scheduler.models import MetricPeriod

BUDGET_SECONDS = 20.0
CHUNK_DAYS = 30
# A state is counted again once this old: with a run a minute, pages never find it older than
# SNAPSHOT_SECONDS unless the runs stop (then a page counts its own).
REFRESH_SECONDS = metrics.SNAPSHOT_SECONDS - 90
# States nobody asked for since (a cohort's funnel counted for one page) are dropped after this.
FORGET_STATES_AFTER = timedelta(days=1)


@dataclass
class Kept:
    spans: int = 0  # days and hours counted
    rechecked: int = 0  # kept spans dropped because their log changed (counted again)
    states: int = 0  # states counted again (the clients', funnels)
    complete: bool = False  # every day of the log is kept counted
    busy: bool = False  # another process was keeping
    seconds: float = 0.0


def _begin(ctx: Context) -> bool:
    """Start a step: one keeper at a time, queries without JIT and with room to sort."""
    if not metrics.claim_keeping(ctx):
        ctx.rollback()
        return False
    metrics.quiet(ctx)
    if metrics.dialect(ctx) == "postgresql":
        ctx.session.execute(text("SET LOCAL work_mem = '64MB'"))
    return True


def keep(ctx: Context, budget: float = BUDGET_SECONDS) -> Kept:
    """Count ahead what the metrics pages read (see the module's docstring)."""
    began = time.monotonic()
    kept = Kept()
    if not _begin(ctx):
        kept.busy = True
        return kept
    until = metrics.settled(ctx)
    today = metrics.at_start(until.date())
    kept.rechecked = metrics.recheck(ctx, today - timedelta(days=1), until)
    metrics.drop_past_hours(ctx, today)
    first = metrics.first_log_day(ctx)
    if first is None:
        kept.complete = True
    else:
        floor = metrics.at_start(first)
        widest = metrics.Scope(days=max(metrics.WINDOWS))
        window = metrics.at_start(metrics.window_start(ctx, widest))
        lo, hi = max(floor, window), until
        while True:
            kept.spans += metrics.keep_range(ctx, lo, hi)
            ctx.commit()
            if lo <= floor:
                kept.complete = True
                break
            if time.monotonic() - began > budget or not _begin(ctx):
                break
            lo, hi = max(floor, lo - timedelta(days=CHUNK_DAYS)), lo
    if _begin(ctx):
        if not metrics.is_fresh(ctx, metrics.latest_state(ctx, metrics.CLIENTS), REFRESH_SECONDS):
            metrics.keep_states(ctx)
            kept.states += 1
        kept.states += funnel.keep_windows_and_cohorts(ctx, REFRESH_SECONDS)
        ctx.session.execute(
            delete(MetricPeriod).where(
                MetricPeriod.kind != metrics.LOG,
                MetricPeriod.counted_at < ctx.now() - FORGET_STATES_AFTER,
            )
        )
        ctx.commit()
    kept.seconds = time.monotonic() - began
    return kept
