"""The success metrics (`scheduler.metrics`) over the API: the numbers with their definitions,
targets, trends and breakdowns, and the rows behind each."""

from __future__ import annotations

from typing import Any

from flask import Response

from scheduler import funnel, metrics
from web.api import bp, ctx, inputs, reply
from web.api import serialize as out
from web.api.errors import ApiError
from web.extensions import db


def scope(args: dict[str, Any]) -> metrics.Scope:
    return metrics.scope(
        window=str(args.get("window", "")),
        cohort=args.get("cohort", ""),
        coach=str(args["coach"]) if "coach" in args else "",
        month=str(args["month"]) if "month" in args else "",
        months=len(ctx().program.months),
    )


def value(m: metrics.Metric, tally: metrics.Tally) -> float | None:
    found = tally.value(m)
    return None if found is None else round(found, 4)


def measured(found: metrics.Measure) -> dict[str, Any]:
    m = found.metric
    return {
        "code": m.code,
        "group": m.group,
        "name": m.name,
        "definition": m.definition,
        "unit": "minutes" if m.mean else "share",
        "target": m.target,
        "higher_is_better": m.higher_is_better,
        "snapshot": m.snapshot,
        "value": value(m, found.total),
        "meets_target": found.meets,
        "rows": found.total.rows,
        "met": found.total.met,
        "trend": [
            {
                "from": out.day(p.start),
                "to": out.day(p.end),
                "value": value(m, p.tally),
                "rows": p.tally.rows,
            }
            for p in found.trend
        ],
        "by_coach": [
            {"coach_id": coach, "value": value(m, t), "rows": t.rows}
            for coach, t in sorted(found.by_coach.items())
        ],
        "by_month": [
            {"month": month, "value": value(m, t), "rows": t.rows}
            for month, t in sorted(found.by_month.items())
        ],
    }


@bp.get("/admin/metrics")
def all_metrics() -> Response:
    where = scope(inputs.query())
    found = metrics.measure_all(ctx(), where)
    months = funnel.funnel(ctx(), where)
    db.session.commit()  # what was counted here (spans of the log, states) is kept
    return reply(
        {
            "scope": where.link(),
            "metrics": [measured(m) for m in found],
            "funnel": [
                {
                    "month": f.month,
                    "generated": f.generated.count,
                    "approved": f.approved.count,
                    "delivered": f.delivered.count,
                    "opened": f.opened.count,
                    "median_hours": {
                        "to_approved": f.approved.median_hours,
                        "to_delivered": f.delivered.median_hours,
                        "to_opened": f.opened.median_hours,
                    },
                }
                for f in months.months
            ],
            "funnel_counted_at": out.instant(months.counted_at),
        }
    )


@bp.get("/admin/metrics/<code>/rows")
def metric_rows(code: str) -> Response:
    args = inputs.query()
    if code not in metrics.BY_CODE:
        raise ApiError(404, f"no metric {code!r}")
    m = metrics.BY_CODE[code]
    page = metrics.rows(ctx(), m, scope(args), limit=args["limit"], offset=args["offset"])
    db.session.commit()  # what was counted here is kept
    items = [
        {
            "id": r.id,
            "client_id": r.client_id,
            "client": r.client,
            "month": r.month,
            "at": out.instant(r.at),
            "type": r.type,
            "template": r.template,
            "status": r.status,
            "met": None if r.met is None else bool(r.met),
            "minutes": None if r.amount is None else round(float(r.amount), 2),
        }
        for r in page.rows
    ]
    answer = out.page(items, page.total, args["limit"], args["offset"])
    answer["met"] = page.met
    return reply(answer)
