"""A small driver for tests: the real engine, with the clock and the transport in hand."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from scheduler import enrollment, execute, lookups
from scheduler.clock import ManualClock
from scheduler.engine import (
    Context,
    Dispatch,
    Generated,
    GenerationRequest,
    NotSent,
    OutgoingMessage,
    Unobservable,
)
from scheduler.generator import BuiltinGenerator
from scheduler.models import Admin, Automation, AutomationLog, Client, Deliverable, Email
from web import journey_context
from web.extensions import db


class Transport(Unobservable):
    """Records dispatches; the harness delivers them in time order."""

    def __init__(self) -> None:
        self.queue: list[tuple[datetime, int, int, int]] = []
        self.sent: list[tuple[int, int, datetime]] = []
        self.lanes: dict[int, Any] = {}  # the lane of each automation's latest dispatch
        self.seq = itertools.count()

        self.busy = 0  # what `waiting` reports: tests set it to play workers that fall behind

    def dispatch(self, items: Sequence[Dispatch]) -> None:
        for d in items:
            self.sent.append((d.automation_id, d.version, d.trigger_at))
            self.lanes[d.automation_id] = d.lane
            heapq.heappush(self.queue, (d.trigger_at, next(self.seq), d.automation_id, d.version))

    def waiting(self) -> int:
        return self.busy


class NoTransport(Unobservable):
    """For processes that only write rows: another process's sweep sends them."""

    def dispatch(self, items: Sequence[Dispatch]) -> None:
        pass


@dataclass
class RecordingMailer:
    sent: list[OutgoingMessage] = field(default_factory=list)
    fail_next: int = 0  # the server refuses (nothing is sent)
    break_next: int = 0  # the connection breaks after the message went out (it may have arrived)

    def send(self, message: OutgoingMessage) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise NotSent("mail server unavailable (injected)")
        if self.break_next > 0:
            self.break_next -= 1
            self.sent.append(message)
            raise ConnectionResetError("connection lost after DATA (injected)")
        self.sent.append(message)


class ScriptedGenerator:
    def __init__(self) -> None:
        self.inner = BuiltinGenerator()
        self.fail_next = 0
        self.calls = 0

    def generate(self, request: GenerationRequest) -> Generated:
        self.calls += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise RuntimeError("generator exploded (injected)")
        return self.inner.generate(request)


@dataclass
class Harness:
    app: Flask
    clock: ManualClock
    transport: Transport
    mailer: RecordingMailer
    generator: ScriptedGenerator

    @property
    def ctx(self) -> Context:
        return journey_context()

    def add_admin(self, email: str) -> None:
        db.session.add(
            Admin(email=email, name="", timezone="UTC", active=True, created_at=self.clock.now())
        )
        db.session.commit()

    def enroll(
        self,
        start: date,
        timezone: str = "UTC",
        email: str = "sarah@example.com",
        name: str = "Sarah Johnson",
        **kwargs: Any,
    ) -> Client:
        client = enrollment.enroll(
            self.ctx, name=name, email=email, start_date=start, timezone=timezone, **kwargs
        )
        self.ctx.commit()
        return client

    def do(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one operation as the web or CLI would: then commit (which dispatches)."""
        result = fn(self.ctx, *args, **kwargs)
        self.ctx.commit()
        return result

    def run_until(self, until: datetime) -> None:
        """Deliver every message due up to `until`, moving the clock to each."""
        while self.transport.queue and self.transport.queue[0][0] <= until:
            at, _, automation_id, version = heapq.heappop(self.transport.queue)
            self.clock.set(max(at, self.clock.now()))
            execute.run(self.ctx, automation_id, version)
        self.clock.set(max(until, self.clock.now()))

    def run_for(self, delta: timedelta) -> None:
        self.run_until(self.clock.now() + delta)

    # -- reading ------------------------------------------------------------------------------

    def automations(self, client: Client, **where: Any) -> list[Automation]:
        query = select(Automation).where(Automation.client_id == client.id)
        for name, value in where.items():
            query = query.where(getattr(Automation, name) == value)
        return list(db.session.scalars(query.order_by(Automation.trigger_at, Automation.id)))

    def one(self, client: Client, **where: Any) -> Automation:
        found = self.automations(client, **where)
        assert len(found) == 1, f"expected one automation {where}, found {len(found)}"
        return found[0]

    def emails(self, template: str | None = None) -> list[Email]:
        query = select(Email).order_by(Email.id)
        if template:
            query = query.where(Email.template == template)
        return list(db.session.scalars(query))

    def logs(self, client: Client) -> list[AutomationLog]:
        return list(
            db.session.scalars(
                select(AutomationLog)
                .where(AutomationLog.client_id == client.id)
                .order_by(AutomationLog.id)
            )
        )

    def deliverable(self, client: Client, month: int) -> Deliverable | None:
        return lookups.latest_deliverable(self.ctx, client, month)

    def refresh(self, obj: Any) -> Any:
        db.session.refresh(obj)
        return obj
