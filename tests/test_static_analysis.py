"""Static analysis: bandit finds no issue of medium or high severity in the project's code, and
each finding silenced with `# nosec` names its test and says why (`# nosec B310 # reason`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from web.config import ConfigError, from_env

ROOT = Path(__file__).resolve().parent.parent
CODE = ("web", "scheduler", "tasks", "migrations")


def test_bandit_finds_no_medium_or_high_issue():
    scan = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", *CODE, "-ll", "-f", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(scan.stdout)
    found = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert found == [] and scan.returncode == 0, "\n".join(found)


def test_every_nosec_names_its_test_and_says_why():
    justified = re.compile(r"# nosec (B\d{3})(, B\d{3})* # \S.{9,}")
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "nosec" in line:
                    assert justified.search(line), f"{path.relative_to(ROOT)}:{number}: {line}"


@pytest.mark.parametrize("name", ["GENERATOR_BASE_URL", "ALERT_WEBHOOK_URL", "BASE_URL"])
def test_the_urls_the_engine_opens_are_http_only(monkeypatch, tmp_path, name):
    monkeypatch.setenv(name, "file:///etc/passwd")
    with pytest.raises(ConfigError, match=f"{name}=.*http:// or https://"):
        from_env(str(tmp_path))
