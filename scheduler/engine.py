"""What the engine runs on: the clock, the program, and the outside parts it talks to
(message transport, mail, deliverable generator), behind small protocols so that tests and the
simulator can swap the transport and the clock while everything else stays real."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from scheduler.clock import Clock
from scheduler.errors import Changed
from scheduler.links import Links
from scheduler.models import Automation, Client, ProgramVersion
from scheduler.program import Month, Program, parse_program
from scheduler.vocab import Lane

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispatch:
    """One automation to deliver to a worker at `trigger_at` (at once if past), on `lane`."""

    automation_id: int
    version: int
    trigger_at: datetime
    lane: Lane = Lane.AUTOMATIONS


class Dispatcher(Protocol):
    def dispatch(self, items: Sequence[Dispatch]) -> None:
        """Arrange for each automation to be executed at its moment. Automations due at the
        same moment may travel together."""
        ...

    def waiting(self) -> int:
        """Messages that are due and not yet taken by a worker (0 when the transport cannot
        tell). While some wait, an overdue automation's message is queued, not lost."""
        ...

    def epoch(self) -> str | None:
        """What identifies the broker's current life (None when it cannot tell): when it
        changes, the broker restarted and lost every message it held."""
        ...

    def stranded(self, workers: Sequence[str]) -> list[tuple[int, int]]:
        """The (automation id, version) pairs in messages that the given dead workers had taken
        from the broker and never finished; the broker forgets those messages."""
        ...

    def silent(self, seconds: float) -> list[str]:
        """Workers the broker itself has not heard from for `seconds` (a worker killed before
        it first beat in the database is known to the broker only)."""
        ...


class Unobservable:
    """The state-reading half of a Dispatcher, for transports that cannot see a broker's state
    (the simulator, tests): nothing waits, the broker never restarts, nothing is stranded."""

    def waiting(self) -> int:
        return 0

    def epoch(self) -> str | None:
        return None

    def stranded(self, workers: Sequence[str]) -> list[tuple[int, int]]:
        return []

    def silent(self, seconds: float) -> list[str]:
        return []


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


class NotSent(Exception):
    """The server did not take the message (it refused it, or could not be reached before the
    transaction began): sending it again cannot make a duplicate."""


class Mailer(Protocol):
    def send(self, message: OutgoingMessage) -> None:
        """Hand the message to the mail server. Raise NotSent when the server certainly did
        not take it; anything else raised means it may have (the connection broke after the
        message went out, before the server's answer)."""
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


class Observer(Protocol):
    """What the engine tells about its own work, for operators' metrics (each process counts
    its own; the transport's side exports them)."""

    def executed(self, type_: str, outcome: str) -> None:
        """An automation's run ended: COMPLETED, SKIPPED, DEFERRED, RETRYING, FAILED or LOST
        (its worker lost the claim)."""
        ...

    def timed(self, what: str, seconds: float) -> None:
        """How long one `email` send or one `generation` took."""
        ...

    def taken_back(self, reason: str, count: int) -> None:
        """Automations taken back: `lease`, `dead worker`, `broker restart`, `handback`."""
        ...


class Unobserved:
    """Counts nothing (tests, the simulator, processes that export no metrics)."""

    def executed(self, type_: str, outcome: str) -> None:
        pass

    def timed(self, what: str, seconds: float) -> None:
        pass

    def taken_back(self, reason: str, count: int) -> None:
        pass


