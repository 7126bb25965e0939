"""`journey serve` on the embedded default: one process serves the pages and runs the worker
and the sweep (what `make run` starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from tests.panel_helpers import PASSWORD, token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A browser's cookie jar: the admin panel needs a logged-in session.
BROWSER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def get(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with BROWSER.open(url, data=body, timeout=5) as response:
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
        [*journey, "admins", "create", "coach@example.com", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
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
        status, page = get(f"{base}/")  # to the login page first
        assert status == 200 and "Log in" in page
        status, page = get(
            f"{base}/login",
            {"email": "coach@example.com", "password": PASSWORD, "csrf_token": token(page)},
        )
        assert status == 200 and "Log out" in page
        # Enrolled in the past: its 8 generations are due; the embedded worker runs them.
        while time.monotonic() < deadline:
            status, body = get(f"{base}/clients/1")
            if body.count(">pending review</span>") == 8:
                break
            time.sleep(0.5)
        assert body.count(">pending review</span>") == 8, body
        assert get(f"{base}/clients/999")[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
