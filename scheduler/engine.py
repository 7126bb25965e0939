"""What the engine runs on: the clock, the program, and the outside parts it talks to
(message transport, mail, deliverable generator), behind small protocols so that tests and the
simulator can swap the transport and the clock while everything else stays real."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from scheduler.clock import Clock
from scheduler.links import Links
from scheduler.program import Month, Program
from scheduler.vocab import Lane

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(
        self, automation_id: int, version: int, trigger_at: datetime, lane: Lane = Lane.AUTOMATIONS
    ) -> None:
        """Arrange for the automation to be executed at `trigger_at` (or now, if past), through
        `lane`."""
        ...

    def waiting(self) -> int:
        """Messages that are due and not yet taken by a worker (0 when the transport cannot
        tell). While some wait, an overdue automation's message is queued, not lost."""
        ...


@dataclass(frozen=True)
class OutgoingMessage:
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    template: str = ""  # what the message is (for logs), e.g. DELIVERABLE_READY
    link: str = ""  # where it points the reader (the portal, or the client's panel page)


class Mailer(Protocol):
    def send(self, message: OutgoingMessage) -> None:
        """Hand the message to the mail server; raise if it was not accepted."""
        ...


@dataclass(frozen=True)
class EarlierMonth:
    month: int
    title: str
    status: str
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    client_name: str
    onboarding: dict[str, object]
    business_plan: str
    month: Month
    program_name: str
    earlier: Sequence[EarlierMonth]
    notes: str = ""


@dataclass(frozen=True)
class Generated:
    title: str
    content: str


class Generator(Protocol):
    def generate(self, request: GenerationRequest) -> Generated:
        """Write the month's deliverable; raise on failure."""
        ...


@dataclass
class Engine:
    """The long-lived parts: one per process."""

    clock: Clock
    program: Program
    dispatcher: Dispatcher
    mailer: Mailer
    generator: Generator
    send_hour: int = 9
    base_url: str = "http://127.0.0.1:5000"
    mail_sender: str = "Journey Engine <journey@localhost>"
    # Only automations due within the horizon are handed to the broker; the sweep feeds the rest.
    horizon: timedelta = timedelta(hours=1)
    # A RUNNING automation whose worker vanished is taken back after its lease (longer than
    # the actor's time limit, so a live worker never loses its automation).
    lease: timedelta = timedelta(minutes=5)
    # A due automation whose message has not run this long after dispatch is sent again; while
    # the workers are behind (messages wait in the queue) the sweep waits `busy_factor` times
    # longer, so a backlog is not flooded with copies of messages that are only queued.
    redispatch_after: timedelta = timedelta(minutes=2)
    busy_factor: int = 10
    # Signs the portal links in client emails (the app's SECRET_KEY).
    secret_key: str = "dev-only-secret-change-me"
    portal_link_max_age: timedelta = timedelta(days=30)
    # At most this many optional (non-transactional) emails to one client per rolling 24 hours;
    # what the cap holds back is deferred, not dropped.
    frequency_cap: int = 2
    # Admin alerts (escalations, failures) also go to this Slack-compatible webhook, if set.
    alert_webhook_url: str | None = None
    # A client email caused by an admin's action (a hold, a resume, an approval) waits this
    # long, so that an undo within it sends nothing.
    action_email_grace: timedelta = timedelta(0)
    # False in a process with no worker of its own (a command-line process without Redis):
    # its automations are left undispatched for the serving process's sweep to send.
    dispatches: bool = True

    @property
    def links(self) -> Links:
        return Links(self.base_url, self.secret_key, self.clock, self.portal_link_max_age)

    def __post_init__(self) -> None:
        if not 0 <= self.send_hour <= 23:
            raise ValueError(f"send hour must be 0-23, not {self.send_hour}")

    def context(self, session: Session) -> Context:
        return Context(self, session)


@dataclass
class Context:
    """One unit of work: the engine plus a database session. Dispatches wait for the commit,
    so a worker never sees a message before the row it points to."""

    engine: Engine
    session: Session
    _pending: dict[int, tuple[int, datetime, Lane]] = field(default_factory=dict)
    # Every automation this unit of work created, moved or ended, in order: what an operation
    # did, for `scheduler.outcomes` to tell.
    touched: list[Any] = field(default_factory=list)

    @property
    def program(self) -> Program:
        return self.engine.program

    def now(self) -> datetime:
        return self.engine.clock.now()

    def dispatch_after_commit(
        self,
        automation_id: int,
        version: int,
        trigger_at: datetime,
        lane: Lane = Lane.AUTOMATIONS,
    ) -> None:
        self._pending[automation_id] = (version, trigger_at, lane)

    def commit(self) -> None:
        self.session.commit()
        pending, self._pending = self._pending, {}
        for automation_id, (version, trigger_at, lane) in sorted(
            pending.items(), key=lambda i: i[1][1]
        ):
            try:
                self.engine.dispatcher.dispatch(automation_id, version, trigger_at, lane=lane)
            except Exception:  # the sweep sends it again once it is overdue
                log.exception("could not dispatch automation %s; the sweep will", automation_id)

    def rollback(self) -> None:
        self.session.rollback()
        self._pending = {}
