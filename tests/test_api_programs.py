"""The program's versions over the API: the same operations as the CLI and the panel."""

from __future__ import annotations

from tests.test_api import SARAH, api, code, sarah  # noqa: F401  (fixtures)


def test_draft_preview_publish_rollback_export_and_diff(api, sarah, harness):  # noqa: F811
    versions = api.get("/api/program/versions").get_json()
    assert versions["current"] == 1 and versions["draft"] is None
    assert versions["data"][0]["clients_in_flight"] == 1
    program = versions["data"][0]["program"]
    program["schedule"]["escalation_days_after"] = 9
    answer = api.post("/api/program/draft", {"program": program, "note": "later escalations"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "DRAFT"
    program["schedule"]["max_retries"] = -1
    refused = api.post("/api/program/draft", {"program": program})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "schedule.max_retries"
    refused = api.post("/api/program/draft", {"templates": {"HALFWAY.txt": "{{ broken"}})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "HALFWAY.txt"
    refused = api.post("/api/program/draft", {"toml": "name = "})
    assert refused.status_code == 422 and "not valid TOML" in refused.get_json()["error"]["message"]

    seen = api.get("/api/program/preview?applies_to=all").get_json()
    assert seen["summary"] == "8 automations move for 1 client"
    change = seen["clients"][0]["changes"][0]
    assert change["name"] == "Escalation to admins (M1)"
    assert (change["old_at"], change["new_at"]) == (
        "2026-01-17T09:00:00-05:00",
        "2026-01-19T09:00:00-05:00",
    )
    assert api.get("/api/program/preview?applies_to=new").get_json()["clients"] == []
    diff = api.get("/api/program/diff?old=1").get_json()
    assert diff["program"] == [{"field": "schedule.escalation_days_after", "old": "7", "new": "9"}]

    published = api.post("/api/program/publish", {"applies_to": "all"})
    assert published.status_code == 201, published.get_json()
    record = published.get_json()
    assert (record["version"], record["actor"], record["automations_moved"]) == (
        2,
        "coach@example.com",
        8,
    )
    assert api.get(f"/api/clients/{sarah['id']}").get_json()["program_version"] == 2
    again = api.post("/api/program/publish", {"applies_to": "all"})
    assert again.status_code == 404 and code(again) == "not_found"
    back = api.get("/api/program/preview?applies_to=all&rollback_to=1").get_json()
    assert back["moves"] == 8
    rolled = api.post("/api/program/rollback", {"version": 1, "applies_to": "all"})
    assert rolled.status_code == 201 and rolled.get_json()["rollback_of"] == 1
    exported = api.get("/api/program/versions/3/toml").get_json()
    assert "escalation_days_after = 7" in exported["toml"]
    assert api.get("/api/program/versions/9/toml").status_code == 404
    assert api.delete("/api/program/draft").status_code == 404
