"""The OpenAPI 3.1 document of the API: the contract. Request bodies and query parameters are
validated against it (`web.api.inputs`), the tests run schemathesis against it, and /api/docs is
rendered from it; change an endpoint here first."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from scheduler.abtests import GOALS, TESTABLE
from scheduler.inputs import YEARS
from scheduler.metrics import METRICS, WINDOWS
from scheduler.models import MAX_ID
from scheduler.program import Program
from scheduler.vocab import (
    AutomationStatus,
    AutomationType,
    ClientStatus,
    DeliverableStatus,
    LogStatus,
    Source,
    Template,
)

# Dates and instants the API accepts lie in the engine's range of years (scheduler.inputs).
# Free text: anything but NUL, which no database stores in text.
TEXT = r"^[^\u0000]*$"
ADDRESS_PART = r"[^@\s<>()\[\],;:\"\u0000-\u001f\u007f]+"
EMAIL = rf"^{ADDRESS_PART}@{ADDRESS_PART}\.[A-Za-z]{{2,}}$"
NAME = r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$"
EXPECTED_STATES = [
    "now",
    "grace",
    "scheduled",
    "held",
    "waiting",
    "deferred",
    "skipped",
    "cancelled",
    "done",
    "failed",
    "running",
]
GENERATION_STATES = [
    "none",
    "scheduled",
    "queued",
    "running",
    "retrying",
    "done",
    "failed",
    "skipped",
]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    out = dict(schema)
    kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
    out["type"] = [*kinds, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def text(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": TEXT, **extra}


INSTANT = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
COUNT = {"type": "integer", "minimum": 0}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict:
    """An object schema; responses list every property as required (they are always sent)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


def listing(item: str) -> dict[str, Any]:
    return obj({"data": {"type": "array", "items": ref(item)}, "pagination": ref("Pagination")})


