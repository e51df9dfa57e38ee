"""The README stays true: its set-up commands, and its samples are excerpts of what the commands
print today (the whole samples are checked in tests/docs/test_samples.py)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_state
from tests.docs.samples import (
    assert_excerpt,
    check_sample,
    example_scrape,
    masked,
    run_check,
    scrape_sample,
    shown,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_sample_check_output_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample `check` in the README is an excerpt of the command's output on the day it names."""
    args, sample = check_sample(README.read_text())

    assert_excerpt(sample, run_check(args, monkeypatch))


def test_sample_check_is_short() -> None:
    """The README shows a short excerpt; the whole output lives in the documentation."""
    _, sample = check_sample(README.read_text())

    assert len(sample) <= 30


@pytest.mark.slow
def test_sample_scrape_is_real() -> None:
    """The sample scrape in the README is an excerpt of the daemon's /metrics on the example."""
    sample = scrape_sample(README.read_text())

    assert len(sample) <= 25
    assert_excerpt(masked(sample), masked(shown(example_scrape())))


def test_readme_names_the_two_setup_commands() -> None:
    """The set-up section has the install-and-check command and the test command."""
    readme = README.read_text()

    assert (
        "pip install -q . && .venv/bin/gdpr-auditor check --config examples/auditor.yaml" in readme
    )
    assert ".venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q" in readme
    assert (
        ".venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q"
        in (ROOT / ".ci" / "run").read_text()
    )


def test_readme_stays_short_and_links_into_the_documentation() -> None:
    """About 150 to 200 lines, and every relative link names a file that exists."""
    readme = README.read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)

    assert len(readme.splitlines()) <= 200
    assert "docs/index.md" in links
    missing = [link for link in links if "://" not in link and not (ROOT / link).is_file()]
    assert [] == missing


def _readme_setup_commands(readme: str) -> list[list[str]]:
    """The gdpr-auditor commands a newcomer types from the set-up section: the `check` of the
    first block, then the ones the paragraph after it names (`finding list`)."""
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"\.venv/bin/gdpr-auditor ([^`\n&]+)", setup)
    return [shlex.split(command) for command in commands]


@pytest.mark.slow
def test_readme_first_commands_in_a_copy_leave_the_checkout_untouched(tmp_path: Path) -> None:
    """The README's first commands, typed in a copy of the repository, record one real run:
    `finding list` shows exactly that run's open findings and nothing resolved; a what-if
    `--as-of` afterwards records nothing; and the checkout itself is not written."""
    before = checkout_state()
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*", "state.db*")
    )
    script = Path(sys.executable).parent / "gdpr-auditor"
    # The console script as a newcomer types it; the module where it is not installed beside.
    program = [str(script)] if script.exists() else [sys.executable, "-m", "auditor"]
    commands = _readme_setup_commands(README.read_text())
    assert ["check", "--config", "examples/auditor.yaml"] == commands[0]
    assert any(command[:2] == ["finding", "list"] for command in commands)

    def gdpr_auditor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*program, *args], cwd=copy, capture_output=True, text=True, timeout=120, check=False
        )

    outputs = [gdpr_auditor(*command) for command in commands]
    assert 1 == outputs[0].returncode, outputs[0].stderr  # the example's critical findings
    config = ["--config", "examples/auditor.yaml"]
    total = re.search(r"^(\d+) findings: ", outputs[0].stdout, re.MULTILINE)
    assert total is not None, outputs[0].stdout
    listed = json.loads(gdpr_auditor("finding", "list", *config, "--format", "json").stdout)
    listed = listed["findings"]
    resolved = gdpr_auditor("finding", "list", *config, "--status", "resolved", "--format", "json")
    gdpr_auditor("check", *config, "--as-of", "2022-06-01")
    gdpr_auditor("check", *config, "--as-of", "2031-12-28")
    status = json.loads(gdpr_auditor("db", "status", *config, "--format", "json").stdout)

    assert (copy / "examples" / "state.db").exists()
    assert int(total.group(1)) == len(listed)
    assert {"open"} == {finding["status"] for finding in listed}
    assert [] == json.loads(resolved.stdout)["findings"]
    assert 1 == status["runs"]["success"]  # the README's check; neither what-if
    assert before == checkout_state()
