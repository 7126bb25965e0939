"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g

from scheduler import database
from scheduler.clock import Clock, SystemClock
from scheduler.engine import Context, Dispatcher, Engine, Generator, Mailer
from scheduler.program import load_program
from scheduler.providers import ChatSettings, make_generator
from web.config import from_env
from web.extensions import csrf, db, htmx, mail, migrate

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
MIGRATIONS = ROOT / "migrations"


def create_app(
    config: dict[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    dispatcher: Dispatcher | None = None,
    mailer: Mailer | None = None,
    generator: Generator | None = None,
) -> Flask:
    """Build the app. `config` overrides the environment; the keyword arguments swap the
    engine's outside parts (tests and the simulator use them)."""
    app = Flask(__name__, instance_relative_config=True, template_folder=str(TEMPLATES))
    app.config.from_mapping(from_env(app.instance_path))
    app.config.update(config or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    else:  # a server database: connections that died (restart, failover) are replaced
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {}).setdefault("pool_pre_ping", True)

    database.tune_sqlite()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    mail.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from tasks import broker

    broker.setup(app.config["REDIS_URL"])
    clock = clock or SystemClock()
    # Without Redis, only `journey serve` has a worker (it says so when it starts one): any
    # other process leaves its automations undispatched for the serving process's sweep.
    dispatches = dispatcher is not None or bool(app.config["REDIS_URL"])
    if dispatcher is None:
        from tasks.dispatch import DramatiqDispatcher

        dispatcher = DramatiqDispatcher(clock)
    if mailer is None:
        from web.mailer import FlaskMailer

        mailer = FlaskMailer(app)
    app.extensions["journey"] = Engine(
        clock=clock,
        program=load_program(app.config["PROGRAM_FILE"]),
        dispatcher=dispatcher,
        mailer=mailer,
        generator=generator or configured_generator(app.config),
        send_hour=app.config["SEND_HOUR"],
        base_url=app.config["BASE_URL"],
        mail_sender=app.config["MAIL_DEFAULT_SENDER"],
        horizon=timedelta(minutes=app.config["DISPATCH_HORIZON_MINUTES"]),
        lease=timedelta(seconds=app.config["AUTOMATION_LEASE_SECONDS"]),
        redispatch_after=timedelta(seconds=app.config["REDISPATCH_AFTER_SECONDS"]),
        secret_key=app.config["SECRET_KEY"],
        portal_link_max_age=timedelta(days=app.config["PORTAL_LINK_DAYS"]),
        frequency_cap=app.config["EMAIL_FREQUENCY_CAP"],
        alert_webhook_url=app.config["ALERT_WEBHOOK_URL"],
        action_email_grace=timedelta(seconds=app.config["ACTION_EMAIL_GRACE_SECONDS"]),
        dispatches=dispatches,
    )

    from web import api, auth, main, panel, portal, records

    auth.init_app(app)
    app.register_blueprint(main.bp)
    app.register_blueprint(panel.bp)
    app.register_blueprint(portal.bp)
    # The portal's signed link is its credential (a forger would need the secret it carries),
    # and one-click unsubscribe comes from mail clients with no form token (RFC 8058).
    csrf.exempt(portal.bp)
    records.init_app(app)
    app.jinja_env.globals["htmx_script"] = htmx_script(app)
    # Browsers ask every site for /favicon.ico: the icon is a static file, public like them.
    app.add_url_rule(
        "/favicon.ico",
        endpoint="static",
        view_func=app.view_functions["static"],
        defaults={"filename": "favicon.svg"},
    )
    # Last: the API exempts itself from the CSRF protection set up above.
    api.init_app(app)
    return app


# htmx 2, installed by `make` from package.json into static/vendor; where npm is missing, the
# same file from a CDN, pinned by its integrity hash.
HTMX_VERSION = "2.0.8"
HTMX_INTEGRITY = "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz"


def htmx_script(app: Flask) -> dict[str, str]:
    local = Path(app.static_folder or "") / "vendor" / "htmx.min.js"
    if local.exists():
        return {"src": "/static/vendor/htmx.min.js", "integrity": HTMX_INTEGRITY}
    return {
        "src": f"https://unpkg.com/htmx.org@{HTMX_VERSION}/dist/htmx.min.js",
        "integrity": HTMX_INTEGRITY,
    }


def configured_generator(config: dict[str, Any]) -> Generator:
    """The deliverable generator GENERATOR names, with its settings."""
    settings = ChatSettings(
        base_url=config["GENERATOR_BASE_URL"],
        model=config["GENERATOR_MODEL"],
        api_key=config["GENERATOR_API_KEY"],
        timeout=float(config["GENERATOR_TIMEOUT_SECONDS"]),
        max_tokens=config["GENERATOR_MAX_TOKENS"],
    )
    return make_generator(config["GENERATOR"], settings)


def units_of_work(app: Flask) -> Callable[[], AbstractContextManager[Context]]:
    """Units of work outside any request (workers, the embedded sweep): each in an app context
    of its own, its session closed afterwards."""

    @contextmanager
    def unit() -> Iterator[Context]:
        with app.app_context():
            try:
                yield journey_context()
            finally:
                db.session.remove()

    return unit


def journey_context() -> Context:
    """The unit of work for the current request or command (one per app context)."""
    if "journey" not in g:
        g.journey = current_app.extensions["journey"].context(db.session)
    return g.journey
