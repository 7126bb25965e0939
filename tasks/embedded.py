"""Embedded mode (no REDIS_URL): a Dramatiq worker on the in-process broker and a timer thread
running the sweep, inside the web process, so that one command runs everything."""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq import Worker

from tasks import runtime

log = logging.getLogger(__name__)

NOTICE = 1.0  # seconds between looks for automations another process left undispatched


def undispatched(ctx: Any) -> bool:
    """Is an automation due within the horizon waiting with no message sent for it?"""
    from scheduler.models import Automation
    from scheduler.sweep import waiting

    horizon = ctx.now() + ctx.engine.horizon
    query = waiting(Automation.id, horizon).where(Automation.dispatched_at.is_(None)).limit(1)
    return ctx.session.scalar(query) is not None


class Embedded:
    """Start it after `runtime.bind`: the worker and the sweep take their units of work there."""

    def __init__(self, sweep_interval: float) -> None:
        self.sweep_interval = sweep_interval
        self.stopping = threading.Event()
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from scheduler.sweep import forget_dispatches
        from tasks import actors  # noqa: F401  (declares the actors on the broker)

        with runtime.context() as ctx:
            forget_dispatches(ctx)
        self.worker = Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=100)
        self.worker.start()
        self.thread = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        self.thread.start()
        log.info("embedded worker and sweep started")

    def _sweep_loop(self) -> None:
        """The sweep every `sweep_interval`, and sooner when another process (a command run
        beside the server, which has no worker of its own) left due automations undispatched:
        a look every NOTICE seconds finds them."""
        import time

        from scheduler.sweep import sweep

        last = float("-inf")
        while not self.stopping.is_set():
            try:
                with runtime.context() as ctx:
                    if time.monotonic() - last >= self.sweep_interval or undispatched(ctx):
                        last = time.monotonic()
                        sweep(ctx)
            except Exception:
                log.exception("sweep failed; trying again in %.0f s", self.sweep_interval)
            self.stopping.wait(min(self.sweep_interval, NOTICE))

    def stop(self) -> None:
        self.stopping.set()
        if self.worker is not None:
            self.worker.stop(timeout=5000)
        if self.thread is not None:
            self.thread.join(timeout=5)
