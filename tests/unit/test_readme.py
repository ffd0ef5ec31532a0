"""The README renders cleanly, and CI runs exactly the test command it gives."""

from __future__ import annotations

import io
import re
from pathlib import Path

import docutils.core

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.rst").read_text()


def test_readme_renders_without_warnings() -> None:
    warnings = io.StringIO()
    docutils.core.publish_string(
        README,
        writer="null",
        settings_overrides={"warning_stream": warnings, "report_level": 2, "halt_level": 5},
    )
    assert warnings.getvalue() == ""


def test_ci_runs_the_readme_test_command() -> None:
    match = re.search(r"Run the tests .*?::\n\n    (\S[^\n]*)\n", README, re.DOTALL)
    assert match, "README has no test command block"
    command = match.group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"exec {command}" in ci.splitlines()
