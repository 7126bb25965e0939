"""The signing key: no deployment starts on a known one, the embedded default makes its own, and
keys rotate without logging anyone out or breaking the links already sent."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.panel_helpers import browser, log_in, set_password
from web import create_app
from web.config import ConfigError, install_key, signing_keys

ROOT = Path(__file__).resolve().parent.parent
OLD_CONSTANT = "dev-only-secret-change-me"  # what the source used to sign with


def without_key() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "MAIL_"))}
    env["TZ"] = "UTC"
    return env


def test_a_deployment_without_a_key_refuses_to_start(monkeypatch):
    monkeypatch.delenv("SECRET_KEY")
    for config in (
        {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db.invalid/journey", "REDIS_URL": None},
        {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db.invalid/journey", "SECRET_KEY": ""},
    ):
        with pytest.raises(ConfigError) as refused:
            create_app(config)
        message = str(refused.value)
        assert "SECRET_KEY is not set" in message and "secrets.token_urlsafe" in message


def test_a_short_key_is_refused_with_how_to_make_one():
    with pytest.raises(ConfigError, match=r"SECRET_KEY is 9 characters long.*at least 32"):
        create_app({"SECRET_KEY": "too-short", "REDIS_URL": None})


def test_redis_alone_makes_it_a_deployment(tmp_path):
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "REDIS_URL": "redis://r"}
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        signing_keys(config, str(tmp_path))


def test_the_embedded_default_generates_a_key_of_its_own(tmp_path, monkeypatch):
    first = install_key(tmp_path / "one")
    assert install_key(tmp_path / "one") == first  # kept: sessions survive a restart
    assert install_key(tmp_path / "two") != first  # every install its own
    assert len(first) >= 32 and first != OLD_CONSTANT
    assert stat.S_IMODE((tmp_path / "one" / "secret_key").stat().st_mode) == 0o600
    monkeypatch.delenv("SECRET_KEY")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/e.db", "REDIS_URL": None})
    key = (Path(app.instance_path) / "secret_key").read_text().strip()
    assert app.config["SECRET_KEY"] == key != OLD_CONSTANT
    assert app.extensions["journey"].secret_key == key


def test_a_worker_the_web_process_and_the_cli_refuse_without_a_key(tmp_path):
    env = without_key()
    env |= {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "REDIS_URL": ""}
    cli = subprocess.run(
        [sys.executable, "-m", "web.cli", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.startswith("error: SECRET_KEY is not set")
    assert "Traceback" not in cli.stderr

    env |= {"REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    bin_dir = Path(sys.executable).parent
    for process in (
        [bin_dir / "dramatiq", "web.worker", "--processes", "1", "--threads", "1"],
        [bin_dir / "periodiq", "web.periodic"],
    ):
        worker = subprocess.run(
            process, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert worker.returncode != 0
        assert "error: SECRET_KEY is not set" in worker.stderr, worker.stderr
        assert "Traceback" not in worker.stderr

    web = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "web:create_app()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert web.returncode != 0
    assert "SECRET_KEY is not set" in web.stderr + web.stdout


def test_rotation_keeps_old_sessions_and_links_until_the_old_key_goes(harness):
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    cookie = web.get_cookie("session").value
    client = harness.enroll(harness.clock.now().date())
    link = harness.app.extensions["journey"].links.portal(client.id)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    old = harness.app.config["SECRET_KEY"]
    new = "a-brand-new-signing-key-0123456789abcdef"

    def app_with(fallbacks: list[str]):
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": harness.app.config["SQLALCHEMY_DATABASE_URI"],
                "REDIS_URL": None,
                "SECRET_KEY": new,
                "SECRET_KEY_FALLBACKS": fallbacks,
            },
            clock=harness.clock,
            dispatcher=harness.transport,
        )
        visitor = browser(app)
        visitor.set_cookie("session", cookie)
        return app, visitor

    rotated, visitor = app_with([old])
    assert visitor.get("/").status_code == 200  # still logged in
    assert visitor.get(path).status_code == 200  # the link in last week's email still opens
    fresh = rotated.extensions["journey"].links.portal(client.id)
    assert fresh != link  # new links are signed with the new key
    _, visitor = app_with([])
    assert visitor.get("/").status_code == 302  # the old key is gone: so are its sessions
    assert visitor.get(path).status_code == 403  # and its links
