"""`discover` (SaaS vendors in use per DNS and web pages, declared or not) and `import`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from auditor.cli import (
    EXIT_FINDINGS,
    EXIT_UNAVAILABLE,
    cli,
    config_option,
    handles_errors,
    load_all,
    output_format_option,
    say,
)
from auditor.config import load_config
from auditor.core.errors import InvalidInputError, InvalidRequestError, Issue
from auditor.core.yamlsource import load_yaml
from auditor.discovery.catalogue import load_catalogue
from auditor.discovery.config import with_targets
from auditor.discovery.dns_signals import dnspython_lookup
from auditor.discovery.fides import import_fides
from auditor.discovery.imports import ImportResult, import_csv
from auditor.discovery.results import (
    discover,
    discovery_json,
    inventory_stubs,
    render_table,
)


@cli.command("discover")
@config_option
@click.option("--domain", "domains", multiple=True, help="A domain to look at (repeatable).")
@click.option("--page", "pages", multiple=True, help="A web page to look at (repeatable).")
@output_format_option(
    ["table", "json", "yaml"],
    "For people (table), tools (json), or inventory stubs to complete (yaml).",
)
@handles_errors
def discover_command(
    config_path: Path, domains: tuple[str, ...], pages: tuple[str, ...], output_format: str
) -> None:
    """List the SaaS vendors the organisation's DNS records and web pages show in use, with the
    evidence for each and whether the inventory declares them.

    Domains and pages add to those under `discovery:` in the configuration. Exit 1 when some
    vendor in use is not in the inventory; exit 3 when no domain or page could be checked at all.
    The coverage is unknown (null in JSON) when some domain or page could not be checked.
    """
    config = load_config(config_path)
    _, integrations = load_all(config)  # the policy data validates the inventory's places
    try:
        settings = with_targets(config.discovery, domains, pages)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--domain") from None
    if not settings.domains and not settings.pages:
        raise InvalidRequestError("nothing to look at: give --domain or --page, or `discovery:`")
    catalogue = load_catalogue(settings.vendors)
    lookup = dnspython_lookup(config.dns.nameservers, config.dns.timeout)
    result = discover(settings, catalogue, integrations, lookup)
    if output_format == "json":
        click.echo(json.dumps(discovery_json(result), indent=2))
    elif output_format == "yaml":
        click.echo(inventory_stubs(result), nl=False)
    else:
        say(render_table(result), nl=False)
    if result.nothing_checked:
        say(
            "gdpr-auditor: nothing could be checked: every domain and page failed "
            f"({'; '.join(result.problems[:3])})",
            err=True,
        )
        sys.exit(EXIT_UNAVAILABLE)
    if result.undeclared:
        sys.exit(EXIT_FINDINGS)


@cli.group("import")
def import_group() -> None:
    """Turn another register into inventory YAML to complete (written to stdout; what could
    not be mapped is listed on stderr and as TODO comments)."""


_file_argument = click.argument(
    "path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


@import_group.command("fides")
@_file_argument
@handles_errors
def import_fides_command(path: Path) -> None:
    """Import a Fides export, YAML or JSON: a fideslang manifest (`system:` list), the API's list
    of systems, or the data map report (its `items` list, or its rows alone).

    Fides records no hosting places since fideslang 3, so the entries have none until you add
    them; personal data of a kind the inventory cannot name becomes `unclassified`, never none.
    See docs/guides/imports.md for the field mapping."""
    _print_import(import_fides(load_yaml(path)), path)


@import_group.command("csv")
@_file_argument
@handles_errors
def import_csv_command(path: Path) -> None:
    """Import a CSV register: a header row of inventory fields (id, name, vendor, vendor_country,
    category, role, data_categories, endpoints, hosting, support, dpf_certified, dpa_signed);
    list cells are separated by `;`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise InvalidInputError([Issue(str(path), f"cannot read: {reason}")]) from None
    _print_import(import_csv(text, str(path)), path)


def _print_import(result: ImportResult, path: Path) -> None:
    click.echo(result.to_yaml(path.name), nl=False)
    for problem in result.unmapped:
        say(f"TODO: {problem}", err=True)
    for note in result.notes:
        say(f"note: {note}", err=True)
