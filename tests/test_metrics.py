"""The success metrics on a fixed scenario whose numbers were worked out by hand; every number
is the count of the rows its link lists, and kept days give the same numbers as a live count."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from scheduler import funnel, metrics
from scheduler.models import Admin, Automation, AutomationLog, Deliverable, MetricCount
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def plan_generation(harness, client, month=1):
    return harness.one(client, type="GENERATE_DELIVERABLE", month=month, source="PLAN")


def write(client, when, type_, status, *, month=1, template=None, attempt=1, automation=None):
    db.session.add(
        AutomationLog(
            at=when,
            client_id=client.id,
            automation_id=automation.id if automation else None,
            type=type_,
            month=month,
            template=template,
            status=status,
            attempt=attempt,
            detail="",
        )
    )


@pytest.fixture
def scenario(harness):
    """Two clients under way (A coached, B not) and one far behind (C), with a week of log
    rows written at known instants; today is Tue 20 Jan 2026, 12:00 UTC."""
    a = harness.enroll(date(2026, 1, 10), email="a@example.com", name="Ann")
    b = harness.enroll(date(2026, 1, 10), email="b@example.com", name="Bob")
    c = harness.enroll(date(2026, 1, 18), email="c@example.com", name="Cy")
    coach = db.session.scalars(select(Admin)).one()
    a.coach_id = coach.id
    b.reminders_enabled = False
    c.start_date = date(2025, 12, 1)  # month 1 is long past its milestone, not delivered
    gen_a, gen_b = plan_generation(harness, a), plan_generation(harness, b)
    gen_a.trigger_at = at(2026, 1, 14, 9, 15)  # moved by a retry
    reminder = harness.one(a, template="REMINDER_UPCOMING", month=2)
    g, done = "GENERATE_DELIVERABLE", "COMPLETED"
    # A: the generation fails once, then succeeds 30 min after its first failure, on schedule.
    write(a, at(2026, 1, 14, 9, 0), g, "RETRYING", automation=gen_a)
    write(a, at(2026, 1, 14, 9, 30), g, done, attempt=2, automation=gen_a)
    # A: a reminder fails twice and succeeds 90 min after its first failure.
    r = "SEND_REMINDER"
    write(a, at(2026, 1, 16, 8, 0), r, "RETRYING", month=2, automation=reminder)
    write(a, at(2026, 1, 16, 8, 15), r, "RETRYING", month=2, attempt=2, automation=reminder)
    write(a, at(2026, 1, 16, 9, 30), r, done, month=2, attempt=3, automation=reminder)
    # A's month 1 is delivered 1 day after its milestone (on time); B's 9 days after (late).
    n = "SEND_NOTIFICATION"
    write(a, at(2026, 1, 15, 12, 0), n, done, template="DELIVERABLE_READY")
    write(b, at(2026, 1, 19, 10, 0), n, done, template="DELIVERABLE_READY")
    # B: its generation fails for good; a cancellation and a deferral count nowhere.
    write(b, at(2026, 1, 15, 10, 0), g, "FAILED", attempt=4, automation=gen_b)
    write(b, at(2026, 1, 17, 10, 0), r, "CANCELLED")
    write(b, at(2026, 1, 17, 11, 0), r, "DEFERRED")
    # Today (counted live) and 8 days ago (outside the 7-day window, inside the 30-day one).
    write(b, at(2026, 1, 20, 8, 0), r, "SKIPPED")
    write(a, at(2026, 1, 12, 9, 0), r, "SKIPPED")
    # The funnel of month 1.
    db.session.add_all(
        [
            Deliverable(
                client_id=a.id, month=1, version=1, status="DELIVERED",
                generated_at=at(2026, 1, 14, 9, 30), reviewed_at=at(2026, 1, 15, 11, 58),
                delivered_at=at(2026, 1, 15, 11, 58), opened_at=at(2026, 1, 16, 12, 0),
                created_at=at(2026, 1, 14, 9, 30),
            ),
            Deliverable(
                client_id=b.id, month=1, version=1, status="DELIVERED",
                generated_at=at(2026, 1, 16, 10, 0), reviewed_at=at(2026, 1, 19, 9, 0),
                delivered_at=at(2026, 1, 19, 9, 0), created_at=at(2026, 1, 16, 10, 0),
            ),
        ]
    )  # fmt: skip
    db.session.commit()
    harness.clock.set(at(2026, 1, 20, 12, 0))
    return harness, coach, (a, b, c)


def values(ctx, where):
    return {m.metric.code: m for m in metrics.measure_all(ctx, where)}


def test_the_numbers_worked_out_by_hand(scenario):
    harness, coach, _ = scenario
    ctx = harness.ctx
    week = values(ctx, metrics.Scope(days=7))
    # Attempts: A retrying, done, retrying, retrying, done, done; B failed, done, skipped.
    assert (week["execution_success"].total.rows, week["execution_success"].total.met) == (9, 5)
    assert week["execution_success"].shown == "55.6%"
    # Ended: 4 done, 1 skipped, 1 failed.
    assert (week["automation_failures"].total.rows, week["automation_failures"].total.met) == (6, 1)
    # (30 + 90) / 2 minutes.
    assert week["retry_resolution"].value == pytest.approx(60.0)
    assert week["retry_resolution"].meets is False  # the target is under 60
    assert week["generated_on_schedule"].value == 0.5
    assert week["months_on_time"].value == 0.5
    # Now: A and B have month 1 delivered (month 2 is due 9 Feb), C's month 1 was due 1 Dec.
    assert (week["overdue_clients"].total.rows, week["overdue_clients"].total.met) == (3, 1)
    assert (week["automations_off"].total.rows, week["automations_off"].total.met) == (3, 1)
    # Per coach and per month of the program.
    success = week["execution_success"]
    assert (success.by_coach[coach.id].rows, success.by_coach[coach.id].met) == (6, 3)
    assert (success.by_coach[0].rows, success.by_coach[0].met) == (3, 2)
    assert (success.by_month[2].rows, success.by_month[2].met) == (3, 1)
    # The trend: one point a day, the rows of each day.
    assert [p.tally.rows for p in success.trend] == [2, 2, 3, 0, 0, 1, 1]
    month = values(ctx, metrics.Scope(days=30))
    assert month["execution_success"].total.rows == 10
    only_coach = values(ctx, metrics.Scope(days=7, coach=coach.id))
    assert only_coach["execution_success"].total.rows == 6
    cohort = values(ctx, metrics.Scope(cohort=date(2026, 1, 1)))
    assert cohort["execution_success"].total.rows == 10


def test_every_number_is_the_count_of_its_rows_and_kept_days_agree(scenario):
    harness, _coach, _ = scenario
    ctx = harness.ctx
    for where in (
        metrics.Scope(days=7),
        metrics.Scope(days=30, month=1),
        metrics.Scope(days=90, coach=0),
    ):
        first = values(ctx, where)
        db.session.commit()
        kept = db.session.scalar(select(func.count()).select_from(MetricCount))
        assert kept > 0
        again = values(ctx, where)  # now from the kept days
        for code, measure in first.items():
            counted = metrics.count_rows(ctx, measure.metric, where)
            assert counted == (measure.total.rows, measure.total.met), code
            assert again[code].total == measure.total, code
            listed = metrics.rows(ctx, measure.metric, where)
            assert (listed.total, listed.met) == counted, code
            assert len(listed.rows) == min(counted[0], metrics.PER_PAGE), code


def test_the_monthly_funnel(scenario):
    harness, _, _ = scenario
    [m1] = funnel.funnel(harness.ctx, metrics.Scope(days=30)).months
    assert m1.month == 1
    assert [m1.generated.count, m1.approved.count, m1.delivered.count, m1.opened.count] == [
        2,
        2,
        2,
        1,
    ]
    # Medians: (26h28 + 71h) / 2; (2 min + 1 h) / 2; 24 h.
    assert (m1.approved.median_hours, m1.delivered.median_hours, m1.opened.median_hours) == (
        48.7,
        0.5,
        24.0,
    )


def test_scopes_as_people_write_them():
    assert metrics.scope(window="90").days == 90
    assert metrics.scope(cohort="2026-03").cohort == date(2026, 3, 1)
    for bad in ({"window": "14"}, {"cohort": "March"}, {"coach": "x"}, {"month": "9"}):
        with pytest.raises(metrics.Invalid):
            metrics.scope(**bad)
    with pytest.raises(metrics.Invalid):
        metrics.metric("nope")


def test_automation_rows_are_real_engine_rows(harness):
    """On a journey the engine itself carried out, the metrics read its log."""
    client = harness.enroll(date(2026, 1, 3))
    harness.run_until(at(2026, 1, 9, 12))
    assert db.session.scalar(select(func.count()).select_from(Automation)) > 0
    week = values(harness.ctx, metrics.Scope(days=7))
    assert week["execution_success"].total.rows == len(
        [
            row
            for row in harness.logs(client)
            if row.status in ("COMPLETED", "SKIPPED") and row.at >= at(2026, 1, 3)
        ]
    )
    assert week["generated_on_schedule"].value == 1.0


@pytest.fixture
def panel(scenario):
    harness = scenario[0]
    harness.app.config.update(LONG_SESSIONS)
    web = browser(harness.app)
    set_password()
    assert log_in(web).status_code == 302
    return Panel(web)


def test_the_panel_page_shows_each_number_with_its_rows(panel, scenario):
    page = panel.get("/success?window=7").get_data(True)
    assert "Successful executions" in page and "55.6%" in page
    assert "target ≥ 99.0%" in page and "misses the target" in page
    assert "Of the attempts to carry out an automation" in page  # the definition, shown
    assert 'href="/success/execution_success/rows?window=7"' in page
    rows = panel.get("/success/execution_success/rows?window=7").get_data(True)
    assert "<strong>9</strong> rows" in rows and "<strong>5</strong> counted" in rows
    assert rows.count("<tr>") - 1 == 9  # the header row, then the nine rows
    coach = scenario[1]
    by_coach = panel.get(f"/success/execution_success/rows?window=7&coach={coach.id}")
    assert "<strong>6</strong> rows" in by_coach.get_data(True)
    assert 'style="' not in page  # the panel's CSP allows no inline style
    funnel = panel.get("/success/funnel?window=30").get_data(True)
    assert 'data-month="1"' in funnel and "median 48.7 h" in funnel


@pytest.mark.parametrize(
    "url",
    [
        "/success?window=14",
        "/success?cohort=2026-13",
        "/success?month=0",
        "/success?coach=-1",
        "/success/execution_success/rows?page=x",
    ],
)
def test_the_panel_refuses_what_it_cannot_use(panel, url):
    answer = panel.get(url)
    assert answer.status_code == 422, url


def test_an_unknown_metric_is_not_found(panel):
    assert panel.get("/success/nope/rows").status_code == 404


def test_the_api_answers_the_same_numbers_and_rows(scenario):
    from tests.test_api import Api, new_token

    harness = scenario[0]
    api = Api(harness, new_token(harness))
    answer = api.get("/api/admin/metrics?window=7").get_json()
    by_code = {m["code"]: m for m in answer["metrics"]}
    success = by_code["execution_success"]
    assert (success["value"], success["rows"], success["met"]) == (0.5556, 9, 5)
    assert success["meets_target"] is False and success["target"] == 0.99
    assert [p["rows"] for p in success["trend"]] == [2, 2, 3, 0, 0, 1, 1]
    assert by_code["retry_resolution"]["unit"] == "minutes"
    assert answer["funnel"][0]["median_hours"]["to_approved"] == 48.7
    rows = api.get("/api/admin/metrics/execution_success/rows?window=7&limit=4").get_json()
    assert rows["pagination"]["total"] == 9 and rows["met"] == 5 and len(rows["data"]) == 4
    assert api.get("/api/admin/metrics?window=14").status_code == 422
    assert api.get("/api/admin/metrics/nope/rows").status_code in (404, 422)


def test_the_command_line_prints_the_same_numbers(scenario):
    from web.cli import cli

    harness = scenario[0]
    runner = harness.app.test_cli_runner()
    shown = runner.invoke(cli, ["metrics", "--window", "7"])
    assert shown.exit_code == 0, shown.output
    assert "Successful executions" in shown.output and "55.6%" in shown.output
    assert "MISSES" in shown.output
    listed = runner.invoke(cli, ["metrics", "--window", "7", "--rows", "retry_resolution"])
    assert "2 rows" in listed.output and "90 min" in listed.output
    as_json = runner.invoke(cli, ["metrics", "--window", "7", "--json"])
    assert {m["code"]: m["rows"] for m in json.loads(as_json.output)}["execution_success"] == 9
    bad = runner.invoke(cli, ["metrics", "--window", "14"])
    assert bad.exit_code == 2 and "window: one of 7, 30, 90 days" in bad.output
