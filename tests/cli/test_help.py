"""`--help` lists every command with its first sentence whole: never cut mid-sentence."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from auditor.cli import VERBS, cli, first_sentence


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):  # the verbs' modules imported as they are named
        command = group.get_command(context, name)
        assert command is not None, name
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
    flattened = " ".join(listing.split())
    for command_path, command in COMMANDS:
        if command_path[:-1] == path:
            assert command.get_short_help_str() in flattened


def test_first_sentence_keeps_abbreviations() -> None:
    """A full stop inside "(Art. 49(1)(a))" or "e.g. x" does not end the sentence."""
    text = """Consent coverage (Art. 49(1)(a)), e.g. `consent check`. More here.

    Details."""
    assert "Consent coverage (Art. 49(1)(a)), e.g. `consent check`." == first_sentence(text)


def test_each_verb_is_registered_by_the_module_named_for_it() -> None:
    """`VERBS` names every verb's module: the group imports it when the verb is named, and no
    module registers a verb the table does not name (it could never be run)."""
    context = click.Context(cli)
    for name, module in VERBS.items():
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
        if name != "retention":  # the group is in `retention`, its `template` in the module named
            assert command.callback is not None
            assert command.callback.__module__ == f"auditor.cli.{module}", name
    for module in set(VERBS.values()):
        importlib.import_module(f"auditor.cli.{module}")
    assert sorted(cli.commands) == sorted(VERBS)


def test_check_imports_neither_the_state_store_nor_the_http_client() -> None:
    """`check` without a database imports what it needs only: not SQLAlchemy (the state store,
    the data sources), requests (downloads), structlog (the daemon's logs) or jinja2 (reports);
    they cost it half a second and 30 MB."""
    script = (
        "import sys, click\n"
        "from auditor.cli import cli\n"
        "cli.get_command(click.Context(cli), 'check')\n"
        "heavy = ('sqlalchemy', 'requests', 'structlog', 'jinja2', 'apscheduler', "
        "'prometheus_client')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"
