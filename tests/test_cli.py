"""The `journey` command: each operator command works, and bad input gets a message and a
non-zero exit, never a traceback."""

from __future__ import annotations

import json
from datetime import date

import pytest

from web.cli import cli
from web.config import embedded


@pytest.fixture
def run(harness):
    runner = harness.app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        result = runner.invoke(cli, list(args), input=input)
        assert "Traceback" not in (result.output or "")
        return result

    return invoke


def test_enroll_show_and_control_a_journey(run, harness):
    out = run(
        "clients",
        "add",
        "Sarah Johnson",
        "sarah@example.com",
        "--start-date",
        "2026-01-10",
        "--timezone",
        "America/New_York",
    )
    assert out.exit_code == 0, out.output
    assert "32 automations scheduled" in out.output
    out = run("timeline", "sarah@example.com")
    assert out.exit_code == 0 and "M1  Sat Jan 10 2026" in out.output
    out = run("timeline", "1", "--json")
    data = json.loads(out.output)
    assert [m["date"] for m in data["months"]][:2] == ["2026-01-10", "2026-02-09"]
    assert run("pause", "1", "--until", "2026-01-20", "--reason", "trip").exit_code == 0
    out = run("pause", "1")
    assert out.exit_code == 1 and "already on hold" in out.output
    assert run("resume", "1").exit_code == 0
    assert run("adjust", "1", "--start-date", "2026-01-12").exit_code == 0
    assert run("skip", "1", "8").exit_code == 0
    out = run("generate", "1", "2")
    assert out.exit_code == 0 and "queued" in out.output
    out = run("automations", "list", "--client", "1", "--status", "CANCELLED", "--json")
    cancelled = [json.loads(line) for line in out.output.splitlines()]
    assert {c["month"] for c in cancelled} >= {8}
    first = cancelled[0]["id"]
    out = run("automations", "cancel", str(first))
    assert out.exit_code == 1 and "only a scheduled one" in out.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["clients", "add", "X", "x@example.com", "--start-date", "2026-02-30"], "2026-02-30"),
        (
            [
                "clients",
                "add",
                "X",
                "x@example.com",
                "--start-date",
                "2026-02-01",
                "--timezone",
                "Moon/Base",
            ],
            "unknown time zone",
        ),
        (
            ["clients", "add", "X", "not-an-email", "--start-date", "2026-02-01"],
            "not an email address",
        ),
        (["timeline", "nobody@example.com"], "no client"),
        (["approve", "1", "1"], "no client"),
        (["automations", "trigger", "999"], "no automation 999"),
    ],
)
def test_bad_input_gets_a_clear_message(run, args, words):
    out = run(*args)
    assert out.exit_code != 0
    assert words in out.output


def test_admins_and_demo(run, harness):
    assert "created" in run("admins", "create", "lead@example.com", "--name", "Lead").output
    assert "already exists" in run("admins", "create", "lead@example.com").output
    # `make run` (SQLite, no Redis) loads it as it is; PostgreSQL is a deployment: say so.
    deployment = [] if embedded(harness.app.config) else ["--allow-known-password"]
    out = run("demo", "--if-empty", *deployment)
    assert out.exit_code == 0 and "Diego Santos" in out.output
    assert "already exist" in run("demo", "--if-empty", *deployment).output
    out = run("clients", "list", "--json")
    statuses = {
        json.loads(line)["name"]: json.loads(line)["status"] for line in out.output.splitlines()
    }
    assert statuses["Chloé Dubois"] == "on_hold"
    assert statuses["Diego Santos"] == "completed"
    assert harness.clock.now().date() == date(2026, 1, 1)


def test_the_demo_and_its_known_password_stay_out_of_a_deployment(run, harness):
    harness.app.config["REDIS_URL"] = "redis://127.0.0.1:6379/15"  # as the Procfile runs
    out = run("demo")
    assert out.exit_code == 2
    assert out.output.startswith("error: the demo's admin logs in with a published password")
    assert "--allow-known-password" in out.output and "nothing loaded" in out.output
    assert run("clients", "list").output == ""
    assert run("demo", "--allow-known-password").exit_code == 0
    assert "Diego Santos" in run("clients", "list").output


def test_emails_preview_writes_html_and_text(run, harness, tmp_path):
    harness.enroll(date(2026, 1, 10), "Europe/Paris")
    out = run("emails", "preview", "month_complete", "--out", str(tmp_path))
    assert out.exit_code == 0, out.output
    assert "Subject: 🎉 Congratulations! You completed Month 1!" in out.output
    html = (tmp_path / "MONTH_COMPLETE.html").read_text()
    text = (tmp_path / "MONTH_COMPLETE.txt").read_text()
    assert "Sarah" in html and text.startswith("Subject: ")
    assert "Monday 9 February 2026" in text  # the next month, day first as in Paris
    out = run("emails", "preview", "WEEKLY_DIGEST", "--out", str(tmp_path))
    assert out.exit_code == 0 and "Weekly digest" in out.output
    bad = run("emails", "preview", "NOPE", "--out", str(tmp_path))
    assert bad.exit_code == 2 and "unknown template" in bad.output
    missing = run("emails", "preview", "HALFWAY", "--client", "nobody@example.com")
    assert missing.exit_code == 1 and "nobody@example.com" in missing.output


def test_admins_create_with_a_password_and_change_it(run, harness):
    short = run("admins", "create", "lead@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 10" in short.output
    made = run(
        "admins", "create", "lead@example.com", "--password-stdin", input="a long passphrase\n"
    )
    assert made.exit_code == 0 and "can log in" in made.output
    from werkzeug.security import check_password_hash

    from scheduler.models import Admin
    from web.extensions import db

    admin = db.session.query(Admin).filter_by(email="lead@example.com").one()
    assert check_password_hash(admin.password_hash, "a long passphrase")
    changed = run(
        "admins", "password", "lead@example.com", "--password-stdin", input="another passphrase\n"
    )
    assert changed.exit_code == 0
    db.session.refresh(admin)
    assert check_password_hash(admin.password_hash, "another passphrase")
    assert (
        run(
            "admins",
            "password",
            "who@example.com",
            "--password-stdin",
            input="another passphrase\n",
        ).exit_code
        == 1
    )


@pytest.mark.parametrize("start", ["9999-12-31", "0001-01-01"])
def test_dates_outside_the_calendar_are_refused_not_a_traceback(run, harness, start):
    out = run("clients", "add", "X", "x@example.com", "--start-date", start)
    assert out.exit_code == 2 and "outside the years 1900-2999" in out.output
    harness.enroll(date(2026, 1, 10))
    out = run("adjust", "sarah@example.com", "--start-date", start)
    assert out.exit_code == 2 and "outside the years" in out.output
    out = run("pause", "sarah@example.com", "--until", "9999-12-31")
    assert out.exit_code == 2 and "outside the years" in out.output
