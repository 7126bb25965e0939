"""The program and its emails as versioned data (SQLite and PostgreSQL): drafts checked like
`journey program check`, the impact on clients in flight computed by the planning code, publish
and roll back in one transaction, stale messages of moved automations doing nothing."""

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy import select

from scheduler import emails, enrollment, errors, programs, replan
from scheduler.models import AutomationLog, Client, ProgramPublication, ProgramVersion
from scheduler.program import DEFAULT_PROGRAM, ProgramError, load_program, parse_toml, to_toml
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import Template

NY = "America/New_York"


def at(*args):
    return datetime(*args, tzinfo=UTC)


def edited(ctx, **schedule):
    definition = programs.start_draft(ctx, "coach@example.com").definition
    return {**definition, "schedule": {**definition["schedule"], **schedule}}


def test_the_shipped_program_is_version_one_and_clients_record_their_version(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    versions = programs.published(harness.ctx)
    assert [v.number for v in versions] == [1]
    assert programs.check_program(versions[0].definition) == load_program()
    assert set(versions[0].templates) == set(programs.EDITABLE)
    assert client.program_version == 1
    assert {a.program_version for a in harness.automations(client)} == {1}


def test_a_draft_is_checked_exactly_like_program_check(harness, tmp_path):
    ctx = harness.ctx
    bad = edited(ctx, overdue_reminder_days_after=-2)
    with pytest.raises(errors.Invalid) as refused:
        programs.update_draft(ctx, "coach@example.com", definition=bad)
    assert refused.value.field == "schedule.overdue_reminder_days_after"
    path = tmp_path / "p.toml"
    path.write_text(
        DEFAULT_PROGRAM.read_text().replace(
            "overdue_reminder_days_after = 3", "overdue_reminder_days_after = -2"
        )
    )
    with pytest.raises(ProgramError) as checked:
        load_program(path)
    assert str(checked.value).endswith(refused.value.message)
    # A version exported as TOML reads back as the same program.
    assert parse_toml(programs.export_toml(ctx, 1)) == load_program()


def test_impact_preview_then_publish_moves_the_pending_overdue_reminders(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    finished = harness.enroll(date(2026, 1, 5), NY, email="done@example.com", name="Done Client")
    harness.run_until(at(2026, 2, 1))
    finished = harness.refresh(finished)
    finished.completed_at = harness.clock.now()
    harness.ctx.commit()
    ctx = harness.ctx
    programs.update_draft(
        ctx, "coach@example.com", definition=edited(ctx, overdue_reminder_days_after=5)
    )
    ctx.commit()
    new_only = programs.preview(ctx, replan.NEW_ONLY)
    assert new_only.clients == [] and "new enrollments only" in new_only.summary()
    seen = programs.preview(harness.ctx, replan.IN_FLIGHT)
    assert seen.in_flight == 1
    (only,) = seen.clients
    assert only.client_id == client.id
    moved = {c.month: c for c in only.changes}
    # M1's overdue reminder has run (Jan 8); M2..M8 move from +3 to +5 days, in New York time.
    assert sorted(moved) == [2, 3, 4, 5, 6, 7, 8]
    assert all(c.kind == "moves" and c.template == "REMINDER_OVERDUE" for c in only.changes)
    assert moved[2].old_at == at(2026, 2, 7, 14) and moved[2].new_at == at(2026, 2, 9, 14)
    assert seen.summary() == "7 automations move for 1 client"
    as_json = seen.as_dict()
    assert as_json["clients"][0]["changes"][0]["new_at"] == "2026-02-09T09:00:00-05:00"

    overdue2 = harness.one(client, template="REMINDER_OVERDUE", month=2)
    stale_version = overdue2.version
    done = harness.do(programs.publish, "coach@example.com", replan.IN_FLIGHT)
    assert done.version.number == 2 and done.record.clients_moved == 1
    assert done.record.automations_moved == 7 and done.record.actor == "coach@example.com"
    assert done.record.detail["clients"] == [client.id]
    client, finished = harness.refresh(client), harness.refresh(finished)
    assert (client.program_version, finished.program_version) == (2, 1)
    overdue2 = harness.refresh(overdue2)
    assert overdue2.trigger_at == at(2026, 2, 9, 14) and overdue2.program_version == 2
    assert overdue2.version == stale_version + 1
    # The old message (still queued for Feb 7) does nothing; the new one runs it once.
    harness.run_until(at(2026, 2, 8))
    assert harness.refresh(overdue2).status == S.SCHEDULED
    harness.run_until(at(2026, 2, 10))
    overdue2 = harness.refresh(overdue2)
    assert overdue2.status in (S.COMPLETED, S.SKIPPED)
    logs = [r for r in harness.logs(client) if r.automation_id == overdue2.id]
    assert len(logs) == 1 and logs[0].program_version == 2
    # New enrollments get the new version.
    late = harness.enroll(date(2026, 3, 2), NY, email="new@example.com", name="New Client")
    assert late.program_version == 2
    assert harness.one(late, template="REMINDER_OVERDUE", month=1).trigger_at == at(2026, 3, 7, 14)


def test_new_enrollments_only_leaves_clients_in_flight_on_their_version(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    ctx = harness.ctx
    before = {a.id: (a.trigger_at, a.version) for a in harness.automations(client)}
    programs.update_draft(ctx, "coach@example.com", definition=edited(ctx, escalation_days_after=9))
    done = harness.do(programs.publish, "coach@example.com", replan.NEW_ONLY)
    assert done.record.clients_moved == 0 and done.record.automations_moved == 0
    assert harness.refresh(client).program_version == 1
    assert {a.id: (a.trigger_at, a.version) for a in harness.automations(client)} == before
    assert harness.ctx.program_of(client).schedule.escalation_days_after == 7
    assert harness.ctx.program.schedule.escalation_days_after == 9


def test_fewer_months_disappear_more_months_appear_and_past_reminders_are_skipped(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    harness.run_until(at(2026, 2, 1))
    ctx = harness.ctx
    definition = edited(ctx, upcoming_reminder_days_before=10)
    definition["months"] = definition["months"][:6]
    programs.update_draft(ctx, "coach@example.com", definition=definition)
    seen = programs.preview(ctx, replan.IN_FLIGHT)
    kinds = {}
    for change in seen.clients[0].changes:
        kinds.setdefault(change.kind, []).append(change)
    assert {c.month for c in kinds["disappears"]} == {7, 8}
    # M2's upcoming reminder would now be Jan 24, already past: skipped, never sent late.
    late = [c for c in kinds["moves"] if c.late]
    assert [(c.month, c.template) for c in late] == [(2, "REMINDER_UPCOMING")]
    assert "1 reminder would now fall in the past and be skipped" in seen.summary()
    harness.do(programs.publish, "coach@example.com", replan.IN_FLIGHT)
    assert harness.one(client, template="REMINDER_UPCOMING", month=2).status == S.SKIPPED
    gone = harness.automations(client, month=8)
    assert gone and all(a.status == S.CANCELLED for a in gone)
    # Rolling back publishes version 1's content as version 3: M7 and M8 come back.
    harness.clock.set(at(2026, 2, 2))
    back = programs.preview(harness.ctx, replan.IN_FLIGHT, programs.get_version(harness.ctx, 1))
    assert {c.month for c in back.clients[0].changes if c.kind == "appears"} == {7, 8}
    done = harness.do(programs.rollback, "coach@example.com", 1, replan.IN_FLIGHT)
    assert done.version.number == 3 and done.record.rollback_of == 1
    assert harness.refresh(client).program_version == 3
    m8 = [a for a in harness.automations(client, month=8) if a.status == S.SCHEDULED]
    assert len(m8) == 4 and {a.program_version for a in m8} == {3}


def test_a_publish_that_fails_half_way_leaves_every_client_on_the_old_version(harness, monkeypatch):
    clients = [
        harness.enroll(date(2026, 1, 5), NY, email=f"c{i}@example.com", name=f"Client {i}")
        for i in range(3)
    ]
    ctx = harness.ctx
    before = {
        a.id: (a.trigger_at, a.version, a.status) for c in clients for a in harness.automations(c)
    }
    definition = edited(ctx, overdue_reminder_days_after=6)
    definition["months"] = definition["months"] + [definition["months"][0]]
    programs.update_draft(ctx, "coach@example.com", definition=definition)
    ctx.commit()

    def crash(*args, **kwargs):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(replan, "plan_journey", crash)  # after the moves, before the appearing
    with pytest.raises(RuntimeError):
        programs.publish(harness.ctx, "coach@example.com", replan.IN_FLIGHT)
    harness.ctx.rollback()
    assert {c.program_version for c in harness.ctx.session.scalars(select(Client))} == {1}
    after = {
        a.id: (a.trigger_at, a.version, a.status) for c in clients for a in harness.automations(c)
    }
    assert after == before
    assert harness.ctx.session.scalar(select(ProgramPublication.id)) is None
    assert programs.draft(harness.ctx) is not None


def test_emails_follow_the_version_of_each_client(harness):
    old = harness.enroll(date(2026, 1, 5), NY, email="old@example.com", name="Olga Old")
    ctx = harness.ctx
    source = programs.start_draft(ctx, "coach@example.com").templates["REMINDER_UPCOMING.txt"]
    new_source = source.replace("deliverable is coming soon!", "is almost here (v2)")
    programs.update_draft(ctx, "coach@example.com", templates={"REMINDER_UPCOMING.txt": new_source})
    harness.do(programs.publish, "coach@example.com", replan.NEW_ONLY)
    new = harness.enroll(date(2026, 1, 5), NY, email="new@example.com", name="Nina New")
    harness.run_until(at(2026, 1, 3))
    subjects = {e.to_address: e.subject for e in harness.emails("REMINDER_UPCOMING")}
    assert subjects[old.email].endswith("deliverable is coming soon!")
    assert subjects[new.email].endswith("is almost here (v2)")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ client.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ timeline.append(1) }}",
    ],
)
def test_template_injection_cannot_reach_python(harness, payload):
    ctx = harness.ctx
    source = programs.start_draft(ctx, "coach@example.com").templates["WELCOME_BACK.html"]
    tampered = source.replace("{% block content %}", "{% block content %}" + payload, 1)
    version = programs.as_version(programs.draft(ctx))
    version = type(version)(
        0, version.program, {**version.templates, "WELCOME_BACK.html": tampered}
    )
    client = harness.enroll(date(2026, 1, 5), NY)
    # Rendered anyway (say, from a row written by hand), the sandbox stops it...
    with pytest.raises(SecurityError):
        emails.preview(ctx, Template.WELCOME_BACK, client, version)
    if "__" in payload:  # ...and the draft never takes a reach for a private name
        with pytest.raises(errors.Invalid) as refused:
            programs.update_draft(
                ctx, "coach@example.com", templates={"WELCOME_BACK.html": tampered}
            )
        assert refused.value.field == "WELCOME_BACK.html"
        assert "may not reach names starting with _" in refused.value.message


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("REMINDER_OVERDUE.txt", ("{{ month_title }}", "{{ month_title"), "line"),
        (
            "REMINDER_OVERDUE.txt",
            ("{{ month_title }}", "{{ secret_key }}"),
            "unknown variable secret_key",
        ),
        (
            "REMINDER_OVERDUE.html",
            ("{% block content %}", "{% block footer %}{% endblock %}{% block content %}"),
            "unsubscribe link",
        ),
        ("REMINDER_OVERDUE.txt", ("{% block subject %}", "{% block title %}"), "block subject"),
    ],
)
def test_broken_templates_are_refused_with_the_reason(harness, name, change, message):
    ctx = harness.ctx
    source = programs.start_draft(ctx, "coach@example.com").templates[name]
    assert change[0] in source
    with pytest.raises(errors.Invalid) as refused:
        programs.update_draft(
            ctx, "coach@example.com", templates={name: source.replace(*change, 1)}
        )
    assert refused.value.field == name and message in refused.value.message
    # An admin email may drop the footer (it has no unsubscribe link).
    esc = programs.draft(ctx).templates["ADMIN_ESCALATION.html"]
    programs.update_draft(
        ctx,
        "coach@example.com",
        templates={
            "ADMIN_ESCALATION.html": esc.replace(
                "{% block content %}", "{% block footer %}{% endblock %}{% block content %}", 1
            )
        },
    )


