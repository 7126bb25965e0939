"""The data model (SQLAlchemy 2, typed). Every instant is stored in UTC and comes back
timezone-aware; local calendar dates (start dates, hold dates) are plain dates in the client's
own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    cast,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from scheduler.vocab import automation_name


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC instant on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored: give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


ID = BigInteger().with_variant(Integer, "sqlite")
# The largest id an ID column holds (a signed 64-bit integer): a larger number names no row (and
# a database refuses it as a parameter).
MAX_ID = 2**63 - 1


def looks_like_id(text: str) -> bool:
    """Written as a row id: ASCII digits only (`str.isdigit` also takes "²" and "٣")."""
    return text.isascii() and text.isdigit()


def fits_id(number: int) -> bool:
    """A number an id column can hold; any other names no row."""
    return 0 < number <= MAX_ID


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Admin(Base):
    """Someone who runs the program: receives reviews, escalations and failures."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    # What a login session needs to know (the user protocol of Flask-Login).
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active and self.password_hash is not None

    def get_id(self) -> str:
        return str(self.id)


class AdminSession(Base):
    """One login to the panel. The cookie carries a random token; only its hash is kept here.
    It ends at logout, when ended from the sessions page or by a password change (`revoked_at`),
    after SESSION_IDLE_MINUTES without a request, and SESSION_HOURS after the login whatever
    happens in between (`scheduler.sessions`)."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256, hex
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    revoked_at: Mapped[datetime | None]
    revoked_why: Mapped[str | None] = mapped_column(String(40))

    admin: Mapped[Admin] = relationship()

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    start_date: Mapped[date] = mapped_column(Date)
    current_month: Mapped[int] = mapped_column(Integer, default=1)
    # Whether the current month's newest deliverable is delivered or skipped: kept with
    # `current_month` (`schedule.refresh_progress`). The status rule finds the overdue clients
    # through it (`ix_clients_overdue_from`); true only when the month is done, so a client
    # written without it set is found too, and the rule decides from the deliverables.
    current_month_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set while the client is on hold (the open hold is the one with no `ended_at`).
    paused_at: Mapped[datetime | None]
    # Whole local days of every hold taken so far; each pushed the journey later.
    held_days: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None]
    onboarding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    business_plan: Mapped[str] = mapped_column(Text, default="")
    business_plan_approved_at: Mapped[datetime | None]
    # The admin who coaches this client: gets their escalations and failures (none: every admin).
    coach_id: Mapped[int | None] = mapped_column(
        ForeignKey("admins.id", ondelete="SET NULL"), index=True
    )
    # The client's email preferences (transactional emails are sent regardless).
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    celebrations_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    unsubscribed_at: Mapped[datetime | None]  # one-click unsubscribe from every optional email
    # The program version this client's journey runs (`program_versions.number`).
    program_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Set when an admin ended the journey early (it also counts as completed: nothing more
    # happens), with why.
    offboarded_at: Mapped[datetime | None]
    offboard_reason: Mapped[str | None] = mapped_column(Text)

    coach: Mapped[Admin | None] = relationship()
    holds: Mapped[list[Hold]] = relationship(
        back_populates="client", order_by="Hold.started_at", cascade="all, delete-orphan"
    )

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


# A month is overdue once its escalation point has passed and it is still not done.
OVERDUE_AFTER_DAYS = 7


def overdue_days(done: ColumnElement[int] | None = None) -> ColumnElement[int]:
    """SQL, from the client's row: days from the start date to the first day the client counts
    as overdue: the month being worked on (the current one, or the next when the current is
    done: `done` is 1) is OVERDUE_AFTER_DAYS past its milestone (30 days a month, moved by the
    days held). By default `done` is the row's `current_month_done`, as the index below reads
    it (constants are written in, so that PostgreSQL matches the index); the status rule is
    `scheduler.overview.status_sql`."""
    if done is None:
        done = cast(Client.current_month_done, Integer)
    month = Client.current_month + done
    days = Client.held_days + literal_column("30") * (month - literal_column("1"))
    return days + literal_column(str(OVERDUE_AFTER_DAYS + 1))


def active_client() -> ColumnElement[bool]:
    """SQL: the client is neither completed nor on hold (on track or overdue)."""
    return Client.completed_at.is_(None) & Client.paused_at.is_(None)


# The overdue clients, found without reading the others (PostgreSQL; SQLite lists are small):
# `Client.start_date + overdue_days()` as PostgreSQL writes it back (what the migrations check
# compares); a test holds the status rule's queries to this index.
OVERDUE_FROM_INDEXED = (
    "(start_date + held_days + 30 * (current_month + current_month_done::integer - 1) + 8)"
)
Index(
    "ix_clients_overdue_from",
    text(OVERDUE_FROM_INDEXED),
    _table=Client.__table__,
    postgresql_where=active_client(),
).ddl_if(dialect="postgresql")
# The clients on hold (few): their pending automations wait, and lists leave them out.
Index(
    "ix_clients_paused",
    Client.id,
    postgresql_where=Client.paused_at.is_not(None),
    sqlite_where=Client.paused_at.is_not(None),
)
# The clients list in its default order, one page at a time (PostgreSQL, as above).
Index("ix_clients_name", func.lower(Client.name), Client.id).ddl_if(dialect="postgresql")


class Hold(Base):
    """One pause of a client's journey: when, why, until when, and how many days it cost."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    start_date: Mapped[date] = mapped_column(Date)  # local date the hold began
    until: Mapped[date | None] = mapped_column(Date)  # planned local end date, if any
    ended_at: Mapped[datetime | None]
    end_date: Mapped[date | None] = mapped_column(Date)  # local date it ended
    days: Mapped[int | None] = mapped_column(Integer)  # whole days the journey moved
    ended_by: Mapped[str | None] = mapped_column(String(20))  # "admin" or "schedule"

    client: Mapped[Client] = relationship(back_populates="holds")

    def __str__(self) -> str:
        end = self.end_date or (f"until {self.until}" if self.until else "open")
        return f"hold {self.start_date} → {end}"


