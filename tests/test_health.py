"""GET /healthz: database, broker and sweep liveness, backlog; 503 when any is unhealthy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from scheduler.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent


def test_healthy_after_a_sweep_then_not_when_the_sweep_stops(harness):
    web = harness.app.test_client()
    response = web.get("/healthz")
    assert response.status_code == 503
    assert response.json["sweep"] == {"ok": False, "last_run": None, "seconds_ago": None}
    sweep(harness.ctx)
    response = web.get("/healthz")
    assert response.status_code == 200, response.json
    assert response.json["database"]["ok"] and response.json["broker"]["kind"] == "in-process"
    assert response.json["backlog"] == {"ok": True, "overdue": 0, "oldest_seconds": 0}
    harness.clock.advance(timedelta(minutes=4))
    response = web.get("/healthz")
    assert response.status_code == 503 and response.json["sweep"]["seconds_ago"] == 240


def test_a_growing_backlog_is_unhealthy(harness):
    harness.app.extensions["journey"].horizon = timedelta(hours=1)
    harness.enroll(date(2026, 1, 1))  # M1's generation is due at 9:00 on Jan 1
    harness.transport.queue.clear()  # ...and nobody runs it
    harness.clock.advance(timedelta(hours=9, minutes=20))
    sweep(harness.ctx)
    harness.transport.queue.clear()
    response = harness.app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["backlog"]["overdue"] == 1
    assert response.json["backlog"]["oldest_seconds"] == 20 * 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_database_and_broker_give_503_not_500(tmp_path):
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
                raise AssertionError("healthz answered 200 with nothing reachable")
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                body = json.loads(exc.read())
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        assert body["database"]["ok"] is False and body["broker"]["ok"] is False
        assert body["status"] == "unhealthy"
    finally:
        server.terminate()
        server.wait(timeout=10)
