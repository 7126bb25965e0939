"""Every email template: declares its variables truthfully, renders for a realistic client,
escapes what users typed, and fails loudly rather than send "Hi ,"."""

from __future__ import annotations

from datetime import date

import pytest
from jinja2 import meta

from scheduler import emails
from scheduler.vocab import Template
from web.extensions import db

MACROS = {"button", "items", "dates"}  # imported from email/_macros.html, not variables
CLIENT_TEMPLATES = [t for t in Template if t is not Template.WEEKLY_DIGEST]


def used(name: str, seen: set[str] | None = None) -> set[str]:
    """Every variable a template (and what it extends or includes) reads."""
    env = emails.environment()
    seen = seen if seen is not None else set()
    tree = env.parse(env.loader.get_source(env, name)[0])
    found = set(meta.find_undeclared_variables(tree))
    for ref in meta.find_referenced_templates(tree):
        if ref and ref not in seen:
            seen.add(ref)
            found |= used(ref, seen)
    return found - MACROS


@pytest.mark.parametrize("template", list(Template))
def test_each_template_declares_exactly_the_variables_it_uses(template):
    declared = emails.declared(template)
    reads = used(f"email/{template}.txt") | used(f"email/{template}.html")
    reads |= used("email/_footer.txt")
    assert declared.required | declared.optional == reads
    assert not declared.required & declared.optional


@pytest.fixture
def sarah(harness):
    client = harness.enroll(
        date(2026, 1, 5),
        "America/New_York",
        onboarding={"business": "Sunrise Yoga Studio"},
    )
    return client


@pytest.mark.parametrize("template", CLIENT_TEMPLATES)
def test_each_template_renders_for_a_realistic_client(harness, sarah, template):
    rendered = emails.preview(harness.ctx, template, sarah)
    assert rendered.subject and "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "Sarah" in body
        assert "None" not in body and "Hi ," not in body and "{{" not in body
    assert rendered.html.lstrip().startswith("<!doctype html>")
    if template in (Template.REMINDER_UPCOMING, Template.DELIVERABLE_READY):
        assert "Foundation &amp; Business Plan" in rendered.html  # month 1's title
    if template is Template.REMINDER_UPCOMING:
        assert "Monday, January 5, 2026" in rendered.text  # in the client's own format
    if template is Template.DELIVERABLE_READY:
        assert "Month 2: Brand Identity on Wednesday, February 4, 2026" in rendered.text
    if not template.startswith(("ADMIN", "REVI", "AUTOMATION")):
        assert "/portal/" in rendered.html  # a link to the client's own portal
        assert "/portal/unsubscribe/" in rendered.text  # and the footer's way out
    if template in (Template.PAUSE_CONFIRMATION, Template.WELCOME_BACK):
        assert "Month 8" in rendered.text  # the updated timeline


def test_names_and_notes_cannot_inject_html_or_headers(harness):
    client = harness.enroll(
        date(2026, 1, 5), name="<script>alert(1)</script> Eve", email="eve@example.com"
    )
    for template in (Template.REMINDER_UPCOMING, Template.ADMIN_ESCALATION):
        rendered = emails.preview(harness.ctx, template, client)
        assert "<script>" not in rendered.html
        assert "&lt;script&gt;" in rendered.html
    # A name with line breaks cannot add a header line through the subject.
    client.name = "Eve\r\nBcc: victim@example.com"
    db.session.flush()
    rendered = emails.preview(harness.ctx, Template.ADMIN_ESCALATION, client)
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_a_missing_or_empty_variable_fails_loudly(harness, sarah):
    automation = harness.one(sarah, template=Template.REMINDER_UPCOMING, month=1)
    context = emails.context_for(harness.ctx, automation, sarah, Template.REMINDER_UPCOMING)
    emails.render(Template.REMINDER_UPCOMING, context)  # complete: fine
    with pytest.raises(emails.MissingVariable, match="no value for month_title"):
        emails.render(
            Template.REMINDER_UPCOMING, {k: v for k, v in context.items() if k != "month_title"}
        )
    with pytest.raises(emails.MissingVariable, match="client is empty"):
        emails.render(Template.REMINDER_UPCOMING, context | {"client": None})
