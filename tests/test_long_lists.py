"""What keeps the admin pages fast at 100,000 clients (tests/bench/pages.py measures them), held
to what they showed before: the status rule read from the client's row, long lists read a page
from where it starts, the log's client filter, the review queue's texts read when opened, and
the dashboard's numbers kept a minute or two."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from scheduler import controls, dashboard, enrollment, lookups, metrics, overview, review, timeline
from scheduler.models import Admin, AutomationLog, Client, Deliverable
from scheduler.vocab import ClientStatus
from scheduler.vocab import DeliverableStatus as D
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return Panel(web)


def many(harness, n, start=date(2025, 12, 1)):
    """`n` clients enrolled at once (names that sort apart from their ids)."""
    people = [
        enrollment.Enrollment(f"Client {(i * 37) % n:03d}", f"c{i}@example.com", start, "UTC")
        for i in range(n)
    ]
    found = enrollment.enroll_many(harness.ctx, people)
    harness.ctx.commit()
    return found


def month_done(harness, client):
    """The rule `current_month_done` keeps: the newest deliverable of the current month is
    delivered or skipped."""
    newest = lookups.latest_deliverable(harness.ctx, client, client.current_month)
    return newest is not None and newest.status in (D.DELIVERED, D.SKIPPED)


def test_the_status_reads_whether_the_current_month_is_done_from_the_row(harness):
    """The flag follows generation, rejection, a new version, approval, a skip and its undo;
    the status it gives agrees with the journey page's account of what is overdue."""
    client = harness.enroll(date(2026, 1, 1))
    other = harness.enroll(date(2025, 12, 1), email="tom@example.com", name="Tom Lee")
    steps = [
        lambda: harness.run_until(at(2026, 1, 1, 10)),  # M1 generated, in review
        lambda: harness.do(review.reject, client, 1, "More numbers"),
        lambda: harness.do(review.generate_by_hand, client, 1),
        lambda: harness.run_for(timedelta(minutes=5)),  # v2 in review: not done
        lambda: harness.run_for(timedelta(days=12)),  # ...and overdue since 9 January
        lambda: harness.do(review.approve, client, 1),
        lambda: harness.run_for(timedelta(days=22)),  # M2 generated
        lambda: harness.do(controls.skip_month, client, 2),
        lambda: harness.do(controls.unskip, client, 2),
    ]
    seen = set()
    for step in steps:
        step()
        for c in (client, other):
            harness.refresh(c)
            assert c.current_month_done == month_done(harness, c)
            status = overview.client_status(harness.ctx, c)
            assert (status is ClientStatus.OVERDUE) == bool(overview.overdue(harness.ctx, c))
            seen.add((c.current_month_done, status))
    assert (False, ClientStatus.OVERDUE) in seen and (True, ClientStatus.ON_TRACK) in seen
    for status in ClientStatus:  # each status filter lists the clients the rule gives it
        listed = {r.id for r in overview.clients(harness.ctx, status=status.value).rows}
        ruled = overview.statuses(harness.ctx, [client.id, other.id])
        assert listed == {i for i, s in ruled.items() if s is status}


def test_a_month_done_behind_the_rules_back_still_counts(harness):
    """The row's flag only finds candidates: a deliverable written without it (an import, a
    previous release during a deploy) leaves the status to the deliverables."""
    client = harness.enroll(date(2025, 12, 1))
    harness.clock.set(at(2026, 1, 1, 12))
    assert overview.client_status(harness.ctx, client) is ClientStatus.OVERDUE
    db.session.add(
        Deliverable(
            client_id=client.id, month=1, version=1, status=D.DELIVERED, title="M1",
            created_at=at(2026, 1, 1), delivered_at=at(2026, 1, 1),
        )
    )  # fmt: skip
    db.session.commit()
    assert not harness.refresh(client).current_month_done
    assert overview.client_status(harness.ctx, client) is ClientStatus.ON_TRACK
    assert overview.clients(harness.ctx, status="overdue").total == 0
    assert overview.clients(harness.ctx, status="on_track").total == 1


