"""The simulator: a scenario run through the real engine (planning, rules, the actor's code)
on a fresh in-memory database, with only the clock and the message transport simulated.
Yields one dict per automation outcome and per email, in time order. Simulated people act
after their delays: the coach approves, the client opens each deliverable, and (`react`) the
client answers an email by reading its month or clicking its link."""

from __future__ import annotations

import heapq
import itertools
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from scheduler import controls, enrollment, errors, execute, inputs, lookups, portal, review
from scheduler.clock import ManualClock
from scheduler.database import memory_engine
from scheduler.engine import (
    Context,
    Dispatch,
    Engine,
    Generated,
    GenerationRequest,
    OutgoingMessage,
    Unobservable,
)
from scheduler.generator import BuiltinGenerator
from scheduler.models import Admin, AutomationLog, Base, Client, Deliverable, Email
from scheduler.program import load_program
from scheduler.vocab import ADMIN_TEMPLATES, AutomationType, DeliverableStatus, LogStatus

ACTIONS = (
    "approve",
    "reject",
    "open",
    "generate",
    "pause",
    "resume",
    "adjust",
    "skip",
    "cancel",
    "business_plan_approved",
    "fail_generation",
)
NEEDS_MONTH = ("approve", "reject", "open", "generate", "skip", "cancel", "fail_generation")


class ScenarioError(ValueError):
    """The scenario is not one the simulator can run; the message says where."""


@dataclass(frozen=True)
class ClientSpec:
    key: str
    name: str
    email: str
    timezone: str
    start_date: date
    approve_after_hours: float | None
    open_after_hours: float | None
    onboarding: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSpec:
    index: int
    at: datetime
    client: str
    do: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Reaction:
    """What a simulated client does `after` an email reached them: "read" (open the email's
    month's deliverable, as soon as it is delivered) or "click" (follow a portal link of it)."""

    do: str
    after: timedelta


# Reading a month not delivered yet: the simulated client looks again this much later.
READ_AGAIN = timedelta(hours=6)


@dataclass(frozen=True)
class Scenario:
    now: datetime
    until: datetime
    send_hour: int
    admins: list[str]
    clients: list[ClientSpec]
    events: list[EventSpec]


# -- reading a scenario ------------------------------------------------------------------------