def test_to_toml_round_trips_every_kind_of_text():
    program = load_program()
    assert parse_toml(to_toml(program)) == program
    month = dataclasses.replace(program.months[1], title='Brand "Identity" \\ é\n\t[x]')
    tricky = dataclasses.replace(program, months=(program.months[0], month, *program.months[2:]))
    assert parse_toml(to_toml(tricky)) == tricky


def test_versions_are_immutable_rows(harness):
    ctx = harness.ctx
    programs.update_draft(ctx, "a@example.com", definition=edited(ctx, max_retries=5))
    harness.do(programs.publish, "a@example.com", replan.NEW_ONLY, "more retries")
    rows = harness.ctx.session.scalars(select(ProgramVersion).order_by(ProgramVersion.id)).all()
    assert [(r.number, r.status, r.note) for r in rows] == [
        (1, "PUBLISHED", "the shipped program"),
        (2, "PUBLISHED", "more retries"),
    ]
    diff = programs.diff(harness.ctx, rows[0], rows[1])
    assert diff.program == [("schedule.max_retries", "3", "5")] and diff.templates == {}
    assert programs.draft(harness.ctx) is None
    with pytest.raises(errors.NotFound):
        programs.publish(harness.ctx, "a@example.com", replan.NEW_ONLY)
    assert harness.ctx.session.scalar(select(AutomationLog.id)) is None
    assert enrollment  # the module the planning code lives in


