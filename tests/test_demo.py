"""The demo looks lived-in: a few dozen clients at every stage, with history on real past days
(generated, reviewed, rejected and revised, corrected by the coach, opened, overdue, on hold,
ended early, completed), so that every page has something true to show."""

from __future__ import annotations

from sqlalchemy import func, select

from scheduler import overview
from scheduler.models import AutomationLog, Client, ClientChange, Deliverable
from scheduler.vocab import ClientStatus
from web.demo import load_demo
from web.extensions import db


def test_the_demo_has_every_stage_and_every_habit(harness):
    ctx = harness.ctx
    load_demo(ctx)
    ids = list(db.session.scalars(select(Client.id)))
    assert len(ids) >= 30
    statuses = set(overview.statuses(ctx, ids).values())
    assert statuses == set(ClientStatus)
    assert overview.review_items(ctx, "rejected", 0, 0)[1] >= 1
    assert overview.review_items(ctx, "review", 0, 0)[1] >= 1
    edited = db.session.scalar(
        select(func.count())
        .select_from(Deliverable)
        .where(Deliverable.generated_content.is_not(None))
    )
    assert edited >= 1
    revised = db.session.scalar(
        select(func.count()).select_from(Deliverable).where(Deliverable.version > 1)
    )
    assert revised >= 1
    assert db.session.scalar(select(func.count()).where(Client.offboarded_at.is_not(None))) == 1
    assert db.session.scalar(select(func.count()).where(Client.reminders_enabled.is_(False))) >= 1
    by_coach = db.session.scalar(
        select(func.count()).where(AutomationLog.actor == "coach@example.com")
    )
    assert by_coach >= 1
    whats = {w for (w,) in db.session.execute(select(ClientChange.what).distinct())}
    assert {"email preferences", "on hold", "journey ended early"} <= whats
    assert any(w.endswith("approved") for w in whats) and any(w.endswith("rejected") for w in whats)
