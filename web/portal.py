"""The client portal, reached from the signed links in emails: no password, the link is the
key. A link that is forged, damaged, expired or meant for something else gets a plain 403
page and no data."""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from scheduler import portal
from scheduler.certificate import certificate
from scheduler.emails import day
from scheduler.errors import JourneyError, NotFound
from scheduler.links import BadLink
from scheduler.lookups import client_zone
from scheduler.models import Client
from web import journey_context
from web.extensions import db
from web.throttle import limiter, wait_words

bp = Blueprint("portal", __name__, url_prefix="/portal")
# Every request of the portal's token routes counts, per client address.
limiter.limit(lambda: current_app.config["PORTAL_LIMIT"], scope="portal")(bp)


@bp.after_request
def private(response: Response) -> Response:
    """The token is in the URL: keep it out of Referer headers and shared caches."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # No outside resource, no inline script: only the portal's own script file (it records a
    # person reading a deliverable); emails shown in a sandboxed frame.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; "
        "style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response


def client_for(token: str, purpose: str = "portal") -> Client:
    """The client the token was made for, or a 403."""
    links = current_app.extensions["journey"].links
    try:
        client_id = links.client_id(token, purpose)
    except BadLink as exc:
        abort(403, description=str(exc))
    client = db.session.get(Client, client_id)
    if client is None:
        abort(403, description="this link is not valid")
    return client


def page(template: str, token: str, client: Client, **context: Any) -> str:
    return render_template(
        f"portal/{template}",
        token=token,
        client=client,
        active=template,
        click=email_tag(),
        **context,
    )


def email_tag() -> str | None:
    """The email id an email's link carries (`?e=`), when its signature holds: the page then
    has its script post the click. The GET itself records nothing (scanners fetch links)."""
    tag = request.args.get("e", "")
    if not tag:
        return None
    try:
        current_app.extensions["journey"].links.email_of(tag)
    except BadLink:
        return None
    return tag


@bp.errorhandler(403)
def forbidden(error: Any) -> tuple[str, int]:
    return render_template("portal/forbidden.html", reason=error.description), 403


@bp.errorhandler(429)
def too_many(error: Any) -> Any:
    wait = limiter.current_limit.reset_at - int(time.time()) if limiter.current_limit else 60
    return render_template("portal/too_many.html", wait=wait_words(max(wait, 1))), 429


@bp.errorhandler(404)
def not_found(error: Any) -> tuple[str, int]:
    return render_template("portal/not_found.html", reason=error.description), 404


@bp.get("/<token>")
def home(token: str) -> str:
    client = client_for(token)
    return page("progress.html", token, client, progress=portal.progress(journey_context(), client))


@bp.get("/<token>/months/<int:month>")
def month(token: str, month: int) -> str:
    """The deliverable. Showing it records nothing: link checkers and mail scanners fetch the
    links in emails too, and an open would cancel the month's overdue reminder and escalation.
    The page's script (or, without JavaScript, its button) posts to `opened`."""
    client = client_for(token)
    ctx = journey_context()
    try:
        deliverable = portal.deliverable(ctx, client, month)
    except JourneyError as exc:
        abort(404, description=exc.message)
    return page(
        "month.html",
        token,
        client,
        deliverable=deliverable,
        title=ctx.program.month(month).title,
        delivered=day(
            deliverable.delivered_at.astimezone(client_zone(client)).date(), client.timezone
        )
        if deliverable.delivered_at
        else "",
    )


@bp.post("/<token>/months/<int:month>/opened")
def opened(token: str, month: int) -> Any:
    """A person is reading the month: record the first open (its overdue reminder and
    escalation stop). 204 for the page's script; back to the page for the button."""
    client = client_for(token)
    ctx = journey_context()
    try:
        portal.read(ctx, client, month)
    except JourneyError as exc:
        abort(404, description=exc.message)
    ctx.commit()
    if request.headers.get("X-Requested-With") == "fetch":
        return "", 204
    return redirect(url_for("portal.month", token=token, month=month), 303)


@bp.post("/<token>/clicked")
def clicked(token: str) -> Any:
    """A person opened the portal from one of their email's links: the page's script posts
    the email's id (`e`), and the email's first click is recorded (a reload, or another click,
    keeps it). A forged, damaged or another client's id records nothing: 403."""
    client = client_for(token)
    tag = request.form.get("e", "")
    if not tag:
        abort(400, description="e: the email's id is missing")
    links = current_app.extensions["journey"].links
    ctx = journey_context()
    try:
        portal.click(ctx, client, links.email_of(tag))
    except (BadLink, NotFound):
        abort(403, description="this link is not valid")
    ctx.commit()
    return "", 204


@bp.get("/<token>/notifications")
def notifications(token: str) -> str:
    client = client_for(token)
    return page(
        "notifications.html",
        token,
        client,
        messages=portal.notifications(journey_context(), client),
        zone=client_zone(client),
    )


@bp.get("/<token>/notifications/<int:email_id>")
def notification(token: str, email_id: int) -> str:
    client = client_for(token)
    try:
        message = portal.notification(journey_context(), client, email_id)
    except NotFound as exc:
        abort(404, description=exc.message)
    return page("notification.html", token, client, message=message)


@bp.route("/<token>/preferences", methods=["GET", "POST"])
def preferences(token: str) -> str:
    client = client_for(token)
    saved = False
    if request.method == "POST":
        portal.set_preferences(
            journey_context(),
            client,
            reminders=request.form.get("reminders") == "on",
            celebrations=request.form.get("celebrations") == "on",
            subscribed=request.form.get("subscribed") == "on",
        )
        journey_context().commit()
        saved = True
    return page("preferences.html", token, client, saved=saved, choices=portal.choices(client))


@bp.get("/<token>/certificate.pdf")
def certificate_pdf(token: str) -> Response:
    client = client_for(token)
    ctx = journey_context()
    finished = portal.completed_on(ctx, client)
    if finished is None:
        abort(404, description="The certificate is yours once you complete Month 8.")
    pdf = certificate(
        client.name,
        ctx.program.name,
        ctx.program.length,
        finished,
        day(finished, client.timezone),
    )
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="certificate.pdf"'},
    )


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> str:
    """GET asks; POST unsubscribes. Mail clients POST `List-Unsubscribe=One-Click` here with
    no cookie and no form token (RFC 8058), so this route takes no CSRF token."""
    client = client_for(token, "unsubscribe")
    state = "already" if client.unsubscribed_at is not None else "ask"
    if request.method == "POST":
        ctx = journey_context()
        if request.form.get("undo") == "1":  # a change of mind, right away
            client.unsubscribed_at = None
            client.updated_at = ctx.now()
            state = "resubscribed"
        else:
            state = "unsubscribed" if portal.unsubscribe(ctx, client) else "already"
        ctx.commit()
    # An unsubscribe link lives a year: its page links nowhere else in the portal, so that it
    # is not a year's key to the client's journey.
    return render_template(
        "portal/unsubscribe.html",
        client=client,
        state=state,
        action=url_for("portal.unsubscribe", token=token),
    )
