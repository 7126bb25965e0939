"""Clients at risk: the features see only what was known at their moment, the fit learns a
known rule, the account's model scores its clients with reasons, and every surface shows it;
measured on a simulated history with known behaviour."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from scheduler import risk, risk_sim
from scheduler.models import Client, ClientRisk, Deliverable, RiskModel
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def test_features_see_only_what_was_known_then():
    start = at(2026, 1, 1)
    client = risk.ClientFacts(1, start, True)
    m1 = client.month(1)
    m1.milestone = start
    m1.delivered_at = start + timedelta(days=10)  # late: after milestone + 7
    m1.opened_at = start + timedelta(days=20)
    client.month(2).milestone = start + timedelta(days=30)
    before = risk.features(client, start + timedelta(days=6))
    assert before[0] == 0.0  # month 1's lateness shows once its 7 days have passed...
    assert before[6] == 1.0  # ...and nothing has been delivered yet: a new client
    assert risk.features(client, start + timedelta(days=8))[0] == 1.0  # not delivered by day 7
    later = risk.features(client, start + timedelta(days=15))
    assert later[0] == 1.0  # late
    assert later[1] == pytest.approx(5.0)  # 5 days since delivery, not opened yet
    assert later[2] == 1.0  # unopened after 3 days
    after = risk.features(client, start + timedelta(days=27))
    assert after[1] == pytest.approx(10.0)  # opened 10 days after delivery
    assert after[5] == pytest.approx(7.0)  # last visit 7 days ago


def test_the_fit_learns_a_known_rule():
    rng = random.Random(3)
    xs, ys = [], []
    for _ in range(600):
        x = [rng.random(), rng.uniform(0, 10), rng.random(), 0.0, 0.0, rng.uniform(0, 30), 0.0]
        # Late when the feature "days to open" is high, with noise.
        ys.append(x[1] + rng.gauss(0, 1.5) > 7)
        xs.append(x)
    model = risk.fit(xs, ys)
    weights = dict(zip([f.code for f in risk.FEATURES], model.weights[1:], strict=True))
    assert weights["open_days"] > 2
    assert all(abs(w) < 0.5 for code, w in weights.items() if code != "open_days")
    assert model.precision > 0.7 and model.recall > 0.7  # the noise allows no better
    assert model.probability([0.5, 9.5, 0.5, 0, 0, 15, 0]) > 0.9
    assert model.probability([0.5, 1.0, 0.5, 0, 0, 15, 0]) < 0.1


@pytest.fixture
def history(harness):
    """24 clients four months in: every third one's months ran late and were opened late."""
    harness.clock.set(at(2026, 1, 20, 12))
    now = harness.clock.now()
    late = []
    for i in range(24):
        client = harness.enroll(date(2025, 9, 10), email=f"c{i}@example.com", name=f"Client {i}")
        slow = i % 3 == 0
        if slow:
            late.append(client.id)
        for month in range(1, 5):
            generation = harness.one(client, type="GENERATE_DELIVERABLE", month=month)
            milestone = generation.trigger_at
            delivered = milestone + timedelta(days=10 if slow else 1)
            if delivered > now:
                continue
            opened = delivered + timedelta(days=6 if slow else 1)
            db.session.add(
                Deliverable(
                    client_id=client.id, month=month, version=1, status="DELIVERED",
                    generated_at=milestone, reviewed_at=delivered, delivered_at=delivered,
                    opened_at=opened if opened <= now else None, created_at=milestone,
                )
            )  # fmt: skip
    db.session.commit()
    return harness, late


def test_the_account_model_scores_its_clients_with_reasons(history):
    harness, late = history
    kept = harness.do(risk.train, actor="coach@example.com")
    assert kept.actor == "coach@example.com" and kept.body["rows"] >= 24
    weights = {w.feature.code: w.weight for w in risk.weights(kept)}
    assert weights["late_share"] > 0
    scores = {r.client_id: r for r in db.session.scalars(select(ClientRisk))}
    assert len(scores) == 24  # every active client
    flagged = {cid for cid, r in scores.items() if r.at_risk}
    assert flagged == set(late)
    some = scores[late[0]]
    assert some.month == 5 or some.month == 4
    assert "earlier months ran more than 7 days late" in some.reasons


def test_too_little_history_is_refused(harness):
    harness.enroll(date(2026, 1, 5))
    with pytest.raises(risk.Conflict, match="not enough history"):
        risk.train(harness.ctx, actor="coach@example.com")
    assert risk.refresh(harness.ctx) == 0  # no model: the daily refresh does nothing


