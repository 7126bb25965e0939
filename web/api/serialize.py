"""The API's JSON for each model: plain dicts, instants in UTC with their offset, dates ISO."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from scheduler import abtests, rules, timeline
from scheduler.communications import Communication
from scheduler.models import Automation, AutomationLog, Client, Deliverable, Hold
from scheduler.outcomes import Expected
from scheduler.overview import ReviewItem
from scheduler.progress import Generation


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def client(c: Client, status: str) -> dict[str, Any]:
    """A client, with its status (`scheduler.overview.statuses`: the one rule)."""
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "timezone": c.timezone,
        "start_date": day(c.start_date),
        "status": str(status),
        "current_month": c.current_month,
        "held_days": c.held_days,
        "paused_at": instant(c.paused_at),
        "completed_at": instant(c.completed_at),
        "business_plan_approved_at": instant(c.business_plan_approved_at),
        "onboarding": dict(c.onboarding or {}),
        "business_plan": c.business_plan or "",
        "coach_id": c.coach_id,
        "reminders_enabled": bool(c.reminders_enabled),
        "celebrations_enabled": bool(c.celebrations_enabled),
        "program_version": c.program_version or 1,
        "created_at": instant(c.created_at),
        "updated_at": instant(c.updated_at),
    }


def automation(a: Automation) -> dict[str, Any]:
    return {
        "id": a.id,
        "client_id": a.client_id,
        "type": a.type,
        "month": a.month,
        "template": a.template,
        "source": a.source,
        "status": a.status,
        "trigger_at": instant(a.trigger_at),
        "retry_count": a.retry_count,
        "max_retries": a.max_retries,
        "executed_at": instant(a.executed_at),
        "detail": a.detail or "",
        "error": a.error,
        "program_version": a.program_version,
        "created_at": instant(a.created_at),
        "updated_at": instant(a.updated_at),
    }


def hold(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "client_id": h.client_id,
        "reason": h.reason or "",
        "started_at": instant(h.started_at),
        "start_date": day(h.start_date),
        "until": day(h.until),
        "ended_at": instant(h.ended_at),
        "end_date": day(h.end_date),
        "days": h.days,
        "ended_by": h.ended_by,
    }


def deliverable(d: Deliverable) -> dict[str, Any]:
    return {
        "id": d.id,
        "client_id": d.client_id,
        "month": d.month,
        "version": d.version,
        "status": d.status,
        "title": d.title or "",
        "content": d.content or "",
        "reviewer_notes": d.reviewer_notes or "",
        "manual": bool(d.manual),
        "generated_at": instant(d.generated_at),
        "reviewed_at": instant(d.reviewed_at),
        "delivered_at": instant(d.delivered_at),
        "opened_at": instant(d.opened_at),
        "created_at": instant(d.created_at),
        "generated_content": d.generated_content,
        "edited_at": instant(d.edited_at),
        "edited_by": d.edited_by,
    }


def review_item(item: ReviewItem) -> dict[str, Any]:
    return {
        "deliverable": deliverable(item.deliverable),
        "client_id": item.client.id,
        "client_name": item.client.name,
        "waiting_since": instant(item.since),
        "waited_seconds": max(0, int(item.waited.total_seconds())),
        "milestone": day(item.milestone.date),
        "milestone_note": item.milestone.note,
        "regenerating": item.regenerating,
    }


def log_entry(e: AutomationLog) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": instant(e.at),
        "client_id": e.client_id,
        "automation_id": e.automation_id,
        "type": e.type,
        "month": e.month,
        "template": e.template,
        "status": e.status,
        "attempt": e.attempt,
        "detail": e.detail or "",
        "error": e.error,
        "actor": e.actor,
    }


def generation(g: Generation) -> dict[str, Any]:
    return {
        "month": g.month,
        "state": g.state,
        "automation_id": g.automation_id,
        "trigger_at": instant(g.trigger_at),
        "attempts": g.attempts,
        "error": g.error,
    }


def expected(e: Expected) -> dict[str, Any]:
    return {
        "automation_id": e.automation_id,
        "name": e.name,
        "state": e.state,
        "at": instant(e.at),
        "text": e.text,
        "condition": e.condition,
    }


def risk(r: rules.Risk) -> dict[str, Any]:
    """A client's kept risk score (`scheduler.risk.kept_scores`)."""
    return {
        "probability": r.probability,
        "at_risk": r.at_risk,
        "threshold": r.threshold,
        "month": r.month,
        "reasons": list(r.reasons),
        "scored_at": instant(r.scored_at),
    }


def timeline_json(
    t: timeline.Timeline,
    progress: dict[int, Generation],
    status: str,
    expectations: list[Expected],
    overdue: str = "",
) -> dict[str, Any]:
    return {
        "client": client(t.client, status),
        "overdue": overdue,
        "current_month": t.current,
        "months_done": t.done,
        "percent": t.percent,
        "months": [
            {
                "month": m.month,
                "title": m.title,
                "date": day(m.date),
                "moved_by_hold": m.moved_by,
                "date_note": m.note,
                "state": m.state,
                "opened": m.opened,
                "generation": generation(progress[m.month]),
            }
            for m in t.months
        ],
        "upcoming": [automation(a) for a in t.upcoming],
        "expected": [expected(e) for e in expectations],
        "holds": [hold(h) for h in t.holds],
        "history": [log_entry(e) for e in t.history],
        "risk": risk(t.risk) if t.risk is not None else None,
    }


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    following = offset + len(items)
    return {
        "data": items,
        "pagination": {
            "limit": limit,
            "offset": offset,
            "total": total,
            "next_offset": following if following < total else None,
        },
    }


def communication(c: Communication) -> dict[str, Any]:
    return {
        "automation_id": c.automation_id,
        "name": c.name,
        "template": c.template,
        "month": c.month,
        "state": c.state,
        "at": instant(c.at),
        "text": c.text,
        "email_id": c.email_id,
        "subject": c.subject,
        "clicked_at": instant(c.clicked_at),
    }


def ab_result(r: abtests.Result) -> dict[str, Any]:
    """An A/B test's result: each variant's sends and conversions, the difference B - A with
    its confidence interval, the verdict."""

    def arm(a: abtests.Arm) -> dict[str, Any]:
        return {"sends": a.sends, "conversions": a.conversions, "rate": a.rate}

    return {
        "a": arm(r.a),
        "b": arm(r.b),
        "pending": r.pending,
        "difference": r.difference,
        "low": r.low,
        "high": r.high,
        "verdict": r.verdict,
        "says": r.says,
    }
