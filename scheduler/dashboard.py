"""The automation health dashboard's numbers, kept: counting them takes a second or two with
100,000 clients (a day holds some 10,000 completed automations, the week ahead 80,000 pending
ones), so the workers' scheduler counts them every minute for each time zone its admins read
the dashboard in (`keep_all`), and a page reads them (`kept`), counting them itself only when
they are more than SECONDS old. They are kept as the success metrics keep their states
(`metrics.keep_state`); what they count is `overview.dashboard`."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from scheduler import metrics, overview
from scheduler.engine import Context
from scheduler.models import Admin

# A page finds the numbers at most this old (they are counted every minute), or counts them.
SECONDS = 120


def kind(zone: str) -> str:
    return f"board:{zone}"


def kept(ctx: Context, zone: str = "UTC") -> overview.Dashboard:
    """The dashboard for readers in `zone`, as counted at most SECONDS ago (and today there),
    or counted now and kept (for the caller to commit)."""
    state = metrics.latest_state(ctx, kind(zone))
    fresh = metrics.is_fresh(ctx, state, SECONDS) and state is not None and state.body
    if fresh and date.fromisoformat(state.body["day"]) == overview.local_today(ctx, zone):
        return overview.dashboard(ctx, zone, state.body)
    return keep(ctx, zone)


def keep(ctx: Context, zone: str) -> overview.Dashboard:
    """Count the dashboard for `zone` now and keep its numbers (for the caller to commit)."""
    board = overview.dashboard(ctx, zone)
    metrics.keep_state(ctx, kind(zone), board.numbers)
    return board


def keep_all(ctx: Context) -> list[str]:
    """Count the dashboard again for each time zone an active admin reads it in."""
    zones = set(ctx.session.scalars(select(Admin.timezone).where(Admin.active.is_(True))))
    counted = []
    for zone in sorted(zones or {"UTC"}):
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            continue
        keep(ctx, zone)
        counted.append(zone)
    return counted
