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

import pytest

from tests.panel_helpers import PASSWORD, token

# With parallel test workers, the tests that start processes or share Redis's database 15 run
# on one worker, one after another (timing and a shared database stay theirs alone).
pytestmark = pytest.mark.xdist_group("processes")

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
    """What `make run` promises: PORT is honoured and links follow it, each email is logged
    rather than sent, and a command run beside the server takes effect within seconds (the
    server's sweep runs every minute; it notices what the command left undispatched)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MAIL_SERVER", "BASE_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    env["SWEEP_INTERVAL_SECONDS"] = "60"
    env["ACTION_EMAIL_GRACE_SECONDS"] = "0"
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
    env["PORT"] = str(port)
    output = tmp_path / "serve.log"
    server = subprocess.Popen(
        [*journey, "serve"],
        env=env,
        cwd=ROOT,
        stdout=output.open("w"),
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
        # Approving from the command line: the server sends it within seconds, not at its
        # next sweep a minute later; the email is logged, with its portal link on this port.
        subprocess.run([*journey, "approve", "ava@example.com", "1"], env=env, cwd=ROOT, check=True)
        approved = time.monotonic()
        wanted = "email kept, not sent (no MAIL_SERVER): to ava@example.com, DELIVERABLE_READY"
        while time.monotonic() - approved < 20 and wanted not in output.read_text():
            time.sleep(0.2)
        took = time.monotonic() - approved
        logged = [line for line in output.read_text().splitlines() if wanted in line]
        assert logged, output.read_text()
        print(f"approve from the command line to email logged: {took:.1f} s")
        assert took < 10, took
        assert f"http://127.0.0.1:{port}/portal/" in logged[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
