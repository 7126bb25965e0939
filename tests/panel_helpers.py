"""Logging in to the admin panel from tests (the CSRF token is read from the page, as a
browser would)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import g, has_app_context
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from scheduler.models import Admin
from web.extensions import db

PASSWORD = "correct horse battery"


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert found, "no CSRF token on the page"
    return found.group(1)


class Browser(FlaskClient):
    """A test client whose requests start afresh. The tests hold an app context open, and
    Flask lets a request reuse it; what Flask-Login, Flask-WTF and the engine keep in `g` for
    one request must not leak into the next, as it cannot in production."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            for name in ("_login_user", "csrf_token", "journey"):
                g.pop(name, None)
        return super().open(*args, **kwargs)


# Tests that move the clock by hours or months while an admin stays logged in (sessions have
# tests of their own): the longest idle time and lifetime.
LONG_SESSIONS = {
    "SESSION_IDLE_MINUTES": 60 * 24 * 3650,
    "PERMANENT_SESSION_LIFETIME": timedelta(days=3650),
}


def browser(app: Any) -> Browser:
    app.test_client_class = Browser
    return app.test_client()


def set_password(email: str = "coach@example.com") -> Admin:
    admin = db.session.query(Admin).filter_by(email=email).one()
    admin.password_hash = generate_password_hash(PASSWORD)
    db.session.commit()
    return admin


def log_in(web: Any, email: str = "coach@example.com", password: str = PASSWORD) -> Any:
    page = web.get("/login")
    return web.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token(page.get_data(True))},
    )


class Panel:
    """A logged-in admin's browser session, through Flask's test client."""

    def __init__(self, web: Any) -> None:
        self.web = web
        self.csrf = token(web.get("/").get_data(True))

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.web.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, htmx: bool = True) -> Any:
        headers = {"X-CSRFToken": self.csrf}
        if htmx:
            headers["HX-Request"] = "true"
        return self.web.post(url, data=data or {}, headers=headers)
