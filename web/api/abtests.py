"""A/B tests of client emails (`scheduler.abtests`) over the API: list with results, start,
read one, end by keeping a variant."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from scheduler import abtests
from scheduler.models import AbTest
from web.api import action, bp, ctx, inputs, reply
from web.api import serialize as out


def described(test: AbTest) -> dict[str, Any]:
    return {
        "id": test.id,
        "template": test.template,
        "name": test.name,
        "subject": test.subject,
        "text": test.text_body,
        "html": test.html_body,
        "split": test.split,
        "goal": test.goal,
        "goal_days": test.goal_days,
        "started_at": out.instant(test.started_at),
        "started_by": test.started_by,
        "ended_at": out.instant(test.ended_at),
        "ended_by": test.ended_by,
        "kept": test.kept,
        **out.ab_result(abtests.result(ctx(), test)),
    }


def actor() -> str:
    token = g.api_token
    return f"{token.admin.email} (API token {token.prefix})"


@bp.get("/admin/ab-tests")
def ab_tests() -> Response:
    found = abtests.tests(ctx())
    return reply({"data": [described(t) for t in found]})


@bp.post("/admin/ab-tests")
@action
def ab_start() -> Response:
    data = inputs.body()
    test = abtests.start(
        ctx(),
        template=data["template"],
        name=data.get("name", ""),
        subject=data.get("subject"),
        text=data.get("text"),
        html=data.get("html"),
        split=data.get("split", 50),
        goal=data.get("goal", "open"),
        goal_days=data.get("goal_days", 7),
        actor=actor(),
    )
    return reply(described(test), 201)


@bp.get("/admin/ab-tests/<int:test_id>")
def ab_test(test_id: int) -> Response:
    return reply(described(abtests.find(ctx(), test_id)))


@bp.post("/admin/ab-tests/<int:test_id>/end")
@action
def ab_end(test_id: int) -> Response:
    data = inputs.body()
    test = abtests.end(ctx(), abtests.find(ctx(), test_id), data["keep"], actor())
    return reply(described(test))
