"""Raw records for operators (flask-admin model views, read-only, behind the admin login)."""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect, request, url_for
from flask_admin import Admin as AdminPanel
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from scheduler.models import Admin, Automation, AutomationLog, Client, Deliverable, Email, Hold
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


class AdminView(RecordView):
    column_exclude_list = column_details_exclude_list = ("password_hash",)


def init_app(app: Flask) -> None:
    panel = AdminPanel(
        app,
        name="Journey Engine records",
        url="/records",
        endpoint="records",
        theme=Bootstrap4Theme(),
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
