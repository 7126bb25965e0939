"""Read-only overview pages and the health check."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, render_template
from sqlalchemy import func, select, text

from scheduler import emails, timeline
from scheduler.journey import NotFound, find_client
from scheduler.sweep import backlog
from scheduler.vocab import AutomationStatus, Template
from web import journey_context
from web.extensions import db
from web.models import Automation, Client, Heartbeat

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
    return render_template(
        "client.html",
        t=timeline.build(ctx, found),
        program=ctx.program,
        templates=[t for t in Template if t is not Template.WEEKLY_DIGEST],
        t_client_id=found.id,
    )


@bp.get("/clients/<int:client_id>/emails/<template>")
def email_preview(client_id: int, template: str) -> str:
    """Any template, rendered for this client as it would be sent today (nothing is sent)."""
    ctx = journey_context()
    try:
        found = find_client(ctx, client_id)
        chosen = Template(template)
    except (NotFound, ValueError):
        abort(404)
    if chosen is Template.WEEKLY_DIGEST:
        abort(404, description="the weekly digest is for admins: preview it from the CLI")
    try:
        rendered = emails.preview(ctx, chosen, found)
    except emails.MissingVariable as exc:
        abort(409, description=str(exc))
    return render_template(
        "email_preview.html",
        client=found,
        template=chosen,
        rendered=rendered,
        templates=[t for t in Template if t is not Template.WEEKLY_DIGEST],
    )


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Database, broker and sweep liveness, and the backlog of overdue automations; 503 when
    any of them is unhealthy."""
    ctx = journey_context()
    config = current_app.config
    checks: dict[str, dict[str, Any]] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # report, do not raise: this page exists to say what is wrong
        db.session.rollback()
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if config["REDIS_URL"]:
        try:
            redis.Redis.from_url(config["REDIS_URL"], socket_timeout=2).ping()
            checks["broker"] = {"ok": True, "kind": "redis"}
        except redis.RedisError as exc:
            checks["broker"] = {"ok": False, "kind": "redis", "error": type(exc).__name__}
    else:
        checks["broker"] = {"ok": True, "kind": "in-process"}
    if checks["database"]["ok"]:
        now = ctx.now()
        beat = db.session.get(Heartbeat, "sweep")
        allowed = max(3 * config["SWEEP_INTERVAL_SECONDS"], 180)
        age = (now - beat.at).total_seconds() if beat else None
        checks["sweep"] = {
            "ok": age is not None and age <= allowed,
            "last_run": beat.at.isoformat() if beat else None,
            "seconds_ago": round(age) if age is not None else None,
        }
        count, oldest = backlog(ctx, now)
        lag = (now - oldest).total_seconds() if oldest else 0
        checks["backlog"] = {
            "ok": lag <= config["HEALTH_MAX_LAG_SECONDS"],
            "overdue": count,
            "oldest_seconds": round(lag),
        }
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", **checks), 200 if healthy else 503
