"""The README stays true: its set-up commands, and its samples are excerpts of what the commands
print today (the whole samples are checked in tests/docs/test_samples.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
