"""Configuration from the environment (a `.env` file in the working directory is read first).
Every setting is documented in docs/configuration.md."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from limits import parse_many


class ConfigError(ValueError):
    """A setting has a value the engine cannot use; the message names it."""


def database_url(value: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: a SQLite file in the instance folder by default; PaaS-style
    `postgres://` URLs use the psycopg driver."""
    if not value:
        return f"sqlite:///{Path(instance_path) / 'journey.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: must be between {low} and {high}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: must be true or false")


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r}: must be one of {', '.join(choices)}")
    return raw


def _url(name: str, default: str | None) -> str | None:
    """An http(s) URL, without its trailing slash: the engine opens these, and `file:` or any
    other scheme would read what it should not."""
    raw = (os.environ.get(name) or "").strip() or default
    if raw is None:
        return None
    if not raw.lower().startswith(("https://", "http://")):
        raise ConfigError(f"{name}={raw!r}: must be an http:// or https:// URL")
    return raw.rstrip("/")


def _limit(name: str, default: str) -> str:
    raw = (os.environ.get(name) or "").strip() or default
    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r}: a rate such as '10 per 15 minutes' or '20/minute'"
        ) from None
    return raw


def from_env(instance_path: str) -> dict[str, Any]:
    load_dotenv(override=False)
    mail_server = os.environ.get("MAIL_SERVER") or None
    port = _int("PORT", 5000, 1, 65535)
    return {
        "PORT": port,
        # Unset: `signing_keys` decides (a per-install key on the embedded default, else refuse).
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        # Old keys, still accepted for sessions and links until removed (rotation).
        "SECRET_KEY_FALLBACKS": (os.environ.get("SECRET_KEY_FALLBACKS") or "").split(),
        # Admin sessions: a login ends after SESSION_HOURS whatever happens, or after
        # SESSION_IDLE_MINUTES without a request; cookies are HTTP-only and same-site.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_int("SESSION_HOURS", 12, 1, 24 * 30)),
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
        # Throttling (in Redis when REDIS_URL is set): failed logins per account and per client
        # address, failed API tokens per address, every portal request per address.
        "LOGIN_LIMIT_PER_ACCOUNT": _limit("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_ADDRESS": _limit("LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes"),
        "API_TOKEN_LIMIT": _limit("API_TOKEN_LIMIT", "20 per minute"),
        "PORTAL_LIMIT": _limit("PORTAL_LIMIT", "120 per minute"),
        # Proxies in front of the app that append to X-Forwarded-For (a PaaS router: 1); the
        # client's address is read that many hops back. 0: the connection's own address.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0, 0, 5),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (os.environ.get("BASE_URL") or "").startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL"), instance_path),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SEND_HOUR": _int("SEND_HOUR", 9, 0, 23),
        "PROGRAM_FILE": os.environ.get("PROGRAM_FILE") or None,
        # Links in emails; unset, they follow the port `journey serve` listens on.
        "BASE_URL": _url("BASE_URL", f"http://127.0.0.1:{port}"),
        "DISPATCH_HORIZON_SECONDS": _int("DISPATCH_HORIZON_SECONDS", 30, 10, 24 * 3600),
        "SWEEP_INTERVAL_SECONDS": _int("SWEEP_INTERVAL_SECONDS", 60, 1, 3600),
        # A worker beats every WORKER_BEAT_SECONDS, renewing its leases; a lease it stops
        # renewing runs out after AUTOMATION_LEASE_SECONDS, and what it held is taken back.
        "WORKER_BEAT_SECONDS": _int("WORKER_BEAT_SECONDS", 5, 1, 600),
        "AUTOMATION_LEASE_SECONDS": _int("AUTOMATION_LEASE_SECONDS", 20, 2, 24 * 3600),
        "REDISPATCH_AFTER_SECONDS": _int("REDISPATCH_AFTER_SECONDS", 60, 1, 24 * 3600),
        "PORTAL_LINK_DAYS": _int("PORTAL_LINK_DAYS", 30, 1, 3650),
        "EMAIL_FREQUENCY_CAP": _int("EMAIL_FREQUENCY_CAP", 2, 1, 100),
        # A client email caused by an admin's action waits this long: an undo within it
        # (pause, then resume) sends nothing.
        "ACTION_EMAIL_GRACE_SECONDS": _int("ACTION_EMAIL_GRACE_SECONDS", 120, 0, 24 * 3600),
        "ALERT_WEBHOOK_URL": _url("ALERT_WEBHOOK_URL", None),
        # Metrics for Prometheus: the workers export theirs on this port (unset: none); the
        # web process serves /metrics to requests bearing METRICS_TOKEN (unset: no /metrics).
        "WORKER_METRICS_PORT": _int("WORKER_METRICS_PORT", 0, 0, 65535) or None,
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        # Logs as one JSON object a line (automation, client and message ids attached).
        "LOG_FORMAT": _choice("LOG_FORMAT", "text", ("text", "json")),
        # A Redis that may evict keys can lose messages: warn at a worker's start, or refuse.
        "REDIS_EVICTION": _choice("REDIS_EVICTION", "warn", ("warn", "refuse")),
        "HEALTH_MAX_LAG_SECONDS": _int("HEALTH_MAX_LAG_SECONDS", 600, 1, 7 * 24 * 3600),
        "MAIL_SERVER": mail_server,
        "MAIL_PORT": _int("MAIL_PORT", 25, 1, 65535),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _flag("MAIL_USE_SSL", False),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER")
        or "Journey Engine <journey@localhost>",
        "MAIL_TIMEOUT_SECONDS": _int("MAIL_TIMEOUT_SECONDS", 30, 1, 600),
        # Without a mail server, emails are kept in the outbox and logged, not sent.
        "MAIL_SUPPRESS_SEND": mail_server is None,
        # Deliverable generation: the built-in writer, or an OpenAI-compatible service.
        "GENERATOR": _choice("GENERATOR", "builtin", ("builtin", "openai")),
        "GENERATOR_BASE_URL": _url("GENERATOR_BASE_URL", "https://api.openai.com/v1"),
        "GENERATOR_MODEL": os.environ.get("GENERATOR_MODEL") or "gpt-4o-mini",
        "GENERATOR_API_KEY": os.environ.get("GENERATOR_API_KEY") or "",
        # Below the generation actors' 240 s time limit, which cannot interrupt a blocked read.
        "GENERATOR_TIMEOUT_SECONDS": _int("GENERATOR_TIMEOUT_SECONDS", 60, 1, 200),
        "GENERATOR_MAX_TOKENS": _int("GENERATOR_MAX_TOKENS", 4000, 100, 100_000),
    }


# -- signing keys ----------------------------------------------------------------------------------

MIN_SECRET_KEY = 32
KEY_FILE = "secret_key"
MAKE_ONE = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


def embedded(config: Mapping[str, Any]) -> bool:
    """The embedded default (`make run`): no Redis and a SQLite database. Anything else (the
    Procfile's processes run with REDIS_URL and PostgreSQL) is a deployment."""
    return not config.get("REDIS_URL") and str(config["SQLALCHEMY_DATABASE_URI"]).startswith(
        "sqlite:"
    )


def signing_keys(config: dict[str, Any], instance_path: str) -> None:
    """Settle SECRET_KEY (sessions, CSRF tokens, portal links) in `config`: the one set, at
    least 32 characters; on the embedded default, when none is set, this install's own key,
    generated once into the instance folder; anywhere else, none set is a refusal to start."""
    key = config.get("SECRET_KEY")
    if key:
        if len(key) < MIN_SECRET_KEY:
            raise ConfigError(
                f"SECRET_KEY is {len(key)} characters long: it needs at least {MIN_SECRET_KEY}. "
                f"Make one with: {MAKE_ONE}"
            )
    elif embedded(config):
        config["SECRET_KEY"] = install_key(Path(instance_path))
    else:
        raise ConfigError(
            "SECRET_KEY is not set: outside the embedded default (REDIS_URL set, or a database "
            "other than SQLite) sessions and portal links need a secret key of your own, at "
            f"least {MIN_SECRET_KEY} characters. Make one with: {MAKE_ONE}"
        )
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str):
        fallbacks = fallbacks.split()
    config["SECRET_KEY_FALLBACKS"] = [k for k in fallbacks if k and k != config["SECRET_KEY"]]


def install_key(folder: Path) -> str:
    """This install's signing key: read from `folder/secret_key`, or generated there on first
    use, readable by its owner only. The file appears whole (written aside, then linked into
    place), so a process starting at the same moment reads the key, never half of it."""
    path = folder / KEY_FILE
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        aside = folder / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the key
        finally:
            aside.unlink()
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_SECRET_KEY:
        raise ConfigError(f"{path} holds no usable key: delete it and a new one is made")
    return key
