"""The sample outputs the README and the documentation show, and the real outputs they must match.

A sample is a ```text block. In an excerpt, a line `...` stands for lines left out: each run of
lines between them must appear, in that order and unbroken, in the real output, and an excerpt
that does not start (end) with `...` starts (ends) where the real output does.
"""

from __future__ import annotations

import re
import shlex
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GAP = "..."
DAY = datetime(2026, 11, 22, 10, tzinfo=UTC)
"""The day the samples were made: data ages are measured against it."""

_TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)


def text_blocks(markdown: str) -> list[list[str]]:
    """The lines of every ```text block of a Markdown page."""
    return [block.group(1).split("\n")[:-1] for block in _TEXT_BLOCK.finditer(markdown)]


def check_sample(markdown: str) -> tuple[list[str], list[str]]:
    """The page's sample `check`: the command's arguments (after `gdpr-auditor`) and its lines."""
    for lines in text_blocks(markdown):
        if lines and lines[0].startswith("$ .venv/bin/gdpr-auditor check "):
            args = shlex.split(lines[0].removeprefix("$ .venv/bin/gdpr-auditor "))
            return args, lines[1:]
    raise AssertionError("no sample `check` (a ```text block starting with the command)")


def scrape_sample(markdown: str) -> list[str]:
    """The page's sample scrape: the ```text block starting with a gdpr_auditor_ family."""
    for lines in text_blocks(markdown):
        if lines and lines[0].startswith("# TYPE gdpr_auditor_"):
            return lines
    raise AssertionError("no sample scrape (a ```text block starting with `# TYPE gdpr_auditor_`)")


def run_check(args: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines `gdpr-auditor check` prints for `args` (paths relative to the repository) on
    the samples' day, recording nothing: the example's state database is left alone."""
    monkeypatch.setattr("auditor.cli.audit.utcnow", lambda: DAY)
    args = list(args)
    config = ROOT / args[args.index("--config") + 1]
    with tempfile.TemporaryDirectory() as scratch:
        args[args.index("--config") + 1] = str(_example_config(Path(scratch), config))
        result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return result.stdout.split("\n")[:-1]


def assert_excerpt(sample: list[str], real: list[str]) -> None:
    """Every run of the sample's lines between `...` lines is in `real`, in order, unbroken."""
    runs: list[list[str]] = [[]]
    for line in sample:
        if line == GAP:
            runs.append([])
        else:
            runs[-1].append(line)
    position = 0
    for index, run in enumerate(runs):
        if not run:
            continue
        found = _find(run, real, position)
        assert found is not None, "not in the real output, in this order:\n" + "\n".join(run)
        if index == 0:
            assert found == 0, "the sample starts where the real output does not (add `...`?)"
        if index == len(runs) - 1:
            assert found + len(run) == len(real), "the real output goes on (end with `...`?)"
        position = found + len(run)


def _find(run: list[str], lines: list[str], start: int) -> int | None:
    for at in range(start, len(lines) - len(run) + 1):
        if lines[at : at + len(run)] == run:
            return at
    return None


# -- the daemon's scrape -------------------------------------------------------------------------

VOLATILE = re.compile(
    r"^(gdpr_auditor_(?:last_audit|job_last_success|job_last_run|config_last_reload_success)"
    r"_timestamp_seconds|gdpr_auditor_job_last_duration_seconds)(\{[^}]*\})? \S+$"
)
"""Samples whose values are clock readings of the run that made them."""


def masked(lines: list[str]) -> list[str]:
    """The lines with clock readings and the version replaced by placeholders."""
    out = []
    for line in lines:
        line = re.sub(r'version="[^"]*"', 'version="<version>"', line)
        match = VOLATILE.match(line)
        out.append(f"{match.group(1)}{match.group(2) or ''} <value>" if match else line)
    return out


def shown(scrape: str) -> list[str]:
    """A scrape as the samples show it: without `# HELP` lines and the process collector's
    metrics."""
    return [
        line
        for line in scrape.split("\n")
        if line
        and not line.startswith("# HELP ")
        and not re.match(r"^(# TYPE )?(process|python)_", line)
    ]


@cache
def example_scrape() -> str:
    """/metrics of `gdpr-auditor run` on the offline example, once its first audit is in.

    The daemon runs as a process, with the example's configuration but its state database and
    metrics address in a temporary directory.
    """
    from tests.helpers import free_port
    from tests.service.test_daemon import DaemonProcess

    with tempfile.TemporaryDirectory() as scratch:
        config = _example_config(Path(scratch), EXAMPLES / "auditor.yaml", port=free_port())
        daemon = DaemonProcess(config)
        try:
            url = f"http://127.0.0.1:{daemon.port}/metrics"
            deadline = time.monotonic() + 30
            while True:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text: str = response.read().decode()
                if 'gdpr_auditor_job_runs_total{job_id="audit"} 1.0' in text:
                    return text
                assert time.monotonic() < deadline, "no audit within 30 s\n" + daemon.log_text()
                assert daemon.process.poll() is None, "the daemon exited\n" + daemon.log_text()
                time.sleep(0.2)
        finally:
            daemon.kill()


def _example_config(directory: Path, config: Path, port: int | None = None) -> Path:
    """A copy of an example configuration in `directory`, its paths made absolute, its state
    database in `directory` (and with `port`, its metrics served there)."""
    doc = yaml.safe_load(config.read_text())
    base = config.parent

    def absolute(value: str) -> str:
        return str((base / value).resolve())

    doc["inventory"] = [absolute(item) for item in doc["inventory"]]
    doc["dns"]["zone_files"] = [absolute(item) for item in doc["dns"].get("zone_files", [])]
    for key in ("country_db", "asn_db"):
        if doc["geoip"].get(key):
            doc["geoip"][key] = absolute(doc["geoip"][key])
    if doc.get("ip_ranges"):
        doc["ip_ranges"] = absolute(doc["ip_ranges"])
    doc["database"] = {"url": f"sqlite:///{directory / 'state.db'}"}
    if port is not None:
        doc["metrics"] = {"listen": f"127.0.0.1:{port}"}
    path = directory / "auditor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
