"""The health check (public: load balancers and uptime monitors call it) and the metrics
(for Prometheus, to requests bearing METRICS_TOKEN)."""

from __future__ import annotations

import hmac
from typing import Any

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text

from scheduler import health
from web import journey_context
from web.extensions import db

bp = Blueprint("main", __name__)


def broker_check(config: dict[str, Any]) -> dict[str, Any]:
    """Redis answers, and will not evict messages (an eviction policy can drop delayed
    messages silently; the sweep recovers them, late)."""
    if not config["REDIS_URL"]:
        return {"ok": True, "kind": "in-process"}
    try:
        client = redis.Redis.from_url(config["REDIS_URL"], socket_timeout=2)
        client.ping()
        policy = str(client.info("memory").get("maxmemory_policy", "unknown"))
    except redis.RedisError as exc:
        return {"ok": False, "kind": "redis", "error": type(exc).__name__}
    return {
        "ok": True,
        "kind": "redis",
        "maxmemory_policy": policy,
        "evicts": policy != "noeviction",
    }


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
    checks["broker"] = broker_check(config)
    if checks["database"]["ok"]:
        now = health.state(ctx)
        allowed = max(3 * config["SWEEP_INTERVAL_SECONDS"], 180)
        age = now.sweep_age
        checks["sweep"] = {
            "ok": age is not None and age <= allowed,
            "last_run": now.sweep_at.isoformat() if now.sweep_at else None,
            "seconds_ago": round(age) if age is not None else None,
        }
        checks["backlog"] = {
            "ok": now.oldest_overdue_age <= config["HEALTH_MAX_LAG_SECONDS"],
            "overdue": now.overdue,
            "oldest_seconds": round(now.oldest_overdue_age),
        }
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", **checks), 200 if healthy else 503


@bp.get("/metrics")
def metrics() -> Response:
    """The engine's state as Prometheus gauges (the workers export their counters themselves,
    on WORKER_METRICS_PORT). Off unless METRICS_TOKEN is set; then only with that token."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response(
            "a bearer token is required\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
        )
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

    ctx = journey_context()
    now = health.state(ctx)
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float | None, **labels: str) -> None:
        metric = Gauge(name, doc, list(labels), registry=registry)
        (metric.labels(**labels) if labels else metric).set(value if value is not None else -1)

    gauge("journey_automations_due", "Automations due now, not yet run (up to 1,000).", now.due)
    gauge(
        "journey_automations_overdue",
        "Automations due longer than the re-dispatch delay, not yet run (up to 1,000).",
        now.overdue,
    )
    gauge(
        "journey_oldest_overdue_seconds",
        "How late the most overdue automation is.",
        now.oldest_overdue_age,
    )
    gauge("journey_automations_running", "Automations being run now.", now.running)
    gauge("journey_sweep_age_seconds", "Since the sweep last ran (-1: never).", now.sweep_age)
    gauge("journey_sweep_duration_seconds", "How long the last sweep took.", now.sweep_seconds)
    workers = Gauge("journey_workers", "Worker processes, by state.", ["state"], registry=registry)
    for state in ("RUNNING", "STOPPING", "STOPPED", "DEAD"):
        workers.labels(state=state).set(now.workers.get(state, 0))
    try:
        waiting = ctx.engine.dispatcher.waiting()
    except Exception:  # the broker is away: say so rather than fail the scrape
        waiting = -1
    gauge("journey_queue_ready", "Messages due and waiting for a worker (-1: unknown).", waiting)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
