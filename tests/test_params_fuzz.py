"""No query string or path number makes a page fail: every GET of the panel and the portal
(found by walking the app's URL map, so a new route is covered as soon as it exists), with
random values for each query parameter it reads and each integer in its path, answers a page
or a clear 4xx, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import ImmutableMultiDict

from scheduler import review
from tests.panel_helpers import Panel, browser, log_in, set_password

# The JSON API has its own contract test (schemathesis); static files and the health check take
# no input (the health check answers 503 by design while the sweep has not run).
SKIPPED = ("api.", "static", "main.healthz")
EXAMPLES = 25


class Read:
    """The query parameters each endpoint reads, recorded as the app reads them."""

    names: dict[str, set[str]] = {}
    endpoint = ""


class RecordingArgs(ImmutableMultiDict):
    def _saw(self, key: Any) -> None:
        if isinstance(key, str):
            Read.names.setdefault(Read.endpoint, set()).add(key)

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:
        self._saw(key)
        return super().get(key, default, type)

    def __getitem__(self, key: Any) -> Any:
        self._saw(key)
        return super().__getitem__(key)

    def getlist(self, key: Any, type: Any = None) -> Any:
        self._saw(key)
        return super().getlist(key, type)

    def __contains__(self, key: Any) -> bool:
        self._saw(key)
        return super().__contains__(key)


# Numbers as people and robots type them: huge, negative, padded, not numbers at all.
NUMBERISH = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "x", "0", "-1", "1e9", "1.5", "٣", "99999999999999999999", " 2 ", "0x10"]),
)
VALUES = st.one_of(
    NUMBERISH,
    st.text(max_size=40),
    st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
    st.sampled_from(["2026-13-01", "2026-02-30", "9999-12-31", "overdue", "name", "status"]),
)
PATH_INTS = st.one_of(
    st.integers(min_value=0, max_value=2**70), st.sampled_from([0, 1, 2, 8, 9, 2**63])
)


@pytest.fixture
def site(harness):
    """A logged-in admin, a client with a delivered month and sent emails, and the client's
    portal link."""
    # Hundreds of requests a minute from one address: the portal's throttle would answer most
    # of them 429 (it has tests of its own).
    harness.app.config["PORTAL_LIMIT"] = "1000000 per minute"
    client = harness.enroll(date(2026, 1, 5), "America/New_York")
    harness.run_until(datetime(2026, 1, 5, 15, tzinfo=UTC))
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(days=1))
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    token = harness.app.extensions["journey"].links.token(client.id)
    return Panel(web), client, token


def routes(app: Any) -> list[Any]:
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and not rule.endpoint.startswith(SKIPPED)
        ),
        key=lambda rule: rule.rule,
    )


def path_for(rule: Any, ints: dict[str, int], token: str, client_id: int) -> str:
    path = rule.rule
    for arg in rule.arguments:
        converter = type(rule._converters[arg]).__name__.lower()
        if "int" in converter:
            value = str(ints.get(arg, client_id))
        elif arg == "token":
            value = token
        elif arg == "template":
            value = "REMINDER_UPCOMING"
        else:
            value = "x"
        path = re.sub(rf"<(?:[^:<>]+:)?{arg}>", value, path)
    return path


def int_args(rule: Any) -> list[str]:
    return [a for a in rule.arguments if "int" in type(rule._converters[a]).__name__.lower()]


def fuzz(panel: Panel, rule: Any, names: list[str], token: str, client_id: int) -> None:
    """Random values for the page's query parameters and path numbers: never a 500."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(
        query=st.fixed_dictionaries({}, optional={n: VALUES for n in names}),
        numbers=st.fixed_dictionaries({a: PATH_INTS for a in int_args(rule)}),
    )
    def visit(query: dict[str, str], numbers: dict[str, int]) -> None:
        path = path_for(rule, numbers, token, client_id)
        answer = panel.get(path, query_string=query)
        assert answer.status_code < 500, (path, query, answer.status_code)
        if answer.status_code >= 400:
            body = answer.get_data(as_text=True)
            assert body.strip() and "Traceback" not in body, (path, query)

    visit()


def test_no_query_parameter_or_path_number_makes_a_page_fail(harness, site):
    panel, client, token = site
    app = harness.app
    app.request_class.parameter_storage_class = RecordingArgs
    try:
        checked = 0
        for rule in routes(app):
            Read.endpoint = rule.endpoint
            # First a plain visit, to learn which parameters the page reads.
            plain = panel.get(path_for(rule, {}, token, client.id))
            assert plain.status_code < 500, (rule.rule, plain.status_code)
            fuzz(panel, rule, sorted(Read.names.get(rule.endpoint, set())), token, client.id)
            checked += 1
    finally:
        app.request_class.parameter_storage_class = ImmutableMultiDict
    assert checked >= 10  # the panel's pages, the portal's, the raw records
    assert {"page", "q", "status", "sort"} <= Read.names["panel.clients"]
    assert {"client", "from", "to"} <= Read.names["panel.log"]
