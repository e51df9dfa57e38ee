"""The command line: `gdpr-auditor VERB`; exit 0 ok, 1 findings, 2 invalid, 3 could not run.

Each verb lives in a module of this package and registers itself on `cli` when imported, which
`cli` does when the verb is named (`VERBS`).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click

from auditor import __version__
from auditor.cli.output import terminal_safe
from auditor.config import Config, load_config
from auditor.core.errors import (
    AuditUnavailableError,
    InvalidInputError,
    InvalidRequestError,
    MissingDriverError,
    SchemaVersionError,
    StoreError,
)
from auditor.core.model import Finding, Integration, Severity
from auditor.core.policies import PolicyData, load_policies
from auditor.service.wiring import load_integrations

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID, EXIT_UNAVAILABLE = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


def utcnow() -> datetime:
    return datetime.now(UTC)


def say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Print text for people with every control character escaped, line by line.

    Names, reasons and messages come from files and the database: an ANSI escape or a line
    break in them must not recolour the terminal or forge output lines. Machine formats (JSON,
    YAML, CSV, HTML) go through `click.echo` unchanged; their own encoders escape what they must.
    """
    click.echo("\n".join(terminal_safe(line) for line in text.split("\n")), err=err, nl=nl)


def _fail(code: int, message: str) -> None:
    say(f"gdpr-auditor: {message}", err=True)
    sys.exit(code)


_UNAVAILABLE = {"check": "the audit could not run: ", "run": "cannot start: "}
"""What a verb says before an error that stopped it (exit 3); other verbs' errors name their
subject themselves ("data source 'crm': ...")."""


def handles_errors(function: F) -> F:
    """Turn the project's errors into messages on stderr and the documented exit statuses."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (InvalidInputError, InvalidRequestError, SchemaVersionError) as exc:
            _fail(EXIT_INVALID, str(exc))
        except StoreError as exc:
            _fail(EXIT_UNAVAILABLE, str(exc))
        except MissingDriverError as exc:
            _fail(EXIT_UNAVAILABLE, str(exc))  # one line: the driver, and how to install it
        except AuditUnavailableError as exc:
            context = click.get_current_context(silent=True)
            verb = context.command.name if context is not None else None
            _fail(EXIT_UNAVAILABLE, f"{_UNAVAILABLE.get(verb or '', '')}{exc}")
        return None

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The configuration file (YAML).",
)


def output_format_option(choices: Sequence[str], help_text: str) -> Callable[[F], F]:
    """A `--format` option (the parameter `output_format`) offering `choices`, the first by
    default."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help_text,
    )


format_option = output_format_option(
    ["table", "json"], "Output for people (table) or tools (json)."
)


EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
"""The dates a command accepts: far enough either way for any audit or period, and far enough
from the calendar's end (9999-12-31) that date arithmetic on them (a day later, a retention
period before) cannot overflow."""


def parse_day(value: str, option: str) -> date:
    """A YYYY-MM-DD option value as a date.

    Raises:
        click.BadParameter: not a date, or outside EARLIEST_DAY..LATEST_DAY (exit 2, naming
            the option).
    """
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=option) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise click.BadParameter(
            f"{day.isoformat()} is out of range: dates run from {EARLIEST_DAY.isoformat()} "
            f"to {LATEST_DAY.isoformat()}",
            param_hint=option,
        )
    return day


