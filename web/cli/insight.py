"""`journey metrics`: the program's success metrics (`scheduler.metrics`), as a table or JSON,
and the rows behind one of them."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from scheduler import metrics, precount
from web import journey_context
from web.cli.common import friendly, risk_words
from web.extensions import db


@click.command("metrics")
@click.option("--window", default="30", show_default=True, help="Days: 7, 30 or 90.")
@click.option("--cohort", default="", help="Instead: clients who started in this month, YYYY-MM.")
@click.option("--coach", default="", help="Only this coach's clients (admin id; 0: no coach).")
@click.option("--month", default="", help="Only this month of the program.")
@click.option("--rows", "code", default="", help="List the rows behind this metric (its code).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--keep",
    is_flag=True,
    help="Instead: count ahead now what the workers count every minute (the log's past days "
    "and hours, the clients' states, the funnels), however long the history takes.",
)
@with_appcontext
@friendly
def metrics_cmd(
    window: str, cohort: str, coach: str, month: str, code: str, as_json: bool, keep: bool
) -> None:
    """The success metrics of the specification: value, target and definition of each."""
    ctx = journey_context()
    if keep:
        kept = precount.keep(ctx, budget=float("inf"))
        click.echo(
            f"{kept.spans} spans of the log counted ({kept.rechecked} again), "
            f"{kept.states} states, in {kept.seconds:.1f} s"
            + ("" if not kept.busy else "; another process is counting: try again later")
        )
        return
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
    db.session.commit()  # what was counted here (spans of the log, states) is kept
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


@click.group("risk")
def risk_group() -> None:
    """Clients at risk of running more than 7 days late at their next milestone."""


@risk_group.command("train")
@click.option("--actor", default="command line", show_default=True, help="Who asks (the log).")
@with_appcontext
@friendly
def risk_train(actor: str) -> None:
    """Fit the model on the account's history and score every active client."""
    from scheduler import risk

    ctx = journey_context()
    kept = risk.train(ctx, actor=actor)
    ctx.commit()
    click.echo(f"trained on {kept.body['rows']} past months ({kept.body['positives']} late)")
    risk_print(kept)


def risk_print(kept: object) -> None:
    from scheduler import risk

    assert isinstance(kept, risk.RiskModel)
    model = risk.Model.from_dict(kept.body)
    click.echo(f"threshold {model.threshold:.2f}; on the training rows precision "
               f"{model.precision:.2f}, recall {model.recall:.2f}")  # fmt: skip
    click.echo(f"  {'intercept':<40} {model.weights[0]:+.3f}")
    for w in risk.weights(kept):
        click.echo(f"  {w.feature.name:<40} {w.weight:+.3f}  (mean {w.mean}, sd {w.scale})")
    at = risk.at_risk(journey_context())
    click.echo(f"{len(at)} clients at risk")
    for r, c in at:
        click.echo(f"  {c.name} <{c.email}>  {risk_words(r)}")


@risk_group.command("refresh")
@with_appcontext
@friendly
def risk_refresh() -> None:
    """Score every active client again with the latest model (what the daily job does)."""
    from scheduler import risk

    ctx = journey_context()
    scored = risk.refresh(ctx)
    ctx.commit()
    click.echo(
        f"{scored} clients scored" if risk.latest(ctx) else "no model yet: journey risk train"
    )


@risk_group.command("show")
@with_appcontext
@friendly
def risk_show() -> None:
    """The model in use (its weights) and the clients it finds at risk."""
    from scheduler import risk

    kept = risk.latest(journey_context())
    if kept is None:
        click.echo("no model yet: journey risk train")
        return
    risk_print(kept)


@risk_group.command("evaluate")
@click.option("--clients", type=click.IntRange(10, 2000), default=120, show_default=True)
@click.option("--seed", type=int, default=16, show_default=True)
def risk_evaluate(clients: int, seed: int) -> None:
    """Measure the model on a simulated history with known behaviour: train on what was known
    at a cut-off, then judge each month of the next 60 days against what happened."""
    from scheduler import risk_sim

    measured = risk_sim.measure(clients, seed)
    e = measured.evaluation
    click.echo(
        f"{clients} simulated clients; trained on {e.train_rows} months known by "
        f"{e.cutoff:%Y-%m-%d}, judged on the {e.test_rows} months after it "
        f"({e.overdue} ran late: base rate {e.base_rate:.0%})"
    )
    click.echo(
        f"at risk: {e.flagged} flagged; precision {e.precision:.2f}, recall {e.recall:.2f} "
        f"(threshold {e.model.threshold:.2f})"
    )
    for code, weight in measured.weights:
        click.echo(f"  {code:<20} {weight:+.3f}")


COMMANDS = [metrics_cmd, risk_group]
