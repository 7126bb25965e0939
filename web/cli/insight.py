"""`journey metrics`: the program's success metrics (`scheduler.metrics`), as a table or JSON,
and the rows behind one of them."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from scheduler import metrics
from web import journey_context
from web.cli.common import friendly
from web.extensions import db


@click.command("metrics")
@click.option("--window", default="30", show_default=True, help="Days: 7, 30 or 90.")
@click.option("--cohort", default="", help="Instead: clients who started in this month, YYYY-MM.")
@click.option("--coach", default="", help="Only this coach's clients (admin id; 0: no coach).")
@click.option("--month", default="", help="Only this month of the program.")
@click.option("--rows", "code", default="", help="List the rows behind this metric (its code).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
@friendly
def metrics_cmd(window: str, cohort: str, coach: str, month: str, code: str, as_json: bool) -> None:
    """The success metrics of the specification: value, target and definition of each."""
    ctx = journey_context()
    where = metrics.scope(
        window=window if not cohort else "",
        cohort=cohort,
        coach=coach,
        month=month,
        months=len(ctx.program.months),
    )
    if code:
        chosen = metrics.metric(code)
        page = metrics.rows(ctx, chosen, where, limit=1000)
        click.echo(f"{chosen.name}: {page.total} rows, {page.met} counted (first 1000 shown)")
        for r in page.rows:
            mark = f"{r.amount:.0f} min" if chosen.mean else ("yes" if r.met else "no")
            when = f"{r.at:%Y-%m-%d %H:%M} UTC" if r.at else ""
            click.echo(f"  {when}  {r.client}  M{r.month or '-'}  {r.status}  {mark}")
        return
    found = metrics.measure_all(ctx, where)
    db.session.commit()  # the whole days counted for the first time are kept
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "code": m.metric.code,
                        "name": m.metric.name,
                        "value": m.value,
                        "target": m.metric.target,
                        "meets_target": m.meets,
                        "rows": m.total.rows,
                        "met": m.total.met,
                    }
                    for m in found
                ],
                indent=2,
            )
        )
        return
    what = f"cohort {cohort}" if cohort else f"last {where.days} days (UTC)"
    click.echo(f"Success metrics, {what}")
    for m in found:
        verdict = {True: "meets", False: "MISSES", None: "no rows"}[m.meets]
        click.echo(
            f"  {m.metric.name:<38} {m.shown:>9}  target {m.metric.target_text:<9} {verdict:<8}"
            f" {m.total.rows} rows  [{m.metric.code}]"
        )


COMMANDS = [metrics_cmd]
