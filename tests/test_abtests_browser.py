"""A/B tests in a real headless browser: start a test, read its result, end it keeping the
variant; no Content-Security-Policy violation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from scheduler.models import AbTest
from tests.browser import csp_violations, serve, shot
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, set_password
from web.extensions import db


@pytest.fixture
def site(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def test_a_coach_runs_an_ab_test_of_an_email(harness, site, page, tmp_path):
    violations = csp_violations(page)
    page.goto(site + "/")
    page.get_by_label("Email", exact=True).fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")
    page.get_by_role("link", name="A/B tests", exact=True).click()
    page.get_by_label("Email", exact=True).select_option("DELIVERABLE_READY")
    page.get_by_label("Name").fill("month in the subject")
    page.get_by_label("Share of clients given the variant (%)").fill("30")
    page.get_by_label("Subject of the variant").fill("Your month {{ month }} plan is ready")
    page.get_by_role("button", name="Start the test").click()
    page.wait_for_url("**/ab/*")
    assert "is running" in page.locator(".msg.ok").inner_text()
    assert "No winner yet" in page.locator("p.verdict").inner_text()
    assert page.locator('tr[data-variant="B"]').count() == 1
    shot(page, "panel-ab-test", tmp_path)
    page.get_by_role("button", name="Keep B for every client").click()
    page.wait_for_url("**/ab/*")
    assert "variant B is kept" in page.locator(".msg.ok").inner_text()
    test = db.session.scalars(select(AbTest)).one()
    db.session.refresh(test)
    assert (test.kept, test.ended_by) == ("B", "coach@example.com")
    assert violations == []
