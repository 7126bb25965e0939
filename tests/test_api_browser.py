"""The API reference in a real browser: Swagger UI renders the contract, takes a token under
"Authorize", and "Try it out" sends a real request that the API answers."""

from __future__ import annotations

from datetime import date

import pytest

from tests.browser import csp_violations, serve, shot
from tests.test_api import new_token


@pytest.fixture
def site(harness):
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def test_a_developer_tries_a_call_from_the_reference(harness, site, page, tmp_path):
    harness.enroll(date(2026, 1, 10), name="Sarah Johnson", email="sarah@example.com")
    token = new_token(harness)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    violations = csp_violations(page)  # Swagger UI works under the API docs' policy
    page.goto(site + "/api/docs")
    page.get_by_role("button", name="Authorize").first.click()
    page.get_by_label("auth-bearer-value").fill(token)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".auth-btn-wrapper .btn-done").click()
    listing = page.locator("#operations-Clients-listClients")
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    answer = listing.locator(".responses-wrapper .live-responses-table")
    answer.wait_for()
    assert answer.locator("tbody .response-col_status").first.inner_text().strip() == "200"
    assert "sarah@example.com" in answer.inner_text()
    shot(page, "api-reference", tmp_path)
    assert failures == []
    assert violations == []
