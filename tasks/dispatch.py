"""The engine's transport: a Dramatiq delayed message per automation."""

from __future__ import annotations

from datetime import datetime

from scheduler.clock import Clock
from tasks import broker


class DramatiqDispatcher:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def dispatch(self, automation_id: int, version: int, trigger_at: datetime) -> None:
        from tasks.actors import run_automation

        delay_ms = max(0, int((trigger_at - self.clock.now()).total_seconds() * 1000))
        run_automation.send_with_options(args=(automation_id, version), delay=delay_ms or None)

    def waiting(self) -> int:
        from tasks.actors import run_automation

        return broker.ready(run_automation.queue_name)
