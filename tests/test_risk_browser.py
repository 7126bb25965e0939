"""Clients at risk in a real headless browser: train the model, read its weights, filter the
clients list, read a client's reasons; no Content-Security-Policy violation."""

from __future__ import annotations

import pytest

from tests.browser import csp_violations, serve, shot
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, set_password
from tests.test_risk import history  # noqa: F401  (the 24 clients, as a fixture)


@pytest.fixture
def site(history):  # noqa: F811
    harness = history[0]
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def test_a_coach_trains_the_model_and_finds_who_is_at_risk(history, site, page, tmp_path):  # noqa: F811
    _, late = history
    violations = csp_violations(page)
    page.goto(site + "/")
    page.get_by_label("Email").fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")
    page.get_by_role("link", name="At risk", exact=True).click()
    page.get_by_role("button", name="Train the model and score every client").click()
    page.wait_for_url("**/risk")
    assert f"{len(late)} clients at risk" in page.locator(".msg.ok").inner_text()
    assert page.locator('tr[data-feature="late_share"]').count() == 1
    shot(page, "panel-risk", tmp_path)
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_label("At risk").check()
    page.wait_for_url("**risk=1**")
    assert page.locator("a.pill.risk").count() == len(late)
    page.locator("#client-rows td > a").first.click()
    page.wait_for_url("**/clients/*")
    card = page.locator(".risk-card")
    assert "At risk" in card.inner_text() and "earlier months ran more than 7 days late" in (
        card.inner_text()
    )
    assert violations == []
