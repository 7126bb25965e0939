"""Throttling: failed logins per account and per address, bad API tokens per address, portal
requests per address, each answered 429 with Retry-After once over its limit; a login takes as
long for an email that is no admin's; the counts live in Redis when REDIS_URL is set."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import date

import pytest
import redis
from sqlalchemy import select

from scheduler.models import Admin
from tests.conftest import unavailable
from tests.panel_helpers import PASSWORD, browser, log_in, set_password, token
from web import create_app
from web.api.tokens import issue
from web.auth import DUMMY_HASH
from web.extensions import db
from web.throttle import settings

# With parallel test workers, the tests that start processes or share Redis's database 15 run
# on one worker, one after another (timing and a shared database stay theirs alone).
pytestmark = pytest.mark.xdist_group("processes")

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def web(harness):
    set_password()
    return browser(harness.app)


def attempts_until_429(do, most=100):
    for n in range(1, most + 1):
        answer = do(n)
        if answer.status_code == 429:
            return n, answer
    raise AssertionError(f"no 429 in {most} attempts")


def retry_after(answer, most):
    value = int(answer.headers["Retry-After"])
    assert 1 <= value <= most
    return value


def test_failed_logins_are_throttled_per_account(harness, web):
    harness.app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "3 per 15 minutes"
    n, answer = attempts_until_429(lambda n: log_in(web, password=f"wrong password {n}"))
    assert n == 4  # three failures, then no more tries
    retry_after(answer, 15 * 60)
    assert "Too many failed logins" in answer.get_data(True)
    assert "try again in 15 minutes" in answer.get_data(True)
    assert log_in(web).status_code == 429  # even the right password waits: no oracle
    harness.add_admin("lead@example.com")
    set_password("lead@example.com")
    assert log_in(web, "lead@example.com").status_code == 302  # other accounts are not locked


def test_failed_logins_are_throttled_per_address_whatever_the_account(harness, web):
    harness.app.config["LOGIN_LIMIT_PER_ADDRESS"] = "5 per 15 minutes"
    n, answer = attempts_until_429(lambda n: log_in(web, f"guess{n}@example.com", "password!!"))
    assert n == 6
    retry_after(answer, 15 * 60)
    elsewhere = browser(harness.app)
    elsewhere.environ_base = {"REMOTE_ADDR": "192.0.2.7"}
    assert log_in(elsewhere).status_code == 302


def test_a_forged_forwarded_for_does_not_escape_the_limit(harness, web):
    """Without TRUSTED_PROXIES, X-Forwarded-For is the client's own words: not its address."""
    harness.app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per 15 minutes"

    def spoofed(n):
        page = web.get("/login").get_data(True)
        return web.post(
            "/login",
            data={"email": f"g{n}@example.com", "password": "x" * 12, "csrf_token": token(page)},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )

    assert attempts_until_429(spoofed)[0] == 4


def test_successful_logins_cost_nothing(harness, web):
    harness.app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 15 minutes"
    for _ in range(5):
        assert log_in(web).status_code == 302


def test_a_login_takes_as_long_for_an_unknown_email(harness, web):
    """A wrong password for an admin cost a password hash (~100 ms); an email that is no admin's
    cost nothing (~2 ms), which told anyone which emails are admins. Both check a hash now."""
    harness.app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "1000 per minute"
    harness.app.config["LOGIN_LIMIT_PER_ADDRESS"] = "1000 per minute"

    def timed(email):
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            assert log_in(web, email, "not the password").status_code == 401
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    known, unknown = timed("coach@example.com"), timed("nobody@example.com")
    assert unknown > known / 3, (known, unknown)
    assert known > unknown / 3, (known, unknown)


def test_the_dummy_hash_costs_what_a_real_one_does():
    from werkzeug.security import generate_password_hash

    assert DUMMY_HASH.split("$")[0] == generate_password_hash("x").split("$")[0]


def test_bad_api_tokens_are_throttled_per_address(harness):
    harness.app.config["API_TOKEN_LIMIT"] = "5 per minute"
    api = harness.app.test_client()

    def bad(n):
        path = "/api/clients" if n % 2 else "/api/no-such-route"  # unknown routes count too
        return api.get(path, headers={"Authorization": f"Bearer je_guess{n}"})

    n, answer = attempts_until_429(bad)
    assert n == 6
    retry_after(answer, 60)
    assert answer.json["error"]["code"] == "too_many_requests"
    assert "bad API token" in answer.json["error"]["message"]
    _, raw = issue(db.session, db.session.scalar(select(Admin)), "ok", harness.clock.now())
    db.session.commit()
    assert api.get("/api/clients", headers={"Authorization": f"Bearer {raw}"}).status_code == 429
    other = harness.app.test_client()
    other.environ_base = {"REMOTE_ADDR": "192.0.2.8"}
    assert other.get("/api/clients", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_portal_requests_are_throttled_per_address(harness):
    harness.app.config["PORTAL_LIMIT"] = "5 per minute"
    client = harness.enroll(date(2026, 1, 5))
    url = "/" + harness.app.extensions["journey"].links.portal(client.id).split("/", 3)[3]
    visitor = harness.app.test_client()
    n, answer = attempts_until_429(lambda n: visitor.get(url if n % 2 else "/portal/forged"))
    assert n == 6
    retry_after(answer, 60)
    assert "Too many requests" in answer.get_data(True)
    other = harness.app.test_client()
    other.environ_base = {"REMOTE_ADDR": "192.0.2.9"}
    assert other.get(url).status_code == 200


def test_the_counts_are_in_redis_when_redis_url_is_set(harness, tmp_path):
    assert settings({"REDIS_URL": REDIS_URL})["RATELIMIT_STORAGE_URI"] == REDIS_URL
    assert settings({"REDIS_URL": None})["RATELIMIT_STORAGE_URI"] == "memory://"
    try:
        store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        store.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", str(exc))
    prefix = f"throttle-test-{uuid.uuid4().hex[:8]}"
    config = {
        "SQLALCHEMY_DATABASE_URI": harness.app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": None,  # the broker stays in-process; the throttle uses Redis
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "LOGIN_LIMIT_PER_ACCOUNT": "3 per 15 minutes",
    }
    set_password()
    try:
        first = create_app(config, clock=harness.clock, dispatcher=harness.transport)
        one = browser(first)
        for n in range(3):
            assert log_in(one, password=f"wrong {n}").status_code == 401
        assert store.keys(f"*{prefix}*")  # counted in Redis
        # Another web process (a second gunicorn worker, another machine) sees the same count.
        second = create_app(config, clock=harness.clock, dispatcher=harness.transport)
        assert log_in(browser(second), password=PASSWORD).status_code == 429
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


def test_with_its_storage_down_the_throttle_counts_in_memory_and_nothing_fails(harness):
    """Redis unreachable (a port nothing listens on): logins, the API and the portal still
    answer, and failed logins are still limited, in the process's memory."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": harness.app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0",
            "RATELIMIT_KEY_PREFIX": f"outage-{uuid.uuid4().hex[:8]}",
            "LOGIN_LIMIT_PER_ACCOUNT": "2 per 15 minutes",
        },
        clock=harness.clock,
        dispatcher=harness.transport,
    )
    set_password()
    web = browser(app)
    assert [log_in(web, password=f"wrong {n}").status_code for n in range(3)] == [401, 401, 429]
    client = harness.enroll(date(2026, 1, 5))
    url = "/" + app.extensions["journey"].links.portal(client.id).split("/", 3)[3]
    assert app.test_client().get(url).status_code == 200
    assert app.test_client().get("/api/clients").status_code == 401
