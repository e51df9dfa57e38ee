"""`retention template [NAME]`: the shipped retention policy templates for self-hosted CRMs."""

from __future__ import annotations

import json

import click

from auditor.cli import format_option, say
from auditor.cli.retention import retention
from auditor.retention.templates import (
    DESCRIPTIONS,
    UnknownTemplateError,
    template,
    template_names,
)


@retention.command("template")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the templates (the default).")
@format_option
def retention_template(name: str | None, list_only: bool, output_format: str) -> None:
    """Print the retention policy template NAME to adapt (its data source and periods), or list
    the templates: tables, keys, timestamps, the personal columns to anonymise and the rows to
    delete with each record, taken from the CRM's own schema definitions.

    Check the adapted file against the CRM's database with `validate --config FILE --connect`.

    Exit status: 0, 2 no template has that name.
    """
    if name is not None and list_only:
        raise click.UsageError("give a template NAME or --list, not both")
    if name is None:
        _list(output_format)
        return
    try:
        shipped = template(name)
    except UnknownTemplateError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    if output_format == "json":
        doc = {"name": shipped.name, "description": shipped.description, "text": shipped.text}
        click.echo(json.dumps(doc, indent=2))
    else:
        text = shipped.text  # YAML: the file itself, to redirect into one
        click.echo(text, nl=False)


def _list(output_format: str) -> None:
    names = template_names()
    if output_format == "json":
        doc = {"templates": [{"name": n, "description": DESCRIPTIONS[n]} for n in names]}
        click.echo(json.dumps(doc, indent=2))
        return
    width = max(len(n) for n in names)
    lines = [f"{'NAME'.ljust(width)}  DESCRIPTION"]
    lines += [f"{n.ljust(width)}  {DESCRIPTIONS[n]}" for n in names]
    say("\n".join(lines))
