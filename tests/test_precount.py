"""The success metrics counted ahead (`scheduler.precount`) and kept: every kept number equals
the count of its rows now, after whatever could change a kept span of the log (a row committed
after its hour was kept, a client's new coach or start month, an erasure, a program setting),
and pages of rows read from the kept spans come in the rows' own order. On the hand-computed
scenario of tests/test_metrics.py."""

from __future__ import annotations

from datetime import date, timedelta
from unittest.mock import ANY

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.exc import OperationalError

from scheduler import controls, editing, funnel, metrics, precount
from scheduler.metrics import Scope
from scheduler.models import AutomationLog, Deliverable, MetricPeriod
from tests.test_metrics import at, scenario, values, write  # noqa: F401  (scenario: a fixture)
from web.cli import cli
from web.extensions import db


@pytest.fixture
def world(scenario):  # noqa: F811
    return scenario


def agree(ctx, *scopes):
    """Each windowed metric's number over each scope is the count of its rows now."""
    for where in scopes:
        for code, measure in values(ctx, where).items():
            if not measure.metric.snapshot:
                counted = metrics.count_rows(ctx, measure.metric, where)
                assert (measure.total.rows, measure.total.met) == counted, (where, code)


def spans():
    """How many spans of the log are kept."""
    return db.session.scalar(
        select(func.count()).select_from(MetricPeriod).where(MetricPeriod.kind == metrics.LOG)
    )


def test_counted_ahead_pages_count_nothing_and_agree_with_the_rows(world):
    harness, coach, _ = world
    ctx = harness.ctx
    # Before the worker ran, a cohort's page (more than a week of log to count) counts the
    # cohort's rows directly, and keeps nothing.
    agree(ctx, Scope(cohort=date(2026, 1, 1)))
    assert spans() == 0
    # The log's whole days from its first row (12 Jan) to 19 Jan, and today's hours that ended
    # at least SETTLE ago (00:00 to 11:00; the rows since 11:00 are counted live); the states:
    # the three windows' funnels and every cohort's (the page counted the clients' states).
    done = harness.app.test_cli_runner().invoke(cli, ["metrics", "--keep"])
    assert "19 spans of the log counted (0 again), 4 states" in done.output, done.output
    assert precount.keep(ctx) == precount.Kept(complete=True, seconds=ANY)
    agree(
        ctx,
        Scope(days=7),
        Scope(days=30, month=1),
        Scope(days=90, coach=0),
        Scope(days=7, coach=coach.id),
        Scope(cohort=date(2026, 1, 1)),
        Scope(cohort=date(2025, 12, 1)),
    )
    assert spans() == 8 + 11  # the pages only read what was kept
    # The hand-computed numbers, from kept spans (tests/test_metrics.py computes them live).
    week = values(ctx, Scope(days=7))
    assert (week["execution_success"].total.rows, week["execution_success"].total.met) == (9, 5)
    assert [p.tally.rows for p in week["execution_success"].trend] == [2, 2, 3, 0, 0, 1, 1]
    # Kept under another program setting (`on_time_days`): counted again.
    log = MetricPeriod.kind == metrics.LOG
    db.session.execute(update(MetricPeriod).where(log).values(basis="on_time_days=0"))
    db.session.commit()
    assert metrics.measure(ctx, metrics.BY_CODE["months_on_time"], Scope(days=30)).value == 0.5
    bases = db.session.scalars(select(MetricPeriod.basis).where(log).distinct()).all()
    assert bases == [metrics.basis(ctx)] and spans() == 8 + 11


def test_a_row_committed_after_its_span_was_kept_is_counted_again(world):
    harness, _, (a, b, _) = world
    ctx = harness.ctx
    precount.keep(ctx)
    # Two rows commit late (a long transaction): one in today's kept 09:00 hour, one in
    # yesterday, kept whole.
    write(b, at(2026, 1, 20, 9, 30), "SEND_REMINDER", "FAILED")
    write(a, at(2026, 1, 19, 23, 59), "SEND_REMINDER", "COMPLETED")
    db.session.commit()
    week = Scope(days=7)
    success = metrics.BY_CODE["execution_success"]
    assert values(ctx, week)["execution_success"].total.rows == 9  # kept before they came
    assert metrics.count_rows(ctx, success, week) == (11, 6)
    kept = precount.keep(ctx)
    assert kept.rechecked == 2 and kept.spans == 2
    agree(ctx, week)


