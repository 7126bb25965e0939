"""The JSON API, endpoint by endpoint, on SQLite and PostgreSQL: success and refusals, the
error shape, tokens, idempotency."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.models import Admin, Client
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import AutomationType as T
from web.api.tokens import issue
from web.extensions import db


class Api:
    """A test client that sends the token and JSON."""

    def __init__(self, harness: Any, token: str) -> None:
        self.client = harness.app.test_client()
        self.token = token

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any):
        headers = kwargs.pop("headers", {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            kwargs["json"] = body
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        assert response.status_code != 500, response.get_data(as_text=True)
        assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert set(error) == {"code", "message", "field"}, error
        return response

    def get(self, path: str, **kw: Any):
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any):
        return self.call("DELETE", path, **kw)


def new_token(harness: Any) -> str:
    admin = db.session.scalar(select(Admin))
    _, raw = issue(db.session, admin, "tests", harness.clock.now())
    db.session.commit()
    return raw


@pytest.fixture
def api(harness):
    return Api(harness, new_token(harness))


SARAH = {
    "name": "Sarah Johnson",
    "email": "sarah@example.com",
    "start_date": "2026-01-10",
    "timezone": "America/New_York",
    "onboarding": {"business": "Bright Bakes", "audience": "home bakers"},
}


@pytest.fixture
def sarah(api) -> dict[str, Any]:
    response = api.post("/api/clients", SARAH)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def code(response) -> str:
    return response.get_json()["error"]["code"]


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer je_nope", "Basic dXNlcjpwYXNz", "je_abc", "Bearer " + "x" * 5000],
)
def test_no_token_or_a_bad_one_gets_401_and_nothing_else(api, header):
    headers = {"Authorization": header} if header else {}
    api.token = None
    for method, path in [
        ("GET", "/api/clients"),
        ("GET", "/api/clients/1"),
        ("POST", "/api/clients"),
        ("GET", "/api/no/such/thing"),
        ("PUT", "/api/clients"),
    ]:
        response = api.call(method, path, headers=dict(headers))
        assert response.status_code == 401, (method, path)
        assert code(response) == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_and_inactive_admin_get_401(api, harness):
    assert api.get("/api/clients").status_code == 200
    runner = harness.app.test_cli_runner()
    from web.cli import cli

    out = runner.invoke(cli, ["tokens", "list"])
    assert "je_" in out.output and api.token not in out.output
    token_id = out.output.split()[0]
    assert "revoked" in runner.invoke(cli, ["tokens", "revoke", token_id]).output
    assert api.get("/api/clients").status_code == 401
    assert "already revoked" in runner.invoke(cli, ["tokens", "revoke", token_id]).output
    api.token = new_token(harness)
    assert api.get("/api/clients").status_code == 200
    db.session.scalar(select(Admin)).active = False
    db.session.commit()
    assert api.get("/api/clients").status_code == 401


def test_tokens_cli_creates_a_usable_token(harness):
    from web.cli import cli

    runner = harness.app.test_cli_runner()
    out = runner.invoke(cli, ["tokens", "create", "coach@example.com", "--name", "CRM"])
    assert out.exit_code == 0, out.output
    raw = next(line for line in out.output.splitlines() if line.startswith("je_"))
    assert Api(harness, raw).get("/api/clients").status_code == 200
    out = runner.invoke(cli, ["tokens", "create", "nobody@example.com"])
    assert out.exit_code != 0 and "no admin" in out.output
    out = runner.invoke(cli, ["tokens", "revoke", "999"])
    assert out.exit_code != 0 and "no token 999" in out.output


def test_contract_and_docs_are_public(api):
    api.token = None
    doc = api.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "/api/clients/{client_id}/journey/timeline" in doc["paths"]
    page = api.client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    # Swagger UI, served by the app itself, reading the one document.
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html or "unpkg.com" in html
    assert 'data-spec-url="/api/openapi.json"' in html and "/static/api-docs.js" in html


# -- errors ------------------------------------------------------------------------------------


def test_error_shape_for_unknown_routes_methods_and_bodies(api, sarah):
    response = api.get("/api/nothing/here")
    assert response.status_code == 404 and code(response) == "not_found"
    response = api.call("PUT", "/api/clients")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    response = api.call("PUT", "/api/clients/1")  # DELETE erases; PUT is not an operation
    assert response.status_code == 405
    response = api.post("/api/clients", data="{nope", content_type="application/json")
    assert response.status_code == 400 and code(response) == "malformed_json"
    response = api.post("/api/clients", data="name=x", content_type="text/plain")
    assert response.status_code == 415
    response = api.post("/api/clients", data=b"\xff\xfe", content_type="application/json")
    assert response.status_code == 400
    response = api.post("/api/clients", data="NaN", content_type="application/json")
    assert response.status_code == 400
    response = api.post("/api/clients", data="[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    for body in ([1, 2], "text", 3, None, True):
        response = api.post("/api/clients", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 422, body
    response = api.post(
        "/api/clients", data="x" * (2 * 1024 * 1024), content_type="application/json"
    )
    assert response.status_code == 413
    response = api.get(f"/api/clients/{2**70}")
    assert response.status_code == 404
    response = api.get("/api/clients?limit=0")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "limit"
    response = api.get("/api/clients?limit=abc")
    assert response.status_code == 422
    response = api.get("/api/admin/automations?from=yesterday")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "from"


# -- clients -----------------------------------------------------------------------------------


def test_create_read_list_update_clients(api, sarah):
    assert sarah["email"] == "sarah@example.com" and sarah["status"] == "on_track"
    assert sarah["start_date"] == "2026-01-10" and sarah["created_at"].endswith("+00:00")
    assert api.get(f"/api/clients/{sarah['id']}").get_json() == sarah
    listed = api.get("/api/clients").get_json()
    assert [c["id"] for c in listed["data"]] == [sarah["id"]]
    assert listed["pagination"] == {"limit": 50, "offset": 0, "total": 1, "next_offset": None}
    assert api.get("/api/clients?status=on_hold").get_json()["data"] == []
    assert [c["id"] for c in api.get("/api/clients?status=active").get_json()["data"]] == [
        sarah["id"]
    ]
    # By email, as the 404 of an unknown client suggests.
    by_email = api.get("/api/clients/sarah@example.com")
    assert by_email.status_code == 200 and by_email.get_json()["id"] == sarah["id"]
    assert by_email.headers["Content-Location"] == f"/api/clients/{sarah['id']}"
    assert api.get("/api/clients/nobody@example.com").status_code == 404
    changed = api.patch(
        f"/api/clients/{sarah['id']}", {"name": "Sarah J.", "reminders_enabled": False}
    ).get_json()
    assert changed["name"] == "Sarah J." and changed["reminders_enabled"] is False
    assert api.get(f"/api/clients/{sarah['id']}").get_json()["name"] == "Sarah J."


@pytest.mark.parametrize(
    "change, status, field",
    [
        ({"email": "not-an-email"}, 422, "email"),
        ({"start_date": "2026-02-30"}, 422, "start_date"),
        ({"start_date": "10/01/2026"}, 422, "start_date"),
        ({"start_date": "9999-12-31"}, 422, "start_date"),
        ({"timezone": "Mars/Olympus"}, 422, "timezone"),
        ({"name": "   "}, 422, "name"),
        ({"name": 42}, 422, "name"),
        ({"surprise": 1}, 422, "surprise"),
        ({"onboarding": {"a": {"nested": 1}}}, 422, "onboarding.a"),
        ({"business_plan": "a\u0000b"}, 422, "business_plan"),
    ],
)
def test_enrollment_refuses_bad_fields(api, change, status, field):
    response = api.post("/api/clients", {**SARAH, **change})
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_enrollment_refuses_missing_fields_and_duplicates(api, sarah):
    response = api.post("/api/clients", {"name": "X", "email": "x@example.com"})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "start_date"
    response = api.post("/api/clients", {**SARAH, "email": "SARAH@example.com"})
    assert response.status_code == 409 and response.get_json()["error"]["field"] == "email"
    other = api.post("/api/clients", {**SARAH, "email": "other@example.com"}).get_json()
    response = api.patch(f"/api/clients/{other['id']}", {"email": "sarah@example.com"})
    assert response.status_code == 409
    assert api.get("/api/clients/999").status_code == 404
    assert api.patch("/api/clients/999", {"name": "x"}).status_code == 404


# -- the journey -------------------------------------------------------------------------------


def test_timeline_pause_resume_adjust_and_start(api, sarah, harness):
    base = f"/api/clients/{sarah['id']}"
    t = api.get(f"{base}/journey/timeline").get_json()
    assert [m["date"] for m in t["months"][:2]] == ["2026-01-10", "2026-02-09"]
    assert t["months"][0]["generation"]["state"] == "scheduled"
    assert t["client"]["id"] == sarah["id"] and len(t["upcoming"]) > 0
    assert api.get(f"{base}/journey/timeline?days=366").status_code == 200
    assert api.get(f"{base}/journey/timeline?days=0").status_code == 422

    hold = api.post(f"{base}/journey/pause", {"until": "2026-01-20", "reason": "trip"})
    assert hold.status_code == 200, hold.get_json()
    assert hold.get_json()["until"] == "2026-01-20" and hold.get_json()["reason"] == "trip"
    again = api.post(f"{base}/journey/pause", {})
    assert again.status_code == 409 and "already on hold" in again.get_json()["error"]["message"]
    assert api.get(base).get_json()["status"] == "on_hold"
    harness.clock.advance(timedelta(days=3))
    resumed = api.post(f"{base}/journey/resume")
    assert resumed.status_code == 200 and resumed.get_json()["days"] == 3
    assert api.post(f"{base}/journey/resume").status_code == 409
    response = api.post(f"{base}/journey/pause", {"until": "2025-01-01"})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "until"

    adjusted = api.patch(f"{base}/journey/adjust", {"start_date": "2026-01-12"})
    assert adjusted.status_code == 200 and adjusted.get_json()["moved"] > 0
    assert adjusted.get_json()["client"]["start_date"] == "2026-01-12"
    assert api.patch(f"{base}/journey/adjust", {"start_date": "nope"}).status_code == 422
    assert api.patch(f"{base}/journey/adjust", {}).status_code == 422

    started = api.post(f"{base}/journey/start", {"start_date": "2026-01-12"})
    assert started.status_code == 200 and started.get_json()["client"]["start_date"] == "2026-01-12"
    moved = api.post(f"{base}/journey/start", {"start_date": "2026-01-15"})
    assert (
        moved.status_code == 200 and moved.get_json()["months"][0]["date"] == "2026-01-18"
    )  # + 3 days held
    assert (
        api.post("/api/clients/999/journey/start", {"start_date": "2026-01-15"}).status_code == 404
    )


def test_start_refuses_to_move_a_journey_under_way(api, sarah, harness):
    base = f"/api/clients/{sarah['id']}"
    harness.run_until(harness.clock.now() + timedelta(days=12))
    response = api.post(f"{base}/journey/start", {"start_date": "2026-02-01"})
    assert response.status_code == 409 and response.get_json()["error"]["field"] == "start_date"


# -- deliverables ------------------------------------------------------------------------------


def test_deliverables_review_flow_and_generation_progress(api, sarah, harness):
    base = f"/api/clients/{sarah['id']}"
    listed = api.get(f"{base}/deliverables").get_json()
    assert listed["data"] == [] and listed["generation"][0]["state"] == "scheduled"
    assert api.post(f"{base}/deliverables/1/approve").status_code == 404
    queued = api.post(f"{base}/months/1/generate", {"notes": "focus on pricing"})
    assert queued.status_code == 202 and queued.get_json()["type"] == "GENERATE_DELIVERABLE"
    progress = api.get(f"{base}/deliverables?month=1").get_json()["generation"]
    assert progress == [
        {
            "month": 1,
            "state": "queued",
            "automation_id": queued.get_json()["id"],
            "trigger_at": queued.get_json()["trigger_at"],
            "attempts": 0,
            "error": None,
        }
    ]
    harness.run_for(timedelta(minutes=1))
    listed = api.get(f"{base}/deliverables").get_json()
    assert listed["data"][0]["status"] == "PENDING_REVIEW"
    assert listed["generation"][0]["state"] == "done"
    assert api.post(f"{base}/months/1/generate").status_code == 409
    assert api.post(f"{base}/deliverables/1/open").status_code == 409
    # A rejection says what to change: without notes it is refused.
    for empty in ({}, {"notes": "  "}):
        refused = api.post(f"{base}/deliverables/1/reject", empty)
        assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "notes"
    rejected = api.post(f"{base}/deliverables/1/reject", {"notes": "more detail"})
    assert rejected.get_json()["status"] == "REJECTED"
    assert rejected.get_json()["reviewer_notes"] == "more detail"
    approved = api.post(f"{base}/deliverables/1/approve")
    assert approved.get_json()["status"] == "DELIVERED"
    assert api.post(f"{base}/deliverables/1/approve").status_code == 409
    opened = api.post(f"{base}/deliverables/1/open")
    assert opened.get_json()["opened_at"] is not None
    assert api.post(f"{base}/deliverables/9/open").status_code == 422
    skipped = api.post(f"{base}/months/8/skip")
    assert skipped.status_code == 200 and skipped.get_json()["status"] == "SKIPPED"
    assert api.post(f"{base}/months/8/skip").status_code == 409
    assert api.get(f"{base}/deliverables?month=8").get_json()["generation"][0]["state"] == "skipped"
    client = api.post(f"{base}/business-plan/approve").get_json()
    assert client["business_plan_approved_at"] is not None


def test_failed_generation_shows_retrying_then_failed(api, sarah, harness):
    base = f"/api/clients/{sarah['id']}"
    harness.generator.fail_next = 10
    api.post(f"{base}/months/2/generate")
    harness.run_for(timedelta(minutes=1))
    state = api.get(f"{base}/deliverables?month=2").get_json()["generation"][0]
    assert state["state"] == "retrying" and "exploded" in state["error"]
    harness.run_for(timedelta(hours=2))
    state = api.get(f"{base}/deliverables?month=2").get_json()["generation"][0]
    assert state["state"] == "failed" and state["attempts"] == 4


# -- automations -------------------------------------------------------------------------------


def test_automations_list_schedule_cancel_trigger(api, sarah, harness):
    base = f"/api/clients/{sarah['id']}"
    page = api.get(f"{base}/automations?limit=5").get_json()
    assert len(page["data"]) == 5 and page["pagination"]["total"] == 32
    assert page["pagination"]["next_offset"] == 5
    gens = api.get(f"{base}/automations?type=GENERATE_DELIVERABLE&limit=200").get_json()
    assert len(gens["data"]) == 8
    window = api.get(
        "/api/admin/automations",
        query_string={"from": "2026-01-01T00:00:00Z", "to": "2026-01-11T00:00:00+00:00"},
    ).get_json()
    assert {a["month"] for a in window["data"]} == {1}
    assert (
        api.get(
            "/api/admin/automations?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
        ).status_code
        == 422
    )
    assert (
        api.get(f"/api/admin/automations?client_id={sarah['id']}&status=SCHEDULED").get_json()[
            "pagination"
        ]["total"]
        == 32
    )

    made = api.post(
        f"{base}/automations/schedule",
        {
            "type": "SEND_REMINDER",
            "template": "REMINDER_UPCOMING",
            "month": 2,
            "at": "2026-01-05T15:00:00+01:00",
        },
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["trigger_at"] == "2026-01-05T14:00:00+00:00"
    response = api.post(f"{base}/automations/schedule", {"type": "SEND_REMINDER", "month": 2})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "template"
    response = api.post(f"{base}/automations/schedule", {"type": "UPDATE_STATUS"})
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "type"
    response = api.post(
        f"{base}/automations/schedule",
        {"type": "GENERATE_DELIVERABLE", "month": 3, "at": "2020-01-01T00:00:00Z"},
    )
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "at"

    automation_id = made.get_json()["id"]
    cancelled = api.delete(f"/api/automations/{automation_id}")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "CANCELLED"
    assert api.delete(f"/api/automations/{automation_id}").status_code == 409
    assert api.post(f"/api/automations/{automation_id}/trigger").status_code == 409
    assert api.delete("/api/automations/99999").status_code == 404

    gen1 = next(a for a in gens["data"] if a["month"] == 1)
    triggered = api.post(f"/api/automations/{gen1['id']}/trigger")
    assert triggered.status_code == 202
    assert triggered.get_json()["trigger_at"] == harness.clock.now().isoformat()
    harness.run_for(timedelta(minutes=1))
    logs = api.get("/api/admin/automations/logs?status=COMPLETED").get_json()
    assert logs["data"] and logs["data"][0]["type"] in {"GENERATE_DELIVERABLE", "SEND_NOTIFICATION"}
    assert api.get("/api/admin/automations/logs?status=NOPE").status_code == 422
    stats = api.get("/api/admin/automations/stats").get_json()
    assert stats["today"]["generated"] == 1 and stats["clients"]["active"] == 1
    assert stats["clients"]["on_track"] + stats["clients"]["overdue"] == 1
    assert stats["automations"]["scheduled"] > 0


# -- idempotency -------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(api, harness):
    key = {"Idempotency-Key": "enroll-sarah-1"}
    first = api.post("/api/clients", SARAH, headers=dict(key))
    assert first.status_code == 201
    again = api.post("/api/clients", {**SARAH}, headers=dict(key))
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.query(Client).count() == 1
    other = api.post("/api/clients", {**SARAH, "name": "Someone Else"}, headers=dict(key))
    assert other.status_code == 422 and code(other) == "idempotency_key_reused"
    base = f"/api/clients/{first.get_json()['id']}"
    pause = {"Idempotency-Key": "pause-1"}
    assert api.post(f"{base}/journey/pause", {}, headers=dict(pause)).status_code == 200
    replay = api.post(f"{base}/journey/pause", {}, headers=dict(pause))
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    # Without the key, the second pause is refused, as it should be.
    assert api.post(f"{base}/journey/pause", {}).status_code == 409
    # Failures are remembered too: the retry gets the same 409.
    conflict = {"Idempotency-Key": "pause-2"}
    assert api.post(f"{base}/journey/pause", {}, headers=dict(conflict)).status_code == 409
    assert api.post(f"{base}/journey/pause", {}, headers=dict(conflict)).status_code == 409
    # Keys belong to a token: another token's same key is a new request.
    api.token = new_token(harness)
    assert api.post(f"{base}/journey/resume", headers=dict(pause)).status_code == 200
    assert (
        api.post("/api/clients", SARAH, headers={"Idempotency-Key": "bad key"}).status_code == 400
    )
    # After 24 hours a key is forgotten.
    harness.clock.advance(timedelta(hours=25))
    assert api.post(f"{base}/journey/resume", headers=dict(pause)).status_code == 409


def test_idempotency_key_in_progress_is_refused(api, harness):
    from scheduler.models import ApiToken, IdempotencyKey
    from web.api.idempotency import fingerprint  # noqa: F401

    token = db.session.scalar(select(ApiToken))
    with harness.app.test_request_context(
        "/api/clients", method="POST", json=SARAH, headers={"Idempotency-Key": "k"}
    ):
        from web.api.idempotency import fingerprint as fp

        print_ = fp()
    db.session.add(
        IdempotencyKey(
            token_id=token.id, key="k", fingerprint=print_, created_at=harness.clock.now()
        )
    )
    db.session.commit()
    response = api.post("/api/clients", SARAH, headers={"Idempotency-Key": "k"})
    assert response.status_code == 409 and code(response) == "idempotency_in_progress"
    harness.clock.advance(timedelta(minutes=11))  # the first request's process died
    assert api.post("/api/clients", SARAH, headers={"Idempotency-Key": "k"}).status_code == 201


def test_csrf_exemption_hook(harness):
    from flask import Flask

    from web import api as api_module

    class FakeCSRF:
        exempted: list[str] = []

        def exempt(self, view: Any) -> None:
            self.exempted.append(view.name)

    app = Flask("x")
    app.extensions["csrf"] = FakeCSRF()
    app.extensions["journey"] = harness.app.extensions["journey"]
    api_module.init_app(app)
    assert FakeCSRF.exempted == ["api"]


def test_scheduled_generation_types(api, sarah):
    # The listing filters match the vocabulary.
    for status in S:
        assert api.get(f"/api/admin/automations?status={status.value}").status_code == 200
    for kind in T:
        assert api.get(f"/api/admin/automations?type={kind.value}").status_code == 200
