"""Raw records for operators (flask-admin model views, read-only, behind the admin login)."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, redirect, request, url_for
from flask_admin import Admin as AdminPanel
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

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


class RecordView(ModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    page_size = 50

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
    for model, view in (
        (Client, RecordView),
        (Deliverable, RecordView),
        (Automation, RecordView),
        (AutomationLog, RecordView),
        (Hold, RecordView),
        (Email, RecordView),
        (Admin, AdminView),
    ):
        panel.add_view(
            view(model, db, category="Records", endpoint=f"records_{model.__tablename__}")
        )