class Deliverable(Base):
    __tablename__ = "deliverables"
    __table_args__ = (
        UniqueConstraint("client_id", "month", "version"),
        Index("ix_deliverables_generated_at", "generated_at"),  # the metrics' funnel
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    month: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    reviewer_notes: Mapped[str] = mapped_column(Text, default="")
    manual: Mapped[bool] = mapped_column(Boolean, default=False)  # generated by an admin's hand
    automation_id: Mapped[int | None] = mapped_column(
        ForeignKey("automations.id", ondelete="SET NULL")
    )
    generated_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Set when an admin corrected the text before approving it: the generator's text, kept so
    # that what was changed can be shown (`content` is what the client reads).
    generated_content: Mapped[str | None] = mapped_column(Text)
    edited_at: Mapped[datetime | None]
    edited_by: Mapped[str | None] = mapped_column(String(254))

    client: Mapped[Client] = relationship(viewonly=True)

    def __str__(self) -> str:
        return f"M{self.month} v{self.version} ({self.status})"


class Automation(Base):
    """One scheduled action. This table is the source of truth: the broker only delivers.

    `version` changes whenever the automation is moved, cancelled or retried; a message carries
    the version it was sent for, so a stale message finds nothing to claim.
    """

    __tablename__ = "automations"
    __table_args__ = (
        # Also serves every per-client lookup (client_id leads).
        UniqueConstraint("client_id", "key"),
        # The sweep: due automations (partial: only the pending ones are indexed). On
        # PostgreSQL it carries what the panel counts pending ones by (the dashboard's week
        # ahead, the log's pending rows), so that they are counted from the index alone.
        Index(
            "ix_automations_due",
            "trigger_at",
            postgresql_include=["type", "client_id", "hold_id"],
            postgresql_where=text("status = 'SCHEDULED'"),
            sqlite_where=text("status = 'SCHEDULED'"),
        ),
        Index(
            "ix_automations_running",
            "lease_until",
            postgresql_where=text("status = 'RUNNING'"),
            sqlite_where=text("status = 'RUNNING'"),
        ),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("holds.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(String(40))
    month: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str | None] = mapped_column(String(40))
    # Names the automation among the client's so that planning and events never make two.
    key: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    trigger_at: Mapped[datetime]
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # While RUNNING: the worker process that claimed it (it renews the lease while it lives),
    # and when it is taken back if that worker stops renewing.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]  # a message for this version was sent then
    executed_at: Mapped[datetime | None]
    detail: Mapped[str] = mapped_column(Text, default="")  # why it ended as it did
    error: Mapped[str | None] = mapped_column(Text)
    # The program version whose plan put it where it is (None: before versions existed).
    program_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    client: Mapped[Client] = relationship()

    def __str__(self) -> str:
        return f"#{self.id} {automation_name(self.type, self.template, self.month)}"

    # Optimistic locking: every ORM update of an automation says `WHERE version = <the version
    # read>`, and the engine changes the version itself (moved, cancelled, retried, taken back),
    # so a process that lost its claim cannot overwrite what the new holder does.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class AutomationLog(Base):
    """Every execution, skip, retry, failure and cancellation, with its reason."""

    __tablename__ = "automation_logs"
    __table_args__ = (
        Index("ix_automation_logs_client_id_at", "client_id", "at"),
        # The log in its order (newest first, ties by id): a page is read from where it starts,
        # also among the thousands of rows one moment can hold (a bulk enrollment's skips).
        Index("ix_automation_logs_at_id", "at", "id"),
        Index("ix_automation_logs_status_at_id", "status", "at", "id"),
        Index("ix_automation_logs_automation_id", "automation_id"),
        # The log's rows by a person (its "who" filter): most rows are the engine's own.
        Index(
            "ix_automation_logs_actor_at_id",
            "at",
            "id",
            postgresql_where=text("actor IS NOT NULL"),
            sqlite_where=text("actor IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime]
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    automation_id: Mapped[int | None] = mapped_column(
        ForeignKey("automations.id", ondelete="SET NULL")
    )
    type: Mapped[str] = mapped_column(String(40))
    month: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    # The program version that planned the automation.
    program_version: Mapped[int | None] = mapped_column(Integer)
    # The person whose action this was (an admin's email, or the OS user of a command); empty
    # for what the engine did on its own.
    actor: Mapped[str | None] = mapped_column(String(254))

    client: Mapped[Client] = relationship(viewonly=True)

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC {self.type} {self.status}"


# PostgreSQL samples 30,000 rows to estimate how many clients a table's rows belong to; the
# rows of a client lie together, so it saw a quarter of them, thought each had four times its
# rows, and read whole indexes for a few clients' rows (the log filtered by client). A sample
# ten times larger gets it right.
for _table in ("automations", "automation_logs"):
    event.listen(
        Base.metadata.tables[_table],
        "after_create",
        DDL(f"ALTER TABLE {_table} ALTER COLUMN client_id SET STATISTICS 1000").execute_if(
            dialect="postgresql"
        ),
    )


class ClientChange(Base):
    """A person's change to a client or to one of their deliverables: who, when, what, and the
    values before and after (only those that changed)."""

    __tablename__ = "client_changes"
    __table_args__ = (Index("ix_client_changes_client_id_at", "client_id", "at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(254))
    what: Mapped[str] = mapped_column(String(120))
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)

    client: Mapped[Client] = relationship(viewonly=True)

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC {self.what} by {self.actor or 'the engine'}"


class Email(Base):
    """The outbox: one row per message, keyed so that a retried automation never sends twice."""

    __tablename__ = "emails"
    __table_args__ = (
        Index("ix_emails_client_id_created_at", "client_id", "created_at"),
        Index("ix_emails_automation_id", "automation_id"),
        Index("ix_emails_ab_test_id", "ab_test_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    automation_id: Mapped[int | None] = mapped_column(
        ForeignKey("automations.id", ondelete="SET NULL")
    )
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    to_address: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(40))
    month: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # PENDING: not yet handed to the server; SENDING: a transmission began at `sending_at` and
    # has not been confirmed (a crash there leaves it unknown whether the server got it); SENT.
    status: Mapped[str] = mapped_column(String(10), default="PENDING")
    message_id: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sending_at: Mapped[datetime | None]
    # Set when a transmission was interrupted after it may have reached the server and the
    # message was sent again: the message was possibly received twice (same Message-ID).
    uncertain_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # The A/B test this email took part in, and the variant it was given ("A" or "B").
    ab_test_id: Mapped[int | None] = mapped_column(ForeignKey("ab_tests.id", ondelete="SET NULL"))
    variant: Mapped[str | None] = mapped_column(String(1))
    # The client's first click on one of the email's portal links (its tagged link opened the
    # portal page, whose script posted it: `scheduler.portal.click`); later clicks keep it.
    clicked_at: Mapped[datetime | None]

    client: Mapped[Client | None] = relationship(viewonly=True)

    def __str__(self) -> str:
        return f"{self.template} to {self.to_address}"


class Worker(Base):
    """A process that executes automations. It beats every few seconds, renewing the leases of
    what it has claimed; one that stops beating is dead, and what it held (claimed
    automations, messages the broker handed it) is taken back."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # its broker connection's id
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10))  # RUNNING, STOPPING, STOPPED, DEAD
    ended_at: Mapped[datetime | None]


class Heartbeat(Base):
    """When a periodic process (the sweep) last ran and what it found, for the health check."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S} UTC"


class ApiToken(Base):
    """A credential for the JSON API, owned by an admin. Only a hash of the secret is kept; the
    prefix (the token's first characters) is shown in listings so a person can tell tokens
    apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256, hex
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    admin: Mapped[Admin] = relationship()

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'token'})"


class IdempotencyKey(Base):
    """One `Idempotency-Key` a token used on a POST: the request's fingerprint and, once the
    request has been handled, its response, replayed to a client that retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("token_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the request runs
    response: Mapped[str | None] = mapped_column(Text)  # the JSON body sent back
    created_at: Mapped[datetime]

    def __str__(self) -> str:
        return f"key {self.key} (token {self.token_id})"


class ProgramVersion(Base):
    """One version of the program and its emails. A published version (with a number) never
    changes; the draft (no number) is what admins edit. Version 1 is the shipped program file,
    loaded on first run."""

    __tablename__ = "program_versions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    number: Mapped[int | None] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(10))  # DRAFT or PUBLISHED
    # The program as `scheduler.program.parse_program` reads it.
    definition: Mapped[dict[str, Any]] = mapped_column()
    # Email template sources by file name ("REMINDER_UPCOMING.txt"); a name absent here is the
    # shipped file.
    templates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    based_on: Mapped[int | None] = mapped_column(Integer)  # the version a draft started from
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(254), default="")
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(254))

    def __str__(self) -> str:
        return f"version {self.number}" if self.number else "draft"


class ProgramPublication(Base):
    """One publish (or roll back) of a program version: who, when, to whom, and what moved."""

    __tablename__ = "program_publications"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(254))
    version: Mapped[int] = mapped_column(Integer)
    previous: Mapped[int] = mapped_column(Integer)
    rollback_of: Mapped[int | None] = mapped_column(Integer)  # rolled back to this version
    applies_to: Mapped[str] = mapped_column(String(10))  # "new" or "all"
    clients_moved: Mapped[int] = mapped_column(Integer, default=0)
    automations_moved: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str] = mapped_column(Text, default="")
    # Which clients moved, and the counts per kind of change.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __str__(self) -> str:
        return f"version {self.version} published {self.at:%Y-%m-%d %H:%M} UTC by {self.actor}"


class MetricDay(Base):
    """No longer written: the previous release's kept days of the success metrics, left for
    its processes during a rolling deploy (`metric_periods` and `metric_counts` replace it); a
    later release drops it."""

    __tablename__ = "metric_days"
    __table_args__ = (UniqueConstraint("metric", "day", "coach_id", "month"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    coach_id: Mapped[int] = mapped_column(BigInteger)  # 0: clients without a coach
    month: Mapped[int] = mapped_column(Integer)  # 0: rows of no month
    rows: Mapped[int] = mapped_column(Integer)
    met: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime]

    def __str__(self) -> str:
        return f"{self.metric} {self.day}"


class MetricPeriod(Base):
    """What the success metrics (`scheduler.metrics`) keep counted. Kind "log": a whole UTC day
    or hour of the log, its numbers in `metric_counts`, with how many log rows it held when
    counted (a row committed later changes that number, and the span is counted again) and the
    program setting its numbers depend on (`basis`). Any other kind is a state counted at one
    instant (it starts and ends then): the clients' states, or a funnel, its numbers in `body`."""

    __tablename__ = "metric_periods"
    __table_args__ = (UniqueConstraint("kind", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    counted_at: Mapped[datetime]
    basis: Mapped[str] = mapped_column(String(100), default="")
    log_rows: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None]

    def __str__(self) -> str:
        return f"{self.kind} {self.starts_at:%Y-%m-%d %H:%M}"


class MetricCount(Base):
    """One success metric's rows in one kept span of the log, added up per cohort (the first
    day of the clients' start month), coach (0: none) and program month (0: none)."""

    __tablename__ = "metric_counts"
    __table_args__ = (
        UniqueConstraint("period_id", "metric", "cohort", "coach_id", "month"),
        Index("ix_metric_counts_cohort", "cohort"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("metric_periods.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(40))
    cohort: Mapped[date] = mapped_column(Date)
    coach_id: Mapped[int] = mapped_column(BigInteger)
    month: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    met: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float] = mapped_column(Float)

    def __str__(self) -> str:
        return f"{self.metric} {self.cohort:%Y-%m}"


class RiskModel(Base):
    """A fit of the clients-at-risk model (`scheduler.risk`) on the account's history: its
    weights, scaling, threshold and training figures, and who asked for it."""

    __tablename__ = "risk_models"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    trained_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(254))
    body: Mapped[dict[str, Any]]

    def __str__(self) -> str:
        return f"risk model {self.id} ({self.trained_at:%Y-%m-%d %H:%M} UTC)"


class ClientRisk(Base):
    """An active client's latest risk score: the probability of being overdue by more than 7
    days at the milestone of `month`, whether that is "at risk", the features it was computed
    from, and the reasons shown."""

    __tablename__ = "client_risks"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("risk_models.id", ondelete="CASCADE"))
    scored_at: Mapped[datetime]
    month: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)
    at_risk: Mapped[bool] = mapped_column(Boolean, index=True)
    features: Mapped[list[float]] = mapped_column(JSONType)
    reasons: Mapped[list[str]] = mapped_column(JSONType)

    def __str__(self) -> str:
        return f"risk {self.probability:.0%} for M{self.month}"


class AbTest(Base):
    """An A/B test of one client email template (`scheduler.abtests`): variant B overrides the
    subject and/or the bodies; `split` percent of clients (by a stable hash) get B. The goal
    (`goal`): the client opens the email's month's deliverable ("open"), or clicks one of the
    email's portal links ("click"), within `goal_days` of the email. Ended by keeping one
    variant (`kept`): a kept B then goes to every client."""

    __tablename__ = "ab_tests"
    __table_args__ = (Index("ix_ab_tests_template", "template"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    template: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str | None] = mapped_column(Text)  # None: the template's own
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    split: Mapped[int] = mapped_column(Integer)  # percent of clients given variant B
    goal: Mapped[str] = mapped_column(String(10), default="open", server_default="open")
    goal_days: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(254))
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(254))
    kept: Mapped[str | None] = mapped_column(String(1))  # "A" or "B" once ended

    def __str__(self) -> str:
        return f"A/B test {self.id} of {self.template}"
