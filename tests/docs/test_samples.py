"""The documentation's whole samples are what the commands print today."""

from __future__ import annotations

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


def test_the_whole_sample_check_is_the_commands_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The findings guide shows `check` on the offline example exactly as it prints, every line."""
    args, sample = check_sample(FINDINGS.read_text())

    assert "\n".join(run_check(args, monkeypatch)) == "\n".join(sample)


@pytest.mark.slow
def test_the_whole_sample_scrape_is_the_daemons_metrics() -> None:
    """The metrics guide shows a scrape of the daemon on the offline example, every family and
    sample; only clock readings and the version may differ."""
    sample = scrape_sample(METRICS.read_text())

    assert "\n".join(masked(shown(example_scrape()))) == "\n".join(masked(sample))
