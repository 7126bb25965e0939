"""Configuration from the environment (a `.env` file in the working directory is read first).
Every setting is documented in docs/configuration.md."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import load_dotenv


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


def from_env(instance_path: str) -> dict[str, Any]:
    load_dotenv(override=False)
    mail_server = os.environ.get("MAIL_SERVER") or None
    port = _int("PORT", 5000, 1, 65535)
    return {
        "PORT": port,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "dev-only-secret-change-me",
        # Admin sessions: how long a login lasts; cookies are HTTP-only and same-site.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_int("SESSION_HOURS", 12, 1, 24 * 30)),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (os.environ.get("BASE_URL") or "").startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL"), instance_path),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SEND_HOUR": _int("SEND_HOUR", 9, 0, 23),
        "PROGRAM_FILE": os.environ.get("PROGRAM_FILE") or None,
        # Links in emails; unset, they follow the port `journey serve` listens on.
        "BASE_URL": (os.environ.get("BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
        "DISPATCH_HORIZON_MINUTES": _int("DISPATCH_HORIZON_MINUTES", 60, 1, 24 * 60),
        "SWEEP_INTERVAL_SECONDS": _int("SWEEP_INTERVAL_SECONDS", 60, 1, 3600),
        "AUTOMATION_LEASE_SECONDS": _int("AUTOMATION_LEASE_SECONDS", 300, 2, 24 * 3600),
        "REDISPATCH_AFTER_SECONDS": _int("REDISPATCH_AFTER_SECONDS", 120, 1, 24 * 3600),
        "PORTAL_LINK_DAYS": _int("PORTAL_LINK_DAYS", 30, 1, 3650),
        "EMAIL_FREQUENCY_CAP": _int("EMAIL_FREQUENCY_CAP", 2, 1, 100),
        # A client email caused by an admin's action waits this long: an undo within it
        # (pause, then resume) sends nothing.
        "ACTION_EMAIL_GRACE_SECONDS": _int("ACTION_EMAIL_GRACE_SECONDS", 120, 0, 24 * 3600),
        "ALERT_WEBHOOK_URL": os.environ.get("ALERT_WEBHOOK_URL") or None,
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
        "GENERATOR_BASE_URL": (
            os.environ.get("GENERATOR_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/"),
        "GENERATOR_MODEL": os.environ.get("GENERATOR_MODEL") or "gpt-4o-mini",
        "GENERATOR_API_KEY": os.environ.get("GENERATOR_API_KEY") or "",
        # Below the generation actors' 240 s time limit, which cannot interrupt a blocked read.
        "GENERATOR_TIMEOUT_SECONDS": _int("GENERATOR_TIMEOUT_SECONDS", 60, 1, 200),
        "GENERATOR_MAX_TOKENS": _int("GENERATOR_MAX_TOKENS", 4000, 100, 100_000),
    }