def load_scenario(text: str) -> Scenario:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError("the scenario must be a JSON object")
    known = {"now", "until", "send_hour", "admins", "clients", "events"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(
            f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    now = instant(data.get("now"), "now")
    until = instant(data.get("until"), "until")
    if until <= now:
        raise ScenarioError("until: must be after now")
    send_hour = data.get("send_hour", 9)
    if not isinstance(send_hour, int) or isinstance(send_hour, bool) or not 0 <= send_hour <= 23:
        raise ScenarioError(f"send_hour: must be a whole number 0-23, not {send_hour!r}")
    admins = []
    for i, admin in enumerate(listed(data, "admins")):
        where = f"admins[{i}]"
        if not isinstance(admin, dict) or not isinstance(admin.get("email"), str):
            raise ScenarioError(f"{where}: must be an object with an email")
        admins.append(checked(lambda a=admin: inputs.clean_email(a["email"]), f"{where}.email"))
    clients: list[ClientSpec] = []
    for i, raw in enumerate(listed(data, "clients")):
        clients.append(client_spec(raw, f"clients[{i}]"))
    keys = [c.key for c in clients]
    for key in keys:
        if keys.count(key) > 1:
            raise ScenarioError(f"clients: key {key!r} is used twice")
    emails = [c.email for c in clients]
    for email in emails:
        if emails.count(email) > 1:
            raise ScenarioError(f"clients: email {email!r} is used twice")
    events = [
        event_spec(raw, i, set(keys), now, until) for i, raw in enumerate(listed(data, "events"))
    ]
    return Scenario(now, until, send_hour, admins, clients, events)


def listed(data: dict[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ScenarioError(f"{name}: must be a list")
    return value


def instant(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ScenarioError(
            f"{where}: an ISO-8601 date-time is required, such as 2026-01-05T09:00:00Z"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def day_of(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: a date YYYY-MM-DD is required")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScenarioError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None


def hours(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ScenarioError(f"{where}: must be a number of hours >= 0, or null")
    return float(value)


def checked(fn: Callable[[], Any], where: str) -> Any:
    try:
        return fn()
    except errors.JourneyError as exc:
        raise ScenarioError(f"{where}: {exc.message.split(': ', 1)[-1]}") from None


def client_spec(raw: Any, where: str) -> ClientSpec:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        raise ScenarioError(f"{where}.key: a non-empty text is required")
    onboarding = raw.get("onboarding", {})
    if not isinstance(onboarding, dict):
        raise ScenarioError(f"{where}.onboarding: must be an object")
    return ClientSpec(
        key=key,
        name=checked(lambda: inputs.clean_name(raw.get("name") or ""), f"{where}.name"),
        email=checked(lambda: inputs.clean_email(raw.get("email") or ""), f"{where}.email"),
        timezone=checked(
            lambda: inputs.clean_zone(raw.get("timezone") or "UTC"), f"{where}.timezone"
        ),
        start_date=day_of(raw.get("start_date"), f"{where}.start_date"),
        approve_after_hours=hours(raw.get("approve_after_hours"), f"{where}.approve_after_hours"),
        open_after_hours=hours(raw.get("open_after_hours"), f"{where}.open_after_hours"),
        onboarding=onboarding,
    )


def event_spec(raw: Any, index: int, keys: set[str], now: datetime, until: datetime) -> EventSpec:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    at = instant(raw.get("at"), f"{where}.at")
    if not now <= at <= until:
        raise ScenarioError(f"{where}.at: {at:%Y-%m-%dT%H:%M:%SZ} is outside now..until")
    client = raw.get("client")
    if client not in keys:
        raise ScenarioError(f"{where}.client: no client with key {client!r}")
    do = raw.get("do")
    if do not in ACTIONS:
        raise ScenarioError(f"{where}.do: unknown action {do!r} (one of {', '.join(ACTIONS)})")
    params = {k: v for k, v in raw.items() if k not in ("at", "client", "do")}
    if do in NEEDS_MONTH:
        month = params.get("month")
        if not isinstance(month, int) or isinstance(month, bool) or month < 1:
            raise ScenarioError(f"{where}.month: {do} needs a month number")
    if do == "pause" and params.get("until") is not None:
        params["until"] = day_of(params["until"], f"{where}.until")
    if do == "adjust":
        params["start_date"] = day_of(params.get("start_date"), f"{where}.start_date")
    if do == "cancel":
        kind = params.get("type")
        if kind not in {t.value for t in AutomationType}:
            raise ScenarioError(f"{where}.type: cancel needs an automation type, not {kind!r}")
    if do == "fail_generation":
        times = params.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise ScenarioError(f"{where}.times: must be a whole number >= 0")
        params["times"] = times
    return EventSpec(index, at, client, do, params)


# -- running it --------------------------------------------------------------------------------


class SimTransport(Unobservable):
    """Delayed messages, delivered in simulated time order (simulated workers keep up: each
    message runs at its moment)."""

    def __init__(self) -> None:
        self.queue: list[tuple[datetime, int, int, int]] = []
        self.seq = itertools.count()

    def dispatch(self, items: Sequence[Dispatch]) -> None:
        for d in items:
            heapq.heappush(self.queue, (d.trigger_at, next(self.seq), d.automation_id, d.version))


class SimMailer:
    """Accepts every message (what was sent is read back from the outbox)."""

    def send(self, message: OutgoingMessage) -> None:
        return None


class FlakyGenerator:
    """The built-in generator, failing on demand (scenario `fail_generation`)."""

    def __init__(self) -> None:
        self.inner = BuiltinGenerator()
        self.failures: dict[tuple[str, int], int] = {}

    def generate(self, request: GenerationRequest) -> Generated:
        key = (request.client_name, request.month.number)
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            raise RuntimeError(f"simulated generator failure for M{request.month.number}")
        return self.inner.generate(request)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate(
    scenario: Scenario,
    warn: Callable[[str], None] | None = None,
    at_end: Callable[[Context], None] | None = None,
    at_start: Callable[[Context], None] | None = None,
    react: Callable[[Email], Reaction | None] | None = None,
) -> Iterator[dict[str, Any]]:
    """`at_start`, if given, acts on the simulated database before the clients enrol (an A/B
    test is started there); `react` says what the client does about each email they are sent;
    `at_end` reads the simulated database when the run is over (the clients at risk and A/B
    tests are measured on it)."""
    warn = warn or (lambda message: None)
    clock = ManualClock(scenario.now)
    transport = SimTransport()
    generator = FlakyGenerator()
    engine = Engine(
        clock=clock,
        program=load_program(None),
        dispatcher=transport,
        mailer=SimMailer(),
        generator=generator,
        send_hour=scenario.send_hour,
        # Every automation goes to the (simulated) transport when it is planned.
        horizon=scenario.until - scenario.now + timedelta(days=1),
        secret_key=secrets.token_urlsafe(32),
    )
    database = memory_engine()
    Base.metadata.create_all(database)
    sessions = sessionmaker(database, expire_on_commit=False)

    keys: dict[int, str] = {}
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    planned: set[tuple[str, int]] = set()
    # (at, seq, do, id, _): a deliverable's id to approve or open, an email's to read or click
    actions: list[tuple[datetime, int, str, int, int]] = []
    admin_templates = {str(t) for t in ADMIN_TEMPLATES}
    seq = itertools.count()
    last_log = last_email = 0

    with sessions() as session:
        ctx = engine.context(session)
        for address in scenario.admins:
            session.add(
                Admin(email=address, name="", timezone="UTC", active=True, created_at=clock.now())
            )
        session.commit()
        if at_start is not None:
            at_start(ctx)
            ctx.commit()
        for spec in scenario.clients:
            client = enrollment.enroll(
                ctx,
                name=spec.name,
                email=spec.email,
                start_date=spec.start_date,
                timezone=spec.timezone,
                onboarding=spec.onboarding,
            )
            ctx.commit()
            keys[client.id], ids[spec.key], names[spec.key] = spec.key, client.id, spec.name
        specs = {spec.key: spec for spec in scenario.clients}
        events = sorted(scenario.events, key=lambda e: (e.at, e.index))

        def outputs() -> Iterator[dict[str, Any]]:
            nonlocal last_log, last_email
            for entry in session.scalars(
                select(AutomationLog).where(AutomationLog.id > last_log).order_by(AutomationLog.id)
            ):
                last_log = entry.id
                if entry.status in (LogStatus.RETRYING, LogStatus.DEFERRED):
                    continue  # not an outcome: the automation's final line comes later
                detail = entry.detail + (f": {entry.error}" if entry.error else "")
                yield {
                    "at": iso(entry.at),
                    "kind": "automation",
                    "client": keys.get(entry.client_id),
                    "type": entry.type,
                    "month": entry.month,
                    "template": entry.template,
                    "status": entry.status,
                    "detail": detail,
                }
            for email in session.scalars(
                select(Email)
                .where(Email.id > last_email, Email.status == "SENT")
                .order_by(Email.id)
            ):
                last_email = email.id
                assert email.sent_at is not None
                reaction = (
                    react(email)
                    if react and email.client_id and email.template not in admin_templates
                    else None
                )
                if reaction is not None:
                    at = email.sent_at + reaction.after
                    heapq.heappush(actions, (at, next(seq), reaction.do, email.id, 0))
                yield {
                    "at": iso(email.sent_at),
                    "kind": "email",
                    "client": keys.get(email.client_id) if email.client_id else None,
                    "to": email.to_address,
                    "template": email.template,
                    "month": email.month,
                    "subject": email.subject,
                }

        def plan_people() -> None:
            """The simulated admin approves, the simulated client opens, after their delays."""
            for d in session.scalars(
                select(Deliverable).where(
                    Deliverable.status.in_(
                        [DeliverableStatus.PENDING_REVIEW, DeliverableStatus.DELIVERED]
                    )
                )
            ):
                spec = specs[keys[d.client_id]]
                if (
                    d.status == DeliverableStatus.PENDING_REVIEW
                    and spec.approve_after_hours is not None
                    and ("approve", d.id) not in planned
                    and d.generated_at is not None
                ):
                    planned.add(("approve", d.id))
                    at = d.generated_at + timedelta(hours=spec.approve_after_hours)
                    heapq.heappush(actions, (at, next(seq), "approve", d.id, 0))
                if (
                    d.status == DeliverableStatus.DELIVERED
                    and d.opened_at is None
                    and spec.open_after_hours is not None
                    and ("open", d.id) not in planned
                ):
                    planned.add(("open", d.id))
                    at = (d.delivered_at or clock.now()) + timedelta(hours=spec.open_after_hours)
                    heapq.heappush(actions, (at, next(seq), "open", d.id, 0))

        yield from outputs()
        plan_people()
        while True:
            candidates = []
            if transport.queue:
                candidates.append((transport.queue[0][0], 1))
            if events:
                candidates.append((events[0].at, 0))
            if actions:
                candidates.append((actions[0][0], 2))
            if not candidates:
                break
            at, which = min(candidates)
            if at > scenario.until:
                break
            clock.set(max(at, clock.now()))
            session.close()  # each step is a unit of work of its own, as in a worker
            if which == 1:
                _, _, automation_id, version = heapq.heappop(transport.queue)
                execute.run(ctx, automation_id, version)
            elif which == 0:
                event = events.pop(0)
                apply_event(ctx, event, ids[event.client], generator, names, warn)
            else:
                _, _, do, target, _ = heapq.heappop(actions)
                if do in ("read", "click"):
                    if not apply_reaction(ctx, do, target):  # not delivered yet
                        heapq.heappush(actions, (at + READ_AGAIN, next(seq), do, target, 0))
                else:
                    apply_person(ctx, do, target, warn)
            session.close()
            yield from outputs()
            plan_people()
        if at_end is not None:
            at_end(ctx)


def apply_event(
    ctx: Context,
    event: EventSpec,
    client_id: int,
    generator: FlakyGenerator,
    names: dict[str, str],
    warn: Callable[[str], None],
) -> None:
    client = ctx.session.get(Client, client_id)
    assert client is not None
    p = event.params
    try:
        match event.do:
            case "approve":
                review.approve(ctx, client, p["month"])
            case "reject":
                review.reject(ctx, client, p["month"], str(p.get("notes", "")))
            case "open":
                review.open_deliverable(ctx, client, p["month"])
            case "generate":
                review.generate_by_hand(ctx, client, p["month"], str(p.get("notes", "")))
            case "pause":
                controls.pause(ctx, client, until=p.get("until"), reason=str(p.get("reason", "")))
            case "resume":
                controls.resume(ctx, client)
            case "adjust":
                controls.adjust(ctx, client, p["start_date"])
            case "skip":
                controls.skip_month(ctx, client, p["month"])
            case "business_plan_approved":
                review.approve_business_plan(ctx, client)
            case "fail_generation":
                generator.failures[(names[event.client], p["month"])] = p["times"]
            case "cancel":
                targets = [
                    a
                    for a in lookups.pending(ctx, client, type=p["type"], month=p["month"])
                    if not p.get("template") or a.template == p["template"]
                ]
                if not targets:
                    raise errors.NotFound(f"no scheduled {p['type']} for M{p['month']}")
                for automation in targets:
                    controls.cancel(ctx, automation)
        ctx.commit()
    except errors.JourneyError as exc:
        ctx.rollback()
        warn(f"events[{event.index}] ({event.do} at {iso(event.at)}): {exc.message}")


def apply_person(ctx: Context, do: str, deliverable_id: int, warn: Callable[[str], None]) -> None:
    d = ctx.session.get(Deliverable, deliverable_id)
    client = ctx.session.get(Client, d.client_id) if d else None
    if d is None or client is None:
        return
    latest = lookups.latest_deliverable(ctx, client, d.month)
    if latest is None or latest.id != d.id:
        return
    try:
        if do == "approve" and d.status == DeliverableStatus.PENDING_REVIEW:
            review.approve(ctx, client, d.month)
        elif do == "open" and d.status == DeliverableStatus.DELIVERED and d.opened_at is None:
            review.open_deliverable(ctx, client, d.month)
        ctx.commit()
    except errors.JourneyError as exc:
        ctx.rollback()
        warn(f"simulated {do} of M{d.month}: {exc.message}")


def apply_reaction(ctx: Context, do: str, email_id: int) -> bool:
    """The client reads the email's month (False while it is not delivered yet: they look
    again later) or clicks its link, as the portal records them."""
    email = ctx.session.get(Email, email_id)
    client = ctx.session.get(Client, email.client_id) if email and email.client_id else None
    if email is None or client is None:
        return True
    try:
        if do == "click" and email.automation_id is not None:
            portal.click(ctx, client, email.automation_id)
        elif do == "read" and email.month is not None:
            portal.read(ctx, client, email.month)
        ctx.commit()
    except errors.NotFound:  # not delivered yet (or another client's email)
        ctx.rollback()
        return do != "read"
    except errors.JourneyError:  # the month was skipped, say: nothing to read
        ctx.rollback()
    return True
