"""Clients at risk (`scheduler.risk`) over the API: the model with its weights and the clients
it finds at risk; training it again."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from scheduler import risk
from web.api import action, bp, ctx, reply
from web.api import serialize as out


def described() -> dict[str, Any]:
    kept = risk.latest(ctx())
    if kept is None:
        return {"model": None, "at_risk": []}
    model = risk.Model.from_dict(kept.body)
    return {
        "model": {
            "id": kept.id,
            "trained_at": out.instant(kept.trained_at),
            "actor": kept.actor,
            "rows": model.rows,
            "positives": model.positives,
            "threshold": model.threshold,
            "precision": model.precision,
            "recall": model.recall,
            "intercept": round(model.weights[0], 4),
            "features": [
                {
                    "code": w.feature.code,
                    "name": w.feature.name,
                    "weight": w.weight,
                    "mean": w.mean,
                    "scale": w.scale,
                }
                for w in risk.weights(kept)
            ],
        },
        "at_risk": [
            {"client_id": c.id, "name": c.name} | out.risk(r) for r, c in risk.at_risk(ctx())
        ],
    }


@bp.get("/admin/risk")
def risk_model() -> Response:
    return reply(described())


@bp.post("/admin/risk/train")
@action
def risk_train() -> Response:
    token = g.api_token
    risk.train(ctx(), actor=f"{token.admin.email} (API token {token.prefix})")
    return reply(described(), 201)
