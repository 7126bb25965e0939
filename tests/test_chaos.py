"""Two minutes of chaos (tests/chaos.py at a small size; `make chaos` runs the full one): the
Procfile's processes keep every promise while workers are killed and stopped, Redis restarts
empty and PostgreSQL refuses connections."""

from __future__ import annotations

import shutil

import pytest

from tests import chaos
from tests.conftest import unavailable

# With parallel test workers, the tests that start processes or share Redis's database 15 run
# on one worker, one after another (timing and a shared database stay theirs alone).
pytestmark = pytest.mark.xdist_group("processes")


@pytest.mark.slow
def test_nothing_lost_nothing_twice_and_recovery_within_a_minute(pg_schema, tmp_path):
    if not shutil.which("redis-server"):
        unavailable("redis-server (the binary, to start and kill our own)", "not installed")
    result = chaos.run(chaos.Plan.small(), tmp_path / "logs", say=lambda line: None)
    print("\n" + chaos.table(result))
    found = result.results
    assert found["due"] == chaos.Plan.small().automations
    assert found["lost"] == 0 and found["executed twice"] == 0 and found["failed"] == 0
    assert found["missing"] == 0
    # SMTP has no exactly-once: a message the server took just before a worker died is sent
    # again, with the same Message-ID, and recorded as possibly sent twice.
    assert found["_duplicated_unrecorded"] == []
    assert found["duplicated (X-Journey-Key)"] == found["duplicated (Message-ID)"]
    assert result.unexpected_exits == []
    assert found["p99 in faults"] < 60 and found["max in faults"] < 120
