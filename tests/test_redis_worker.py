"""The production shape: automations travel through Redis to a `dramatiq web.worker` process
(and the periodic sweep's actor) against the same database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import unavailable

# With parallel test workers, the tests that start processes or share Redis's database 15 run
# on one worker, one after another (timing and a shared database stay theirs alone).
pytestmark = pytest.mark.xdist_group("processes")

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WAITING = (
    "from web import create_app; app = create_app(); "
    "print(app.extensions['journey'].dispatcher.waiting())"
)


@pytest.fixture
def redis_url():
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", str(exc))
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


def journey(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_due_automations_run_in_a_dramatiq_worker_over_redis(tmp_path, redis_url):
    env = {k: v for k, v in os.environ.items() if k != "MAIL_SERVER"}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}",
        "REDIS_URL": redis_url,
        "TZ": "UTC",
    }
    journey(env, "db", "upgrade")
    journey(env, "admins", "create", "coach@example.com")
    # Started long ago: its eight generations are due now, and go to Redis at enrollment.
    journey(env, "clients", "add", "Ava Stone", "ava@example.com", "--start-date", "2020-01-01")
    # No worker yet: the sweep sees eight messages waiting in the queue (so it holds back).
    waiting = subprocess.run(
        [sys.executable, "-c", WAITING], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert waiting.stdout.strip() == "8", waiting.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "web.worker", "--processes", "1", "--threads", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        out = ""
        while time.monotonic() < deadline:
            out = journey(env, "timeline", "1").stdout
            if out.count("pending review") == 8:
                break
            time.sleep(0.5)
        assert out.count("pending review") == 8, out
        listed = journey(
            env, "automations", "list", "--status", "COMPLETED", "--limit", "100"
        ).stdout
        assert listed.count("GENERATE_DELIVERABLE") == 8
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