def day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A click callback turning YYYY-MM-DD into a date (None stays None), as `parse_day`."""
    if value is None:
        return None
    option = param.opts[0] if param.opts else (param.name or "date")
    return parse_day(value, option)


def parse_as_of(value: str | None) -> date:
    """The `--as-of` date, today (UTC) when not given; as `parse_day`."""
    if value is None:
        return utcnow().date()
    return parse_day(value, "--as-of")


def as_of_option(help_text: str, *, parsed: bool = False) -> Callable[[F], F]:
    """An `--as-of YYYY-MM-DD` option (the parameter `as_of`): the raw text for `parse_as_of`,
    or with `parsed` a date (None when not given) as `day_option` makes it."""
    return click.option(
        "--as-of",
        "as_of",
        metavar="YYYY-MM-DD",
        callback=day_option if parsed else None,
        help=help_text,
    )


fail_on_option = click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default="critical",
    show_default=True,
    help="Exit 1 when a finding at or above this severity exists.",
)


def findings_options(as_of_help: str) -> Callable[[F], F]:
    """The options of a verb that judges as of a day and prints findings, in this order:
    `--config`, `--as-of` (with this help), `--format` and `--fail-on`."""

    def decorate(function: F) -> F:
        return config_option(as_of_option(as_of_help)(format_option(fail_on_option(function))))

    return decorate


def exit_on_findings(found: Iterable[Finding], fail_on: str) -> None:
    """Exit 1 (EXIT_FINDINGS) when a finding is at or above the `--fail-on` severity."""
    threshold = Severity(fail_on).rank
    if any(finding.severity.rank >= threshold for finding in found):
        sys.exit(EXIT_FINDINGS)


def load_all(config: Config) -> tuple[PolicyData, list[Integration]]:
    """Load the policy data and the inventory a configuration names (a large inventory by
    several processes, see `auditor.cli.loading`; vendor countries it does not declare filled
    in from the vendor catalogue)."""
    from auditor.cli.loading import load_inventory_parallel

    policies = load_policies(config.policies)
    try:
        return policies, load_integrations(config, policies, load_inventory_parallel)
    except InvalidInputError as exc:
        raise config.located(exc) from None


class RunInputs(NamedTuple):
    """What a verb judging as of a day reads: the day, the configuration, the policy data and
    the inventory."""

    day: date
    config: Config
    policies: PolicyData
    integrations: list[Integration]


def load_run(config_path: Path, as_of: str | None) -> RunInputs:
    """Parse `--as-of` (first, so a bad date is reported before any file is read), then load the
    configuration and what it names, as `load_all`."""
    day = parse_as_of(as_of)
    config = load_config(config_path)
    return RunInputs(day, config, *load_all(config))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
"""Where a sentence ends: a full stop followed by a capital (so "Art. 49(1)(a)" and "e.g. x"
do not end one)."""


def first_sentence(help_text: str) -> str:
    """The first sentence of a command's help, whole: what `--help` lists for the command."""
    paragraph = " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())
    return _SENTENCE_END.split(paragraph, maxsplit=1)[0]


class Command(click.Command):
    """A command whose short help in its group's listing is its help's first sentence, whole.

    click would cut it at its first full stop ("Records past their retention period (Art.")
    or at the terminal's width ("upgrading it, and..."); a wrapped line reads better.
    """

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help:
            return inspect.cleandoc(self.short_help)
        return first_sentence(self.help or "")


class Group(click.Group, Command):
    """A group of commands whose commands and sub-groups list their short help whole too."""

    command_class = Command
    group_class: type[click.Group | type] = type  # sub-groups are of this class too


VERBS = {
    "check": "audit",
    "consent": "consent",
    "db": "db",
    "discover": "discover",
    "evidence": "evidence",
    "finding": "findings",
    "geodb": "geodb",
    "import": "discover",
    "register": "report",
    "report": "report",
    "retention": "retention_template",  # the group's `template`, which imports the group
    "run": "run",
    "schema": "schema",
    "validate": "validate",
    "web": "web",
}
"""Each verb -> the module of this package that registers it on `cli` when imported."""


class Verbs(Group):
    """The top-level group, which imports a verb's module when the verb is named (or listed by
    `--help`): a command imports what it needs only, `check` neither SQLAlchemy nor requests."""

    group_class = Group  # the verbs' sub-groups: not of this class, which imports verbs

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in VERBS:
            importlib.import_module(f"{__name__}.{VERBS[cmd_name]}")
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=Verbs,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="gdpr-auditor")
def cli() -> None:
    """Audit where an organisation's SaaS integrations keep personal data, against the GDPR.

    Not legal advice: it checks what you declare and what it observes against the rules and
    policy data it ships; a DPO decides what the findings mean.
    """


def main() -> None:
    """Console entry point."""
    cli(prog_name="gdpr-auditor")
