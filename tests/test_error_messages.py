"""Golden error messages: the mistakes a DPO makes in the configuration and the inventory, and
exactly what `validate` says about each — file, line, entry, key, what was expected (with an
example) and, for a mistyped name, the known one it is most like.

Each case is a directory under tests/golden/errors/ holding an `auditor.yaml` (and the files it
names) and `expected.txt`, validate's standard error with the case's directory written `<dir>`
and the policy data's `<policies>`. UPDATE_GOLDEN=1 renews them; read the diff before keeping it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.core.policies import shipped_policies

CASES = Path(__file__).resolve().parent / "golden" / "errors"


def _validate(case: Path, tmp_path: Path) -> str:
    """`validate` run in a copy of the case (never in the checkout), its stderr normalised."""
    work = tmp_path / case.name
    shutil.copytree(case, work, ignore=shutil.ignore_patterns("expected.txt"))
    cwd = Path.cwd()
    os.chdir(work)  # the file names in the messages are the ones given, relative to here
    try:
        result = CliRunner().invoke(cli, ["validate", "--config", "auditor.yaml"])
    finally:
        os.chdir(cwd)
    assert 2 == result.exit_code, result.output
    text = result.stderr.replace(str(work.resolve()), "<dir>")
    return text.replace(str(shipped_policies()), "<policies>")


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_validate_says_exactly_this(case: str, tmp_path: Path) -> None:
    """validate's messages for the case are the recorded ones."""
    expected = CASES / case / "expected.txt"
    actual = _validate(CASES / case, tmp_path)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(actual)
    assert expected.read_text() == actual


def _messages() -> list[str]:
    return [
        line
        for case in sorted(CASES.iterdir())
        if (case / "expected.txt").exists()
        for line in (case / "expected.txt").read_text().splitlines()[1:]
    ]


def test_every_message_names_its_line() -> None:
    """Every problem in every case is `file:line: ...`: none is left without its line."""
    messages = _messages()
    assert len(messages) > 30
    assert [] == [m for m in messages if not re.match(r"^  \S+:\d+: ", m)]


def test_no_message_speaks_pydantic() -> None:
    """None says "Input should be" or another phrase of the validation library's."""
    library = ("Input should", "input is too short", "invalid character", "Value error")
    assert [] == [m for m in _messages() if any(phrase in m for phrase in library)]
