"""Admin login: hashed passwords, sessions that expire, and one guard in front of every page
that is not public."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from scheduler.models import Admin
from web.extensions import db, htmx, login

bp = Blueprint("auth", __name__)

# Endpoints anyone may reach: the login page, static files, the health check, the client
# portal (its signed link is the key) and the JSON API (it checks its own bearer tokens).
# Everything else needs an admin.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "main.healthz", "main.metrics"})
PUBLIC_BLUEPRINTS = frozenset({"portal", "api"})
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return generate_password_hash(password)


@login.user_loader
def load_admin(key: str) -> Admin | None:
    admin_id = key.partition(":")[0]
    if not admin_id.isdigit():
        return None
    admin = db.session.get(Admin, int(admin_id))
    if admin is None or not admin.is_active or admin.get_id() != key:
        return None
    return admin


def public(endpoint: str | None) -> bool:
    if endpoint is None:  # no route matched: let it 404
        return True
    return endpoint in PUBLIC_ENDPOINTS or endpoint.split(".", 1)[0] in PUBLIC_BLUEPRINTS


def guard() -> Any:
    """Before every request: anonymous visitors of an admin page go to the login page (an HTMX
    request is told to redirect the whole page, not to swap a login form into a fragment)."""
    if public(request.endpoint) or current_user.is_authenticated:
        return None
    target = url_for("auth.login", next=request.full_path.rstrip("?"))
    if htmx:
        response = Response(status=401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def safe_next(value: str | None) -> str:
    """Only a path on this site: never send a fresh login to another host."""
    if not value:
        return url_for("panel.dashboard")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return url_for("panel.dashboard")
    return value


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page() -> Any:
    if request.method == "GET":
        return render_template("panel/login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    admin = db.session.scalar(select(Admin).where(Admin.email == email))
    if (
        admin is None
        or admin.password_hash is None
        or not admin.active
        or not check_password_hash(admin.password_hash, password)
    ):
        flash("That email and password do not match an active admin.", "error")
        return render_template("panel/login.html", next=request.form.get("next", "")), 401
    session.clear()  # a fresh session: nothing carried over from before the login
    session.permanent = True
    login_user(admin)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    login.init_app(app)
    login.login_view = "auth.login"
    app.before_request(guard)
    app.register_blueprint(bp)
