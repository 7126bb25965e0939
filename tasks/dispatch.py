"""The engine's transport over Dramatiq: automations due at the same moment travel together,
a batch of (id, version) pairs per message, on the `automations` queue; generations one per
message on their own queue (they are slow, and a person may be waiting for one)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from scheduler.clock import Clock
from scheduler.engine import Dispatch
from scheduler.vocab import Lane
from tasks import broker

# Automations per message: large enough to spread a message's cost, small enough that the
# workers' threads share a wave and a stopping worker hands back little.
BATCH = 50


class DramatiqDispatcher:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def dispatch(self, items: Sequence[Dispatch]) -> None:
        from tasks.actors import ACTORS, FORMAT, run_automations

        now = self.clock.now()
        together: dict[tuple[Lane, datetime], list[Dispatch]] = {}
        for item in items:  # the same instant: a wave (the send hour), never one a bit later
            together.setdefault((item.lane, item.trigger_at), []).append(item)
        for (lane, moment), group in together.items():
            # Rounded up to the millisecond: a message that arrives early claims nothing.
            delay = max(0, math.ceil((moment - now).total_seconds() * 1000))
            if lane is Lane.AUTOMATIONS:
                for start in range(0, len(group), BATCH):
                    pairs = [[d.automation_id, d.version] for d in group[start : start + BATCH]]
                    run_automations.send_with_options(
                        args=(pairs,), kwargs={"format": FORMAT}, delay=delay or None
                    )
            else:
                for d in group:
                    ACTORS[lane].send_with_options(
                        args=(d.automation_id, d.version), delay=delay or None
                    )

    def waiting(self) -> int:
        from tasks.actors import QUEUES

        return sum(broker.ready(queue) for queue in QUEUES)

    def epoch(self) -> str | None:
        return broker.epoch()

    def silent(self, seconds: float) -> list[str]:
        return broker.silent(seconds)

    def stranded(self, workers: Sequence[str]) -> list[tuple[int, int]]:
        from tasks.actors import pairs_of

        return [pair for message in broker.taken_by(workers) for pair in pairs_of(message)]