def test_the_overdue_clients_are_read_through_their_index(harness):
    """The rule's expression is the one PostgreSQL indexes (the index is written as PostgreSQL
    gives it back, so a change to one of them shows here)."""
    if harness.ctx.session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's expression index")
    harness.enroll(date(2025, 12, 1))
    session = harness.ctx.session
    overdue = overview.status_is("postgresql", date(2026, 1, 1), ClientStatus.OVERDUE)
    query = select(Client.id).where(overdue)
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
    session.rollback()
    assert "ix_clients_overdue_from" in plan, plan


def pages(panel, path, link):
    """Every page of the clients list, following its `link` ("Next →") from `path`: each
    page's client ids, and the query strings followed."""
    seen, followed = [], []
    while path:
        body = panel.get(path).get_data(True)
        seen.append(re.findall(r'<a href="/clients/(\d+)">', body))
        found = re.search(r'<a href="([^"]+)">' + re.escape(link) + "</a>", body)
        path = html.unescape(found.group(1)) if found else None
        if path:
            followed.append(parse_qs(urlsplit(path).query))
    return seen, followed


@pytest.mark.parametrize("sort", ["name", "start", "month", "status"])
def test_the_clients_list_pages_from_where_it_starts(harness, panel, sort):
    """Next and Previous carry the row a page starts after (or before): following them lists
    every client once, in the list's order, as the numbered pages do."""
    found = many(harness, 120)
    harness.do(controls.pause, found[3])
    seen, followed = pages(panel, f"/?sort={sort}", "Next →")
    by_number = [
        re.findall(
            r'<a href="/clients/(\d+)">', panel.get(f"/?sort={sort}&page={n}").get_data(True)
        )
        for n in (1, 2, 3)
    ]
    assert seen == by_number and len(seen) == 3 and [len(p) for p in seen] == [50, 50, 20]
    assert sorted(int(i) for p in seen for i in p) == sorted(c.id for c in found)
    assert all(
        "after" in q and q["page"] == [str(n)] for n, q in zip((2, 3), followed, strict=True)
    )
    # Back from the last page: the page before its first row.
    last = panel.get(f"/?sort={sort}&page=3&after={seen[1][-1]}").get_data(True)
    back = html.unescape(re.search(r'<a href="([^"]+)">← Previous</a>', last).group(1))
    assert "before=" in back
    assert re.findall(r'<a href="/clients/(\d+)">', panel.get(back).get_data(True)) == seen[1]


def test_a_page_start_that_names_no_row(harness, panel):
    """A row that is gone (or that no id names) starts the list at its first page; a start
    that is not a number is refused."""
    many(harness, 60)
    first = panel.get("/").get_data(True).count("/clients/")
    for start in ("after=99999999", "before=99999999", "after=-4", "before=0"):
        assert panel.get(f"/?{start}").get_data(True).count("/clients/") == first, start
    for path in ("/?after=x", "/log?before=x", "/?before=99999999999999999999999"):
        assert panel.get(path).status_code == 422, path


def test_the_log_pages_from_where_it_starts_among_rows_of_one_moment(harness, panel):
    """A bulk enrollment logs its skipped reminders at one instant: the log's order breaks the
    tie by id, and following Older (or Newer) lists every row once."""
    many(harness, 30)  # started a month ago: their past reminders are skipped, logged now
    expected = list(
        harness.ctx.session.scalars(
            select(AutomationLog.id).order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
        )
    )
    assert len(expected) > 2 * overview.PER_PAGE
    where = overview.LogFilter()
    walked, page = [], overview.logs(harness.ctx, where)
    while page.rows:
        walked += [row.id for row, _ in page.rows]
        page = overview.logs(harness.ctx, where, page.page + 1, after=page.rows[-1][0].id)
    assert walked == expected
    back = overview.logs(harness.ctx, where, 1, before=walked[overview.PER_PAGE])
    assert [row.id for row, _ in back.rows] == walked[: overview.PER_PAGE]
    shown, path = 0, "/log"
    while path:
        body = panel.get(path).get_data(True)
        shown += body.count('class="log-row"')
        found = re.search(r'<a href="([^"]+)">Older →</a>', body)
        path = html.unescape(found.group(1)) if found else None
    assert shown == len(expected)


