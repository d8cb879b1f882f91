"""The README's two opening commands stay true, and CI runs the test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _commands()
    assert demo.endswith("veob demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    assert _commands()[1] in (ROOT / ".ci" / "run").read_text().splitlines()
