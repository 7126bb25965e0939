"""Entry module for `dramatiq tasks.worker` and `periodiq tasks.worker`: builds the app (which
installs the broker from REDIS_URL) and declares the actors."""

from scheduler.program import ProgramError
from tasks import runtime
from web.config import ConfigError

try:
    runtime.app()
except (ConfigError, ProgramError) as exc:  # a setting it cannot run with: say which, no traceback
    raise SystemExit(f"error: {exc}") from None

from tasks import actors  # after runtime.app(): the broker must exist first

__all__ = ["actors"]
