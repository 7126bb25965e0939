"""Automations: listing (one client's, or all with filters), scheduling by hand, cancelling,
running now; and the admin's statistics and execution log."""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import Select, func, select

from scheduler import controls, lookups
from scheduler.models import Automation, AutomationLog
from scheduler.stats import automation_stats
from web.api import action, bp, ctx, inputs, reply
from web.api import serialize as out
from web.api.clients import find as find_client
from web.api.errors import ApiError
from web.extensions import db


def find(automation_id: int) -> Automation:
    return lookups.find_automation(ctx(), automation_id)


def window(args: dict[str, Any]) -> None:
    if "from" in args and "to" in args and args["from"] > args["to"]:
        raise ApiError(422, "from: must not be after `to`", field="from")


def filtered_automations(query: Select[Any], args: dict[str, Any]) -> Response:
    window(args)
    if "type" in args:
        query = query.where(Automation.type == args["type"])
    if "status" in args:
        query = query.where(Automation.status == args["status"])
    if "from" in args:
        query = query.where(Automation.trigger_at >= args["from"])
    if "to" in args:
        query = query.where(Automation.trigger_at < args["to"])
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(Automation.trigger_at, Automation.id)
        .limit(args["limit"])
        .offset(args["offset"])
    ).all()
    return reply(out.page([out.automation(a) for a in rows], total, args["limit"], args["offset"]))


@bp.get("/clients/<int:client_id>/automations")
def client_automations(client_id: int) -> Response:
    client = find_client(client_id)
    args = inputs.query()
    return filtered_automations(select(Automation).where(Automation.client_id == client.id), args)


@bp.post("/clients/<int:client_id>/automations/schedule")
@action
def schedule_automation(client_id: int) -> Response:
    client = find_client(client_id)
    data = inputs.body()
    automation = controls.schedule_by_hand(
        ctx(),
        client,
        data["type"],
        at=data.get("at"),
        month=data.get("month"),
        template=data.get("template"),
    )
    db.session.flush()
    return reply(out.automation(automation), 201)


@bp.delete("/automations/<int:automation_id>")
@action
def cancel_automation(automation_id: int) -> Response:
    automation = find(automation_id)
    controls.cancel(ctx(), automation)
    db.session.flush()
    return reply(out.automation(automation))


@bp.post("/automations/<int:automation_id>/trigger")
@action
def trigger_automation(automation_id: int) -> Response:
    automation = find(automation_id)
    inputs.body()
    controls.trigger_now(ctx(), automation)
    db.session.flush()
    return reply(out.automation(automation), 202)


# -- admin -------------------------------------------------------------------------------------


@bp.get("/admin/automations")
def all_automations() -> Response:
    args = inputs.query()
    query = select(Automation)
    if "client_id" in args:
        query = query.where(Automation.client_id == args["client_id"])
    return filtered_automations(query, args)


@bp.get("/admin/automations/stats")
def stats() -> Response:
    s = automation_stats(ctx())
    return reply(
        {
            "at": out.instant(s.at),
            "today": s.today,
            "week": {
                "counts": s.week,
                "months_completed": s.months_completed,
                "on_time_rate": s.on_time_rate,
            },
            "upcoming": s.upcoming,
            "clients": s.clients,
            "automations": s.automations,
        }
    )


@bp.get("/admin/automations/logs")
def logs() -> Response:
    args = inputs.query()
    window(args)
    query = select(AutomationLog)
    if "client_id" in args:
        query = query.where(AutomationLog.client_id == args["client_id"])
    if "actor" in args:
        query = query.where(
            AutomationLog.actor.is_(None)
            if args["actor"] == "engine"
            else AutomationLog.actor == args["actor"]
        )
    if "type" in args:
        query = query.where(AutomationLog.type == args["type"])
    if "status" in args:
        query = query.where(AutomationLog.status == args["status"])
    if "from" in args:
        query = query.where(AutomationLog.at >= args["from"])
    if "to" in args:
        query = query.where(AutomationLog.at < args["to"])
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
        .limit(args["limit"])
        .offset(args["offset"])
    ).all()
    return reply(out.page([out.log_entry(e) for e in rows], total, args["limit"], args["offset"]))
