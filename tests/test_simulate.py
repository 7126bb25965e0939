"""Scenarios through the simulator: the real engine on simulated time."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scheduler.simulate import ScenarioError, load_scenario, simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE = {
    "now": "2026-01-01T00:00:00Z",
    "until": "2026-09-15T00:00:00Z",
    "send_hour": 9,
    "admins": [{"email": "coach@example.com"}],
    "clients": [
        {
            "key": "s",
            "name": "Sarah Johnson",
            "email": "sarah@example.com",
            "timezone": "America/New_York",
            "start_date": "2026-01-05",
            "approve_after_hours": 20,
            "open_after_hours": 30,
        }
    ],
    "events": [],
}


def run(scenario):
    warnings: list[str] = []
    lines = list(simulate(load_scenario(json.dumps(scenario)), warnings.append))
    return lines, warnings


def scenario(**changes):
    data = json.loads(json.dumps(BASE))
    data.update(changes)
    return data


def emails(lines, template=None):
    return [
        x for x in lines if x["kind"] == "email" and (template is None or x["template"] == template)
    ]


def autos(lines, **where):
    return [
        x
        for x in lines
        if x["kind"] == "automation" and all(x.get(k) == v for k, v in where.items())
    ]


def test_a_full_journey_in_time_order():
    lines, warnings = run(scenario())
    assert not warnings
    stamps = [x["at"] for x in lines]
    assert stamps == sorted(stamps)
    assert all(x["status"] in {"COMPLETED", "SKIPPED", "FAILED", "CANCELLED"} for x in autos(lines))
    counts = Counter(x["template"] for x in emails(lines))
    assert counts["DELIVERABLE_READY"] == 8
    assert counts["REVIEW_NEEDED"] == 8
    assert (
        counts["MONTH_COMPLETE"] == 6 and counts["HALFWAY"] == 1 and counts["PROGRAM_COMPLETE"] == 1
    )
    assert counts["REMINDER_UPCOMING"] == 8
    # Opened within 30 h of delivery: no overdue reminder, no escalation ever fires.
    assert counts["REMINDER_OVERDUE"] == 0 and counts["ADMIN_ESCALATION"] == 0
    gen = autos(lines, type="GENERATE_DELIVERABLE", status="COMPLETED")
    assert [g["month"] for g in gen] == list(range(1, 9))
    assert gen[0]["at"] == "2026-01-05T14:00:00Z"
    assert gen[3]["at"] == "2026-04-05T13:00:00Z"  # 09:00 New York, summer time


def test_upcoming_reminder_of_month_one_is_sent_when_enrolled_in_time():
    lines, _ = run(scenario())
    first = emails(lines, "REMINDER_UPCOMING")[0]
    assert first["month"] == 1 and first["at"] == "2026-01-02T14:00:00Z"
    assert first["to"] == "sarah@example.com" and first["client"] == "s"
    assert "Month 1" in first["subject"]


def test_late_enrollment_skips_reminders_never_sends_them_late():
    lines, _ = run(scenario(now="2026-01-04T00:00:00Z"))
    skipped = autos(lines, type="SEND_REMINDER", month=1, status="SKIPPED")
    assert skipped and "had passed" in skipped[0]["detail"]
    assert skipped[0]["at"] == "2026-01-04T00:00:00Z"
    assert not [e for e in emails(lines, "REMINDER_UPCOMING") if e["month"] == 1]


def test_no_reviewer_means_escalations_and_overdue_skips():
    data = scenario(until="2026-01-20T00:00:00Z")
    data["clients"][0]["approve_after_hours"] = None
    lines, _ = run(data)
    esc = emails(lines, "ADMIN_ESCALATION")
    assert [(e["to"], e["month"], e["client"]) for e in esc] == [("coach@example.com", 1, "s")]
    assert esc[0]["at"] == "2026-01-12T14:00:00Z"
    overdue = autos(lines, template="REMINDER_OVERDUE", month=1)
    assert overdue[0]["status"] == "SKIPPED"


def test_generation_failures_retry_then_fail_and_alert_admins():
    data = scenario(until="2026-01-06T00:00:00Z")
    data["events"] = [
        {
            "at": "2026-01-01T00:00:00Z",
            "client": "s",
            "do": "fail_generation",
            "month": 1,
            "times": 9,
        }
    ]
    lines, _ = run(data)
    gen = autos(lines, type="GENERATE_DELIVERABLE", month=1)
    assert [g["status"] for g in gen] == ["FAILED"]
    assert gen[0]["at"] == "2026-01-05T14:45:00Z"  # 3 retries, 15 minutes apart
    assert (
        "after 3 retries" in gen[0]["detail"] and "simulated generator failure" in gen[0]["detail"]
    )
    alert = emails(lines, "AUTOMATION_FAILURE")
    assert [a["to"] for a in alert] == ["coach@example.com"]


def test_two_failures_then_success():
    data = scenario(until="2026-01-06T00:00:00Z")
    data["events"] = [
        {
            "at": "2026-01-01T00:00:00Z",
            "client": "s",
            "do": "fail_generation",
            "month": 1,
            "times": 2,
        }
    ]
    lines, _ = run(data)
    gen = autos(lines, type="GENERATE_DELIVERABLE", month=1)
    assert [(g["status"], g["at"]) for g in gen] == [("COMPLETED", "2026-01-05T14:30:00Z")]
    assert "after 2 retries" in gen[0]["detail"]
    assert not emails(lines, "AUTOMATION_FAILURE")


def test_pause_with_end_date_shifts_the_journey():
    data = scenario(until="2026-04-01T00:00:00Z")
    data["events"] = [
        {
            "at": "2026-02-01T17:00:00Z",
            "client": "s",
            "do": "pause",
            "until": "2026-02-15",
            "reason": "Vacation",
        }
    ]
    lines, _ = run(data)
    hold = [
        e["template"]
        for e in emails(lines)
        if e["template"] in ("PAUSE_CONFIRMATION", "RESUME_REMINDER", "WELCOME_BACK")
    ]
    assert hold == ["PAUSE_CONFIRMATION", "RESUME_REMINDER", "WELCOME_BACK"]
    assert emails(lines, "RESUME_REMINDER")[0]["at"] == "2026-02-12T14:00:00Z"
    assert emails(lines, "WELCOME_BACK")[0]["at"] == "2026-02-15T14:00:00Z"
    gen2 = autos(lines, type="GENERATE_DELIVERABLE", month=2, status="COMPLETED")
    assert gen2[0]["at"] == "2026-02-18T14:00:00Z"  # Feb 4 + 14 days held
    status = autos(lines, type="UPDATE_STATUS")
    assert status[0]["status"] == "COMPLETED" and status[0]["at"] == "2026-02-15T14:00:00Z"


def test_events_that_conflict_are_reported_not_fatal():
    data = scenario(until="2026-01-10T00:00:00Z")
    data["events"] = [{"at": "2026-01-02T00:00:00Z", "client": "s", "do": "resume"}]
    lines, warnings = run(data)
    assert len(warnings) == 1 and "not on hold" in warnings[0]
    assert lines


def test_cancel_event_cancels_one_automation():
    data = scenario(until="2026-01-10T00:00:00Z")
    data["events"] = [
        {
            "at": "2026-01-01T00:00:00Z",
            "client": "s",
            "do": "cancel",
            "type": "GENERATE_DELIVERABLE",
            "month": 1,
        }
    ]
    lines, _ = run(data)
    cancelled = autos(lines, status="CANCELLED")
    assert [(c["type"], c["month"]) for c in cancelled] == [("GENERATE_DELIVERABLE", 1)]
    assert not autos(lines, type="GENERATE_DELIVERABLE", status="COMPLETED")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"now": "yesterday"}, "now: 'yesterday' is not an ISO-8601"),
        ({"until": "2025-01-01T00:00:00Z"}, "until: must be after now"),
        ({"send_hour": 25}, "send_hour"),
        (
            {
                "clients": [
                    {
                        "key": "a",
                        "name": "A",
                        "email": "a@x.io",
                        "timezone": "Nowhere/Land",
                        "start_date": "2026-01-01",
                    }
                ]
            },
            "clients[0].timezone",
        ),
        (
            {"clients": [{"key": "a", "name": "A", "email": "a@x.io", "start_date": "2026-13-01"}]},
            "clients[0].start_date",
        ),
        (
            {"events": [{"at": "2026-02-01T00:00:00Z", "client": "nobody", "do": "pause"}]},
            "events[0].client",
        ),
        (
            {"events": [{"at": "2026-02-01T00:00:00Z", "client": "s", "do": "dance"}]},
            "events[0].do",
        ),
        (
            {"events": [{"at": "2026-02-01T00:00:00Z", "client": "s", "do": "approve"}]},
            "events[0].month",
        ),
        (
            {"events": [{"at": "2030-02-01T00:00:00Z", "client": "s", "do": "resume"}]},
            "outside now..until",
        ),
        ({"surprise": 1}, "unknown field"),
    ],
)
def test_bad_scenarios_say_what_is_wrong(change, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario(json.dumps(scenario(**change)))
    assert message in str(info.value)


def journey_cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=EXAMPLES.parent,
        timeout=120,
    )


def test_cli_prints_json_lines_and_exits_2_on_bad_scenarios(tmp_path):
    out = journey_cli("simulate", str(EXAMPLES / "failures-and-reviews.json"))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert {x["kind"] for x in lines} == {"automation", "email"}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = journey_cli("simulate", str(bad))
    assert out.returncode == 2
    assert "not valid JSON" in out.stderr and "Traceback" not in out.stderr
    out = journey_cli("simulate", str(tmp_path / "missing.json"))
    assert out.returncode == 2 and "cannot read" in out.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_example_runs_cleanly(name):
    warnings: list[str] = []
    lines = list(simulate(load_scenario((EXAMPLES / name).read_text()), warnings.append))
    assert lines and not warnings


def test_the_readme_shows_what_the_simulator_prints():
    readme = (EXAMPLES.parent / "README.md").read_text()
    shown = readme.split("keeps failing):\n\n```\n", 1)[1].split("```", 1)[0]
    lines = [line for line in shown.splitlines() if line.startswith("{")]
    scenario = load_scenario((EXAMPLES / "failures-and-reviews.json").read_text())
    printed = {json.dumps(line, ensure_ascii=False) for line in simulate(scenario, print)}
    assert lines and [line for line in lines if line not in printed] == []
