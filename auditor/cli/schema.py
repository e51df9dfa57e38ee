"""`schema`: the JSON Schemas of the files users write, generated from the models that read them.

Editors with a YAML language server validate and complete a file that names its schema on its
first line (`# yaml-language-server: $schema=...`). The schemas are published in `docs/schemas/`;
a test keeps them equal to what this command writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from auditor.cli import cli, handles_errors, say
from auditor.config import config_json_schema
from auditor.core.inventory import inventory_json_schema
from auditor.retention.policy import retention_json_schema

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "config": config_json_schema,
    "inventory": inventory_json_schema,
    "retention-policy": retention_json_schema,
}
"""Each kind of file, and what builds its schema. A kind's file is `<kind>.schema.json`."""


def schema_text(kind: str) -> str:
    """The schema of `kind` as written to its file: indented JSON ending in a newline."""
    return json.dumps(SCHEMAS[kind](), indent=2, ensure_ascii=False) + "\n"


@cli.command("schema")
@click.argument("kind", type=click.Choice(sorted(SCHEMAS)), required=False)
@click.option(
    "--write",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every schema into this directory as KIND.schema.json, instead of printing one.",
)
@handles_errors
def schema_command(kind: str | None, directory: Path | None) -> None:
    """Print the JSON Schema (2020-12) of a configuration, inventory or retention-policy file.

    The schema gives the keys, their types and their vocabularies; what needs the policy data,
    the other files or the databases (regions, decision ids, sub-processors, tables) is checked
    by `validate` only. `--write docs/schemas` regenerates the published schemas.
    """
    if (kind is None) == (directory is None):
        raise click.UsageError("give either a KIND or --write DIRECTORY")
    if kind is not None:
        click.echo(schema_text(kind), nl=False)
        return
    assert directory is not None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in sorted(SCHEMAS):
            (directory / f"{name}.schema.json").write_text(schema_text(name), encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(directory), hint=exc.strerror or str(exc)) from None
    say(f"wrote {len(SCHEMAS)} schemas to {directory}")
