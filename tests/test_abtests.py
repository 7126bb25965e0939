"""A/B tests of email templates: stable assignment, the variant in the email sent, results with
a confidence interval worked out by hand, ending by keeping one variant; panel and API."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from scheduler import ab_sim, abtests, portal, review
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
    # Nobody's 3 days have passed: all pending, the 3 who opened too (counting them already
    # would favour the variant whose readers open sooner).
    assert (result.a.sends, result.b.sends, result.pending) == (0, 0, 12)
    harness.clock.set(at(2026, 1, 10, 12))
    if len(a_clients) > 1:
        harness.do(review.open_deliverable, a_clients[1], 1)  # too late for the goal
    result = abtests.result(harness.ctx, test)
    assert (result.a.sends, result.b.sends) == (len(a_clients), len(b_clients))
    assert (result.a.conversions, result.b.conversions) == (1, 2)
    assert result.verdict == "no winner yet"


def test_the_click_goal_counts_each_emails_first_click_within_its_days(harness):
    """Goal "click": an email converts when the client clicks one of its portal links within
    `goal_days` of it (its links carry its signed id; the portal records the first click)."""
    test = harness.do(
        abtests.start, template="REMINDER_UPCOMING", subject="Soon: M{{ month }}", split=50,
        goal="click", goal_days=2, actor="coach@example.com",
    )  # fmt: skip
    assert test.goal == "click"
    assert (
        abtests.goal_words(test) == "a portal link in the email clicked within 2 days of the email"
    )
    clients = [
        harness.enroll(date(2026, 1, 5), email=f"c{i}@example.com", name=f"Client {i}")
        for i in range(10)
    ]
    harness.run_until(at(2026, 1, 2, 12))  # the upcoming reminders of M1 went at 09:00
    sent = {e.client_id: e for e in harness.emails("REMINDER_UPCOMING")}
    assert len(sent) == 10
    links = harness.app.extensions["journey"].links
    for email in sent.values():
        tag = links.email_tag(email.automation_id)
        assert f"?e={tag}" in email.text_body and f"?e={tag}" in email.html_body
    b = [c for c in clients if sent[c.id].variant == "B"]
    a = [c for c in clients if sent[c.id].variant == "A"]
    assert len(a) >= 2 and len(b) >= 2

    def click(client, when):
        harness.clock.set(when)
        return harness.do(portal.click, client, sent[client.id].automation_id)

    assert click(b[0], at(2026, 1, 3, 9)) is True  # a day after: converts
    assert click(b[0], at(2026, 1, 3, 20)) is False  # again: the first click stays
    assert harness.refresh(sent[b[0].id]).clicked_at == at(2026, 1, 3, 9)
    early = abtests.result(harness.ctx, test)  # every window still open
    assert (early.a.sends, early.b.sends, early.pending) == (0, 0, len(clients))
    click(b[1], at(2026, 1, 4, 8))  # 47 hours after: converts
    click(a[0], at(2026, 1, 4, 10))  # 49 hours after: too late
    with pytest.raises(portal.NotFound):  # another client's email
        portal.click(harness.ctx, a[1], sent[b[0].id].automation_id)
    assert harness.refresh(sent[a[1].id]).clicked_at is None
    result = abtests.result(harness.ctx, test)
    assert (result.a.sends, result.b.sends, result.pending) == (len(a), len(b), 0)
    assert (result.a.conversions, result.b.conversions) == (0, 2)


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
        ({"template": "DELIVERABLE_READY", "subject": "x", "goal": "reply"}, "goal"),
        # The click goal needs the email's portal link in each of the variant's own bodies.
        ({"template": "DELIVERABLE_READY", "text": "No link", "goal": "click"}, "text"),
        ({"template": "MONTH_COMPLETE", "html": "<p>{{ month }}</p>", "goal": "click"}, "html"),
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
         "split": "40", "goal": "click", "goal_days": "5"},
        htmx=False,
    )  # fmt: skip
    assert started.status_code == 303
    test = db.session.scalars(select(AbTest)).one()
    assert (test.split, test.goal, test.goal_days) == (40, "click", 5)
    assert test.started_by == "coach@example.com"
    shown = panel.get(f"/ab/{test.id}").get_data(True)
    assert "No winner yet" in shown and "40% of clients get variant B" in shown
    assert "goal: a portal link in the email clicked within 5 days of the email" in shown
    listed = panel.get("/ab").get_data(True)
    assert "a portal link in the email clicked within 5 days" in listed
    assert '<option value="click"' in listed
    refused = panel.post("/ab", {"template": "DELIVERABLE_READY", "subject": "x"}, htmx=False)
    assert refused.status_code == 409 and "already being tested" in refused.get_data(True)
    bad = panel.post("/ab", {"template": "WELCOME_BACK", "subject": "{{ x"}, htmx=False)
    assert bad.status_code == 422 and "not a valid template" in bad.get_data(True)
    linkless = {"template": "WELCOME_BACK", "text": "Welcome back", "goal": "click"}
    bad = panel.post("/ab", linkless, htmx=False)
    assert bad.status_code == 422 and "this body has none" in bad.get_data(True)
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
        {"template": "REMINDER_UPCOMING", "subject": "Soon: M{{ month }}", "split": 30,
         "goal": "click"},
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["split"] == 30 and body["goal_days"] == 7 and body["verdict"] == "no winner yet"
    assert body["goal"] == "click"
    wrong = {"template": "MONTH_COMPLETE", "subject": "x", "goal": "reply"}
    refused = api.post("/api/admin/ab-tests", wrong)
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "goal"
    listed = api.get("/api/admin/ab-tests").get_json()
    assert [t["id"] for t in listed["data"]] == [body["id"]]
    again = api.post("/api/admin/ab-tests", {"template": "REMINDER_UPCOMING", "subject": "x"})
    assert again.status_code == 409
    ended = api.post(f"/api/admin/ab-tests/{body['id']}/end", {"keep": "A"})
    assert ended.status_code == 200 and ended.get_json()["kept"] == "A"
    assert api.post(f"/api/admin/ab-tests/{body['id']}/end", {"keep": "A"}).status_code == 409
    assert api.get("/api/admin/ab-tests/12345").status_code == 404


# -- on synthetic clients ------------------------------------------------------------------------


def simulated(**changes):
    plan = {
        "template": "REMINDER_UPCOMING", "goal": "click", "goal_days": 2, "clients": 80,
        "days": 2, "spread": 1,
    }  # fmt: skip
    return ab_sim.run(ab_sim.Plan(**(plan | changes)))


def test_a_simulated_test_finds_a_better_variant_and_no_winner_between_equals():
    """80 synthetic clients sent the upcoming reminder of M1 (the hash gives 35 A, 45 B): B
    makes 60% of them click within 2 days, A 15%."""
    better = simulated(rate_a=0.15, rate_b=0.6)
    assert (better.a.sends, better.b.sends, better.pending) == (35, 45, 0)
    assert better.a.conversions < 0.3 * 35 and better.b.conversions > 0.45 * 45
    assert better.low is not None and better.low > 0
    assert better.verdict == "variant better"
    equal = simulated(rate_a=0.3, rate_b=0.3)
    assert (equal.a.sends, equal.b.sends) == (35, 45)
    assert equal.verdict == "no winner yet" and "more sends per variant" in equal.says
    assert equal.low is not None and equal.low < 0 < equal.high


def test_the_simulator_command_runs_a_test_of_opens_and_prints_its_result():
    from click.testing import CliRunner

    from web.cli import cli

    runner = CliRunner()
    out = runner.invoke(
        cli,
        ["ab", "simulate", "--template", "DELIVERABLE_READY", "--goal", "open",
         "--goal-days", "2", "--clients", "40", "--days", "6", "--spread", "1",
         "--rate-a", "0.1", "--rate-b", "0.9"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == (
        "40 simulated clients, the emails of 6 days counted; Deliverable ready email to "
        "client: 50% given variant B; goal: the month's deliverable opened within 2 days of "
        "the email"
    )
    sends = [re.match(r"  ([AB]): (\d+) sends counted, (\d+) reached the goal", x) for x in lines]
    (_, a, a_done), (_, b, b_done) = [m.groups() for m in sends if m]
    assert int(a) + int(b) == 40 and int(a_done) < int(b_done)
    assert lines[-2].startswith("difference B - A: +")
    # Under 30 sends each: no verdict yet, and how many more sends it takes.
    assert re.fullmatch(r"No winner yet: about \d+ more sends per variant .*", lines[-1])
    refused = runner.invoke(cli, ["ab", "simulate", "--rate-b", "1.5"])
    assert refused.exit_code == 2 and "rate_b: a chance between 0 and 1" in refused.output
