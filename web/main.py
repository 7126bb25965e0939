"""The health check (public: load balancers and uptime monitors call it)."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from scheduler.models import Heartbeat
from scheduler.sweep import backlog
from web import journey_context
from web.extensions import db

bp = Blueprint("main", __name__)


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
