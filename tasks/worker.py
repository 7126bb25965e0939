"""Entry module for `dramatiq tasks.worker` and `periodiq tasks.worker`: builds the app (which
installs the broker from REDIS_URL) and declares the actors."""

from tasks import runtime

runtime.app()

from tasks import actors  # noqa: E402  (the broker must exist first)

__all__ = ["actors"]
