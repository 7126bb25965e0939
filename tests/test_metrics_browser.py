"""The success metrics page in a real headless browser: the numbers, the links to their rows,
the trend as SVG, and no Content-Security-Policy violation."""

from __future__ import annotations

import pytest

from tests.browser import csp_violations, serve, shot
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, set_password
from tests.test_metrics import scenario  # noqa: F401  (the fixed scenario, as a fixture)


@pytest.fixture
def site(scenario):  # noqa: F811
    harness = scenario[0]
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    base, server = serve(harness.app)
    yield base
    server.shutdown()


def test_a_coach_reads_the_success_metrics_and_their_rows(site, page, tmp_path):
    violations = csp_violations(page)
    page.goto(site + "/")
    page.get_by_label("Email").fill("coach@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site + "/")
    page.get_by_role("link", name="Metrics", exact=True).click()
    page.get_by_label("Window").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/success?window=7**")
    card = page.locator('[data-metric="execution_success"]')
    assert card.locator("a.number").inner_text() == "55.6%"
    assert "misses the target" in card.inner_text()
    assert card.locator("svg.trend rect.bar").count() == 5  # five of the seven days have rows
    shot(page, "panel-metrics", tmp_path)
    page.get_by_role("link", name="Generated → approved").click()
    page.wait_for_url("**/success/funnel?window=7")
    assert page.locator('tr[data-month="1"]').inner_text().split()[:2] == ["M1", "2"]
    page.go_back()
    card.locator("a.number").click()
    page.wait_for_url("**/success/execution_success/rows?window=7")
    assert page.locator("table.rows tbody tr").count() == 9
    assert "9 rows, 5 counted" in page.locator("p.counted").inner_text()
    assert violations == []