def schemas(program: Program) -> dict[str, Any]:
    month = {"type": "integer", "minimum": 1, "maximum": program.length}
    # A client's kept risk score (`scheduler.risk.kept_scores`), as `serialize.risk` writes it.
    share = {"type": "number", "minimum": 0, "maximum": 1}
    score = {
        "probability": share,
        "at_risk": {"type": "boolean"},
        "threshold": share,
        "month": month,
        "reasons": {"type": "array", "items": {"type": "string"}},
        "scored_at": INSTANT,
    }
    templates = [t.value for t in Template]
    onboarding = {
        "type": "object",
        "description": "Onboarding answers, question to answer (used to write deliverables).",
        "maxProperties": 100,
        "propertyNames": {"maxLength": 100, "pattern": TEXT},
        "additionalProperties": {
            "type": ["string", "number", "boolean", "null"],
            "maxLength": 10000,
            "pattern": TEXT,
        },
    }
    return {
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": ["string", "null"]},
                    }
                )
            }
        ),
        "Pagination": obj(
            {"limit": COUNT, "offset": COUNT, "total": COUNT, "next_offset": nullable(COUNT)}
        ),
        "TimeZone": {
            "type": "string",
            "description": "An IANA time zone name.",
            "enum": time_zones(),
        },
        "Onboarding": onboarding,
        "Client": obj(
            {
                "id": ID,
                "name": {"type": "string"},
                "email": {"type": "string"},
                "timezone": {"type": "string"},
                "start_date": DATE,
                "status": {"type": "string", "enum": [s.value for s in ClientStatus]},
                "current_month": month,
                "held_days": COUNT,
                "paused_at": nullable(INSTANT),
                "completed_at": nullable(INSTANT),
                "business_plan_approved_at": nullable(INSTANT),
                "onboarding": {"type": "object"},
                "business_plan": {"type": "string"},
                "coach_id": nullable(ID),
                "reminders_enabled": {"type": "boolean"},
                "celebrations_enabled": {"type": "boolean"},
                "program_version": {"type": "integer", "minimum": 1},
                "created_at": INSTANT,
                "updated_at": INSTANT,
            }
        ),
        "ClientCreate": obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NAME},
                "email": {"type": "string", "maxLength": 254, "pattern": EMAIL},
                "start_date": DATE,
                "timezone": ref("TimeZone"),
                "onboarding": ref("Onboarding"),
                "business_plan": text(100_000),
            },
            required=["name", "email", "start_date"],
        ),
        "ClientUpdate": obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NAME},
                "email": {"type": "string", "maxLength": 254, "pattern": EMAIL},
                "onboarding": ref("Onboarding"),
                "business_plan": text(100_000),
                "reminders_enabled": {"type": "boolean"},
                "celebrations_enabled": {"type": "boolean"},
                "timezone": {
                    "type": "string",
                    "enum": time_zones(),
                    "description": "Every pending send at the send hour moves to the send hour "
                    "of the same local date in the new zone (preview: `timezone/preview`).",
                },
                "coach_id": nullable(ID),
            },
            required=[],
        ),
        "ZoneChange": obj({"timezone": {"type": "string", "enum": time_zones()}}),
        "ZoneMove": obj(
            {
                "automation_id": ID,
                "name": {"type": "string"},
                "before": INSTANT,
                "after": INSTANT,
            }
        ),
        "ZonePreview": obj(
            {"timezone": {"type": "string"}, "moves": {"type": "array", "items": ref("ZoneMove")}}
        ),
        "Offboard": obj(
            {"reason": text(2000, minLength=1, pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$")}
        ),
        "Erasure": obj(
            {
                "erased": {"type": "boolean"},
                "removed": {
                    "type": "object",
                    "additionalProperties": COUNT,
                    "description": "How many rows of each kind were deleted with the client.",
                },
            }
        ),
        "ClientList": listing("Client"),
        "StartDate": obj({"start_date": DATE}),
        "Adjusted": obj({"client": ref("Client"), "moved": COUNT}),
        "PauseRequest": obj(
            {"until": DATE, "reason": text(2000)},
            required=[],
        ),
        "Hold": obj(
            {
                "id": ID,
                "client_id": ID,
                "reason": {"type": "string"},
                "started_at": INSTANT,
                "start_date": DATE,
                "until": nullable(DATE),
                "ended_at": nullable(INSTANT),
                "end_date": nullable(DATE),
                "days": nullable(COUNT),
                "ended_by": {"type": ["string", "null"]},
            }
        ),
        "Automation": obj(
            {
                "id": ID,
                "client_id": ID,
                "type": {"type": "string", "enum": [t.value for t in AutomationType]},
                "month": nullable(month),
                "template": nullable({"type": "string", "enum": templates}),
                "source": {"type": "string", "enum": [s.value for s in Source]},
                "status": {"type": "string", "enum": [s.value for s in AutomationStatus]},
                "trigger_at": INSTANT,
                "retry_count": COUNT,
                "max_retries": COUNT,
                "executed_at": nullable(INSTANT),
                "detail": {"type": "string"},
                "error": {"type": ["string", "null"]},
                "program_version": nullable({"type": "integer", "minimum": 1}),
                "created_at": INSTANT,
                "updated_at": INSTANT,
            }
        ),
        "AutomationList": listing("Automation"),
        **program_schemas(),
        "ScheduleRequest": obj(
            {
                "type": {
                    "type": "string",
                    "enum": [
                        t.value for t in AutomationType if t is not AutomationType.UPDATE_STATUS
                    ],
                },
                "at": INSTANT,
                "month": month,
                "template": {"type": "string", "enum": templates},
            },
            required=["type"],
        ),
        "Deliverable": obj(
            {
                "id": ID,
                "client_id": ID,
                "month": month,
                "version": {"type": "integer", "minimum": 1},
                "status": {"type": "string", "enum": [s.value for s in DeliverableStatus]},
                "title": {"type": "string"},
                "content": {"type": "string"},
                "reviewer_notes": {"type": "string"},
                "manual": {"type": "boolean"},
                "generated_at": nullable(INSTANT),
                "reviewed_at": nullable(INSTANT),
                "delivered_at": nullable(INSTANT),
                "opened_at": nullable(INSTANT),
                "created_at": INSTANT,
                "generated_content": {
                    "type": ["string", "null"],
                    "description": "The generator's text, when an admin corrected it before "
                    "approving (`content` is what the client reads).",
                },
                "edited_at": nullable(INSTANT),
                "edited_by": {"type": ["string", "null"]},
            }
        ),
        "ReviewItem": obj(
            {
                "deliverable": ref("Deliverable"),
                "client_id": ID,
                "client_name": {"type": "string"},
                "waiting_since": INSTANT,
                "waited_seconds": COUNT,
                "milestone": DATE,
                "milestone_note": {"type": "string"},
                "regenerating": {"type": "boolean"},
            }
        ),
        "ReviewList": listing("ReviewItem"),
        "ImportRequest": obj(
            {
                "csv": text(10 * 1024 * 1024, minLength=1),
                "dry_run": {"type": "boolean", "default": False},
            },
            required=["csv"],
        ),
        "ImportRow": obj(
            {
                "line": {"type": "integer", "minimum": 1},
                "email": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "ImportReport": obj(
            {
                "imported": {"type": "boolean"},
                "summary": {"type": "string"},
                "rows": COUNT,
                "new": COUNT,
                "already_enrolled": COUNT,
                "automations": COUNT,
                "errors": {"type": "array", "items": ref("ImportRow")},
            }
        ),
        "Communication": obj(
            {
                "automation_id": ID,
                "name": {"type": "string"},
                "template": {"type": "string", "enum": templates},
                "month": nullable(month),
                "state": {
                    "type": "string",
                    "enum": [
                        "sent",
                        "sending",
                        "pending",
                        "held",
                        "deferred",
                        "skipped",
                        "cancelled",
                        "failed",
                    ],
                },
                "at": nullable(INSTANT),
                "text": {"type": "string"},
                "email_id": nullable(ID),
                "subject": {"type": "string"},
                "clicked_at": nullable(INSTANT),
            }
        ),
        "Subscription": obj(
            {
                "subscribed": {"type": "boolean"},
                "reminders": {"type": "boolean"},
                "celebrations": {"type": "boolean"},
            },
        ),
        "SubscriptionUpdate": obj(
            {
                "subscribed": {"type": "boolean"},
                "reminders": {"type": "boolean"},
                "celebrations": {"type": "boolean"},
            },
            required=[],
        ),
        "Communications": obj(
            {
                "data": {"type": "array", "items": ref("Communication")},
                "subscription": ref("Subscription"),
            }
        ),
        "Approval": obj(
            {"content": text(200_000, minLength=1, pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$")},
            required=[],
        ),
        "Generation": obj(
            {
                "month": month,
                "state": {
                    "type": "string",
                    "enum": GENERATION_STATES,
                    "description": "none: nothing planned; scheduled: due later; queued: due, "
                    "waiting for a worker; running; retrying: an attempt failed, another is "
                    "planned; done: a deliverable was written; failed: retries spent.",
                },
                "automation_id": nullable(ID),
                "trigger_at": nullable(INSTANT),
                "attempts": COUNT,
                "error": {"type": ["string", "null"]},
            }
        ),
        "DeliverableList": obj(
            {
                "data": {"type": "array", "items": ref("Deliverable")},
                "generation": {"type": "array", "items": ref("Generation")},
            }
        ),
        "Notes": obj({"notes": text(10_000)}, required=[]),
        "RejectNotes": obj(
            {"notes": text(10_000, minLength=1, pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$")},
            required=["notes"],
        ),
        "Expected": obj(
            {
                "automation_id": ID,
                "name": {"type": "string"},
                "state": {"type": "string", "enum": EXPECTED_STATES},
                "at": nullable(INSTANT),
                "text": {"type": "string"},
                "condition": {
                    "type": "string",
                    "description": "The condition the engine puts on it when its moment "
                    "comes (empty: it always acts).",
                },
            }
        ),
        "LogEntry": obj(
            {
                "id": ID,
                "at": INSTANT,
                "client_id": ID,
                "automation_id": nullable(ID),
                "type": {"type": "string"},
                "month": nullable(month),
                "template": {"type": ["string", "null"]},
                "status": {"type": "string", "enum": [s.value for s in LogStatus]},
                "attempt": COUNT,
                "detail": {"type": "string"},
                "error": {"type": ["string", "null"]},
                "actor": {
                    "type": ["string", "null"],
                    "description": "Who acted (an admin's email, a command's user); null for "
                    "the engine on its own.",
                },
            }
        ),
        "LogList": listing("LogEntry"),
        "TimelineMonth": obj(
            {
                "month": month,
                "title": {"type": "string"},
                "date": DATE,
                "moved_by_hold": COUNT,
                "date_note": {"type": "string"},
                "state": {"type": "string"},
                "opened": {"type": "boolean"},
                "generation": ref("Generation"),
            }
        ),
        "Timeline": obj(
            {
                "client": ref("Client"),
                "current_month": month,
                "months_done": COUNT,
                "percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "months": {"type": "array", "items": ref("TimelineMonth")},
                "upcoming": {"type": "array", "items": ref("Automation")},
                "expected": {"type": "array", "items": ref("Expected")},
                "overdue": {
                    "type": "string",
                    "description": "For an overdue client, what is overdue and since when "
                    "(empty otherwise).",
                },
                "holds": {"type": "array", "items": ref("Hold")},
                "history": {"type": "array", "items": ref("LogEntry")},
                "risk": nullable(ref("RiskScore")),
            }
        ),
        "RiskScore": obj(
            score,
            description="The client's kept risk score: how likely the latest risk model found "
            "them, when `scored_at`, to be more than 7 days late at the milestone of `month`; "
            "at risk from `threshold` on. Refreshed for every client daily, after each "
            "training, and for a client when their at-risk check-in runs (which decides on "
            "it). Null: not scored (no model yet, or not an active client with a month ahead).",
        ),
        "Counts": obj(
            {
                "generated": COUNT,
                "reminders": COUNT,
                "notifications": COUNT,
                "celebrations": COUNT,
                "escalations": COUNT,
                "failed": COUNT,
            }
        ),
        "Metrics": obj(
            {
                "scope": obj(
                    {
                        "window": {"type": "string"},
                        "cohort": {"type": "string"},
                        "coach": {"type": "string"},
                        "month": {"type": "string"},
                    },
                    required=[],
                ),
                "metrics": {"type": "array", "items": ref("Metric")},
                "funnel": {"type": "array", "items": ref("FunnelMonth")},
                "funnel_counted_at": INSTANT,
            }
        ),
        "Metric": obj(
            {
                "code": {"type": "string", "enum": [m.code for m in METRICS]},
                "group": {"type": "string"},
                "name": {"type": "string"},
                "definition": {"type": "string"},
                "unit": {"type": "string", "enum": ["share", "minutes"]},
                "target": {"type": "number", "minimum": 0},
                "higher_is_better": {"type": "boolean"},
                "snapshot": {"type": "boolean"},
                "value": nullable({"type": "number", "minimum": 0}),
                "meets_target": nullable({"type": "boolean"}),
                "rows": COUNT,
                "met": COUNT,
                "trend": {
                    "type": "array",
                    "items": obj(
                        {
                            "from": DATE,
                            "to": DATE,
                            "value": nullable({"type": "number", "minimum": 0}),
                            "rows": COUNT,
                        }
                    ),
                },
                "by_coach": {
                    "type": "array",
                    "items": obj(
                        {
                            "coach_id": {"type": "integer", "minimum": 0},
                            "value": nullable({"type": "number", "minimum": 0}),
                            "rows": COUNT,
                        }
                    ),
                },
                "by_month": {
                    "type": "array",
                    "items": obj(
                        {
                            "month": {"type": "integer", "minimum": 0},
                            "value": nullable({"type": "number", "minimum": 0}),
                            "rows": COUNT,
                        }
                    ),
                },
            }
        ),
        "FunnelMonth": obj(
            {
                "month": month,
                "generated": COUNT,
                "approved": COUNT,
                "delivered": COUNT,
                "opened": COUNT,
                "median_hours": obj(
                    {
                        "to_approved": nullable({"type": "number"}),
                        "to_delivered": nullable({"type": "number"}),
                        "to_opened": nullable({"type": "number"}),
                    }
                ),
            }
        ),
        "MetricRow": obj(
            {
                "id": ID,
                "client_id": ID,
                "client": {"type": "string"},
                "month": nullable({"type": "integer", "minimum": 0}),
                "at": nullable(INSTANT),
                "type": nullable({"type": "string"}),
                "template": nullable({"type": "string"}),
                "status": {"type": "string"},
                "met": nullable({"type": "boolean"}),
                "minutes": nullable({"type": "number"}),
            }
        ),
        "MetricRows": obj(
            {
                "data": {"type": "array", "items": ref("MetricRow")},
                "pagination": ref("Pagination"),
                "met": COUNT,
            }
        ),
        "Risk": obj(
            {
                "model": nullable(
                    obj(
                        {
                            "id": ID,
                            "trained_at": INSTANT,
                            "actor": {"type": "string"},
                            "rows": COUNT,
                            "positives": COUNT,
                            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                            "precision": nullable({"type": "number", "minimum": 0, "maximum": 1}),
                            "recall": nullable({"type": "number", "minimum": 0, "maximum": 1}),
                            "intercept": {"type": "number"},
                            "features": {
                                "type": "array",
                                "items": obj(
                                    {
                                        "code": {"type": "string"},
                                        "name": {"type": "string"},
                                        "weight": {"type": "number"},
                                        "mean": {"type": "number"},
                                        "scale": {"type": "number"},
                                    }
                                ),
                            },
                        }
                    )
                ),
                "at_risk": {
                    "type": "array",
                    "items": obj({"client_id": ID, "name": {"type": "string"}, **score}),
                },
            }
        ),
        "AbTestInput": obj(
            {
                "template": {"type": "string", "enum": [t.value for t in TESTABLE]},
                "name": {"type": "string", "maxLength": 200, "pattern": TEXT},
                "subject": {"type": "string", "maxLength": 300, "pattern": TEXT},
                "text": {"type": "string", "maxLength": 100_000, "pattern": TEXT},
                "html": {"type": "string", "maxLength": 100_000, "pattern": TEXT},
                "split": {"type": "integer", "minimum": 1, "maximum": 99},
                "goal": {"type": "string", "enum": list(GOALS)},
                "goal_days": {"type": "integer", "minimum": 1, "maximum": 60},
            },
            required=["template"],
        ),
        "AbTestEnd": obj({"keep": {"type": "string", "enum": ["A", "B"]}}),
        "AbTest": obj(
            {
                "id": ID,
                "template": {"type": "string"},
                "name": {"type": "string"},
                "subject": nullable({"type": "string"}),
                "text": nullable({"type": "string"}),
                "html": nullable({"type": "string"}),
                "split": {"type": "integer"},
                "goal": {"type": "string", "enum": list(GOALS)},
                "goal_days": {"type": "integer"},
                "started_at": INSTANT,
                "started_by": {"type": "string"},
                "ended_at": nullable(INSTANT),
                "ended_by": nullable({"type": "string"}),
                "kept": nullable({"type": "string", "enum": ["A", "B"]}),
                "a": ref("AbArm"),
                "b": ref("AbArm"),
                "pending": COUNT,
                "difference": nullable({"type": "number"}),
                "low": nullable({"type": "number"}),
                "high": nullable({"type": "number"}),
                "verdict": {
                    "type": "string",
                    "enum": ["no winner yet", "variant better", "variant worse"],
                },
                "says": {"type": "string"},
            }
        ),
        "AbArm": obj(
            {
                "sends": COUNT,
                "conversions": COUNT,
                "rate": nullable({"type": "number", "minimum": 0, "maximum": 1}),
            }
        ),
        "AbTestList": obj({"data": {"type": "array", "items": ref("AbTest")}}),
        "Stats": obj(
            {
                "at": INSTANT,
                "today": ref("Counts"),
                "week": obj(
                    {
                        "counts": ref("Counts"),
                        "months_completed": COUNT,
                        "on_time_rate": nullable({"type": "number", "minimum": 0, "maximum": 1}),
                    }
                ),
                "upcoming": obj(
                    {
                        "generations": COUNT,
                        "reminders": COUNT,
                        "notifications": COUNT,
                        "celebrations": COUNT,
                        "escalations": COUNT,
                    }
                ),
                "clients": obj(
                    {
                        "on_track": COUNT,
                        "overdue": COUNT,
                        "on_hold": COUNT,
                        "completed": COUNT,
                        "active": COUNT,
                    }
                ),
                "automations": obj({"scheduled": COUNT, "running": COUNT, "failed": COUNT}),
            }
        ),
    }


@cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


ERRORS = {
    "400": "The body is not valid JSON, or a header is malformed.",
    "401": "No API token, or an unknown or revoked one.",
    "404": "No such client, automation or deliverable.",
    "409": "The journey is not in a state that allows this (already on hold, not in review...).",
    "415": "The body is not JSON.",
    "422": "A field is missing, of the wrong type, or out of range (see `error.field`).",
    "429": "Too many requests with a missing or bad API token from this address: no token is "
    "checked until the number of seconds in `Retry-After` has passed.",
}


def responses(ok: str, schema: str | None, *codes: str, description: str = "") -> dict:
    out: dict[str, Any] = {
        ok: {"description": description or "Success."}
        | ({"content": {"application/json": {"schema": ref(schema)}}} if schema else {})
    }
    for code in ("401", "404", "422", "429", *codes):
        out[code] = {"$ref": f"#/components/responses/E{code}"}
    return out


def csv_responses() -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": "CSV, with a header line.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    }
    for code in ("401", "422", "429"):
        out[code] = {"$ref": f"#/components/responses/E{code}"}
    return out


def param(name: str, where: str, schema: dict[str, Any], description: str, **extra: Any) -> dict:
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}


PATH_CLIENT = param("client_id", "path", ID, "The client's id.", required=True)
PATH_AUTOMATION = param("automation_id", "path", ID, "The automation's id.", required=True)
PAGE = [
    param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        "At most this many items.",
    ),
    param(
        "offset",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0},
        "Skip this many items.",
    ),
]
IDEMPOTENCY = {"$ref": "#/components/parameters/IdempotencyKey"}


def body(schema: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


def operation(
    op_id: str,
    summary: str,
    tag: str,
    answers: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    request: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "responses": answers,
    }
    if description:
        out["description"] = description
    if params:
        out["parameters"] = params
    if request:
        out["requestBody"] = request
    return out


def post(op_id: str, summary: str, tag: str, answers: dict, **kwargs: Any) -> dict[str, Any]:
    """A POST: honours Idempotency-Key, and answers 400/415 to a body that is not JSON."""
    params = [*kwargs.pop("params", []), IDEMPOTENCY]
    return {"post": operation(op_id, summary, tag, answers | ERR_BODY, params=params, **kwargs)}


ERR_BODY = {code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", "415")}


def program_schemas() -> dict[str, Any]:
    """The program's versions, the draft, an impact preview, a publication."""
    from scheduler.programs import EDITABLE

    version = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    change = obj(
        {
            "kind": {"type": "string", "enum": ["moves", "appears", "disappears"]},
            "automation_id": nullable(ID),
            "name": {"type": "string"},
            "type": {"type": "string", "enum": [t.value for t in AutomationType]},
            "template": nullable({"type": "string", "enum": [t.value for t in Template]}),
            "month": nullable({"type": "integer", "minimum": 1}),
            "old_at": nullable(INSTANT),
            "new_at": nullable(INSTANT),
            "late": {"type": "boolean"},
        }
    )
    return {
        "ProgramVersion": obj(
            {
                "number": nullable(version),
                "status": {"type": "string", "enum": ["DRAFT", "PUBLISHED"]},
                "based_on": nullable(version),
                "note": {"type": "string"},
                "created_at": INSTANT,
                "created_by": {"type": "string"},
                "published_at": nullable(INSTANT),
                "published_by": {"type": ["string", "null"]},
                "clients_in_flight": COUNT,
                "program": {"type": "object"},
            }
        ),
        "ProgramVersions": obj(
            {
                "current": version,
                "data": {"type": "array", "items": ref("ProgramVersion")},
                "draft": nullable(ref("ProgramVersion")),
            }
        ),
        "ProgramDraft": obj(
            {
                "program": {
                    "type": "object",
                    "maxProperties": 10,
                    "description": "The whole program, as `journey program check` reads it "
                    "(name, schedule, months).",
                },
                "toml": text(200_000, description="The whole program as a TOML file."),
                "templates": {
                    "type": "object",
                    "description": "Email template sources by file name.",
                    "propertyNames": {"enum": list(EDITABLE)},
                    "additionalProperties": text(100_000),
                },
                "note": text(2000),
            },
            required=[],
        ),
        "ProgramExport": obj({"number": version, "toml": {"type": "string"}}),
        "ProgramDiff": obj(
            {
                "program": {
                    "type": "array",
                    "items": obj(
                        {
                            "field": {"type": "string"},
                            "old": {"type": "string"},
                            "new": {"type": "string"},
                        }
                    ),
                },
                "templates": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        ),
        "ImpactChange": change,
        "Impact": obj(
            {
                "applies_to": {"type": "string", "enum": ["new", "all"]},
                "summary": {"type": "string"},
                "in_flight": COUNT,
                "clients_affected": COUNT,
                "moves": COUNT,
                "appears": COUNT,
                "disappears": COUNT,
                "late": COUNT,
                "clients": {
                    "type": "array",
                    "items": obj(
                        {
                            "client_id": ID,
                            "name": {"type": "string"},
                            "timezone": {"type": "string"},
                            "from_version": version,
                            "changes": {"type": "array", "items": ref("ImpactChange")},
                        }
                    ),
                },
            }
        ),
        "PublishRequest": obj(
            {"applies_to": {"type": "string", "enum": ["new", "all"]}, "note": text(2000)},
            required=["applies_to"],
        ),
        "RollbackRequest": obj(
            {"version": version, "applies_to": {"type": "string", "enum": ["new", "all"]}},
        ),
        "Publication": obj(
            {
                "version": version,
                "previous": version,
                "rollback_of": nullable(version),
                "applies_to": {"type": "string", "enum": ["new", "all"]},
                "at": INSTANT,
                "actor": {"type": "string"},
                "clients_moved": COUNT,
                "automations_moved": COUNT,
                "summary": {"type": "string"},
            }
        ),
    }


def program_paths() -> dict[str, Any]:
    applies = param(
        "applies_to",
        "query",
        {"type": "string", "enum": ["new", "all"], "default": "all"},
        "`new`: new enrollments only; `all`: also the clients in flight.",
    )
    ref_param = {"type": "string", "pattern": "^(draft|[1-9][0-9]{0,8})$"}
    return {
        "/api/program/versions": {
            "get": operation(
                "listProgramVersions",
                "List the program's versions",
                "Program",
                responses("200", "ProgramVersions"),
                description="Every published version (immutable), the current one (what new "
                "enrollments get) and the draft.",
            ),
        },
        "/api/program/versions/{version}/toml": {
            "get": operation(
                "exportProgramVersion",
                "Export a version as TOML",
                "Program",
                responses("200", "ProgramExport"),
                params=[
                    param(
                        "version",
                        "path",
                        {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                        "",
                        required=True,
                    )
                ],
            ),
        },
        "/api/program/diff": {
            "get": operation(
                "diffProgramVersions",
                "Compare two versions",
                "Program",
                responses("200", "ProgramDiff"),
                params=[
                    param("old", "query", ref_param, "A version number or `draft`.", required=True),
                    param(
                        "new",
                        "query",
                        ref_param | {"default": "draft"},
                        "A version number or `draft`.",
                    ),
                ],
            ),
        },
        "/api/program/draft": {
            **post(
                "editProgramDraft",
                "Change the draft",
                "Program",
                responses("200", "ProgramVersion"),
                request=body("ProgramDraft"),
                description="Starts the draft from the current version if there is none. The "
                "program is checked as `journey program check` checks a file, templates for "
                "broken Jinja, unknown variables and the unsubscribe link of optional emails; "
                "422 names the field.",
            ),
            "delete": operation(
                "discardProgramDraft", "Discard the draft", "Program", responses("204", None)
            ),
        },
        "/api/program/preview": {
            "get": operation(
                "previewProgramDraft",
                "What publishing would do",
                "Program",
                responses("200", "Impact"),
                params=[
                    applies,
                    param(
                        "rollback_to",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                        "Preview rolling back to this version instead of publishing the draft.",
                    ),
                    *PAGE,
                ],
                description="Per client in flight, the pending automations that move, appear or "
                "disappear (old and new instant in the client's zone), computed by the planning "
                "code; `limit`/`offset` page the clients.",
            ),
        },
        "/api/program/publish": {
            **post(
                "publishProgramDraft",
                "Publish the draft",
                "Program",
                responses("201", "Publication", "409"),
                request=body("PublishRequest"),
            ),
        },
        "/api/program/rollback": {
            **post(
                "rollbackProgram",
                "Roll back to a version",
                "Program",
                responses("201", "Publication", "409"),
                request=body("RollbackRequest"),
                description="Publishes that version's program and emails again, as a new version.",
            ),
        },
    }


def paths(program: Program) -> dict[str, Any]:
    metric_scope = [
        param(
            "window",
            "query",
            {"type": "integer", "enum": list(WINDOWS)},
            "The last this many UTC days (default 30).",
        ),
        param(
            "cohort",
            "query",
            {"type": "string", "pattern": "^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"},
            "Instead of a window: the clients who started in this month (YYYY-MM).",
        ),
        param(
            "coach",
            "query",
            {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            "Only this coach's clients (0: clients without a coach).",
        ),
        param(
            "month",
            "query",
            {"type": "integer", "minimum": 1, "maximum": program.length},
            "Only this month of the program.",
        ),
    ]
    month_path = param(
        "month",
        "path",
        {"type": "integer", "minimum": 1, "maximum": program.length},
        "The month, 1-8.",
        required=True,
    )
    filters = [
        param("type", "query", {"type": "string", "enum": [t.value for t in AutomationType]}, ""),
        param(
            "status", "query", {"type": "string", "enum": [s.value for s in AutomationStatus]}, ""
        ),
        param("from", "query", INSTANT, "Only those due at or after this instant."),
        param("to", "query", INSTANT, "Only those due before this instant."),
    ]
    client_filter = param("client_id", "query", ID, "Only this client's.")
    return program_paths() | {
        "/api/clients": {
            "get": operation(
                "listClients",
                "List clients",
                "Clients",
                responses("200", "ClientList"),
                params=[
                    param(
                        "status",
                        "query",
                        {
                            "type": "string",
                            "enum": [*[s.value for s in ClientStatus], "active"],
                        },
                        "Only clients in this state (`active`: on track or overdue).",
                    ),
                    *PAGE,
                ],
            ),
            **post(
                "createClient",
                "Enroll a client",
                "Clients",
                responses("201", "Client", "409", description="Enrolled; the journey is planned."),
                request=body("ClientCreate"),
                description="Enroll a client and plan the whole journey from `start_date`. "
                "409 when a client with this email exists.",
            ),
        },
        "/api/clients/{client_id}": {
            "parameters": [PATH_CLIENT],
            "get": operation(
                "getClient",
                "Read a client",
                "Clients",
                responses("200", "Client"),
                description="`GET /api/clients/{email}` reads a client by email address too "
                "(its `Content-Location` names the client by id).",
            ),
            "delete": operation(
                "eraseClient",
                "Erase a client and everything kept about them",
                "Clients",
                responses("200", "Erasure"),
                description="The right to erasure: the client, their deliverables, "
                "automations, log, outbox emails, holds, recorded changes and the stored API "
                "answers that carry their data are deleted, in one transaction.",
            ),
            "patch": operation(
                "updateClient",
                "Update a client",
                "Clients",
                responses("200", "Client", "400", "409", "415"),
                request=body("ClientUpdate"),
                description="Change contact details, onboarding answers, the business plan or "
                "email preferences. The start date changes through `journey/adjust`.",
            ),
        },
        "/api/clients/{client_id}/timezone/preview": {
            "parameters": [PATH_CLIENT],
            **post(
                "previewTimezone",
                "What a new time zone would move",
                "Clients",
                responses("200", "ZonePreview"),
                request=body("ZoneChange"),
                description="Nothing changes: each pending send a move to this zone would "
                "move, with its instant before and after.",
            ),
        },
        "/api/clients/{client_id}/journey/end": {
            "parameters": [PATH_CLIENT],
            **post(
                "endJourney",
                "End the journey early (offboard)",
                "Journey",
                responses("200", "Client", "409"),
                request=body("Offboard"),
                description="Everything pending is cancelled with the reason; the client "
                "counts as completed. 409 when the journey has already ended.",
            ),
        },
        "/api/clients/{client_id}/communications": {
            "parameters": [PATH_CLIENT],
            "get": operation(
                "listCommunications",
                "What the client was sent, and will be sent",
                "Clients",
                responses("200", "Communications"),
                description="Every email meant for the client, the latest first: sent (with "
                "its outbox id, and when the client first clicked a portal link in it), "
                "pending, held by the hold, deferred by the frequency cap, skipped (and why), "
                "cancelled or failed; and the client's subscription.",
            ),
        },
        "/api/clients/{client_id}/subscription": {
            "parameters": [PATH_CLIENT],
            "patch": operation(
                "updateSubscription",
                "Change the client's email preferences",
                "Clients",
                responses("200", "Subscription", "400", "415"),
                request=body("SubscriptionUpdate"),
                description="`subscribed: false` unsubscribes from every optional email (the "
                "finer choices are kept); what is left out stays as it is. The change is "
                "recorded in the client's history with the token's owner.",
            ),
        },
        "/api/clients/{client_id}/journey/start": {
            "parameters": [PATH_CLIENT],
            **post(
                "startJourney",
                "Start the journey",
                "Journey",
                responses("200", "Timeline", "409"),
                request=body("StartDate"),
                description="Plan the journey from `start_date` (idempotent: steps already "
                "planned stay). A journey not yet under way moves to the new date; one under "
                "way answers 409 (use `adjust`).",
            ),
        },
        "/api/clients/{client_id}/journey/adjust": {
            "parameters": [PATH_CLIENT],
            "patch": operation(
                "adjustJourney",
                "Change the start date",
                "Journey",
                responses("200", "Adjusted", "400", "409", "415"),
                request=body("StartDate"),
                description="Every pending step of the plan is recomputed from the new date.",
            ),
        },
        "/api/clients/{client_id}/journey/pause": {
            "parameters": [PATH_CLIENT],
            **post(
                "pauseJourney",
                "Put the client on hold",
                "Journey",
                responses("200", "Hold", "409"),
                request=body("PauseRequest", required=False),
                description="Nothing of the journey fires until the hold ends (on `until`, or "
                "on resume). 409 when already on hold or completed.",
            ),
        },
        "/api/clients/{client_id}/journey/resume": {
            "parameters": [PATH_CLIENT],
            **post(
                "resumeJourney",
                "End the hold",
                "Journey",
                responses("200", "Hold", "409"),
                description="Every pending automation moves later by the days paused. 409 when "
                "the client is not on hold.",
            ),
        },
        "/api/clients/{client_id}/journey/timeline": {
            "parameters": [PATH_CLIENT],
            "get": operation(
                "getTimeline",
                "The journey's timeline",
                "Journey",
                responses("200", "Timeline"),
                params=[
                    param(
                        "days",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
                        "Upcoming automations within this many days.",
                    )
                ],
                description="Months with their dates, state and generation progress; what is "
                "coming; holds; the latest history.",
            ),
        },
        "/api/clients/{client_id}/months/{month}/skip": {
            "parameters": [PATH_CLIENT, month_path],
            **post(
                "skipMonth",
                "Skip a month",
                "Journey",
                responses("200", "Deliverable", "409"),
                description="The month counts as done; its automations are cancelled.",
            ),
        },
        "/api/clients/{client_id}/months/{month}/generate": {
            "parameters": [PATH_CLIENT, month_path],
            **post(
                "generateMonth",
                "Generate a month now",
                "Deliverables",
                responses("202", "Automation", "409", description="Queued."),
                request=body("Notes", required=False),
                description="Queue the month's generation ahead of scheduled ones; its "
                "scheduled generation is cancelled. 409 when it already has a deliverable.",
            ),
        },
        "/api/clients/{client_id}/business-plan/approve": {
            "parameters": [PATH_CLIENT],
            **post(
                "approveBusinessPlan",
                "Approve the business plan",
                "Journey",
                responses("200", "Client"),
                description="Month 1 is generated at once if it has not been.",
            ),
        },
        "/api/clients/{client_id}/deliverables": {
            "parameters": [PATH_CLIENT],
            "get": operation(
                "listDeliverables",
                "List deliverables",
                "Deliverables",
                responses("200", "DeliverableList"),
                params=[param("month", "query", month_path["schema"], "Only this month's.")],
                description="Every version, by month; and each month's generation progress.",
            ),
        },
        "/api/clients/{client_id}/deliverables/{month}/approve": {
            "parameters": [PATH_CLIENT, month_path],
            **post(
                "approveDeliverable",
                "Approve (deliver) a month",
                "Deliverables",
                responses("200", "Deliverable", "409"),
                request=body("Approval", required=False),
                description="A deliverable in review, or rejected (approved as is). With "
                "`content`, the admin's corrected text is delivered and the generated text "
                "kept in `generated_content`.",
            ),
        },
        "/api/clients/{client_id}/deliverables/{month}/reject": {
            "parameters": [PATH_CLIENT, month_path],
            **post(
                "rejectDeliverable",
                "Reject a month's deliverable",
                "Deliverables",
                responses("200", "Deliverable", "409"),
                request=body("RejectNotes"),
                description="Send the month back with notes saying what to change (required).",
            ),
        },
        "/api/clients/{client_id}/deliverables/{month}/open": {
            "parameters": [PATH_CLIENT, month_path],
            **post(
                "openDeliverable",
                "Record that the client opened a month",
                "Deliverables",
                responses("200", "Deliverable", "409"),
            ),
        },
        "/api/clients/{client_id}/automations": {
            "parameters": [PATH_CLIENT],
            "get": operation(
                "listClientAutomations",
                "A client's automations",
                "Automations",
                responses("200", "AutomationList"),
                params=[*filters, *PAGE],
            ),
        },
        "/api/clients/{client_id}/automations/schedule": {
            "parameters": [PATH_CLIENT],
            **post(
                "scheduleAutomation",
                "Schedule an automation by hand",
                "Automations",
                responses("201", "Automation", "409"),
                request=body("ScheduleRequest"),
                description="`at` defaults to now. Email automations need a `template` (and "
                "a `month` for month emails); a generation needs a `month`.",
            ),
        },
        "/api/automations/{automation_id}": {
            "parameters": [PATH_AUTOMATION],
            "delete": operation(
                "cancelAutomation",
                "Cancel a scheduled automation",
                "Automations",
                responses("200", "Automation", "409"),
            ),
        },
        "/api/automations/{automation_id}/trigger": {
            "parameters": [PATH_AUTOMATION],
            **post(
                "triggerAutomation",
                "Run an automation now",
                "Automations",
                responses("202", "Automation", "409", description="Queued to run now."),
                description="A scheduled automation runs now; a failed one runs again with "
                "fresh retries.",
            ),
        },
        "/api/clients/import": {
            **post(
                "importClients",
                "Enroll clients from a CSV file",
                "Clients",
                responses("200", "ImportReport"),
                request=body("ImportRequest"),
                description="Columns: name, email, timezone, start_date, coach (an admin's "
                "email), and any other as an onboarding answer. With `dry_run`, each row is "
                "checked and nothing changes; otherwise every new row is enrolled, or none (422 "
                "when a row is wrong). Rows already enrolled with the same name and start date "
                "are left as they are, so a second import changes nothing.",
            ),
        },
        "/api/admin/export/clients": {
            "get": operation(
                "exportClients",
                "The clients list as CSV",
                "Admin",
                csv_responses(),
                params=[
                    param("q", "query", text(200), "Only names or emails containing this."),
                    param(
                        "status",
                        "query",
                        {"type": "string", "enum": [s.value for s in ClientStatus]},
                        "Only clients with this status.",
                    ),
                    param(
                        "sort",
                        "query",
                        {"type": "string", "enum": ["name", "start", "month", "status"]},
                        "The list's order (default: name).",
                    ),
                ],
            ),
        },
        "/api/admin/export/log": {
            "get": operation(
                "exportLog",
                "The automation log as CSV",
                "Admin",
                csv_responses(),
                params=[
                    param("client", "query", text(200), "Id, email or part of a name."),
                    param(
                        "type",
                        "query",
                        {"type": "string", "enum": [t.value for t in AutomationType]},
                        "",
                    ),
                    param(
                        "status",
                        "query",
                        {"type": "string", "enum": [s.value for s in LogStatus]},
                        "",
                    ),
                    param("from", "query", DATE, "From this day (UTC)."),
                    param("to", "query", DATE, "To this day (UTC), inclusive."),
                    param("actor", "query", text(254), "Who acted, or `engine`."),
                ],
                description="The rows the filters name, newest first (at most 100,000).",
            ),
        },
        "/api/admin/review": {
            "get": operation(
                "reviewQueue",
                "The review queue",
                "Deliverables",
                responses("200", "ReviewList"),
                params=[
                    param(
                        "show",
                        "query",
                        {"type": "string", "enum": ["review", "rejected"]},
                        "Only those in review, or only those rejected and waiting for a "
                        "revision (default: both).",
                    ),
                    *PAGE,
                ],
                description="Deliverables waiting for an admin, the longest waiting first: in "
                "review since generated, or rejected (latest version) since rejected.",
            ),
        },
        "/api/admin/automations": {
            "get": operation(
                "listAutomations",
                "All automations",
                "Admin",
                responses("200", "AutomationList"),
                params=[client_filter, *filters, *PAGE],
            ),
        },
        "/api/admin/automations/stats": {
            "get": operation(
                "automationStats",
                "Dashboard statistics",
                "Admin",
                responses("200", "Stats"),
            ),
        },
        "/api/admin/metrics": {
            "get": operation(
                "successMetrics",
                "Success metrics",
                "Admin",
                responses("200", "Metrics"),
                params=metric_scope,
                description="Each success metric of the specification with its definition, "
                "target, value, trend, and values per coach and per program month; and the "
                "funnel of each month (a state counted at most 5 minutes before: "
                "`funnel_counted_at`). Window: the last 7, 30 or 90 UTC days (default 30), "
                "or a cohort: clients who started in one month.",
            ),
        },
        "/api/admin/metrics/{code}/rows": {
            "get": operation(
                "successMetricRows",
                "The rows behind a success metric",
                "Admin",
                responses("200", "MetricRows"),
                params=[
                    param(
                        "code",
                        "path",
                        {"type": "string", "enum": [m.code for m in METRICS]},
                        "The metric.",
                        required=True,
                    ),
                    *metric_scope,
                    *PAGE,
                ],
                description="Exactly the rows the metric's value is counted from.",
            ),
        },
        "/api/admin/risk": {
            "get": operation(
                "clientsAtRisk",
                "Clients at risk",
                "Admin",
                responses("200", "Risk"),
                description="The clients-at-risk model (a logistic regression fitted on the "
                "account's history: each feature with its weight) and the active clients whose "
                "kept score (see `RiskScore`) finds them at risk of being more than 7 days late "
                "at their next milestone, with their reasons and when they were scored. `model` "
                "is null until it has been trained.",
            ),
        },
        "/api/admin/risk/train": {
            "post": operation(
                "trainRiskModel",
                "Train the clients-at-risk model",
                "Admin",
                responses("201", "Risk", "400", "409"),
                params=[IDEMPOTENCY],
                description="Fit the model again on the account's history and score every "
                "active client. 409 when the history is too short to learn from.",
            ),
        },
        "/api/admin/ab-tests": {
            "get": operation(
                "listAbTests",
                "A/B tests of emails",
                "Admin",
                responses("200", "AbTestList"),
                description="Every A/B test with its result: sends and goal conversions of "
                "each variant, the difference B - A with its 95% confidence interval, and a "
                "plain verdict.",
            ),
            "post": operation(
                "startAbTest",
                "Start an A/B test of a client email",
                "Admin",
                responses("201", "AbTest", "400", "409", "415"),
                request=body("AbTestInput"),
                params=[IDEMPOTENCY],
                description="Variant B overrides the subject and/or the bodies (Jinja, with the "
                "email's variables); `split` percent of clients (by a stable hash) get it. "
                "Goal, within `goal_days` of the email: `open` (default), the client opens the "
                "month's deliverable; `click`, the client clicks a portal link in the email "
                "(the variant's own bodies must keep `{{ portal_url }}` or "
                "`{{ deliverable_url }}`). 409 when the template is already being tested.",
            ),
        },
        "/api/admin/ab-tests/{test_id}": {
            "get": operation(
                "getAbTest",
                "One A/B test and its result",
                "Admin",
                responses("200", "AbTest"),
                params=[param("test_id", "path", ID, "The test's id.", required=True)],
            ),
        },
        "/api/admin/ab-tests/{test_id}/end": {
            "post": operation(
                "endAbTest",
                "End an A/B test by keeping one variant",
                "Admin",
                responses("200", "AbTest", "400", "409", "415"),
                request=body("AbTestEnd"),
                params=[param("test_id", "path", ID, "The test's id.", required=True), IDEMPOTENCY],
                description="Keep A (the template) or B (the variant, from now on for every "
                "client). 409 when the test has already ended.",
            ),
        },
        "/api/admin/automations/logs": {
            "get": operation(
                "automationLogs",
                "Execution log",
                "Admin",
                responses("200", "LogList"),
                params=[
                    client_filter,
                    param(
                        "actor",
                        "query",
                        {"type": "string", "minLength": 1, "maxLength": 254, "pattern": TEXT},
                        "Only what this person did (their email, as recorded), or `engine` for "
                        "what the engine did on its own.",
                    ),
                    param(
                        "type",
                        "query",
                        {"type": "string", "enum": [t.value for t in AutomationType]},
                        "",
                    ),
                    param(
                        "status",
                        "query",
                        {"type": "string", "enum": [s.value for s in LogStatus]},
                        "",
                    ),
                    param("from", "query", INSTANT, "Only entries at or after this instant."),
                    param("to", "query", INSTANT, "Only entries before this instant."),
                    *PAGE,
                ],
            ),
        },
    }


def document(program: Program) -> dict[str, Any]:
    """The whole OpenAPI document for an app running `program`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Journey Engine API",
            "version": "1.0.0",
            "description": (
                "Drive client journeys over HTTP: enroll clients, control their journeys, "
                "review deliverables, and watch automations.\n\n"
                "Authenticate with an API token (`journey tokens create ADMIN_EMAIL`) sent as "
                "`Authorization: Bearer <token>`. Bodies are JSON; dates are `YYYY-MM-DD` "
                f"(years {YEARS[0]}-{YEARS[1]}); instants are ISO 8601 with an offset, and "
                'are answered in UTC. Every error answers `{"error": {"code", "message", '
                '"field"}}`. A POST with an `Idempotency-Key` header is carried out once: '
                "a retry with the same key and body gets the first answer again (for 24 "
                "hours); the same key with another body gets 422."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths(program),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "je_..."}
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Any unique string (a UUID): retries with it are carried "
                    "out once.",
                    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                }
            },
            "responses": {
                f"E{code}": {
                    "description": text_,
                    "content": {"application/json": {"schema": ref("Error")}},
                }
                | (
                    {
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds to wait.",
                                "schema": {"type": "integer", "minimum": 1},
                            }
                        }
                    }
                    if code == "429"
                    else {}
                )
                for code, text_ in ERRORS.items()
            },
            "schemas": schemas(program),
        },
    }
