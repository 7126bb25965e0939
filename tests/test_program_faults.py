"""Publishing a program version while real workers run the journeys (Dramatiq over a Redis of
our own, PostgreSQL, an SMTP sink), one of them killed with SIGKILL in the middle of the
publish: every automation still runs once or ends once, stale messages of the automations the
publish moved do nothing, and every client in flight ends on the new version."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from scheduler import programs, replan
from scheduler.models import Automation, AutomationLog, Client
from tests.test_faults import FINAL, cluster, progress  # noqa: F401  (the fixture)
from web import journey_context
from web.extensions import db

pytestmark = [pytest.mark.xdist_group("processes"), pytest.mark.slow]


def test_a_worker_killed_mid_publish(cluster, monkeypatch):  # noqa: F811
    cluster.processes.start_sweeper()
    for _ in range(2):
        cluster.processes.start_worker()
    ids = cluster.load(30)  # started 65 days ago: months 1-3 are running now
    progress(cluster, ids, 0.2)
    victim = cluster.processes.workers[-1]
    killed = []
    real_insert = replan.bulk_insert

    def kill_then_insert(*args, **kwargs):
        # Half-way through the publish's transaction: the moves are written, not committed.
        if not killed:
            cluster.processes.kill9(victim)
            killed.append(victim)
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(replan, "bulk_insert", kill_then_insert)
    with cluster.app.app_context():
        ctx = journey_context()
        definition = programs.start_draft(ctx, "coach@example.com").definition
        # 21-day months: M4 comes due now (its generation runs at once), its reminders fall in
        # the past (skipped); M3's pending steps move earlier.
        schedule = definition["schedule"] | {"month_length_days": 21}
        programs.update_draft(
            ctx, "coach@example.com", definition=definition | {"schedule": schedule}
        )
        ctx.commit()
        done = programs.publish(ctx, "coach@example.com", replan.IN_FLIGHT)
        ctx.commit()
        moved = done.record.automations_moved
        db.session.remove()
    assert killed and moved > 0
    cluster.processes.start_worker()

    def settled() -> bool:
        return cluster.settled(ids)

    from tests.cluster import wait_for

    wait_for(settled, 120, "every due automation")
    counts = cluster.audit(ids)
    print(f"\npublish with a worker killed mid-way: {moved} automations changed; {counts}")
    assert counts["executed_twice"] == 0, counts
    assert counts["lost"] == 0, counts
    assert counts["failed"] == 0, counts
    assert counts["emails_unsent"] == 0 and counts["emails_missing"] == 0, counts
    with cluster.app.app_context():
        versions = set(db.session.scalars(select(Client.program_version).where(Client.id.in_(ids))))
        pending = db.session.execute(
            select(Automation.program_version, func.count())
            .where(
                Automation.client_id.in_(ids),
                Automation.source == "PLAN",
                Automation.status == "SCHEDULED",
            )
            .group_by(Automation.program_version)
        ).all()
        # M4's generation, brought forward by the new version, ran once for each client.
        m4 = db.session.execute(
            select(Automation.id, Automation.status, Automation.program_version).where(
                Automation.client_id.in_(ids),
                Automation.type == "GENERATE_DELIVERABLE",
                Automation.month == 4,
            )
        ).all()
        logs = dict(
            db.session.execute(
                select(AutomationLog.automation_id, func.count())
                .where(
                    AutomationLog.automation_id.in_([a.id for a in m4]),
                    AutomationLog.status.in_(FINAL),
                )
                .group_by(AutomationLog.automation_id)
            ).all()
        )
        db.session.remove()
    assert versions == {2}
    # Shorter months move every pending step of the plan: all of them are version 2's now.
    assert [v for v, _ in pending] == [2]
    assert len(m4) == 30 and {(s, v) for _, s, v in m4} == {("COMPLETED", 2)}
    assert all(logs.get(a.id) == 1 for a in m4), logs
