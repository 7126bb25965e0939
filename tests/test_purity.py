"""The domain rules import neither Flask, nor Dramatiq, nor the database layer."""

import subprocess
import sys


def test_rules_modules_stand_alone():
    code = (
        "import sys\n"
        "import scheduler.clock, scheduler.vocab, scheduler.program\n"
        "import scheduler.plan, scheduler.rules, scheduler.links\n"
        "heavy = ('flask', 'dramatiq', 'sqlalchemy', 'web', 'tasks')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
