"""Clients, their journey, and their deliverables."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context, url_for
from sqlalchemy import func, or_, select

from scheduler import (
    communications,
    controls,
    editing,
    enrollment,
    errors,
    imports,
    lookups,
    outcomes,
    overview,
    review,
    timeline,
)
from scheduler.models import Client, Deliverable
from scheduler.progress import generation_progress
from scheduler.vocab import ClientStatus
from web.api import action, bp, ctx, inputs, reply
from web.api import serialize as out
from web.extensions import db


def find(client_id: int) -> Client:
    return lookups.find_client(ctx(), client_id)


def client_json(client: Client) -> dict[str, Any]:
    return out.client(client, overview.client_status(ctx(), client))


@bp.get("/clients")
def list_clients() -> Response:
    args = inputs.query()
    query = select(Client)
    wanted = args.get("status")
    if wanted:
        dialect, today = db.session.get_bind().dialect.name, ctx().now().date()
        kinds = [ClientStatus.ON_TRACK, ClientStatus.OVERDUE] if wanted == "active" else [wanted]
        query = query.where(
            or_(*(overview.status_is(dialect, today, ClientStatus(k)) for k in kinds))
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(Client.id).limit(args["limit"]).offset(args["offset"])
    ).all()
    found = overview.statuses(ctx(), [c.id for c in rows])
    data = [out.client(c, found[c.id]) for c in rows]
    return reply(out.page(data, total, args["limit"], args["offset"]))


@bp.post("/clients")
@action
def create_client() -> Response:
    data = inputs.body()
    client = enrollment.enroll(
        ctx(),
        name=data["name"],
        email=data["email"],
        start_date=data["start_date"],
        timezone=data.get("timezone", "UTC"),
        onboarding=data.get("onboarding") or {},
        business_plan=data.get("business_plan", ""),
    )
    location = url_for("api.get_client", client_id=client.id)
    return reply(client_json(client), 201, {"Location": location})


@bp.get("/clients/<int:client_id>")
def get_client(client_id: int) -> Response:
    return reply(client_json(find(client_id)))


@bp.route("/clients/<email:email>", methods=["GET", "PATCH"])
def get_client_by_email(email: str) -> Response:
    """A client named by email (as the 404 of an unknown client suggests); Content-Location
    gives its address by id, the one the other operations take (a change included)."""
    client = lookups.find_client(ctx(), email)
    if request.method != "GET":
        location = url_for("api.get_client", client_id=client.id)
        raise errors.NotFound(f"change a client at its address by id, {location}", "client_id")
    location = url_for("api.get_client", client_id=client.id)
    return reply(client_json(client), 200, {"Content-Location": location})


@bp.patch("/clients/<int:client_id>")
@action
def update_client(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    coach = data.pop("coach_id", editing.UNSET)
    editing.edit(
        ctx(),
        client,
        name=data.get("name"),
        email=data.get("email"),
        timezone=data.get("timezone"),
        coach_id=coach,
        onboarding=data.get("onboarding"),
        business_plan=data.get("business_plan"),
    )
    for field in ("reminders_enabled", "celebrations_enabled"):
        if field in data:
            enrollment.update_client(ctx(), client, **{field: data[field]})
    db.session.flush()
    return reply(client_json(client))


@bp.delete("/clients/<int:client_id>")
@action
def erase_client(client_id: int) -> Response:
    client = find(client_id)
    removed = editing.erase(ctx(), client)
    db.session.flush()
    return reply({"erased": True, "removed": removed})


@bp.post("/clients/<int:client_id>/timezone/preview")
@action
def preview_timezone(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    moves = editing.zone_moves(ctx(), client, data["timezone"])
    return reply(
        {
            "timezone": data["timezone"],
            "moves": [
                {
                    "automation_id": m.automation.id,
                    "name": m.name,
                    "before": out.instant(m.before),
                    "after": out.instant(m.after),
                }
                for m in moves
            ],
        }
    )


@bp.post("/clients/<int:client_id>/journey/end")
@action
def end_journey(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    editing.offboard(ctx(), client, data["reason"])
    db.session.flush()
    return reply(client_json(client))


@bp.get("/clients/<int:client_id>/communications")
def list_communications(client_id: int) -> Response:
    client = find(client_id)
    return reply(
        {
            "data": [out.communication(c) for c in communications.communications(ctx(), client)],
            "subscription": communications.subscription(client),
        }
    )


@bp.patch("/clients/<int:client_id>/subscription")
@action
def update_subscription(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    now = communications.subscription(client)
    chosen = communications.set_subscription(
        ctx(),
        client,
        subscribed=data.get("subscribed", now["subscribed"]),
        reminders=data.get("reminders", client.reminders_enabled),
        celebrations=data.get("celebrations", client.celebrations_enabled),
    )
    db.session.flush()
    return reply(chosen)


# -- the journey -------------------------------------------------------------------------------


def timeline_reply(client: Client, days: int = 30) -> Response:
    context = ctx()
    db.session.flush()
    t = timeline.build(context, client, days_ahead=days)
    return reply(
        out.timeline_json(
            t,
            generation_progress(context, client),
            overview.client_status(context, client),
            outcomes.upcoming(context, client, t.upcoming),
            overview.overdue(context, client),
        )
    )


@bp.post("/clients/<int:client_id>/journey/start")
@action
def start_journey(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    enrollment.start_journey(ctx(), client, data["start_date"])
    return timeline_reply(client)


@bp.patch("/clients/<int:client_id>/journey/adjust")
@action
def adjust_journey(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    moved = controls.adjust(ctx(), client, data["start_date"])
    db.session.flush()
    return reply({"client": client_json(client), "moved": moved})


@bp.post("/clients/<int:client_id>/journey/pause")
@action
def pause_journey(client_id: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    hold = controls.pause(ctx(), client, until=data.get("until"), reason=data.get("reason", ""))
    db.session.flush()
    return reply(out.hold(hold))


@bp.post("/clients/<int:client_id>/journey/resume")
@action
def resume_journey(client_id: int) -> Response:
    client = find(client_id)
    inputs.body()
    hold = controls.resume(ctx(), client)
    db.session.flush()
    return reply(out.hold(hold))


@bp.get("/clients/<int:client_id>/journey/timeline")
def get_timeline(client_id: int) -> Response:
    client = find(client_id)
    return timeline_reply(client, inputs.query()["days"])


@bp.post("/clients/<int:client_id>/months/<int:month>/skip")
@action
def skip_month(client_id: int, month: int) -> Response:
    client = find(client_id)
    inputs.body()
    deliverable = controls.skip_month(ctx(), client, month)
    db.session.flush()
    return reply(out.deliverable(deliverable))


@bp.post("/clients/<int:client_id>/months/<int:month>/generate")
@action
def generate_month(client_id: int, month: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    automation = review.generate_by_hand(ctx(), client, month, data.get("notes", ""))
    db.session.flush()
    return reply(out.automation(automation), 202)


@bp.post("/clients/<int:client_id>/business-plan/approve")
@action
def approve_business_plan(client_id: int) -> Response:
    client = find(client_id)
    inputs.body()
    review.approve_business_plan(ctx(), client)
    db.session.flush()
    return reply(client_json(client))


# -- deliverables ------------------------------------------------------------------------------


@bp.get("/clients/<int:client_id>/deliverables")
def list_deliverables(client_id: int) -> Response:
    client = find(client_id)
    args = inputs.query()
    query = select(Deliverable).where(Deliverable.client_id == client.id)
    if "month" in args:
        query = query.where(Deliverable.month == args["month"])
    rows = db.session.scalars(query.order_by(Deliverable.month, Deliverable.version)).all()
    progress = generation_progress(ctx(), client)
    if "month" in args:
        progress = {args["month"]: progress[args["month"]]}
    return reply(
        {
            "data": [out.deliverable(d) for d in rows],
            "generation": [out.generation(g) for g in progress.values()],
        }
    )


@bp.post("/clients/<int:client_id>/deliverables/<int:month>/approve")
@action
def approve_deliverable(client_id: int, month: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    deliverable = review.approve(ctx(), client, month, data.get("content"))
    db.session.flush()
    return reply(out.deliverable(deliverable))


@bp.post("/clients/<int:client_id>/deliverables/<int:month>/reject")
@action
def reject_deliverable(client_id: int, month: int) -> Response:
    client = find(client_id)
    data = inputs.body()
    deliverable = review.reject(ctx(), client, month, data.get("notes", ""))
    db.session.flush()
    return reply(out.deliverable(deliverable))


@bp.post("/clients/<int:client_id>/deliverables/<int:month>/open")
@action
def open_deliverable(client_id: int, month: int) -> Response:
    client = find(client_id)
    inputs.body()
    deliverable = review.open_deliverable(ctx(), client, month)
    db.session.flush()
    return reply(out.deliverable(deliverable))


@bp.get("/admin/review")
def review_queue() -> Response:
    args = inputs.query()
    items, total = overview.review_items(ctx(), args.get("show", ""), args["offset"], args["limit"])
    return reply(
        out.page([out.review_item(i) for i in items], total, args["limit"], args["offset"])
    )


@bp.post("/clients/import")
@action
def import_clients() -> Response:
    data = inputs.body()
    if data.get("dry_run"):
        report = imports.dry_run(ctx(), data["csv"])
    else:
        report = imports.run(ctx(), data["csv"])
        db.session.flush()
    return reply(
        {
            "imported": report.done,
            "summary": report.summary(),
            "rows": len(report.rows),
            "new": len(report.new),
            "already_enrolled": len(report.already),
            "automations": len(report.new) * report.steps,
            "errors": [
                {"line": r.line, "email": r.email, "errors": r.errors} for r in report.errors
            ],
        }
    )


def csv_reply(body: Any) -> Response:
    return Response(stream_with_context(body), mimetype="text/csv")


@bp.get("/admin/export/clients")
def export_clients() -> Response:
    args = inputs.query()
    return csv_reply(
        imports.clients_csv(
            ctx(), q=args.get("q", ""), status=args.get("status", ""), sort=args.get("sort", "name")
        )
    )


@bp.get("/admin/export/log")
def export_log() -> Response:
    args = inputs.query()
    where = overview.log_filter(
        client=args.get("client", ""),
        type=args.get("type", ""),
        status=args.get("status", ""),
        start=args.get("from"),
        end=args.get("to"),
        actor=args.get("actor", ""),
    )
    return csv_reply(imports.log_csv(ctx(), where))
