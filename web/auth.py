"""Admin login: hashed passwords, sessions kept server-side (`scheduler.sessions`: logout ends
one for good, idle ones and old ones end by themselves), the sessions page, and one guard in
front of every page that is not public."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
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

from scheduler import sessions
from scheduler.models import Admin, AdminSession, fits_id
from web import journey_context, throttle
from web.extensions import db, htmx, login

bp = Blueprint("auth", __name__)

# Endpoints anyone may reach: the login page, static files, the health check, the client
# portal (its signed link is the key) and the JSON API (it checks its own bearer tokens).
# Everything else needs an admin.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "main.healthz", "main.metrics"})
PUBLIC_BLUEPRINTS = frozenset({"portal", "api"})
MIN_PASSWORD = 10
TOKEN = "sid"  # the session cookie's key holding the session's token
# Checked when the email is no admin's, so that a login takes as long either way (scrypt, the
# same cost as werkzeug's default; a hash of a random password nobody knows).
DUMMY_HASH = (
    "scrypt:32768:8:1$AofL9Z0PscytQrvL$cbaec1e77c830ffcbbb793108134307c9e0d4619ddac45b747b225ef0"
    "b96147afcf75cf1dedcc14af9b761e6c86cc4792f59b338490cb6af5c932de960eed540"
)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return generate_password_hash(password)


def password_matches(admin: Admin | None, password: str) -> bool:
    """Whether `password` logs `admin` in. A hash is checked whether or not the email is an
    admin's (a dummy one when not), so the time taken does not tell which emails are admins."""
    stored = admin.password_hash if admin is not None else None
    matches = check_password_hash(stored or DUMMY_HASH, password)
    return matches and admin is not None and stored is not None and admin.active


def policy() -> sessions.Policy:
    config = current_app.config
    return sessions.Policy(
        idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        lifetime=config["PERMANENT_SESSION_LIFETIME"],
    )


@login.user_loader
def load_admin(key: str) -> Admin | None:
    """The admin of the live session the cookie names; None when it has ended."""
    row = sessions.resume(db.session, session.get(TOKEN, ""), journey_context().now(), policy())
    if db.session.dirty:  # its last request noted, or its end recorded
        db.session.commit()
    if row is None or str(row.admin_id) != key:
        return None
    return row.admin


def this_session() -> AdminSession | None:
    return sessions.find(db.session, session.get(TOKEN, ""))


def public(endpoint: str | None) -> bool:
    if endpoint is None:  # no route matched: let it 404
        return True
    return endpoint in PUBLIC_ENDPOINTS or endpoint.split(".", 1)[0] in PUBLIC_BLUEPRINTS


def guard() -> Any:
    """Before every request: anonymous visitors of an admin page go to the login page (an HTMX
    request is told to redirect the whole page, not to swap a login form into a fragment)."""
    if public(request.endpoint) or current_user.is_authenticated:
        return None
    if session.pop(TOKEN, None):  # a session that was live: say why the login is asked again
        flash("Your session has ended: log in again.", "info")
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
    email = request.form.get("email", "").strip().lower()[:254]
    password = request.form.get("password", "")
    address = throttle.client_address()
    # Failed logins are counted per account and per address; over either limit, no password
    # is checked until the wait is over.
    wait = max(
        throttle.LOGIN_ACCOUNT.retry_after(email) or 0,
        throttle.LOGIN_ADDRESS.retry_after(address) or 0,
    )
    if wait:
        flash(
            "Too many failed logins for this account or from this address: try again in "
            f"{throttle.wait_words(wait)}.",
            "error",
        )
        page = render_template("panel/login.html", next=request.form.get("next", ""))
        return page, 429, {"Retry-After": str(wait)}
    admin = db.session.scalar(select(Admin).where(Admin.email == email))
    if not password_matches(admin, password) or admin is None:
        throttle.LOGIN_ACCOUNT.failed(email)
        throttle.LOGIN_ADDRESS.failed(address)
        flash("That email and password do not match an active admin.", "error")
        return render_template("panel/login.html", next=request.form.get("next", "")), 401
    _, token = sessions.start(
        db.session,
        admin,
        journey_context().now(),
        address=address,
        user_agent=request.user_agent.string,
    )
    db.session.commit()
    session.clear()  # a fresh session: nothing carried over from before the login
    session.permanent = True
    session[TOKEN] = token
    login_user(admin)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Any:
    row = this_session()
    if row is not None:
        sessions.end(row, journey_context().now(), "logout")
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/sessions")
def sessions_page() -> Any:
    """Who is logged in, where from, since when; an admin ends their own other sessions."""
    now = journey_context().now()
    current = this_session()
    return render_template(
        "panel/sessions.html",
        rows=sessions.live(db.session, now, policy()),
        current=current.id if current else None,
        policy=policy(),
    )


@bp.post("/sessions/<int:session_id>/end")
def end_session(session_id: int) -> Any:
    row = db.session.get(AdminSession, session_id) if fits_id(session_id) else None
    if row is None or row.admin_id != current_user.id:
        abort(404, description="no such session of yours")
    sessions.end(row, journey_context().now(), "ended by its admin")
    db.session.commit()
    flash("That session is ended.", "ok")
    return redirect(url_for("auth.sessions_page"), 303)


@bp.post("/sessions/end-others")
def end_other_sessions() -> Any:
    current = this_session()
    count = sessions.end_all(
        db.session,
        current_user.id,
        journey_context().now(),
        "ended by its admin",
        keep=current.id if current else None,
    )
    db.session.commit()
    flash(f"{count} other session{'s' if count != 1 else ''} ended.", "ok")
    return redirect(url_for("auth.sessions_page"), 303)


def init_app(app: Flask) -> None:
    login.init_app(app)
    login.login_view = "auth.login"
    app.before_request(guard)
    app.register_blueprint(bp)
