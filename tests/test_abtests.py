"""A/B tests of email templates: stable assignment, the variant in the email sent, results with
a confidence interval worked out by hand, ending by keeping one variant; panel and API."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from scheduler import abtests, review
from scheduler.models import AbTest
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def test_assignment_is_stable_and_follows_the_split():
    test = AbTest(id=7, split=30, ended_at=None)
    first = [abtests.assign(test, c) for c in range(1, 2001)]
    assert first == [abtests.assign(test, c) for c in range(1, 2001)]  # the same every time
    share = first.count("B") / len(first)
    assert 0.27 < share < 0.33
    other = AbTest(id=8, split=30, ended_at=None)
    assert first != [abtests.assign(other, c) for c in range(1, 2001)]  # each test its own


def test_the_verdict_worked_out_by_hand():
    test = AbTest(id=1, split=50, goal_days=7)
    # A: 40 of 100 (0.40); B: 60 of 100 (0.60). diff 0.20, se = sqrt(.24/100 + .24/100)
    # = 0.069282; 95% CI 0.20 +- 0.135793 = [0.064207, 0.335793]: B is better.
    r = abtests.judged(test, abtests.Arm("A", 100, 40), abtests.Arm("B", 100, 60), 0)
    assert r.difference == pytest.approx(0.20)
    assert (r.low, r.high) == (pytest.approx(0.064207, abs=1e-6), pytest.approx(0.335793, abs=1e-6))
    assert r.verdict == "variant better"
    # A: 40 of 100; B: 45 of 100: diff 0.05, CI crosses 0. Needed per variant:
    # (1.96 + 0.84)^2 * (0.24 + 0.2475) / 0.05^2 = 1528.8 -> 1529; 1429 more.
    r = abtests.judged(test, abtests.Arm("A", 100, 40), abtests.Arm("B", 100, 45), 0)
    assert r.verdict == "no winner yet"
    assert "about 1429 more sends per variant" in r.says
    r = abtests.judged(test, abtests.Arm("A", 100, 60), abtests.Arm("B", 100, 40), 0)
    assert r.verdict == "variant worse"


def test_every_email_records_its_variant_and_the_goal_is_counted(harness):
    test = harness.do(
        abtests.start,
        template="DELIVERABLE_READY",
        subject="{{ client }}, your month {{ month }} plan is in",
        split=50,
        goal_days=3,
        actor="coach@example.com",
    )
    clients = [
        harness.enroll(date(2026, 1, 5), email=f"c{i}@example.com", name=f"Client {i}")
        for i in range(12)
    ]
    harness.run_until(at(2026, 1, 5, 12))
    for client in clients:
        harness.do(review.approve, client, 1)
    harness.run_until(at(2026, 1, 6, 12))
    sent = harness.emails("DELIVERABLE_READY")
    assert len(sent) == 12
    for email in sent:
        assert email.ab_test_id == test.id
        assert email.variant == abtests.assign(test, email.client_id)
        if email.variant == "B":
            assert email.subject.endswith("your month 1 plan is in")
        else:
            assert "plan is in" not in email.subject
    b_clients = [c for c in clients if abtests.assign(test, c.id) == "B"]
    a_clients = [c for c in clients if abtests.assign(test, c.id) == "A"]
    assert b_clients and a_clients
    # Two B clients and one A client open within the 3 days; one A client after 5 days.
    harness.clock.set(at(2026, 1, 7, 12))
    for client in [*b_clients[:2], a_clients[0]]:
        harness.do(review.open_deliverable, client, 1)
    result = abtests.result(harness.ctx, test)
    assert (result.b.conversions, result.a.conversions) == (2, 1)
    assert result.pending == 12 - 3  # the others' 3 days have not passed yet
    harness.clock.set(at(2026, 1, 10, 12))
    if len(a_clients) > 1:
        harness.do(review.open_deliverable, a_clients[1], 1)  # too late for the goal
    result = abtests.result(harness.ctx, test)
    assert (result.a.sends, result.b.sends) == (len(a_clients), len(b_clients))
    assert (result.a.conversions, result.b.conversions) == (1, 2)
    assert result.verdict == "no winner yet"


def test_ending_keeps_one_variant(harness):
    test = harness.do(
        abtests.start, template="REMINDER_UPCOMING", subject="Soon: M{{ month }}",
        actor="coach@example.com",
    )  # fmt: skip
    harness.do(abtests.end, test, "B", "coach@example.com")
    assert (test.kept, test.ended_by) == ("B", "coach@example.com")
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 8, 12))
    [email] = harness.emails("REMINDER_UPCOMING")
    assert email.subject == "Soon: M1" and email.variant == "B"  # everyone gets B now
    with pytest.raises(abtests.Conflict):
        abtests.end(harness.ctx, test, "A", "coach@example.com")
    assert client.id


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"template": "REVIEW_NEEDED", "subject": "x"}, "template"),
        ({"template": "DELIVERABLE_READY"}, "subject"),
        ({"template": "DELIVERABLE_READY", "subject": "{{ oops"}, "subject"),
        ({"template": "DELIVERABLE_READY", "subject": "x", "split": 0}, "split"),
        ({"template": "DELIVERABLE_READY", "subject": "x", "goal_days": 0}, "goal_days"),
    ],
)
def test_a_test_that_cannot_run_is_refused(harness, kwargs, field):
    with pytest.raises(abtests.Invalid) as refused:
        abtests.start(harness.ctx, actor="coach@example.com", **kwargs)
    assert refused.value.field == field


def test_a_variant_missing_a_variable_fails_its_email_loudly(harness):
    harness.do(
        abtests.start, template="REMINDER_UPCOMING", subject="{{ nope }}", split=99,
        actor="coach@example.com",
    )  # fmt: skip
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 8, 12))
    assert not [e for e in harness.emails("REMINDER_UPCOMING") if e.variant == "B"]
    assert client.id


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    web = browser(harness.app)
    set_password()
    assert log_in(web).status_code == 302
    return Panel(web)


def test_the_panel_starts_reads_and_ends_a_test(harness, panel):
    page = panel.get("/ab").get_data(True)
    assert "No A/B test yet" in page
    started = panel.post(
        "/ab",
        {"template": "DELIVERABLE_READY", "name": "shorter subject", "subject": "M{{ month }}",
         "split": "40", "goal_days": "5"},
        htmx=False,
    )  # fmt: skip
    assert started.status_code == 303
    test = db.session.scalars(select(AbTest)).one()
    assert (test.split, test.goal_days, test.started_by) == (40, 5, "coach@example.com")
    shown = panel.get(f"/ab/{test.id}").get_data(True)
    assert "No winner yet" in shown and "40% of clients get variant B" in shown
    refused = panel.post("/ab", {"template": "DELIVERABLE_READY", "subject": "x"}, htmx=False)
    assert refused.status_code == 409 and "already being tested" in refused.get_data(True)
    bad = panel.post("/ab", {"template": "WELCOME_BACK", "subject": "{{ x"}, htmx=False)
    assert bad.status_code == 422 and "not a valid template" in bad.get_data(True)
    ended = panel.post(f"/ab/{test.id}/end", {"keep": "B"}, htmx=False)
    assert ended.status_code == 303
    db.session.refresh(test)
    assert (test.kept, test.ended_by) == ("B", "coach@example.com")
    assert panel.get("/ab/999").status_code == 404


def test_the_api_starts_lists_and_ends_a_test(harness):
    from tests.test_api import Api, new_token

    api = Api(harness, new_token(harness))
    made = api.post(
        "/api/admin/ab-tests",
        {"template": "REMINDER_UPCOMING", "subject": "Soon: M{{ month }}", "split": 30},
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["split"] == 30 and body["goal_days"] == 7 and body["verdict"] == "no winner yet"
    listed = api.get("/api/admin/ab-tests").get_json()
    assert [t["id"] for t in listed["data"]] == [body["id"]]
    again = api.post("/api/admin/ab-tests", {"template": "REMINDER_UPCOMING", "subject": "x"})
    assert again.status_code == 409
    ended = api.post(f"/api/admin/ab-tests/{body['id']}/end", {"keep": "A"})
    assert ended.status_code == 200 and ended.get_json()["kept"] == "A"
    assert api.post(f"/api/admin/ab-tests/{body['id']}/end", {"keep": "A"}).status_code == 409
    assert api.get("/api/admin/ab-tests/12345").status_code == 404