def test_a_client_filter_lists_the_same_rows_by_id_or_by_name(harness, monkeypatch):
    """A filter naming few clients reads their rows by id; naming many, by name: the same rows."""
    clients = many(harness, 12)
    harness.do(controls.pause, clients[0])
    for client_filter, status in (("client 00", ""), ("example", ""), ("c1", "SCHEDULED")):
        where = overview.log_filter(client=client_filter, status=status)
        by_id = [r.id for r, _ in overview.logs(harness.ctx, where).rows]
        counted = (
            overview.count(harness.ctx, where),
            dict(overview.tally(harness.ctx, where, "type")),
        )
        monkeypatch.setattr(overview, "NAMED_CLIENTS", 0)
        by_name = [r.id for r, _ in overview.logs(harness.ctx, where).rows]
        assert by_id == by_name and by_id
        assert counted == (
            overview.count(harness.ctx, where),
            dict(overview.tally(harness.ctx, where, "type")),
        )
        monkeypatch.undo()


def test_the_review_queue_reads_a_text_when_it_is_opened(harness, panel):
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    d = harness.deliverable(client, 1)
    queue = panel.get("/review").get_data(True)
    opened = panel.get(f"/clients/{client.id}/months/1/text").get_data(True)
    heading = opened.strip().splitlines()[0]
    assert heading.startswith("<h1>") and "<html" not in opened
    assert html.escape(d.title) in queue and heading not in queue  # the text is not on the page
    assert f'hx-get="/clients/{client.id}/months/1/text"' in queue
    assert f'href="/clients/{client.id}/months/1">Read M1 v1</a>' in queue
    assert panel.get(f"/clients/{client.id}/months/5/text").status_code == 404


def numbers(panel):
    board = html.unescape(panel.get("/dashboard").get_data(True))
    return dict(re.findall(r'data-label="([^"]+)" href="[^"]+">([^<]+)</a>', board)), board


def test_the_dashboard_keeps_its_numbers_for_a_while(harness, panel):
    """Counted once, kept for dashboard.SECONDS (the page says when they were counted), counted
    again after; the workers' scheduler counts them for each admin's zone."""
    client = harness.enroll(date(2026, 1, 1))
    harness.run_until(at(2026, 1, 1, 10))
    first, board = numbers(panel)
    assert first["generated"] == "1" and "Counted" in board
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(seconds=30))
    assert numbers(panel)[0] == first  # kept
    harness.run_for(timedelta(seconds=dashboard.SECONDS))
    again = numbers(panel)[0]
    assert again["months delivered"] == "1" and again["on-time delivery"] == "100%"
    db.session.add(
        Admin(
            email="kim@example.com", timezone="Asia/Tokyo", active=True, created_at=at(2026, 1, 1)
        )
    )
    db.session.commit()
    assert dashboard.keep_all(harness.ctx) == ["Asia/Tokyo", "UTC"]
    harness.ctx.commit()
    tokyo = metrics.latest_state(harness.ctx, dashboard.kind("Asia/Tokyo"))
    assert tokyo is not None and tokyo.body["numbers"]["months delivered"] == 1


def test_on_time_is_judged_on_the_projected_milestones(harness):
    """The dashboard's on-time delivery, read in one query, judges each delivery as the month's
    projected milestone says (`timeline.month_dates`, a client at a time)."""
    early = harness.enroll(date(2026, 1, 1))
    late = harness.enroll(date(2026, 1, 1), email="tom@example.com", name="Tom Lee")
    tokyo = harness.enroll(date(2026, 1, 2), "Asia/Tokyo", email="kim@example.com", name="Kim")
    harness.run_until(at(2026, 1, 2, 10))
    harness.do(review.approve, early, 1)
    harness.run_until(at(2026, 1, 9, 14, 50))  # 23:50 in Tokyo: its last day on time
    harness.do(review.approve, tokyo, 1)
    harness.run_for(timedelta(days=1))
    harness.do(review.approve, late, 1)  # 10 January in UTC: two days late
    harness.run_for(timedelta(minutes=10))
    where = overview.LogFilter(template="DELIVERABLE_READY", status="COMPLETED")
    expected = 0
    rows = list(harness.ctx.session.scalars(overview.log_query(harness.ctx, where)[0]))
    for row in rows:
        client = harness.ctx.session.get(Client, row.client_id)
        due = timeline.month_dates(harness.ctx, client)[row.month] + timedelta(days=7)
        expected += row.at.astimezone(lookups.client_zone(client)).date() <= due
    assert overview.on_time(harness.ctx, where) == (expected, 3) and expected == 2
