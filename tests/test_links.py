"""Portal links: bound to one client, signed, expiring on the engine's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.clock import ManualClock
from scheduler.links import BadLink, Links


def links(clock, secret="s3cret"):
    return Links("https://coach.example/", secret, clock, timedelta(days=30))


def test_a_link_names_its_client_until_it_expires():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    made = links(clock)
    url = made.portal(42, "months/3")
    assert url.startswith("https://coach.example/portal/") and url.endswith("/months/3")
    token = url.split("/")[4]
    assert made.client_id(token) == 42
    clock.advance(timedelta(days=30))
    assert made.client_id(token) == 42
    clock.advance(timedelta(seconds=2))
    with pytest.raises(BadLink, match="expired"):
        made.client_id(token)


def test_forged_damaged_and_misused_tokens_are_refused():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    token = links(clock).token(7)
    for bad in (token[:-2] + "xx", "abc", "", links(clock, "other secret").token(7)):
        with pytest.raises(BadLink, match="not valid"):
            links(clock).client_id(bad)
    with pytest.raises(BadLink):  # a portal token is not an unsubscribe token, nor the reverse
        links(clock).client_id(token, "unsubscribe")
    unsubscribe = links(clock).unsubscribe(7).rsplit("/", 1)[1]
    with pytest.raises(BadLink):
        links(clock).client_id(unsubscribe)
    assert links(clock).client_id(unsubscribe, "unsubscribe") == 7


def test_unsubscribe_links_outlive_portal_links():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    token = links(clock).unsubscribe(7).rsplit("/", 1)[1]
    clock.advance(timedelta(days=300))
    assert links(clock).client_id(token, "unsubscribe") == 7