def test_a_new_coach_a_new_start_month_and_an_erasure_move_the_kept_numbers(world):
    harness, coach, (a, b, _) = world
    ctx = harness.ctx
    precount.keep(ctx)
    editing.change_coach(ctx, b, coach.id)
    ctx.commit()
    agree(ctx, Scope(days=7, coach=coach.id), Scope(days=30, coach=0))
    controls.adjust(ctx, b, date(2026, 2, 2))
    ctx.commit()
    agree(ctx, Scope(cohort=date(2026, 1, 1)), Scope(cohort=date(2026, 2, 1)))
    assert values(ctx, Scope(cohort=date(2026, 2, 1)))["execution_success"].total.rows == 3
    before = values(ctx, Scope(days=90))["execution_success"].total.rows
    editing.erase(ctx, a)
    ctx.commit()
    agree(ctx, Scope(days=90), Scope(cohort=date(2026, 1, 1)))
    assert values(ctx, Scope(days=90))["execution_success"].total.rows == before - 7


def test_a_day_kept_as_hours_is_counted_whole_when_it_is_over(world):
    harness = world[0]
    ctx = harness.ctx
    precount.keep(ctx)
    harness.clock.set(at(2026, 1, 21, 0, 5))
    precount.keep(ctx)
    today = MetricPeriod.kind == metrics.LOG, MetricPeriod.starts_at >= at(2026, 1, 20)
    kept = db.session.execute(select(MetricPeriod.starts_at, MetricPeriod.ends_at).where(*today))
    assert kept.all() == [(at(2026, 1, 20), at(2026, 1, 21))]
    agree(ctx, Scope(days=7), Scope(cohort=date(2026, 1, 1)))


def test_pages_of_rows_come_newest_first_from_the_spans_that_hold_them(world):
    ctx = world[0].ctx
    precount.keep(ctx)
    for code, where in (
        ("execution_success", Scope(days=30)),
        ("execution_success", Scope(cohort=date(2026, 1, 1), month=1)),
    ):
        m = metrics.BY_CODE[code]
        query = metrics.rows_query(ctx, m, where)
        ordered = query.order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
        everything = [r.id for r in db.session.execute(ordered)]
        assert len(everything) > 4
        paged = []
        for offset in range(0, len(everything) + 2, 2):
            paged += [r.id for r in metrics.rows(ctx, m, where, limit=2, offset=offset).rows]
        assert paged == everything, where


def test_the_funnel_is_a_state_counted_at_most_a_few_minutes_before(world):
    harness, _, (_, b, _) = world
    ctx = harness.ctx
    month = Scope(days=30)
    shown = funnel.funnel(ctx, month)
    ctx.commit()
    assert shown.counted_at == harness.clock.now() and shown.months[0].opened.count == 1
    opened = db.session.scalars(select(Deliverable).where(Deliverable.client_id == b.id)).one()
    opened.opened_at = harness.clock.now()
    ctx.commit()
    assert funnel.funnel(ctx, month) == shown  # kept: counted again after SNAPSHOT_SECONDS
    harness.clock.advance(timedelta(seconds=metrics.SNAPSHOT_SECONDS))
    assert funnel.funnel(ctx, month).months[0].opened.count == 2
    # The cohort's funnel, out of every cohort's counted together, is the cohort's own.
    precount.keep(ctx)
    cohort = Scope(cohort=date(2026, 1, 1))
    own = funnel.read(funnel.count(ctx, cohort)[None], cohort)
    assert funnel.funnel(ctx, cohort).months == own and own[0].generated.count == 2


def test_dropping_a_clients_spans_waits_for_spans_being_counted(world, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("advisory locks are PostgreSQL's (a SQLite database has one writer)")
    harness, _, (a, _, _) = world
    ctx = harness.ctx
    other = create_engine(database_url)
    with other.connect() as counting:
        counting.execute(select(func.pg_advisory_xact_lock_shared(metrics.COUNTING_LOCK)))
        ctx.session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            metrics.forget_client(ctx, a.id)
        ctx.rollback()
    other.dispose()
    metrics.forget_client(ctx, a.id)  # free again