# -- the command line ------------------------------------------------------------------------------


def test_program_commands_edit_preview_publish_diff_rollback_export(harness, tmp_path):
    from web.cli import cli

    runner = harness.app.test_cli_runner()

    def run(*args):
        result = runner.invoke(cli, list(args))
        assert "Traceback" not in result.output, result.output
        return result

    harness.enroll(date(2026, 1, 5), NY)
    out = run("program", "versions")
    assert out.exit_code == 0 and "* v1" in out.output and "1 client(s) in flight" in out.output
    exported = tmp_path / "v1.toml"
    assert run("program", "export", "1", "--out", str(exported)).exit_code == 0
    assert run("program", "check", str(exported)).exit_code == 0
    edited_file = tmp_path / "v2.toml"
    edited_file.write_text(
        exported.read_text().replace(
            "overdue_reminder_days_after = 3", "overdue_reminder_days_after = 5"
        )
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(exported.read_text().replace("max_retries = 3", "max_retries = -1"))
    out = run("program", "edit", str(bad))
    assert out.exit_code == 2 and "schedule.max_retries: must be a whole number" in out.output
    subject = tmp_path / "subject.txt"
    source = emails.shipped_source("REMINDER_OVERDUE.txt").replace("{{ month_title", "{{ nope")
    subject.write_text(source)
    out = run("program", "edit", "--template", "REMINDER_OVERDUE.txt", str(subject))
    assert out.exit_code == 2 and "unknown variable nope" in out.output
    out = run("program", "edit", str(edited_file), "--note", "overdue later", "--by", "ann@x.io")
    assert out.exit_code == 0, out.output
    out = run("program", "diff", "1")
    assert "schedule.overdue_reminder_days_after: 3 -> 5" in out.output
    out = run("program", "preview", "--limit", "1")
    assert out.exit_code == 0 and "8 automations move for 1 client" in out.output
    assert "Overdue reminder to client (M1): 2026-01-08 09:00 -> 2026-01-10 09:00" in out.output
    out = run("program", "preview", "--json")
    assert json.loads(out.output)["moves"] == 8
    out = run("program", "publish", "--applies-to", "all", "--by", "ann@x.io")
    assert out.exit_code == 0 and "published version 2: 8 automations move" in out.output
    out = run("program", "rollback", "2", "--applies-to", "all")
    assert out.exit_code == 1 and "already the current version" in out.output
    out = run("program", "rollback", "1", "--applies-to", "all")
    assert out.exit_code == 0 and "published version 3 (version 1 again)" in out.output
    out = run("program", "versions")
    assert "* v3" in out.output and "by ann@x.io" in out.output
    assert run("program", "diff", "1", "3").output.strip() == "no difference"
    assert run("program", "export", "9").exit_code == 1
    assert run("program", "diff", "x", "1").exit_code == 2
    records = harness.ctx.session.scalars(select(ProgramPublication)).all()
    assert [(r.version, r.actor, r.rollback_of) for r in records] == [
        (2, "ann@x.io", None),
        (3, records[1].actor, 1),
    ]
    assert records[1].actor.startswith("cli:")


def test_the_migration_stores_the_shipped_program_as_version_one(tmp_path):
    from flask_migrate import upgrade

    from scheduler.program import program_data
    from web import create_app
    from web.extensions import db

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "REDIS_URL": None}
    )
    with app.app_context():
        upgrade()
        (row,) = db.session.scalars(select(ProgramVersion)).all()
        assert (row.number, row.status) == (1, "PUBLISHED")
        assert row.definition == program_data(load_program())
        assert row.templates == programs.shipped_templates()
        db.session.remove()
        db.engine.dispose()
