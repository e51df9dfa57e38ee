"""The documentation's whole samples are what the commands print today.

After a change of output, `UPDATE_SAMPLES=1 .venv/bin/pytest tests/docs/test_samples.py` rewrites
the samples in the pages (clock readings as the run made them); check the diff, and that the
README's excerpts (tests/test_readme.py) still hold.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.docs.samples import (
    ROOT,
    check_sample,
    example_scrape,
    masked,
    run_check,
    scrape_sample,
    shown,
)

FINDINGS = ROOT / "docs" / "guides" / "dpo" / "findings-and-waivers.md"
METRICS = ROOT / "docs" / "guides" / "ops" / "metrics.md"
UPDATE = os.environ.get("UPDATE_SAMPLES") == "1"


def replace_sample(page: Path, old: list[str], new: list[str]) -> None:
    """Write `new` in place of the sample block `old` of `page` (UPDATE_SAMPLES=1 only)."""
    text = page.read_text()
    block = "\n".join(old) + "\n```"
    assert text.count(block) == 1, f"{page.name}: the sample is not one block"
    page.write_text(text.replace(block, "\n".join(new) + "\n```"))


def test_the_whole_sample_check_is_the_commands_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The findings guide shows `check` on the offline example exactly as it prints, every line."""
    args, sample = check_sample(FINDINGS.read_text())
    real = run_check(args, monkeypatch)

    if UPDATE and real != sample:
        replace_sample(FINDINGS, sample, real)
        sample = check_sample(FINDINGS.read_text())[1]
    assert "\n".join(real) == "\n".join(sample)


@pytest.mark.slow
def test_the_whole_sample_scrape_is_the_daemons_metrics() -> None:
    """The metrics guide shows a scrape of the daemon on the offline example, every family and
    sample; only clock readings and the version may differ."""
    sample = scrape_sample(METRICS.read_text())
    real = shown(example_scrape())

    if UPDATE and masked(real) != masked(sample):
        replace_sample(METRICS, sample, real)
        sample = scrape_sample(METRICS.read_text())
    assert "\n".join(masked(real)) == "\n".join(masked(sample))
