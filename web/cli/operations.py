"""Running the engine: the sweep, the one-process server, the demo, and the simulator."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from scheduler.models import Client
from web import journey_context
from web.extensions import db


@click.command("sweep")
@click.option("--every", type=click.FloatRange(min=0.1), help="Keep sweeping, every N seconds.")
@with_appcontext
def sweep_cmd(every: float | None) -> None:
    """Run the sweep now: hand due automations to the workers, take back dead workers' ones.
    (Production runs it every minute from periodiq; --every is a stand-in where periodiq is not.)"""
    import time

    from scheduler.sweep import sweep

    while True:
        try:
            report = sweep(journey_context())
            click.echo(
                f"{report.at:%Y-%m-%d %H:%M:%S} UTC  dispatched {report.dispatched}, "
                f"reclaimed {report.reclaimed}, overdue {report.overdue}"
            )
        except Exception as exc:
            if every is None:
                raise
            # Keep going: the database or broker may be back by the next round.
            click.echo(f"sweep failed ({type(exc).__name__}: {exc}); retrying", err=True)
        if every is None:
            return
        db.session.remove()
        time.sleep(every)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default: PORT, else 5000.")
@with_appcontext
def serve_cmd(host: str, port: int | None) -> None:
    """Serve the app with an embedded worker and sweep (the no-Redis, one-process mode)."""
    import logging

    from flask import current_app
    from werkzeug.serving import run_simple

    from tasks import runtime
    from tasks.embedded import Embedded
    from web import units_of_work

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["PORT"]
    if not os.environ.get("BASE_URL"):  # links in emails follow the port served
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # nosec B104 # a comparison, no binding
        app.extensions["journey"].base_url = f"http://{shown}:{port}"
    # What the engine does (each email kept rather than sent, among others) shows here.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    embedded = None
    if not app.config["REDIS_URL"]:
        app.extensions["journey"].dispatches = True  # this process has the worker
        runtime.bind(units_of_work(app))
        embedded = Embedded(float(app.config["SWEEP_INTERVAL_SECONDS"]))
        embedded.start()
    else:
        click.echo("REDIS_URL is set: run `dramatiq web.worker` and `periodiq web.periodic` too")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if embedded is not None:
            embedded.stop()


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Only when there is no client yet.")
@click.option(
    "--allow-known-password",
    is_flag=True,
    help="Outside the embedded default, load it anyway: its admin's password is published.",
)
@with_appcontext
def demo_cmd(if_empty: bool, allow_known_password: bool) -> None:
    """Load a few demo clients at different points of their journey (the embedded default
    only: the demo's admin has a password anyone can read in the README)."""
    from flask import current_app

    from web.config import embedded
    from web.demo import DEMO_LOGIN, DEMO_PASSWORD, load_demo

    if not embedded(current_app.config) and not allow_known_password:
        click.echo(
            f"error: the demo's admin logs in with a published password ({DEMO_LOGIN} / "
            f"{DEMO_PASSWORD}), and this is not the embedded default (REDIS_URL is set or the "
            "database is not SQLite): nothing loaded. To load it anyway, add "
            "--allow-known-password, then change that password at once with "
            f"`journey admins password {DEMO_LOGIN}`.",
            err=True,
        )
        sys.exit(2)

    if if_empty and db.session.scalar(select(func.count()).select_from(Client)):
        click.echo("demo: clients already exist, nothing loaded")
        return
    names = load_demo(journey_context())
    click.echo(f"demo: enrolled {', '.join(names)}")
    click.echo(f"demo: log in to the panel as {DEMO_LOGIN} with password {DEMO_PASSWORD}")


@click.command("simulate")
@click.argument("scenario", type=click.Path(dir_okay=False, allow_dash=True))
def simulate_cmd(scenario: str) -> None:
    """Run a scenario through the real engine on simulated time; print JSON lines."""
    import logging

    from scheduler.simulate import ScenarioError, load_scenario, simulate

    logging.getLogger("scheduler").setLevel(logging.ERROR)  # outcomes are in the output
    try:
        text = sys.stdin.read() if scenario == "-" else Path(scenario).read_text(encoding="utf-8")
        parsed = load_scenario(text)
    except OSError as exc:
        click.echo(f"error: cannot read {scenario}: {exc.strerror}", err=True)
        sys.exit(2)
    except ScenarioError as exc:
        click.echo(f"error: {scenario}: {exc}", err=True)
        sys.exit(2)
    for line in simulate(parsed, lambda message: click.echo(f"warning: {message}", err=True)):
        click.echo(json.dumps(line, ensure_ascii=False))


COMMANDS = [sweep_cmd, serve_cmd, demo_cmd, simulate_cmd]
