"""`journey serve` on the embedded default: one process serves the pages and runs the worker
and the sweep (what `make run` starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_runs_the_worker_in_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MAIL_SERVER")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    env["SWEEP_INTERVAL_SECONDS"] = "1"
    journey = [sys.executable, "-m", "web.cli"]
    subprocess.run([*journey, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(
        [*journey, "admins", "add", "coach@example.com"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*journey, "clients", "add", "Ava Stone", "ava@example.com", "--start-date", "2020-01-01"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [*journey, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, body = get(f"{base}/healthz")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert get(f"{base}/")[0] == 200
        # Enrolled in the past: its 8 generations are due; the embedded worker runs them.
        while time.monotonic() < deadline:
            status, body = get(f"{base}/clients/1")
            if body.count("pending review") == 8:
                break
            time.sleep(0.5)
        assert body.count("pending review") == 8, body
        assert get(f"{base}/clients/999")[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
