"""The API against its own OpenAPI document: schemathesis runs in-process against the WSGI app,
every phase (explicit examples, coverage of edge values and of missing or invalid parts,
random fuzzing with valid and invalid data, and stateful sequences that follow the links between
operations) over every operation, with every check on every answer: no server error; status,
content type, headers and body as documented; auth enforced; invalid data refused; valid data
accepted; a deleted resource gone; a created one available; undocumented methods answered 405.

Valid data may still be refused with 422 where the rule is one JSON Schema cannot state (a
hold's end after the client's local today, a time not in the past, a template that belongs to the
automation type); 409 (state conflicts) and 404 (unknown ids) are expected by default."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import schemathesis
import schemathesis.python.wsgi
import werkzeug
from schemathesis.engine import events, from_schema
from sqlalchemy import select

from scheduler import controls, lookups, review
from scheduler.models import Admin
from web.api.tokens import issue
from web.extensions import db

pytestmark = pytest.mark.slow


def contract_config(token: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20260101,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": 15},
            "phases": {"stateful": {"max-steps": 20}},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "404", "409", "422"],
                },
            },
        }
    )


def seed(harness) -> str:
    """A few clients at different points of their journey, and a token."""
    for i, start in enumerate([date(2025, 12, 1), date(2026, 1, 10), date(2026, 3, 1)], 1):
        harness.enroll(start, email=f"client{i}@example.com", name=f"Client {i}")
    harness.run_for(timedelta(days=2))
    harness.do(review.approve, lookups.find_client(harness.ctx, 1), 1)
    harness.do(controls.pause, lookups.find_client(harness.ctx, 3), reason="trip")
    _, raw = issue(db.session, db.session.scalar(select(Admin)), "contract", harness.clock.now())
    db.session.commit()
    return raw


class Client(werkzeug.Client):
    """Schemathesis (4.32) hands socket-level options meant for `requests` to the in-process
    client when it probes an operation without credentials (the `ignored_auth` check); they mean
    nothing in-process, so they are dropped here."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return super().open(*args, **kwargs)


def test_api_matches_its_contract(harness, monkeypatch):
    monkeypatch.setattr(schemathesis.python.wsgi, "get_client", Client)
    # Thousands of requests from one address, many without a token (the auth checks): bad tokens
    # are not throttled here (tests/test_throttle.py tests that).
    harness.app.config["API_TOKEN_LIMIT"] = "1000000 per minute"
    token = seed(harness)
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", harness.app, config=contract_config(token)
    )
    failures: list[str] = []
    errors: list[str] = []
    operations: set[str] = set()
    checks: dict[str, int] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            if recorder.label != "Stateful tests":
                operations.add(recorder.label)
            for nodes in recorder.checks.values():
                for node in nodes:
                    checks[node.name] = checks.get(node.name, 0) + 1
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.append(f"{recorder.label}: {failure.title}\n{failure.message}")
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            failures += [f"{f.operation}: {f.title}\n{f.message}" for f in event.failures]
    print(f"\n{len(operations)} operations; checks run: {sorted(checks.items())}")
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert not errors, "\n\n".join(errors[:10])
    assert not failures, "\n\n".join(sorted(set(failures))[:15])
    assert documented <= operations
    assert not errors, "\n\n".join(errors[:10])
    assert not failures, "\n\n".join(sorted(set(failures))[:15])
