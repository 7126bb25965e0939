"""Embedded mode (no REDIS_URL): a Dramatiq worker on the in-process broker and a timer thread
running the sweep (and, every minute, the success metrics' counting ahead), inside the web
process, so that one command runs everything."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
from dramatiq import Worker

from tasks import runtime

log = logging.getLogger(__name__)
# The success metrics are counted ahead this often (`scheduler.precount`), as the periodic
# actor does beside a Redis broker.
KEEP_EVERY_SECONDS = 60


class Embedded:
    """Start it after `runtime.bind`: the worker and the sweep take their units of work there.
    The worker's watch (tasks.watch) sends what is due every WORKER_BEAT_SECONDS, so an
    automation another process left undispatched (a command run beside the server, with no
    worker of its own) goes within seconds; the sweep itself runs every `sweep_interval`."""

    def __init__(self, sweep_interval: float) -> None:
        self.sweep_interval = sweep_interval
        self.stopping = threading.Event()
        self.worker: Worker | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from scheduler.recovery import forget_dispatches
        from tasks import actors  # noqa: F401  (declares the actors on the broker)

        with runtime.context() as ctx:  # the in-process broker starts empty
            forget_dispatches(ctx)
            ctx.commit()
        self.worker = Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=100)
        self.worker.start()
        self.thread = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        self.thread.start()
        log.info("embedded worker and sweep started")

    def _sweep_loop(self) -> None:
        from scheduler.precount import keep
        from scheduler.sweep import sweep

        kept_at = 0.0
        while not self.stopping.is_set():
            try:
                with runtime.context() as ctx:
                    sweep(ctx)
            except Exception:
                log.exception("sweep failed; trying again in %.0f s", self.sweep_interval)
            if time.monotonic() - kept_at >= KEEP_EVERY_SECONDS:
                kept_at = time.monotonic()
                try:
                    with runtime.context() as ctx:
                        keep(ctx)
                except Exception:
                    log.exception("counting the metrics ahead failed; trying again in a minute")
            self.stopping.wait(self.sweep_interval)

    def stop(self) -> None:
        self.stopping.set()
        if self.worker is not None:
            self.worker.stop(timeout=5000)
        if self.thread is not None:
            self.thread.join(timeout=5)
