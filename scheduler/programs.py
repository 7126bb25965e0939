"""The program and its emails as versioned data: version 1 is the shipped program file; admins
edit one draft; publishing makes it an immutable version, for new enrollments only or also for
the clients in flight (whose pending automations are replanned); rolling back publishes an
earlier version's content again. Every publish is one transaction and is recorded."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from scheduler import emails, replan
from scheduler.engine import Context, Version
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import Client, ProgramPublication, ProgramVersion
from scheduler.program import (
    Program,
    ProgramError,
    differences,
    parse_program,
    parse_toml,
    program_data,
    to_toml,
)
from scheduler.vocab import OPTIONAL_TEMPLATES, Template

DRAFT = "DRAFT"
PUBLISHED = "PUBLISHED"

# The template files an admin edits: each email's subject and text, and its HTML. The layout
# (base.html, _macros.html) and the text footer (_footer.txt, with the preferences and unsubscribe
# links) stay as shipped.
EDITABLE = tuple(f"{t.value}.{ext}" for t in Template for ext in ("txt", "html"))

# What every client or admin email about a client is given (`emails.context_for`).
CLIENT_VARIABLES = frozenset(
    {
        "template",
        "audience",
        "program",
        "program_length",
        "client",
        "month",
        "month_title",
        "summary",
        "deliverables",
        "achievements",
        "prepare",
        "due_date",
        "due_note",
        "progress",
        "next",
        "timeline",
        "deliverable",
        "reason",
        "portal_url",
        "deliverable_url",
        "preferences_url",
        "unsubscribe_url",
        "client_url",
        "hold",
        "failure",
    }
)
# What the weekly digest is given (`digest.context`).
DIGEST_VARIABLES = frozenset(
    {
        "audience",
        "preferences_url",
        "unsubscribe_url",
        "admin",
        "program",
        "zone",
        "week",
        "fired_counts",
        "fired_total",
        "fired",
        "failures",
        "coming_counts",
        "coming_total",
        "coming",
        "list_limit",
        "panel_url",
        "fired_url",
        "coming_url",
    }
)


def variables(template: Template) -> frozenset[str]:
    """The variables `template` may use."""
    return DIGEST_VARIABLES if template is Template.WEEKLY_DIGEST else CLIENT_VARIABLES


def shipped_templates() -> dict[str, str]:
    return {name: emails.shipped_source(name) or "" for name in EDITABLE}


def seed_row(program: Program, now: datetime) -> dict[str, Any]:
    """Version 1: the program file and the shipped templates (the migration inserts it)."""
    return {
        "number": 1,
        "status": PUBLISHED,
        "definition": program_data(program),
        "templates": shipped_templates(),
        "based_on": None,
        "note": "the shipped program",
        "created_at": now,
        "created_by": "shipped",
        "published_at": now,
        "published_by": "shipped",
    }


def ensure_seeded(ctx: Context) -> None:
    """Store version 1 if the database has no version yet (a database made without the
    migrations: tests, the simulator)."""
    if ctx.session.scalar(select(func.count()).select_from(ProgramVersion)):
        return
    ctx.session.add(ProgramVersion(**seed_row(ctx.engine.program, ctx.now())))
    ctx.session.flush()


def published(ctx: Context) -> list[ProgramVersion]:
    ensure_seeded(ctx)
    return list(
        ctx.session.scalars(
            select(ProgramVersion)
            .where(ProgramVersion.status == PUBLISHED)
            .order_by(ProgramVersion.number)
        )
    )


def clients_on(ctx: Context) -> dict[int, int]:
    """How many clients in flight run each version."""
    rows = ctx.session.execute(
        select(Client.program_version, func.count())
        .where(Client.completed_at.is_(None))
        .group_by(Client.program_version)
    ).all()
    return {int(v or 1): int(n) for v, n in rows}


def get_version(ctx: Context, number: int) -> ProgramVersion:
    if not isinstance(number, int) or not 0 < number < 2**31:
        raise NotFound(f"there is no program version {number}", "version")
    ensure_seeded(ctx)
    row = ctx.session.scalar(
        select(ProgramVersion).where(
            ProgramVersion.number == number, ProgramVersion.status == PUBLISHED
        )
    )
    if row is None:
        raise NotFound(f"there is no program version {number}", "version")
    return row


def draft(ctx: Context) -> ProgramVersion | None:
    return ctx.session.scalar(select(ProgramVersion).where(ProgramVersion.status == DRAFT))


def start_draft(ctx: Context, actor: str, base: int | None = None) -> ProgramVersion:
    """The draft, started from version `base` (the current one by default) if there is none."""
    found = draft(ctx)
    if found is not None:
        return found
    source = get_version(ctx, base or ctx.current_version())
    row = ProgramVersion(
        number=None,
        status=DRAFT,
        definition=dict(source.definition),
        templates=dict(source.templates or {}) or shipped_templates(),
        based_on=source.number,
        note="",
        created_at=ctx.now(),
        created_by=actor,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return row


def discard_draft(ctx: Context) -> None:
    found = draft(ctx)
    if found is None:
        raise NotFound("there is no draft", "draft")
    ctx.session.delete(found)


def check_program(data: Any) -> Program:
    """The program `data` describes, checked exactly as `journey program check` checks a file;
    Invalid names the faulty field."""
    try:
        return parse_program(data if isinstance(data, dict) else {})
    except ProgramError as exc:
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message else "program"
        raise Invalid(message, field) from None


def check_toml(source: str) -> Program:
    try:
        return parse_toml(source)
    except ProgramError as exc:
        raise Invalid(str(exc), "program") from None


def template_problems(templates: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with each template file that is wrong: broken Jinja, a variable the
    email is not given, no subject or body block, or an optional email without its unsubscribe
    link. Checked in the sandbox emails render in."""
    env = emails.environment(None)
    problems: dict[str, str] = {}
    for name in EDITABLE:
        source = templates.get(name)
        if source is None:
            continue
        template = Template(name.rsplit(".", 1)[0])
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            problems[name] = f"line {exc.lineno}: {exc.message}"
            continue
        private = [
            n.attr if isinstance(n, nodes.Getattr) else str(n.arg.value)  # type: ignore[attr-defined]
            for n in tree.find_all((nodes.Getattr, nodes.Getitem))
            if (isinstance(n, nodes.Getattr) and n.attr.startswith("_"))
            or (
                isinstance(n, nodes.Getitem)
                and isinstance(n.arg, nodes.Const)
                and str(n.arg.value).startswith("_")
            )
        ]
        if private:
            problems[name] = f"{private[0]}: a template may not reach names starting with _"
            continue
        allowed = variables(template)
        imported = {n.target for n in tree.find_all(nodes.Import)} | {
            name if isinstance(name, str) else name[1]
            for n in tree.find_all(nodes.FromImport)
            for name in n.names
        }
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed - imported)
        if unknown:
            problems[name] = (
                f"unknown variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                f"(this email is given: {', '.join(sorted(allowed))})"
            )
            continue
        blocks = {b.name for b in tree.find_all(nodes.Block)}
        if name.endswith(".txt"):
            found = emails.DECLARATION.match(source)
            if found is None:
                problems[name] = (
                    "the first line must declare the variables: {# variables: a, b | optional: c #}"
                )
                continue
            named = {
                n.strip()
                for part in (found["required"], found["optional"] or "")
                for n in part.split(",")
                if n.strip()
            }
            if named - allowed:
                problems[name] = f"declares unknown variables: {', '.join(sorted(named - allowed))}"
                continue
            if not {"subject", "body"} <= blocks:
                problems[name] = "needs a {% block subject %} and a {% block body %}"
                continue
        elif template in OPTIONAL_TEMPLATES:
            extends = [
                n.template.value
                for n in tree.find_all(nodes.Extends)
                if isinstance(n.template, nodes.Const)
            ]
            keeps_footer = "email/base.html" in extends and "footer" not in blocks
            if not keeps_footer and "unsubscribe_url" not in meta.find_undeclared_variables(tree):
                problems[name] = (
                    "an optional email must keep its unsubscribe link: keep the layout's footer "
                    "or link to {{ unsubscribe_url }}"
                )
    return problems


