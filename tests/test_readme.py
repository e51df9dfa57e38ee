"""The README stays true: its sample output is what the command prints today."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_sample_check_output_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample `check` in the README is exactly the command's output on the day it names."""
    # Data ages are measured against today: pinned to the README's day, so the sample stays true.
    monkeypatch.setattr("auditor.cli.audit.utcnow", lambda: datetime(2026, 11, 22, 10, tzinfo=UTC))
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        r"```text\n\$ \.venv/bin/gdpr-auditor (check [^\n]*)\n(.*?)```", readme, re.DOTALL
    )
    assert match is not None, "README has no sample check"
    args = shlex.split(match.group(1))
    args[args.index("--config") + 1] = str(ROOT / args[args.index("--config") + 1])

    result = CliRunner().invoke(cli, args)

    assert match.group(2) == result.stdout


def test_readme_names_the_two_setup_commands() -> None:
    """The set-up section has the install-and-check command and the test command."""
    readme = (ROOT / "README.md").read_text()

    assert (
        "pip install -q . && .venv/bin/gdpr-auditor check --config examples/auditor.yaml" in readme
    )
    assert ".venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q" in readme
    assert (
        ".venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q"
        in (ROOT / ".ci" / "run").read_text()
    )
