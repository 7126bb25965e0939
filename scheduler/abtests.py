"""A/B tests of client email templates.

A test gives variant B (its own subject and/or bodies, Jinja with the template's variables) to
`split` percent of clients, chosen by a stable hash of the test and the client: a client
always gets the same variant. `variant_for` is the one point where email rendering applies it
(`scheduler.emails.outbox_row`), and every email of a tested template records its test and
variant. The goal, within `goal_days` of the email: the client opens the email's month's
deliverable ("open"), or clicks one of the email's portal links ("click": each client email's
links carry its signed id, and the portal page they open posts the click, recorded on the
email's outbox row by `scheduler.portal.click`). Results compare the two shares with a 95%
confidence interval of the difference; the admin ends the test by keeping one variant (a kept
B then goes to every client)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import ColumnElement, Interval, and_, func, literal, or_, select

from scheduler.engine import Context
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import AbTest, Deliverable, Email
from scheduler.vocab import ADMIN_TEMPLATES, Template

# Client emails that belong to a month (the goal reads that month's deliverable).
TESTABLE = tuple(
    t for t in Template if t not in ADMIN_TEMPLATES and t not in (Template.PAUSE_CONFIRMATION,)
)
# The goals, as the panel and the CLI say them (with the number of days).
GOALS = {
    "open": "the month's deliverable opened",
    "click": "a portal link in the email clicked",
}
LINKS = frozenset({"portal_url", "deliverable_url"})  # the links whose clicks count
MIN_SENDS = 30  # per variant, before any verdict
Z = 1.96  # 95%
Z_POWER = 0.84  # 80% power, for the sample still needed


@dataclass(frozen=True)
class Variant:
    test_id: int
    variant: str  # "A" or "B"
    subject: str | None = None
    text: str | None = None
    html: str | None = None


def sandbox() -> SandboxedEnvironment:
    """Variants are written in the panel: rendered in Jinja's sandbox, every variable required."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def goal_words(test: AbTest) -> str:
    """How the test's goal reads: "a portal link in the email clicked within 7 days of the
    email"."""
    days = "1 day" if test.goal_days == 1 else f"{test.goal_days} days"
    return f"{GOALS.get(test.goal, test.goal)} within {days} of the email"


