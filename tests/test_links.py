"""Portal links: bound to one client, signed, expiring on the engine's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from scheduler.clock import ManualClock
from scheduler.links import BadLink, Links, signed


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


class At(TimestampSigner):
    """itsdangerous's own signer, at a given second."""

    at = 0

    def get_timestamp(self) -> int:
        return self.at


@pytest.mark.parametrize("client_id", [0, 1, 7, 255, 256, 123_456_789, 2**63 - 1])
@pytest.mark.parametrize("at", [0, 1, 255, 1_767_225_600, 4_102_444_800])
@pytest.mark.parametrize("purpose", ["portal", "unsubscribe"])
def test_tokens_are_written_exactly_as_itsdangerous_writes_them(client_id, at, purpose):
    """The direct signer makes the very token itsdangerous makes (and checks)."""
    keys = ("old key", "s3cret")
    At.at = at
    reference = URLSafeTimedSerializer(list(keys), salt=f"journey.{purpose}", signer=At)
    assert signed(keys, purpose, client_id, at) == reference.dumps(client_id)
    assert reference.loads(signed(keys, purpose, client_id, at)) == client_id


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
