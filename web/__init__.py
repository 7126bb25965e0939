"""The Flask application factory."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
from flask import Flask, current_app, g, has_request_context

from scheduler import database
from scheduler.clock import Clock, SystemClock
from scheduler.engine import Context, Dispatcher, Engine, Generator, Mailer
from scheduler.program import ProgramError, load_program
from scheduler.providers import ChatSettings, make_generator
from web import assets, logs
from web.config import ConfigError, from_env, signing_keys
from web.extensions import csrf, db, htmx, mail, migrate

log = logging.getLogger(__name__)
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
    # Before anything else starts (the broker, the workers): no deployment runs on a known key.
    signing_keys(app.config, app.instance_path)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    else:  # a server database: connections that died (restart, failover) are replaced
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {}).setdefault("pool_pre_ping", True)

    logs.configure(app)
    database.tune_sqlite()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    mail.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from tasks import broker

    broker.setup(app.config["REDIS_URL"], patient=app.config.get("BROKER_PATIENT", False))
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
        horizon=timedelta(seconds=app.config["DISPATCH_HORIZON_SECONDS"]),
        lease=timedelta(seconds=app.config["AUTOMATION_LEASE_SECONDS"]),
        beat_every=timedelta(seconds=app.config["WORKER_BEAT_SECONDS"]),
        worker_id=broker.identity() or uuid.uuid4().hex,
        redispatch_after=timedelta(seconds=app.config["REDISPATCH_AFTER_SECONDS"]),
        secret_key=app.config["SECRET_KEY"],
        secret_key_fallbacks=tuple(app.config["SECRET_KEY_FALLBACKS"]),
        portal_link_max_age=timedelta(days=app.config["PORTAL_LINK_DAYS"]),
        frequency_cap=app.config["EMAIL_FREQUENCY_CAP"],
        alert_webhook_url=app.config["ALERT_WEBHOOK_URL"],
        action_email_grace=timedelta(seconds=app.config["ACTION_EMAIL_GRACE_SECONDS"]),
        dispatches=dispatches,
    )

    from web import api, auth, editor, main, panel, portal, records, security, throttle

    security.init_app(app)
    throttle.init_app(app)
    auth.init_app(app)
    app.register_blueprint(main.bp)
    app.register_blueprint(panel.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(portal.bp)
    # The portal's signed link is its credential (a forger would need the secret it carries),
    # and one-click unsubscribe comes from mail clients with no form token (RFC 8058).
    csrf.exempt(portal.bp)
    records.init_app(app)
    app.jinja_env.globals["assets"] = assets.links(app.static_folder or "")
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


def worker_app(config: dict[str, Any] | None = None) -> Flask:
    """The app of a worker process (`web.worker`, `web.periodic`): built by the factory, its
    units of work bound for the actors, and the actors declared on its broker."""
    try:
        app = create_app(config)
    except (ConfigError, ProgramError) as exc:  # a setting it cannot run with: say which
        raise SystemExit(f"error: {exc}") from None
    from tasks import metrics, runtime

    if app.config["WORKER_METRICS_PORT"]:
        metrics.install(dramatiq.get_broker(), app.config["WORKER_METRICS_PORT"])
        app.extensions["journey"].observer = metrics.PrometheusObserver()
    runtime.bind(units_of_work(app))
    from tasks import actors  # noqa: F401  (declares the actors on the broker just installed)

    check_eviction(app)
    return app


def check_eviction(app: Flask) -> None:
    """A Redis that may evict keys can drop delayed messages silently (the workers notice an
    eviction and send everything again, late): say so at start, or refuse to start when
    REDIS_EVICTION=refuse."""
    from tasks import broker

    try:
        policy = broker.eviction_policy()
    except Exception as exc:  # Redis is away: the watch will say so
        log.warning("could not read Redis's maxmemory-policy: %s", exc)
        return
    if policy in (None, "noeviction"):
        return
    message = (
        f"Redis's maxmemory-policy is {policy}: under memory pressure it may drop messages "
        "(the workers send them again, late). Set maxmemory-policy noeviction."
    )
    if app.config["REDIS_EVICTION"] == "refuse":
        raise SystemExit(f"error: {message} (REDIS_EVICTION=refuse)")
    log.warning(message)


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
    """The unit of work for the current request or command (one per app context), with the
    person acting through it."""
    if "journey" not in g:
        g.journey = current_app.extensions["journey"].context(db.session)
        g.journey.actor = acting_person()
    return g.journey


ACTOR_KEY = "journey.actor"


def acting_person() -> str:
    """Who acts: the API token's owner, the admin logged in to the panel, or a command's
    person (`journey --as EMAIL`, else the OS user); nobody for workers and the sweep."""
    import click
    from flask_login import current_user

    if has_request_context():
        token = g.get("api_token")
        if token is not None:
            return str(token.admin.email)
        return str(current_user.email) if getattr(current_user, "is_authenticated", False) else ""
    command = click.get_current_context(silent=True)
    return str(command.find_root().meta.get(ACTOR_KEY, "")) if command else ""