def update_draft(
    ctx: Context,
    actor: str,
    *,
    definition: dict[str, Any] | None = None,
    templates: Mapping[str, str] | None = None,
    note: str | None = None,
) -> ProgramVersion:
    """Change the draft (started if there is none): the program, some template files, the
    note. Refused as a whole, with the field named, when anything is invalid."""
    row = start_draft(ctx, actor)
    if definition is not None:
        check_program(definition)
        row.definition = dict(definition)
    if templates is not None:
        unknown = sorted(set(templates) - set(EDITABLE))
        if unknown:
            raise Invalid(f"{unknown[0]}: not an email template", unknown[0])
        merged = dict(row.templates or {}) | {k: str(v) for k, v in templates.items()}
        merged = {k: v.replace("\r\n", "\n") for k, v in merged.items()}
        problems = template_problems({k: merged[k] for k in templates})
        if problems:
            name, message = next(iter(sorted(problems.items())))
            raise Invalid(f"{name}: {message}", name)
        row.templates = merged
    if note is not None:
        row.note = str(note).strip()[:2000]
    return row


def as_version(row: ProgramVersion) -> Version:
    """A stored version (or the draft, as number 0) as the engine runs it."""
    return Version(row.number or 0, check_program(row.definition), dict(row.templates or {}))


# -- preview, publish, roll back ------------------------------------------------------------------


def preview(ctx: Context, applies_to: str, target: ProgramVersion | None = None) -> replan.Impact:
    """What publishing the draft (or `target`, for a roll back) would do."""
    check_applies(applies_to)
    row = target or draft(ctx)
    if row is None:
        raise NotFound("there is no draft: edit the program or an email first", "draft")
    return replan.impact(ctx, check_program(row.definition), applies_to)


