"""`--help` lists every command with its first sentence whole: never cut mid-sentence."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from auditor.cli import cli, first_sentence


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(cli))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_short_help_is_a_whole_sentence(path: tuple[str, ...], command: click.Command) -> None:
    """Each command's listed help is its help's first sentence, ending with a full stop, not
    cut at an abbreviation ("(Art.") or the terminal's width ("and...")."""
    short = command.get_short_help_str(limit=20)

    assert short == (command.short_help or first_sentence(command.help or ""))
    assert short.endswith("."), short
    assert not short.endswith("..."), short
    assert short.count("(") == short.count(")"), short


@pytest.mark.parametrize("path", [(), *sorted({p[:-1] for p, _ in COMMANDS if len(p) > 1})])
def test_help_listings_at_80_columns_cut_nothing(path: tuple[str, ...]) -> None:
    """`gdpr-auditor --help` (and each group's) on an 80-column terminal wraps long lines
    instead of cutting them: no line ends in "..." and every listed sentence is whole."""
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)

    assert 0 == result.exit_code, result.output
    listing = result.output.split("Commands:\n", 1)[1]
    assert "..." not in listing
    group = cli
    for name in path:
        group = group.commands[name]  # type: ignore[assignment]
    flattened = " ".join(listing.split())
    for command in group.commands.values():  # type: ignore[attr-defined]
        assert command.get_short_help_str() in flattened


def test_first_sentence_keeps_abbreviations() -> None:
    """A full stop inside "(Art. 49(1)(a))" or "e.g. x" does not end the sentence."""
    text = """Consent coverage (Art. 49(1)(a)), e.g. `consent check`. More here.

    Details."""
    assert "Consent coverage (Art. 49(1)(a)), e.g. `consent check`." == first_sentence(text)
