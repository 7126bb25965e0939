"""The watch: in every process that runs a Dramatiq worker, a thread that beats for the
process every `Engine.beat_every` (renewing the leases of what it runs), takes back what dead
workers and a restarted broker lost, and sends what is due; and, when the worker is told to
stop, the signal the actors read to hand back what they have not started."""

from __future__ import annotations

import logging
import threading

import dramatiq

from scheduler import recovery, sweep
from tasks import runtime

log = logging.getLogger(__name__)

_stopping = threading.Event()


def stopping() -> bool:
    """Whether this process's worker has been told to stop."""
    return _stopping.is_set()


class Watch(dramatiq.Middleware):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping.clear()
        self.done.clear()
        self.thread = threading.Thread(target=self.loop, name="journey-watch", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _stopping.set()
        self.round("STOPPING")

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        try:
            with runtime.context() as ctx:
                recovery.stopped(ctx)
        except Exception:  # the database is away: the others find this worker dead later
            log.warning("could not record that this worker stopped", exc_info=True)

    def loop(self) -> None:
        with runtime.context() as ctx:
            interval = ctx.engine.beat_every.total_seconds()
        while not self.done.is_set():
            self.round("STOPPING" if stopping() else "RUNNING")
            self.done.wait(interval)

    failing = False

    def round(self, state: str) -> None:
        """One beat, and (while running) one round of recovery and dispatch; an outage of the
        database or the broker is logged once, when it starts, and once when it ends."""
        from scheduler import recovery

        try:
            with runtime.context() as ctx:
                recovery.beat(ctx, state)
                if state == "RUNNING":
                    recovery.recover(ctx)
                    sweep.dispatch(ctx, ctx.now() + ctx.engine.horizon)
        except Exception as exc:
            if not self.failing:
                log.error("watch: %s: %s; retrying every beat", type(exc).__name__, exc)
                self.failing = True
            return
        if self.failing:
            log.warning("watch: working again")
            self.failing = False
