"""Security headers on every response of every part of the app (panel, login, health, portal,
API, records, static files, error pages): a Content-Security-Policy that allows no inline
script, nosniff, a referrer policy, framing refused, and HSTS when BASE_URL is https."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from scheduler import review
from scheduler.models import Admin
from tests.panel_helpers import Panel, browser, log_in, set_password
from web.api.tokens import issue
from web.extensions import db


@pytest.fixture
def site(harness):
    client = harness.enroll(date(2026, 1, 5), "America/New_York")
    harness.run_until(datetime(2026, 1, 5, 15, tzinfo=UTC))
    harness.do(review.approve, client, 1)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    _, raw = issue(db.session, db.session.scalar(select(Admin)), "t", harness.clock.now())
    db.session.commit()
    token = harness.app.extensions["journey"].links.token(client.id)
    return Panel(web), client, token, raw


def fill(rule, client_id: int, token: str) -> str:
    values = {
        "token": token,
        "template": "REMINDER_UPCOMING",
        "export_type": "csv",
        "filename": "admin/js/helpers.js",
        "verb": "approve",
    }
    path = rule.rule
    for arg in rule.arguments:
        kind = type(rule._converters.get(arg)).__name__.lower()  # None: a default, not in the path
        value = str(client_id if arg != "month" else 1) if "int" in kind else values.get(arg, "x")
        path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", value, path)
    return path


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def check(answer, what: str) -> None:
    headers = answer.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), what
    policy = directives(headers.get("Content-Security-Policy", ""))
    assert policy.get("default-src") == ["'none'"], what
    scripts = policy.get("script-src", [])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, what
    assert "'unsafe-eval'" not in policy.get("style-src", []), what
    assert policy.get("base-uri") == ["'none'"], what
    assert policy.get("frame-ancestors") in (["'none'"], ["'self'"]), what
    if policy["frame-ancestors"] == ["'self'"]:  # the email preview frame, sandboxed
        assert "sandbox" in policy and headers["X-Frame-Options"] == "SAMEORIGIN", what
    assert "Strict-Transport-Security" not in headers, what  # BASE_URL is http here


def test_every_route_of_every_blueprint_sends_the_headers(harness, site):
    panel, client, token, raw = site
    api = {"Authorization": f"Bearer {raw}"}
    seen = set()
    for rule in harness.app.url_map.iter_rules():
        path = fill(rule, client.id, token)
        for method in sorted(rule.methods - {"OPTIONS"}):
            if method not in ("GET", "HEAD"):
                continue
            answer = panel.web.open(path, method=method, headers=api)
            check(answer, f"{method} {path} {answer.status_code}")
            seen.add(rule.endpoint.split(".")[0])
    # Error pages too: an unknown page, a forged portal link, a bad API token.
    check(panel.get("/no-such-page"), "404")
    check(panel.get("/portal/forged"), "portal 403")
    check(harness.app.test_client().get("/api/clients"), "api 401")
    check(harness.app.test_client().get("/clients"), "login redirect")
    assert {"panel", "auth", "main", "portal", "api", "records", "static"} <= seen


def test_panel_pages_carry_no_inline_script_or_style(harness, site):
    panel, client, _, _ = site
    pages = [
        "/",
        f"/clients/{client.id}",
        "/review",
        "/dashboard",
        "/log",
        "/sessions",
        f"/clients/{client.id}/emails/REMINDER_UPCOMING",
        "/login",
    ]
    for page in pages:
        html = panel.get(page).get_data(True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page
        assert "<style" not in html and " style=" not in html, page
        assert not re.search(r"\son[a-z]+=", html) and "hx-on" not in html, page
        assert '"includeIndicatorStyles":false' in html, page


def test_https_deployments_get_strict_transport_security(harness, site):
    panel, _, token, raw = site
    harness.app.config["BASE_URL"] = "https://journey.example.com"
    for answer in (
        panel.get("/"),
        panel.get(f"/portal/{token}"),
        panel.get("/api/clients", headers={"Authorization": f"Bearer {raw}"}),
        panel.get("/records/"),
    ):
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_without_npm_the_policy_allows_exactly_the_pinned_htmx_file(harness, site):
    panel = site[0]
    cdn = "https://unpkg.com/htmx.org@2.0.8/dist/htmx.min.js"
    assets = dict(harness.app.jinja_env.globals["assets"])
    harness.app.jinja_env.globals["assets"] = assets | {"htmx": {"src": cdn, "integrity": "x"}}
    policy = directives(panel.get("/").headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'", cdn]