def bucket(test_id: int, client_id: int) -> int:
    """0-99, the same for a client in a test every time (not Python's salted hash)."""
    digest = hashlib.sha256(f"ab:{test_id}:{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def assign(test: AbTest, client_id: int) -> str:
    if test.ended_at is not None:
        return test.kept or "A"
    return "B" if bucket(test.id, client_id) < test.split else "A"


def current(ctx: Context, template: str) -> AbTest | None:
    """The template's running test, or an ended one that kept B (B then goes to everyone).
    Read once per transaction for every template (a batch of emails asks it for each)."""
    return ctx.memo(CURRENT, lambda: in_force(ctx)).get(template)


CURRENT = "abtests.current"


def in_force(ctx: Context) -> dict[str, AbTest]:
    """Each template's test in force: its running test, else the latest ended one that kept B."""
    found: dict[str, AbTest] = {}
    for test in ctx.session.scalars(
        select(AbTest)
        .where(or_(AbTest.ended_at.is_(None), AbTest.kept == "B"))
        .order_by(AbTest.ended_at.is_(None).desc(), AbTest.id.desc())
    ):
        found.setdefault(test.template, test)
    return found


def variant_for(
    ctx: Context, template: str, client_id: int | None, context: dict[str, Any]
) -> Variant | None:
    """THE point where a test reaches an email: which variant this client gets, rendered with
    the email's variables (None: no test of this template, or not a client's email)."""
    if client_id is None or template not in TESTABLE:
        return None
    test = current(ctx, template)
    if test is None:
        return None
    chosen = assign(test, client_id)
    if chosen == "A":
        return Variant(test.id, "A")
    env = sandbox()

    def rendered(source: str | None) -> str | None:
        return None if source is None else env.from_string(source).render(context)

    html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
    return Variant(
        test.id,
        "B",
        " ".join((rendered(test.subject) or "").split()) or None,
        rendered(test.text_body),
        None if test.html_body is None else html_env.from_string(test.html_body).render(context),
    )


def start(
    ctx: Context,
    *,
    template: str,
    name: str = "",
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    split: int = 50,
    goal: str = "open",
    goal_days: int = 7,
    actor: str,
) -> AbTest:
    """Start a test of `template`: one running test per template, a variant that changes
    something and compiles (and, for the click goal, whose own bodies keep a portal link)."""
    if template not in TESTABLE:
        names = ", ".join(TESTABLE)
        raise Invalid(f"template: only client emails can be tested ({names})", "template")
    subject, text, html = (v if v and v.strip() else None for v in (subject, text, html))
    if subject is None and text is None and html is None:
        raise Invalid("subject: give the variant a subject, a text body or an HTML body", "subject")
    if not 1 <= split <= 99:
        raise Invalid("split: 1 to 99 percent of clients get the variant", "split")
    if goal not in GOALS:
        raise Invalid(f"goal: {' or '.join(GOALS)}", "goal")
    if not 1 <= goal_days <= 60:
        raise Invalid("goal_days: 1 to 60 days", "goal_days")
    env = sandbox()
    for field, source in (("subject", subject), ("text", text), ("html", html)):
        if source is not None:
            if len(source) > 100_000:
                raise Invalid(f"{field}: at most 100,000 characters", field)
            try:
                parsed = env.parse(source)
            except TemplateError as exc:
                raise Invalid(f"{field}: not a valid template ({exc})", field) from None
            if (
                goal == "click"
                and field != "subject"
                and not LINKS & meta.find_undeclared_variables(parsed)
            ):
                raise Invalid(
                    f"{field}: the goal counts clicks on the email's portal link, and this body "
                    "has none ({{ portal_url }} or {{ deliverable_url }})",
                    field,
                )
    running = ctx.session.scalar(
        select(AbTest.id).where(AbTest.template == template, AbTest.ended_at.is_(None))
    )
    if running is not None:
        raise Conflict(f"template: {template} is already being tested (test {running})", "template")
    test = AbTest(
        template=template,
        name=name.strip()[:200],
        subject=subject,
        text_body=text,
        html_body=html,
        split=split,
        goal=goal,
        goal_days=goal_days,
        started_at=ctx.now(),
        started_by=actor,
    )
    ctx.session.add(test)
    ctx.session.flush()
    ctx.forget(CURRENT)
    return test


def find(ctx: Context, test_id: int) -> AbTest:
    test = ctx.session.get(AbTest, test_id) if 0 < test_id < 2**63 else None
    if test is None:
        raise NotFound(f"no A/B test {test_id}")
    return test


def end(ctx: Context, test: AbTest, keep: str, actor: str) -> AbTest:
    """End the test keeping one variant: A (the template as it is) or B (the variant, from now
    on for every client)."""
    if keep not in ("A", "B"):
        raise Invalid("keep: A or B", "keep")
    if test.ended_at is not None:
        raise Conflict(f"A/B test {test.id} already ended (kept {test.kept})")
    if keep == "B":
        for other in ctx.session.scalars(
            select(AbTest).where(
                AbTest.template == test.template, AbTest.kept == "B", AbTest.id != test.id
            )
        ):
            other.kept = "A"  # the newer variant replaces an older kept one
    test.ended_at, test.ended_by, test.kept = ctx.now(), actor, keep
    ctx.session.flush()
    ctx.forget(CURRENT)
    return test


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    variant: str
    # Emails sent whose goal window has closed: an email still in its window is pending, even
    # one that converted already (counting those would favour the variant that converts sooner).
    sends: int
    conversions: int  # of those, the ones that reached the goal within their window

    @property
    def rate(self) -> float | None:
        return self.conversions / self.sends if self.sends else None


@dataclass(frozen=True)
class Result:
    test: AbTest
    a: Arm
    b: Arm
    pending: int  # sent, goal window still open (counted once it closes)
    difference: float | None  # B - A
    low: float | None
    high: float | None
    verdict: str  # "no winner yet", "variant better", "variant worse"
    says: str  # the verdict in a sentence, with the sample still needed


def within(ctx: Context, instant: Any, days: int) -> ColumnElement[bool]:
    """`instant` (a column) falls within `days` of the email's sending."""
    if ctx.session.get_bind().dialect.name == "sqlite":  # instants are ISO text there
        return func.julianday(instant) <= func.julianday(Email.sent_at) + days
    return instant <= Email.sent_at + literal(timedelta(days=days), Interval())


def converted(ctx: Context, test: AbTest) -> ColumnElement[bool]:
    """Whether an email of the test reached the test's goal in time."""
    if test.goal == "click":
        return and_(Email.clicked_at.is_not(None), within(ctx, Email.clicked_at, test.goal_days))
    return (
        select(Deliverable.id)
        .where(
            Deliverable.client_id == Email.client_id,
            Deliverable.month == Email.month,
            Deliverable.opened_at >= Email.sent_at,
            within(ctx, Deliverable.opened_at, test.goal_days),
        )
        .exists()
    )


def result(ctx: Context, test: AbTest) -> Result:
    """Sends and goal conversions of each variant, the difference B - A with its 95%
    confidence interval (normal approximation), and a plain verdict."""
    closed = Email.sent_at <= ctx.now() - timedelta(days=test.goal_days)
    rows = ctx.session.execute(
        select(
            Email.variant,
            func.count().filter(closed),
            func.count().filter(and_(closed, converted(ctx, test))),
            func.count().filter(~closed),
        )
        .where(Email.ab_test_id == test.id, Email.status == "SENT", Email.sent_at.is_not(None))
        .group_by(Email.variant)
    ).all()
    found = {v: (int(s), int(c), int(p)) for v, s, c, p in rows}
    a = Arm("A", *found.get("A", (0, 0, 0))[:2])
    b = Arm("B", *found.get("B", (0, 0, 0))[:2])
    pending = sum(p for _, _, p in found.values())
    return judged(test, a, b, pending)


def judged(test: AbTest, a: Arm, b: Arm, pending: int) -> Result:
    if a.rate is None or b.rate is None:
        says = f"No winner yet: each variant needs sends (at least {MIN_SENDS})."
        return Result(test, a, b, pending, None, None, None, "no winner yet", says)
    diff = b.rate - a.rate
    se = math.sqrt(a.rate * (1 - a.rate) / a.sends + b.rate * (1 - b.rate) / b.sends)
    low, high = diff - Z * se, diff + Z * se
    fewest = min(a.sends, b.sends)
    if fewest >= MIN_SENDS and low > 0:
        verdict, says = "variant better", "Variant B is better: keep it."
    elif fewest >= MIN_SENDS and high < 0:
        verdict, says = "variant worse", "Variant B is worse: keep A."
    else:
        # Sends per variant to tell apart the difference seen (at least 5 points), 80% power.
        d = max(abs(diff), 0.05)
        spread = a.rate * (1 - a.rate) + b.rate * (1 - b.rate) or 0.5
        needed = max(MIN_SENDS, math.ceil((Z + Z_POWER) ** 2 * spread / d**2))
        more = max(0, needed - fewest)
        verdict = "no winner yet"
        says = (
            f"No winner yet: about {more} more sends per variant to tell a difference of "
            f"{100 * d:.0f} points."
        )
    return Result(test, a, b, pending, diff, low, high, verdict, says)


def tests(ctx: Context) -> list[AbTest]:
    return list(ctx.session.scalars(select(AbTest).order_by(AbTest.id.desc())))
