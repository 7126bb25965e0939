"""Embedded mode (no REDIS_URL): a Dramatiq worker on the in-process broker and a timer thread
running the sweep, inside the web process, so that one command runs everything. The timer also
sends the other periodic actors (the success metrics' counting ahead every minute, the daily
risk refresh) to that worker when their cron schedule comes, as periodiq does in a
deployment."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import dramatiq
from dramatiq import Worker

from tasks import runtime

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)


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
        self.looked: datetime | None = None  # the last minute `send_periodic` looked at

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
        from scheduler.sweep import sweep

        while not self.stopping.is_set():
            try:
                with runtime.context() as ctx:
                    sweep(ctx)
                    now = ctx.now()
                self.send_periodic(now)
            except Exception:
                log.exception("sweep failed; trying again in %.0f s", self.sweep_interval)
            self.stopping.wait(self.sweep_interval)

    def send_periodic(self, now: datetime) -> list[str]:
        """Send each periodic actor but the sweep (run here every `sweep_interval`) whose cron
        schedule names a minute since the last look (at most a day back), to this process's
        worker; minutes in the process's local time, as periodiq reads them. The first look
        only notes the minute. Returns the names of the actors sent."""
        from tasks import actors

        minute = now.astimezone().replace(second=0, microsecond=0)
        last, self.looked = self.looked, minute
        if last is None or minute <= last:
            return []
        first = max(last + MINUTE, minute - timedelta(days=1))
        sent = []
        for actor in dramatiq.get_broker().actors.values():
            if "periodic" not in actor.options or actor is actors.sweep:
                continue
            at = first
            while at <= minute and not actor.options["periodic"].validate(at):
                at += MINUTE
            if at <= minute:
                actor.send()
                sent.append(actor.actor_name)
        return sent

    def stop(self) -> None:
        self.stopping.set()
        if self.worker is not None:
            self.worker.stop(timeout=5000)
        if self.thread is not None:
            self.thread.join(timeout=5)
