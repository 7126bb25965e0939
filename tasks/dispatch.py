"""The engine's transport: a Dramatiq delayed message per automation, on its lane's actor
(generations on the `generation` queue, the rest on `automations`)."""

from __future__ import annotations

from datetime import datetime

from scheduler.clock import Clock
from scheduler.vocab import Lane
from tasks import broker


class DramatiqDispatcher:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def dispatch(
        self, automation_id: int, version: int, trigger_at: datetime, lane: Lane = Lane.AUTOMATIONS
    ) -> None:
        from tasks.actors import ACTORS

        delay_ms = max(0, int((trigger_at - self.clock.now()).total_seconds() * 1000))
        ACTORS[lane].send_with_options(args=(automation_id, version), delay=delay_ms or None)

    def waiting(self) -> int:
        from tasks.actors import ACTORS

        return sum(broker.ready(queue) for queue in {a.queue_name for a in ACTORS.values()})