def check_applies(applies_to: str) -> str:
    if applies_to not in replan.APPLIES:
        raise Invalid(
            f"applies_to: {applies_to!r} is not one of {', '.join(replan.APPLIES)}", "applies_to"
        )
    return applies_to


@dataclass(frozen=True)
class Published:
    version: ProgramVersion
    record: ProgramPublication
    impact: replan.Impact


def publish(ctx: Context, actor: str, applies_to: str, note: str | None = None) -> Published:
    """Make the draft the next version, for new enrollments only, or also for the clients in
    flight. One transaction (the caller commits): every client ends on one version or the
    other."""
    check_applies(applies_to)
    row = ctx.session.scalar(
        select(ProgramVersion).where(ProgramVersion.status == DRAFT).with_for_update()
    )
    if row is None:
        raise NotFound("there is no draft to publish", "draft")
    problems = template_problems(row.templates or {})
    if problems:
        name, message = next(iter(sorted(problems.items())))
        raise Invalid(f"{name}: {message}", name)
    if note is not None:
        row.note = str(note).strip()[:2000]
    return _make_current(ctx, row, actor, applies_to, rollback_of=None)


def rollback(ctx: Context, actor: str, to: int, applies_to: str) -> Published:
    """Publish version `to`'s program and emails again, as a new version."""
    check_applies(applies_to)
    source = get_version(ctx, to)
    if to == ctx.current_version():
        raise Conflict(f"version {to} is already the current version", "version")
    row = ProgramVersion(
        number=None,
        status=DRAFT,
        definition=dict(source.definition),
        templates=dict(source.templates or {}),
        based_on=to,
        note=f"roll back to version {to}",
        created_at=ctx.now(),
        created_by=actor,
    )
    ctx.session.add(row)
    return _make_current(ctx, row, actor, applies_to, rollback_of=to)


def _make_current(
    ctx: Context, row: ProgramVersion, actor: str, applies_to: str, rollback_of: int | None
) -> Published:
    ensure_seeded(ctx)
    previous = ctx.current_version()
    number = previous + 1
    program = check_program(row.definition)
    now = ctx.now()
    row.number = number
    row.status = PUBLISHED
    row.published_at = now
    row.published_by = actor
    try:
        ctx.session.flush()
    except IntegrityError:
        ctx.rollback()
        raise Conflict("another version was published meanwhile: reload and try again") from None
    done = replan.impact(ctx, program, applies_to)
    moved = replan.carry_out(ctx, done, number)
    record = ProgramPublication(
        at=now,
        actor=actor,
        version=number,
        previous=previous,
        rollback_of=rollback_of,
        applies_to=applies_to,
        clients_moved=len(done.clients) if applies_to == replan.IN_FLIGHT else 0,
        automations_moved=moved,
        summary=done.summary(),
        detail={
            "clients": [c.client_id for c in done.clients],
            "in_flight": done.in_flight,
            "moves": done.count("moves"),
            "appears": done.count("appears"),
            "disappears": done.count("disappears"),
            "late": done.late,
        },
    )
    ctx.session.add(record)
    ctx.published(number)
    return Published(row, record, done)


def publications(ctx: Context, limit: int = 50) -> list[ProgramPublication]:
    return list(
        ctx.session.scalars(
            select(ProgramPublication).order_by(ProgramPublication.id.desc()).limit(limit)
        )
    )


# -- reading versions -----------------------------------------------------------------------------


def export_toml(ctx: Context, number: int) -> str:
    return to_toml(check_program(get_version(ctx, number).definition))


@dataclass(frozen=True)
class Diff:
    program: list[tuple[str, str, str]]  # field, old, new
    templates: dict[str, str]  # file name -> unified diff


def diff(ctx: Context, old: ProgramVersion, new: ProgramVersion) -> Diff:
    program = differences(check_program(old.definition), check_program(new.definition))
    changed: dict[str, str] = {}
    for name in EDITABLE:
        a = (old.templates or {}).get(name) or emails.shipped_source(name) or ""
        b = (new.templates or {}).get(name) or emails.shipped_source(name) or ""
        if a != b:
            changed[name] = "".join(
                difflib.unified_diff(
                    a.splitlines(keepends=True),
                    b.splitlines(keepends=True),
                    f"{old}/{name}",
                    f"{new}/{name}",
                )
            )
    return Diff(program, changed)


def find(ctx: Context, ref: str) -> ProgramVersion:
    """A version by number, or "draft"."""
    text = str(ref).strip().lower()
    if text == "draft":
        row = draft(ctx)
        if row is None:
            raise NotFound("there is no draft", "version")
        return row
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise Invalid(f"version: {ref!r} is not a version number or 'draft'", "version")
    return get_version(ctx, int(text))
