"""Raw records for operators (flask-admin model views, read-only, behind the admin login).
Every row reads as what it is (each model's label), names its client, and links to the
client's page in the panel; the menu leads back to the panel."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, redirect, request, url_for
from flask_admin import Admin as AdminPanel
from flask_admin.contrib.sqla import ModelView
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from markupsafe import Markup

from scheduler.models import (
    Admin,
    Automation,
    AutomationLog,
    Client,
    Deliverable,
    Email,
    Hold,
    fits_id,
    looks_like_id,
)
from web import security
from web.extensions import db


def client_link(view: Any, context: Any, model: Any, name: str) -> Markup:
    """The row's client, linked to their journey in the panel."""
    client = model if isinstance(model, Client) else getattr(model, "client", None)
    if client is None:
        return Markup("")
    href = url_for("panel.client", client_id=client.id)
    return Markup('<a href="{}">{}</a>').format(href, str(client))


class RecordView(ModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    page_size = 50
    column_formatters = {"client": client_link}
    column_details_list: Any = None

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return redirect(url_for("auth.login", next=request.full_path))

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        """Before any flask-admin view: query parameters it would choke on are a 4xx here."""
        return super()._handle_view(name, **kwargs) or check_query(request.args)


PAGE_LIMIT = 1_000_000  # pages of records: far more than any table here fills


def check_query(args: Any) -> None:
    """flask-admin answers 500 for a line break in its return URL, a page number or an id too
    large for the database, an id that is not a number: refuse those with a message."""
    for name, value in args.items(multi=True):
        if any(ord(c) < 32 or ord(c) == 127 for c in name + value):
            abort(400, description=f"{name}: control characters are not allowed")
    for name in ("page", "page_size"):
        value = args.get(name)
        if value is not None and not (looks_like_id(value) and int(value) <= PAGE_LIMIT):
            abort(400, description=f"{name}: a whole number from 0 to {PAGE_LIMIT}")
    value = args.get("id")
    if value is not None and not (looks_like_id(value) and fits_id(int(value))):
        abort(404, description=f"no record with id {value!r}")


class ClientView(RecordView):
    column_list = ("id", "name", "email", "timezone", "start_date", "current_month", "paused_at")
    column_formatters = {"name": client_link}
    column_searchable_list = ("name", "email")


class OfClientView(RecordView):
    """A model that belongs to a client: the client comes first, linked to the panel."""

    column_searchable_list: Any = ()


class LogView(OfClientView):
    column_list = ("at", "client", "type", "template", "month", "status", "attempt", "detail")
    column_default_sort = ("at", True)


class AutomationView(OfClientView):
    column_list = ("id", "client", "type", "template", "month", "status", "trigger_at", "source")
    column_default_sort = ("trigger_at", False)


class DeliverableView(OfClientView):
    column_list = ("id", "client", "month", "version", "status", "title", "delivered_at")


class HoldView(OfClientView):
    column_list = ("id", "client", "start_date", "until", "end_date", "days", "reason")


class EmailView(OfClientView):
    column_list = ("id", "client", "to_address", "template", "subject", "status", "created_at")
    column_exclude_list = ("text_body", "html_body")


class AdminView(RecordView):
    column_exclude_list = column_details_exclude_list = ("password_hash",)


def init_app(app: Flask) -> None:
    panel = AdminPanel(
        app,
        name="Journey Engine records",
        url="/records",
        endpoint="records",
        theme=Bootstrap4Theme(),
        csp_nonce_generator=security.nonce,
    )
    panel.add_link(MenuLink(name="← Back to the panel", url="/"))
    for model, view in (
        (Client, ClientView),
        (Deliverable, DeliverableView),
        (Automation, AutomationView),
        (AutomationLog, LogView),
        (Hold, HoldView),
        (Email, EmailView),
        (Admin, AdminView),
    ):
        panel.add_view(
            view(model, db, category="Records", endpoint=f"records_{model.__tablename__}")
        )