class InFlight:
    """The automations this process is executing right now: the only leases its beat renews
    (one whose run died with an error is left to expire and be taken back)."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def add(self, ids: Sequence[int]) -> None:
        with self._lock:
            self._ids.update(ids)

    def discard(self, ids: Sequence[int]) -> None:
        with self._lock:
            self._ids.difference_update(ids)

    def snapshot(self) -> list[int]:
        with self._lock:
            return sorted(self._ids)


@dataclass(frozen=True, eq=False)
class Version:
    """A published version of the program and its emails (immutable, so cached for good).
    `templates` holds email template sources by file name; a name absent is the shipped file."""

    number: int
    program: Program
    templates: Mapping[str, str] = field(default_factory=dict)


class VersionCache:
    """The published versions this process has read (they never change)."""

    def __init__(self) -> None:
        self._found: dict[int, Version] = {}
        self._lock = threading.Lock()

    def get(self, number: int) -> Version | None:
        with self._lock:
            return self._found.get(number)

    def put(self, version: Version) -> None:
        with self._lock:
            self._found[version.number] = version


@dataclass
class Engine:
    """The long-lived parts: one per process."""

    clock: Clock
    # The program file (PROGRAM_FILE, or the shipped one): version 1, until the database has it.
    program: Program
    dispatcher: Dispatcher
    mailer: Mailer
    generator: Generator
    send_hour: int = 9
    base_url: str = "http://127.0.0.1:5000"
    mail_sender: str = "Journey Engine <journey@localhost>"
    # Only automations due within the horizon are handed to the broker; the sweep feeds the rest.
    horizon: timedelta = timedelta(hours=1)
    # A RUNNING automation is leased to the worker process that claimed it; the worker renews
    # its leases every `beat_every` while it lives, so a dead worker's automations are taken
    # back within a lease and a live one never loses its own.
    lease: timedelta = timedelta(seconds=30)
    beat_every: timedelta = timedelta(seconds=10)
    # This process, as the claims and the workers table know it (its broker connection's id).
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    in_flight: InFlight = field(default_factory=InFlight)
    observer: Observer = field(default_factory=Unobserved)
    # A due automation whose message has not run this long after dispatch is sent again; while
    # the workers are behind (messages wait in the queue) the sweep waits `busy_factor` times
    # longer, so a backlog is not flooded with copies of messages that are only queued.
    redispatch_after: timedelta = timedelta(minutes=2)
    busy_factor: int = 10
    # Signs the portal links in client emails (the app's SECRET_KEY); links signed with one of
    # the fallbacks (older keys, being rotated out) are still accepted.
    secret_key: str = ""
    secret_key_fallbacks: tuple[str, ...] = ()
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
    versions: VersionCache = field(default_factory=VersionCache)

    def version(self, session: Session, number: int) -> Version:
        """Published version `number` of the program (version 1 is the program file while the
        database holds no version yet)."""
        found = self.versions.get(number)
        if found is not None:
            return found
        row = session.scalar(
            select(ProgramVersion).where(
                ProgramVersion.number == number, ProgramVersion.status == "PUBLISHED"
            )
        )
        if row is not None:
            found = Version(number, parse_program(row.definition), dict(row.templates or {}))
        elif number == 1:
            found = Version(1, self.program)
        else:
            raise LookupError(f"there is no program version {number}")
        self.versions.put(found)
        return found

    @property
    def links(self) -> Links:
        return Links(
            self.base_url,
            self.secret_key,
            self.clock,
            self.portal_link_max_age,
            fallbacks=self.secret_key_fallbacks,
        )

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
    _pending: dict[int, Dispatch] = field(default_factory=dict)
    # Every automation this unit of work created, moved or ended, in order: what an operation
    # did, for `scheduler.outcomes` to tell.
    touched: list[Any] = field(default_factory=list)
    # Who is acting through this unit of work (an admin's email, a command's OS user): recorded
    # with what it changes. Empty for the engine acting on its own (workers, the sweep).
    actor: str = ""

    _current: int | None = None
    # What this transaction read once and reuses (`memo`): forgotten at commit and rollback.
    _memo: dict[Hashable, Any] = field(default_factory=dict)

    def memo(self, key: Hashable, read: Callable[[], T]) -> T:
        """`read()`, called once per transaction for `key` (a batch of a hundred emails asks
        the same question a hundred times: which A/B tests run, say)."""
        if key not in self._memo:
            self._memo[key] = read()
        return cast(T, self._memo[key])

    def forget(self, key: Hashable) -> None:
        """This unit of work changed what `key` read."""
        self._memo.pop(key, None)

    def current_version(self) -> int:
        """The version new enrollments get: the latest published (read once per transaction)."""
        if self._current is None:
            latest = self.session.scalar(
                select(func.max(ProgramVersion.number)).where(ProgramVersion.status == "PUBLISHED")
            )
            self._current = int(latest or 1)
        return self._current

    def published(self, number: int) -> None:
        """This unit of work made `number` the current version."""
        self._current = number

    @property
    def program(self) -> Program:
        """The current version's program (what new enrollments run)."""
        return self.engine.version(self.session, self.current_version()).program

    def version_of(self, client: Client) -> Version:
        """The version `client`'s journey runs."""
        return self.engine.version(self.session, client.program_version or 1)

    def program_of(self, client: Client) -> Program:
        return self.version_of(client).program

    def send_hour_of(self, client: Client) -> int:
        """The local hour the client's automations fire at: their program's, else SEND_HOUR."""
        hour = self.program_of(client).schedule.send_hour
        return self.engine.send_hour if hour is None else hour

    def frequency_cap_of(self, client: Client) -> int:
        cap = self.program_of(client).schedule.frequency_cap
        return self.engine.frequency_cap if cap is None else cap

    def now(self) -> datetime:
        return self.engine.clock.now()

    def dispatch_after_commit(
        self,
        automation_id: int,
        version: int,
        trigger_at: datetime,
        lane: Lane = Lane.AUTOMATIONS,
    ) -> None:
        self._pending[automation_id] = Dispatch(automation_id, version, trigger_at, lane)

    def commit(self) -> None:
        try:
            self.session.commit()
        except StaleDataError:
            self.rollback()
            raise Changed("another process changed this meanwhile: reload and try again") from None
        self._current = None  # the next transaction may see a newer version
        self._memo = {}
        pending, self._pending = self._pending, {}
        if not pending:
            return
        items = sorted(pending.values(), key=lambda d: (d.trigger_at, d.automation_id))
        try:
            self.engine.dispatcher.dispatch(items)
        except Exception:
            log.exception("could not hand %d automation(s) to the broker", len(items))
            self.undispatched(items)

    def undispatched(self, items: Sequence[Dispatch]) -> None:
        """Dispatches that did not reach the broker: marked as never sent, so that the next
        recovery round (within seconds, once the broker is back) sends them."""
        try:
            self.session.execute(
                update(Automation)
                .where(
                    tuple_(Automation.id, Automation.version).in_(
                        [(d.automation_id, d.version) for d in items]
                    )
                )
                .values(dispatched_at=None)
                .execution_options(synchronize_session=False)
            )
            self.session.commit()
        except Exception:  # the database is away too: the sweep's re-send covers it
            log.warning("could not mark %d automation(s) as not sent", len(items), exc_info=True)
            self.session.rollback()

    def rollback(self) -> None:
        self.session.rollback()
        self._pending = {}
        self._current = None
        self._memo = {}
