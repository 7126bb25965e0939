"""Clients in bulk: a CSV file checked row by row (a dry run lists each bad row and what would
be scheduled), imported all or nothing, idempotent when imported again; the clients list and
the log exported as CSV. Panel, API and CLI."""

from __future__ import annotations

import csv
import io

import pytest
from flask import g
from sqlalchemy import func, select

from scheduler import controls, imports
from scheduler.errors import Invalid
from scheduler.models import Automation, Client
from tests.panel_helpers import LONG_SESSIONS, Panel, browser, log_in, set_password
from tests.test_api import Api, new_token
from web.cli import cli
from web.extensions import db


@pytest.fixture
def panel(harness):
    harness.app.config.update(LONG_SESSIONS)
    set_password()
    web = browser(harness.app)
    assert log_in(web).status_code == 302
    return Panel(web)


def sheet(n: int, bad: bool = True) -> str:
    """`n` clients; with `bad`, line 11 has a bad date, line 21 an unknown zone, line 31 the
    email of line 2, and line 41 an unknown coach."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Name", "Email", "Timezone", "Start date", "Coach", "Main goal"])
    for i in range(1, n + 1):
        row = [
            f"Client {i}",
            f"c{i}@example.com",
            "Europe/Paris",
            "2026-02-02",
            "coach@example.com" if i % 2 else "",
            f"goal {i}",
        ]
        if bad and i == 10:
            row[3] = "2026-02-31"
        if bad and i == 20:
            row[2] = "Europe/Pariss"
        if bad and i == 30:
            row[1] = "c1@example.com"
        if bad and i == 40:
            row[4] = "nobody@example.com"
        w.writerow(row)
    return out.getvalue()


def clients_count():
    return db.session.scalar(select(func.count()).select_from(Client))


def test_a_dry_run_names_each_bad_row_and_the_import_is_all_or_nothing(harness):
    text = sheet(1000)
    report = imports.dry_run(harness.ctx, text)
    bad = {r.line: r.errors for r in report.errors}
    assert set(bad) == {11, 21, 31, 41}
    assert "is not a day of the calendar" in bad[11][0]
    assert "did you mean Europe/Paris" in bad[21][0]
    assert bad[31] == ["email: c1@example.com is also on line 2"]
    assert bad[41] == ["coach: no admin nobody@example.com"]
    assert report.summary().startswith("4 of 1000 rows have errors")
    with pytest.raises(Invalid, match="4 rows have errors"):
        imports.run(harness.ctx, text)
    harness.ctx.rollback()
    assert clients_count() == 0
    good = sheet(1000, bad=False)
    seen: list[tuple[int, int]] = []
    done = imports.run(harness.ctx, good, lambda n, total: seen.append((n, total)))
    harness.ctx.commit()
    assert done.summary() == (
        "1000 clients enrolled, 32000 automations scheduled; 0 already enrolled (unchanged)"
    )
    assert seen[-1] == (1000, 1000) and len(seen) == 2
    assert clients_count() == 1000
    one = db.session.scalar(select(Client).where(Client.email == "c1@example.com"))
    assert one.onboarding == {"Main goal": "goal 1"} and one.coach_id is not None
    assert one.timezone == "Europe/Paris"
    # Imported again: nothing changes.
    again = imports.run(harness.ctx, good)
    harness.ctx.commit()
    assert again.summary().startswith("0 clients enrolled") and len(again.already) == 1000
    assert db.session.scalar(select(func.count()).select_from(Automation)) == 32000
    # The same email with other details is an error, not a silent skip.
    changed = good.replace("Client 5,c5@example.com", "Someone Else,c5@example.com")
    assert "other details" in imports.dry_run(harness.ctx, changed).errors[0].errors[0]


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("email,start_date\nx@example.com,2026-01-01\n", "no name column"),
        ("name,email,start_date\n", "no client rows"),
        ("name,name,email,start_date\na,b,c@example.com,2026-01-01\n", "appears twice"),
    ],
)
def test_files_that_cannot_be_read(harness, text, message):
    with pytest.raises(Invalid, match=message):
        imports.dry_run(harness.ctx, text)


def test_the_panel_checks_imports_and_exports(harness, panel):
    bad = panel.web.post(
        "/clients/import",
        data={"file": (io.BytesIO(sheet(50).encode()), "clients.csv"), "mode": "check"},
        headers={"X-CSRFToken": panel.csrf, "HX-Request": "true"},
        content_type="multipart/form-data",
    )
    page = bad.get_data(True)
    assert bad.status_code == 200 and page.count('class="import-error"') == 4
    refused = panel.web.post(
        "/clients/import",
        data={"file": (io.BytesIO(sheet(50).encode()), "clients.csv"), "mode": "import"},
        headers={"X-CSRFToken": panel.csrf, "HX-Request": "true"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422 and clients_count() == 0
    assert refused.get_data(True).count('class="import-error"') == 4
    done = panel.web.post(
        "/clients/import",
        data={"file": (io.BytesIO(sheet(50, bad=False).encode()), "c.csv"), "mode": "import"},
        headers={"X-CSRFToken": panel.csrf, "HX-Request": "true"},
        content_type="multipart/form-data",
    )
    assert done.status_code == 200 and "50 clients enrolled" in done.get_data(True)
    assert clients_count() == 50
    exported = panel.get("/clients.csv?q=client 1&sort=name")
    assert exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(True))))
    assert rows[0] == imports.CLIENT_HEADER
    assert [r[1] for r in rows[1:]] == sorted(
        [f"Client {i}" for i in range(1, 51) if str(i).startswith("1")], key=str.lower
    )
    client = db.session.scalar(select(Client).where(Client.email == "c1@example.com"))
    panel.post(f"/automations/{harness.automations(client)[0].id}/cancel")
    log = list(csv.reader(io.StringIO(panel.get("/log.csv?actor=coach").get_data(True))))
    assert len(log) == 2 and log[1][-1] == "coach@example.com" and log[1][7] == "CANCELLED"
    assert panel.get("/log.csv?from=2026-13-01").status_code == 422


def test_api_and_cli_import_and_export(harness, tmp_path):
    g.pop("journey", None)
    api = Api(harness, new_token(harness))
    dry = api.post("/api/clients/import", {"csv": sheet(30), "dry_run": True}).get_json()
    assert dry["imported"] is False and [e["line"] for e in dry["errors"]] == [11, 21, 31]
    g.pop("journey", None)
    refused = api.post("/api/clients/import", {"csv": sheet(30)})
    assert refused.status_code == 422 and clients_count() == 0
    g.pop("journey", None)
    done = api.post("/api/clients/import", {"csv": sheet(30, bad=False)}).get_json()
    assert done["imported"] and done["new"] == 30 and done["automations"] == 960
    g.pop("journey", None)
    exported = api.client.get(
        "/api/admin/export/clients?status=on_track",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert exported.mimetype == "text/csv" and exported.get_data(True).count("\n") == 31
    runner = harness.app.test_cli_runner()
    path = tmp_path / "more.csv"
    path.write_text(sheet(40, bad=False).replace("c", "d"), encoding="utf-8")
    g.pop("journey", None)
    out = runner.invoke(cli, ["clients", "import", str(path), "--dry-run"])
    assert out.exit_code == 0 and "dry run: 40 clients would be enrolled" in out.output
    assert clients_count() == 30
    g.pop("journey", None)
    out = runner.invoke(cli, ["clients", "import", str(path)])
    assert out.exit_code == 0 and "40 clients enrolled, 1280 automations" in out.output
    assert clients_count() == 70
    path.write_text(sheet(15), encoding="utf-8")
    g.pop("journey", None)
    out = runner.invoke(cli, ["clients", "import", str(path)])
    assert out.exit_code == 2 and "line 11:" in out.output and clients_count() == 70
    g.pop("journey", None)
    out = runner.invoke(cli, ["clients", "export", "--q", "d1"])
    assert out.exit_code == 0 and out.output.splitlines()[0].startswith("id,name,email")
    client = db.session.scalar(select(Client).where(Client.email == "c1@example.com"))
    harness.do(controls.skip_month, client, 8)
    g.pop("journey", None)
    out = runner.invoke(cli, ["log-export", "--client", "c1@example.com", "--status", "CANCELLED"])
    assert out.exit_code == 0 and out.output.count("\n") > 1 and "M8 skipped" in out.output
