"""The program's versions over HTTP: list, export, diff, edit the draft, preview, publish, roll
back. Each is one call of `scheduler.programs`; the actor is the token's admin."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from scheduler import programs
from scheduler.models import ProgramPublication, ProgramVersion
from web.api import action, bp, ctx, inputs, reply
from web.api.errors import ApiError
from web.api.serialize import instant


def actor() -> str:
    return str(g.api_token.admin.email)


def version_json(row: ProgramVersion, on: dict[int, int]) -> dict[str, Any]:
    return {
        "number": row.number,
        "status": row.status,
        "based_on": row.based_on,
        "note": row.note or "",
        "created_at": instant(row.created_at),
        "created_by": row.created_by or "",
        "published_at": instant(row.published_at),
        "published_by": row.published_by,
        "clients_in_flight": on.get(row.number or 0, 0),
        "program": dict(row.definition),
    }


def publication_json(record: ProgramPublication) -> dict[str, Any]:
    return {
        "version": record.version,
        "previous": record.previous,
        "rollback_of": record.rollback_of,
        "applies_to": record.applies_to,
        "at": instant(record.at),
        "actor": record.actor,
        "clients_moved": record.clients_moved,
        "automations_moved": record.automations_moved,
        "summary": record.summary,
    }


@bp.get("/program/versions")
@action
def program_versions() -> Response:
    c = ctx()
    on = programs.clients_on(c)
    found = programs.draft(c)
    return reply(
        {
            "current": c.current_version(),
            "data": [version_json(r, on) for r in programs.published(c)],
            "draft": version_json(found, on) if found is not None else None,
        }
    )


@bp.get("/program/versions/<int:version>/toml")
def export_program_version(version: int) -> Response:
    return reply({"number": version, "toml": programs.export_toml(ctx(), version)})


@bp.get("/program/diff")
def diff_program_versions() -> Response:
    args = inputs.query()
    if "old" not in args:
        raise ApiError(422, "old: a version number or `draft` is required", field="old")
    c = ctx()
    found = programs.diff(c, programs.find(c, args["old"]), programs.find(c, args["new"]))
    return reply(
        {
            "program": [{"field": f, "old": a, "new": b} for f, a, b in found.program],
            "templates": found.templates,
        }
    )


@bp.post("/program/draft")
@action
def edit_program_draft() -> Response:
    data = inputs.body()
    c = ctx()
    definition = data.get("program")
    if "toml" in data:
        definition = programs.program_data(programs.check_toml(data["toml"]))
    row = programs.update_draft(
        c, actor(), definition=definition, templates=data.get("templates"), note=data.get("note")
    )
    return reply(version_json(row, {}))


@bp.delete("/program/draft")
@action
def discard_program_draft() -> Response:
    programs.discard_draft(ctx())
    return Response(status=204)


@bp.get("/program/preview")
def preview_program_draft() -> Response:
    args = inputs.query()
    c = ctx()
    target = programs.get_version(c, args["rollback_to"]) if "rollback_to" in args else None
    seen = programs.preview(c, args["applies_to"], target)
    c.rollback()
    return reply(seen.as_dict(args["limit"], args["offset"]))


@bp.post("/program/publish")
@action
def publish_program_draft() -> Response:
    data = inputs.body()
    done = programs.publish(ctx(), actor(), data["applies_to"], data.get("note"))
    return reply(publication_json(done.record), 201)


@bp.post("/program/rollback")
@action
def rollback_program() -> Response:
    data = inputs.body()
    done = programs.rollback(ctx(), actor(), data["version"], data["applies_to"])
    return reply(publication_json(done.record), 201)
