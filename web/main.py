"""Read-only overview pages and the health check."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template
from sqlalchemy import func, select, text

from scheduler import timeline
from scheduler.journey import NotFound, find_client
from scheduler.vocab import AutomationStatus
from web import journey_context
from web.extensions import db
from web.models import Automation, Client

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    ctx = journey_context()
    clients = db.session.scalars(select(Client).order_by(Client.name)).all()
    next_due = dict(
        db.session.execute(
            select(Automation.client_id, func.min(Automation.trigger_at))
            .where(Automation.status == AutomationStatus.SCHEDULED)
            .group_by(Automation.client_id)
        ).all()
    )
    return render_template(
        "index.html", clients=clients, next_due=next_due, program=ctx.program, now=ctx.now()
    )


@bp.get("/clients/<int:client_id>")
def client(client_id: int) -> str:
    ctx = journey_context()
    try:
        found = find_client(ctx, client_id)
    except NotFound:
        abort(404)
    return render_template("client.html", t=timeline.build(ctx, found), program=ctx.program)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    try:
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok", database="ok")
    except Exception as exc:  # report, do not raise: this page exists to say what is wrong
        return jsonify(status="error", database=f"{type(exc).__name__}"), 503