def test_the_panel_shows_the_model_the_filter_and_the_reasons(history):
    harness, late = history
    harness.app.config.update(LONG_SESSIONS)
    web = browser(harness.app)
    set_password()
    assert log_in(web).status_code == 302
    panel = Panel(web)
    assert "No model yet" in panel.get("/risk").get_data(True)
    trained = panel.post("/risk/train", htmx=False)
    assert trained.status_code == 303
    page = panel.get("/risk").get_data(True)
    assert "Days to open a deliverable" in page and "Intercept" in page
    assert f"At risk now ({len(late)})" in page
    assert db.session.scalar(select(RiskModel.actor)) == "coach@example.com"
    listed = panel.get("/?risk=1").get_data(True)
    assert f"{len(late)} clients" in listed and "at risk ·" in listed
    one = db.session.get(Client, late[0])
    journey = panel.get(f"/clients/{one.id}").get_data(True)
    assert "At risk</strong>" in journey and "earlier months ran more than 7 days late" in journey


def test_measured_on_a_simulated_history_with_known_behaviour():
    """A small population here (the figure in the docs comes from `journey risk evaluate`
    with 120 clients): the model must beat the base rate on months it has not seen."""
    measured = risk_sim.measure(clients=30, seed=5)
    e = measured.evaluation
    assert e.test_rows > 20 and 0 < e.overdue < e.test_rows
    assert e.precision > e.base_rate
    assert e.recall >= 0.5


def test_api_and_command_line(history):
    from tests.test_api import Api, new_token
    from web.cli import cli

    harness, late = history
    api = Api(harness, new_token(harness))
    assert api.get("/api/admin/risk").get_json() == {"model": None, "at_risk": []}
    trained = api.post("/api/admin/risk/train")
    assert trained.status_code == 201
    body = trained.get_json()
    assert {c["client_id"] for c in body["at_risk"]} == set(late)
    assert body["model"]["actor"].startswith("coach@example.com (API token")
    assert body["model"]["features"][0]["code"] == "late_share"
    runner = harness.app.test_cli_runner()
    shown = runner.invoke(cli, ["risk", "show"])
    assert shown.exit_code == 0 and f"{len(late)} clients at risk" in shown.output
    assert "Past months overdue" in shown.output
    refreshed = runner.invoke(cli, ["risk", "refresh"])
    assert refreshed.exit_code == 0 and refreshed.output == "24 clients scored\n"


def test_training_without_history_is_a_clear_refusal(harness):
    from tests.test_api import Api, new_token
    from web.cli import cli

    api = Api(harness, new_token(harness))
    assert api.post("/api/admin/risk/train").status_code == 409
    refused = harness.app.test_cli_runner().invoke(cli, ["risk", "train"])
    assert refused.exit_code == 1 and "not enough history" in refused.output
    nothing = harness.app.test_cli_runner().invoke(cli, ["risk", "refresh"])
    assert nothing.exit_code == 0 and nothing.output == "no model yet: journey risk train\n"


def test_every_client_is_scored_again_daily_by_the_embedded_schedule(history, monkeypatch):
    """The daily refresh, as `journey serve` runs it: at 03:30 (the process's local time, as
    periodiq reads it) the embedded timer sends the refresh actor to the process's own worker
    (and, as every minute, the metrics' counting ahead),
    which scores every active client again with the latest model; a client no longer active
    loses their score, a new one gets theirs."""
    import dramatiq

    from scheduler import controls
    from tasks import actors, runtime
    from tasks.embedded import Embedded
    from web import units_of_work

    harness, late = history
    harness.do(risk.train, actor="coach@example.com")
    trained = {r.client_id: r.probability for r in db.session.scalars(select(ClientRisk))}
    paused = db.session.get(Client, late[0])
    harness.do(controls.pause, paused, reason="Travel")
    newcomer = harness.enroll(date(2026, 1, 26), email="new@example.com", name="New Client")
    local = datetime(2026, 1, 21, 3, 29).astimezone()  # 03:29 here
    embedded = Embedded(1.0)
    assert embedded.send_periodic(local) == []  # the first look notes the minute
    harness.clock.set(local + timedelta(minutes=2))
    sent = embedded.send_periodic(harness.clock.now())
    every_minute = [actors.keep_metrics.actor_name, actors.count_dashboards.actor_name]
    assert sorted(sent) == sorted([*every_minute, actors.refresh_risk.actor_name])
    later = embedded.send_periodic(harness.clock.now() + timedelta(hours=1))
    assert sorted(later) == sorted(every_minute)  # every minute; the refresh once a day
    broker = dramatiq.get_broker()
    broker.flush(actors.keep_metrics.queue_name)  # the metrics and dashboard have their tests
    db.session.commit()  # the worker writes in a transaction of its own
    monkeypatch.setattr(runtime, "_units", None)
    runtime.bind(units_of_work(harness.app))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(actors.refresh_risk.queue_name, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
    db.session.expire_all()
    now = harness.clock.now()
    scores = {r.client_id: r for r in db.session.scalars(select(ClientRisk))}
    assert paused.id not in scores and newcomer.id in scores
    assert len(scores) == 24  # 23 of the history and the newcomer
    assert {r.scored_at for r in scores.values()} == {now}
    model = risk.Model.from_dict(risk.latest(harness.ctx).body)
    known = risk.facts(harness.ctx)
    for cid, r in scores.items():
        assert r.probability == model.score(risk.features(known[cid], now)).probability
    assert any(scores[cid].probability != p for cid, p in trained.items() if cid in scores)
