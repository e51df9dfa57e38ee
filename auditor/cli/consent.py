"""`consent import|check|gaps`: coverage of the transfers that rely on consent (Art. 49(1)(a))."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from auditor.cli import (
    EXIT_FINDINGS,
    as_of_option,
    cli,
    config_option,
    format_option,
    handles_errors,
    load_run,
    parse_as_of,
    say,
    utcnow,
)
from auditor.cli.output import finding_json
from auditor.config import Config, load_config
from auditor.consent.check import bind, bind_all, consent_findings, measure, uses_imported
from auditor.consent.config import ConsentMapping
from auditor.consent.coverage import gaps
from auditor.consent.imported import imported_gaps
from auditor.consent.imports import (
    Format,
    ImportColumns,
    SubjectHasher,
    file_digest,
    guess_format,
    read_consents,
    subject_key,
)
from auditor.consent.statements import BoundConsent
from auditor.core.consents import ConsentCoverage
from auditor.service.wiring import open_store
from auditor.sources.datasources import DataSources
from auditor.store import StateStore


@cli.group()
def consent() -> None:
    """Consent coverage of transfers that rely on consent (Art. 49(1)(a)): import consents,
    count the shared subjects without one, list them."""


@consent.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--purpose",
    required=True,
    help="The purpose the consents in the file were given for (a consent mapping's purpose).",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "json"]),
    help="The file's format (default: from its name; JSON is an array or JSON Lines).",
)
@click.option("--subject-column", default="subject", show_default=True, help="Subject keys.")
@click.option(
    "--granted-column", default="granted_at", show_default=True, help="When consent was given."
)
@click.option(
    "--withdrawn-column",
    default="withdrawn_at",
    show_default=True,
    help="When it was withdrawn (empty or null: not withdrawn).",
)
@handles_errors
def consent_import(
    file: Path,
    config_path: Path,
    purpose: str,
    file_format: str | None,
    subject_column: str,
    granted_column: str,
    withdrawn_column: str,
) -> None:
    """Import a consent platform's export into the state database, subject keys only as keyed
    hashes (HMAC-SHA256 with GDPR_AUDITOR_SUBJECT_KEY). Importing a file again changes nothing;
    a later export recording a withdrawal updates the consent it ends.

    Every row is checked: with a bad one, nothing is imported and every bad row is listed by
    line (exit 2). Exit status: 0 imported, 2 bad rows, file, key or configuration, 3 the state
    database cannot be reached.
    """
    purpose = purpose.strip()
    if not purpose:
        raise click.BadParameter("the purpose is empty", param_hint="--purpose")
    config = load_config(config_path)
    hasher = SubjectHasher(subject_key(os.environ))
    chosen: Format = "csv" if file_format == "csv" else "json"
    if file_format is None:
        chosen = guess_format(file)
    digest = file_digest(file)
    columns = ImportColumns(subject_column, granted_column, withdrawn_column)
    store = open_store(config, os.environ)
    try:
        counts = store.import_consents(
            purpose,
            read_consents(file, chosen, columns, hasher),
            digest=digest,
            at=utcnow(),
            evidence_content={"file": file.name, "format": chosen},
        )
    finally:
        store.close()
    say(
        f"{file.name}: read {counts.read}, inserted {counts.inserted}, withdrawals recorded "
        f"{counts.updated}, already present {counts.already_present} (purpose {purpose!r})"
    )
    purposes = {m.purpose for m in config.consent.values() if m.imported}
    if purpose not in purposes:
        listed = ", ".join(repr(p) for p in sorted(purposes)) or "none"
        say(
            f"note: no consent mapping with imported consents has purpose {purpose!r} "
            f"(their purposes: {listed})",
            err=True,
        )


@consent.command("check")
@config_option
@as_of_option("Count the consents valid that day (default: today, UTC).")
@format_option
@handles_errors
def consent_check(config_path: Path, as_of: str | None, output_format: str) -> None:
    """Count, for every consent mapping, the shared subjects and those without a valid consent
    (the withdrawn among them), once, recording nothing.

    Exit status: 0 every shared subject has a valid consent, 1 some do not (critical
    `transfer-consent-missing` findings), 2 invalid configuration, 3 a database cannot be
    reached.
    """
    day, config, policies, _ = load_run(config_path, as_of)
    mappings = config.consent
    results: list[ConsentCoverage] = []
    with DataSources(config.data_sources) as sources:
        bound = bind_all(mappings, sources)
        store = _imported_store(config)
        try:
            hasher = SubjectHasher(subject_key(os.environ)) if store is not None else None
            results = [measure(one, day, store, hasher) for one in bound.values()]
            if store is not None:
                _note_empty_imports(mappings.values(), store)
        finally:
            if store is not None:
                store.close()
    findings = consent_findings(results, policies)
    if output_format == "json":
        doc = {
            "as_of": day.isoformat(),
            "checked_at": utcnow().isoformat(timespec="seconds").replace("+00:00", "Z"),
            "integrations": [_coverage_json(result) for result in results],
            "findings": [finding_json(finding) for finding in findings],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        say(_table(results), nl=False)
    if findings:
        sys.exit(EXIT_FINDINGS)


@consent.command("gaps")
@config_option
@click.option(
    "--integration",
    "integration",
    required=True,
    metavar="ID",
    help="The integration whose consent mapping to check.",
)
@as_of_option("Count the consents valid that day (default: today, UTC).")
@click.option(
    "--withdrawn-only",
    is_flag=True,
    help="Only the subjects who withdrew their consent and are still shared.",
)
@handles_errors
def consent_gaps(
    config_path: Path, integration: str, as_of: str | None, withdrawn_only: bool
) -> None:
    """Print the keys of the shared subjects without a valid consent, one per line, in key
    order, as they are read (for the operator who acts on them: they appear nowhere else).

    Exit status: 0 (also when none is printed), 2 invalid configuration or unknown integration,
    3 a database cannot be reached.
    """
    day = parse_as_of(as_of)
    config = load_config(config_path)
    mapping = config.consent.get(integration)
    if mapping is None:
        known = ", ".join(sorted(config.consent)) or "none are configured"
        raise click.BadParameter(
            f"no consent mapping for {integration!r} (mappings: {known})",
            param_hint="--integration",
        )
    with DataSources(config.data_sources) as sources:
        bound = bind(mapping, sources)
        if isinstance(bound, BoundConsent):
            _print_keys(gaps(bound, day, withdrawn_only=withdrawn_only))
            return
        hasher = SubjectHasher(subject_key(os.environ))
        store = open_store(config, os.environ)
        try:
            keys = imported_gaps(bound, day, store, hasher, withdrawn_only=withdrawn_only)
            _print_keys(keys)
        finally:
            store.close()


def _imported_store(config: Config) -> StateStore | None:
    """The state store, when a mapping matches imported consents; else None (not opened)."""
    return open_store(config, os.environ) if uses_imported(config.consent_settings) else None


def _note_empty_imports(mappings: Iterable[ConsentMapping], store: StateStore) -> None:
    for mapping in mappings:
        if mapping.imported and store.imported_consent_count(mapping.purpose) == 0:
            say(
                f"note: no consents imported for purpose {mapping.purpose!r} "
                f"({mapping.integration}): run `gdpr-auditor consent import`",
                err=True,
            )


def _print_keys(keys: Iterator[str]) -> None:
    """Write keys a line at a time; a reader that stops early (`| head`) ends it quietly."""
    out = sys.stdout
    try:
        for key in keys:
            out.write(key + "\n")
        out.flush()
    except BrokenPipeError:
        # Nothing more is wanted: point stdout at /dev/null so that exiting does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    finally:
        close = getattr(keys, "close", None)
        if close is not None:
            close()  # gives the database connections back at once


def _coverage_json(result: ConsentCoverage) -> dict[str, Any]:
    return {
        "integration": result.integration,
        "purpose": result.purpose,
        "as_of": result.as_of.isoformat(),
        "shared": result.shared,
        "covered": result.covered,
        "missing": result.missing,
        "withdrawn": result.withdrawn,
        "path": result.path,
        "duration_seconds": round(result.duration_seconds, 3),
    }


def _table(results: Sequence[ConsentCoverage]) -> str:
    if not results:
        return "no consent mappings configured\n"
    header = ("INTEGRATION", "PURPOSE", "SHARED", "MISSING", "WITHDRAWN", "PATH")
    rows = [header] + [
        (
            r.integration,
            r.purpose,
            str(r.shared),
            str(r.missing),
            str(r.withdrawn),
            r.path,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4}
    lines = [
        "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"
