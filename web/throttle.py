"""Throttling with Flask-Limiter: its storage is Redis when REDIS_URL is set (shared by every
web process), memory otherwise (the embedded default's one process).

Two kinds of limit:
- failed attempts, counted per key and checked before each attempt: wrong passwords per account
  and per client address, bad API tokens per address (`Failures`);
- every request of the portal's token routes per address (a Flask-Limiter blueprint limit, in
  `web.portal`).

Over a limit the answer is 429 with Retry-After, and a page (JSON under /api) saying how long
to wait.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)


def client_address() -> str:
    """The client's address (behind TRUSTED_PROXIES proxies, the one they forwarded)."""
    return request.remote_addr or "unknown"


limiter = Limiter(key_func=client_address)


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """Flask-Limiter's settings for this app: Redis when REDIS_URL is set, else memory; limits
    that slide (a moving window: no double burst at a window's edge)."""
    return {
        "RATELIMIT_STORAGE_URI": config.get("RATELIMIT_STORAGE_URI")
        or config.get("REDIS_URL")
        or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": {
            "wrap_exceptions": True,  # a Redis failure is a StorageError, whatever its kind
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        },
        "RATELIMIT_KEY_PREFIX": config.get("RATELIMIT_KEY_PREFIX") or "journey-throttle",
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis unreachable: count in this process's memory rather than fail the request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
    }


def init_app(app: Flask) -> None:
    app.config.update(settings(app.config))
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    limiter.init_app(app)


# Where counts go while the shared storage is unreachable (this process only).
_fallback = MovingWindowRateLimiter(MemoryStorage())


@dataclass(frozen=True)
class Failures:
    """A limit on failed attempts, per key: `retry_after` before an attempt (None: go ahead),
    `failed` after one that failed. Successes cost nothing."""

    scope: str  # names the counter: "login-account"
    setting: str  # the app setting holding the limit: "10 per 15 minutes"

    def _run(self, act: Any) -> Any:
        try:
            return act(limiter.limiter)
        except StorageError as exc:
            log.warning("throttle storage unreachable (%s): counting in memory", exc)
            return act(_fallback)

    def _key(self, key: str) -> tuple[str, str, str]:
        return (current_app.config["RATELIMIT_KEY_PREFIX"], self.scope, key)

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None if it may now."""
        item = parse(current_app.config[self.setting])

        def check(strategy: RateLimiter) -> int | None:
            if strategy.test(item, *self._key(key)):
                return None
            reset = strategy.get_window_stats(item, *self._key(key)).reset_time
            return max(1, math.ceil(reset - time.time()))

        return self._run(check)

    def failed(self, key: str) -> None:
        item = parse(current_app.config[self.setting])
        self._run(lambda strategy: strategy.hit(item, *self._key(key)))


LOGIN_ACCOUNT = Failures("login-account", "LOGIN_LIMIT_PER_ACCOUNT")
LOGIN_ADDRESS = Failures("login-address", "LOGIN_LIMIT_PER_ADDRESS")
API_TOKEN = Failures("api-token", "API_TOKEN_LIMIT")


def wait_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{minutes} minutes"
