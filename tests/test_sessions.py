"""Admin sessions live on the server: logout ends one for good (a cookie saved before it opens
nothing), an idle one ends by itself, none outlives SESSION_HOURS however active, and an admin
sees who is logged in and ends their own other sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.models import AdminSession
from scheduler.sessions import digest
from tests.panel_helpers import Panel, browser, log_in, set_password, token
from web.extensions import db


@pytest.fixture
def web(harness):
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return web


def copy_of(harness, web):
    """Another browser holding the same cookie (what a thief would replay)."""
    other = browser(harness.app)
    other.set_cookie("session", web.get_cookie("session").value)
    return other


def test_logout_ends_the_session_on_the_server(harness, web):
    saved = copy_of(harness, web)
    assert saved.get("/").status_code == 200
    page = web.get("/").get_data(True)
    assert web.post("/logout", data={"csrf_token": token(page)}).status_code == 302
    answer = saved.get("/")  # the cookie from before the logout
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    [row] = db.session.query(AdminSession).all()
    assert row.revoked_at is not None and row.revoked_why == "logout"


def test_only_a_hash_of_the_token_is_kept(harness, web):
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(harness.app)
    cookie = serializer.loads(web.get_cookie("session").value)
    [row] = db.session.query(AdminSession).all()
    assert row.token_hash == digest(cookie["sid"]) != cookie["sid"]
    assert row.address == "127.0.0.1" and row.user_agent.startswith("Werkzeug")


def test_an_idle_session_ends_by_itself(harness, web):
    harness.clock.advance(timedelta(minutes=25))
    assert web.get("/").status_code == 200  # activity keeps it going
    harness.clock.advance(timedelta(minutes=25))
    assert web.get("/").status_code == 200  # 50 minutes in, 25 idle
    harness.clock.advance(timedelta(minutes=31))
    answer = web.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert "Your session has ended" in web.get(answer.headers["Location"]).get_data(True)
    assert db.session.query(AdminSession).one().revoked_why == "idle"


def test_no_activity_extends_a_session_past_its_lifetime(harness, web):
    for _ in range(12 * 3 - 1):  # a request every 20 minutes, for 11h40
        harness.clock.advance(timedelta(minutes=20))
        assert web.get("/dashboard").status_code == 200
    harness.clock.advance(timedelta(minutes=20))  # 12 hours after the login
    assert web.get("/dashboard").status_code == 302
    assert db.session.query(AdminSession).one().revoked_why == "expired"


def test_an_admin_sees_who_is_logged_in_and_ends_their_other_sessions(harness, web):
    laptop = browser(harness.app)
    assert log_in(laptop).status_code == 302
    phone = browser(harness.app)
    assert log_in(phone).status_code == 302
    panel = Panel(web)
    page = panel.get("/sessions").get_data(True)
    assert page.count("coach@example.com") >= 3 and "this session" in page
    laptop_row = db.session.query(AdminSession).order_by(AdminSession.id).all()[1]
    ended = panel.web.post(f"/sessions/{laptop_row.id}/end", data={"csrf_token": panel.csrf})
    assert ended.status_code == 303
    assert laptop.get("/").status_code == 302 and phone.get("/").status_code == 200
    assert panel.web.post("/sessions/99999999999999999999/end", data={"csrf_token": panel.csrf})
    answer = panel.web.post("/sessions/end-others", data={"csrf_token": panel.csrf})
    assert answer.status_code == 303
    assert "1 other session ended" in panel.get("/sessions").get_data(True)
    assert phone.get("/").status_code == 302
    assert web.get("/").status_code == 200  # the one that asked stays


def test_one_admin_cannot_end_anothers_session(harness, web):
    harness.add_admin("lead@example.com")
    set_password("lead@example.com")
    lead = browser(harness.app)
    assert log_in(lead, "lead@example.com").status_code == 302
    coach_row = db.session.query(AdminSession).order_by(AdminSession.id).first()
    panel = Panel(lead)
    answer = lead.post(f"/sessions/{coach_row.id}/end", data={"csrf_token": panel.csrf})
    assert answer.status_code == 404
    assert web.get("/").status_code == 200
