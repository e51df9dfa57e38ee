"""`evidence verify|head|list`: prove the evidence chain intact, anchor its head, read its records."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from auditor.cli import (
    EXIT_FINDINGS,
    cli,
    config_option,
    day_option,
    handles_errors,
    output_format_option,
    say,
)
from auditor.config import Config, load_config
from auditor.core.chain import EvidenceRecord, malformed
from auditor.core.errors import InvalidRequestError, SchemaVersionError, StoreError
from auditor.evidence.ledgers import utc
from auditor.evidence.report import period_bounds
from auditor.service.wiring import database_url
from auditor.store import EVIDENCE_KEY_VARIABLE, SCHEMA_VERSION, evidence_key
from auditor.store.engine import display_url, normalise_url
from auditor.store.reporting import ChainCheck, check_chain, head, list_records
from auditor.store.repository import StateStore

EXIT_BROKEN = EXIT_FINDINGS
"""`evidence verify` exits 1 when the chain does not verify."""

json_format_option = output_format_option(
    ["text", "json"], "Output for people (text) or tools (json)."
)


def run_check_first(config: Config) -> str:
    """What to do about a state database that holds no audit yet."""
    return f"run `gdpr-auditor check --config {config.path}` (or start the daemon) first"


def open_existing(config: Config) -> StateStore:
    """Open the state store for reading, refusing one that does not exist rather than creating it.

    Raises:
        StoreError: the database does not exist, holds no gdpr-auditor tables, or cannot be read.
        SchemaVersionError: its schema is older or newer than this code's.
        InvalidInputError: the URL's variable or the evidence key is unusable.
    """
    url = database_url(config, os.environ)
    key = evidence_key(os.environ)
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database or ""
        if (
            name
            and name != ":memory:"
            and not name.startswith("file:")
            and not Path(name).is_file()
        ):
            raise StoreError(
                f"the state database {display_url(url)} does not exist yet: "
                + run_check_first(config)
            )
    store = StateStore.open(url, check_version=False, evidence_key=key)
    try:
        version = store.schema_version()
        if version is None:
            raise StoreError(
                f"the state database {store.url} holds no gdpr-auditor tables: "
                + run_check_first(config)
            )
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(store.url, version, SCHEMA_VERSION)
    except BaseException:
        store.close()
        raise
    return store


def _when(value: object) -> str | None:
    """A record's time for output; a tampered value that is no time is shown as it was stored."""
    return utc(value) if isinstance(value, datetime) else f"not a time: {value!r}"


def record_json(record: EvidenceRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"seq": record.seq, "at": _when(record.at), "kind": record.kind, "hash": record.hash}


@cli.group()
def evidence() -> None:
    """The tamper-evident evidence chain: verify it, print its head, list its records."""


@evidence.command("verify")
@config_option
@click.option(
    "--expect-head",
    metavar="HASH",
    help="A head hash anchored earlier: it must still be in the chain (catches a cut-off end).",
)
@json_format_option
@handles_errors
def evidence_verify(config_path: Path, expect_head: str | None, output_format: str) -> None:
    """Recompute the evidence chain and name the first record edited, removed, inserted or moved.

    With GDPR_AUDITOR_EVIDENCE_KEY set, every record's HMAC is checked too. Exit status: 0 the
    chain is intact, 1 it is not (the first bad record is named), 2 invalid configuration, 3 the
    database cannot be read.
    """
    store = open_existing(load_config(config_path))
    try:
        checked = check_chain(store, expect_head.strip().lower() if expect_head else None)
    finally:
        store.close()
    doc = verification_json(checked, expect_head)
    if output_format == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        say(_verification_text(checked), nl=False)
    if not checked.verification.ok:
        sys.exit(EXIT_BROKEN)


def verification_json(checked: ChainCheck, expect_head: str | None) -> dict[str, Any]:
    outcome = checked.verification
    bad = None
    if outcome.first_bad is not None:
        bad = {"seq": outcome.first_bad, "found": record_json(checked.offending)}
    return {
        "intact": outcome.ok,
        "records_verified": outcome.records,
        "verified_head": outcome.head,
        "hmac_checked": checked.hmac_checked,
        "expect_head": expect_head,
        "head": record_json(checked.head),
        "first_bad": bad,
        "problem": outcome.problem,
    }


def _verification_text(checked: ChainCheck) -> str:
    outcome = checked.verification
    lines = []
    if outcome.ok and checked.head is None:
        lines.append("evidence chain intact: it is empty (nothing recorded yet)")
    elif outcome.ok:
        where = (
            f", head record {checked.head.seq} ({checked.head.kind}, {utc(checked.head.at)})"
            if checked.head
            else ""
        )
        lines.append(f"evidence chain intact: {outcome.records} records{where}")
        lines.append(f"head hash {outcome.head}")
    else:
        found = checked.offending
        if outcome.first_bad is None:
            lines.append(f"evidence chain broken: {outcome.problem}")
        else:
            what = f" ({found.kind}, {_when(found.at)})" if found is not None else ""
            if found is not None and found.seq != outcome.first_bad:
                what = f" (in its place: record {found.seq}, {found.kind}, {_when(found.at)})"
            lines.append(f"evidence chain broken at record {outcome.first_bad}{what}")
            lines.append(f"  {outcome.problem}")
        lines.append(f"{outcome.records} records before it verified; last good hash {outcome.head}")
    if checked.hmac_checked:
        lines.append(f"HMACs checked with the key in {EVIDENCE_KEY_VARIABLE}")
    else:
        lines.append(
            f"HMACs not checked: {EVIDENCE_KEY_VARIABLE} is not set, so a chain rewritten with "
            "recomputed hashes would pass"
        )
    return "\n".join(lines) + "\n"


@evidence.command("head")
@config_option
@json_format_option
@handles_errors
def evidence_head(config_path: Path, output_format: str) -> None:
    """Print the newest record's sequence number, time and hash, to anchor elsewhere.

    Record it in a ticket, an e-mail or a timestamping service; `evidence verify --expect-head`
    later proves the chain still holds it. The chain is not verified here.
    """
    store = open_existing(load_config(config_path))
    try:
        newest = head(store.engine)
    finally:
        store.close()
    if output_format == "json":
        click.echo(json.dumps({"head": record_json(newest)}, indent=2))
    elif newest is None:
        say("the evidence chain is empty")
    else:
        say(f"{newest.seq} {utc(newest.at)} {newest.kind} {newest.hash}")


@evidence.command("list")
@config_option
@click.option("--kind", "kinds", metavar="KIND", multiple=True, help="Only records of this kind.")
@click.option(
    "--from",
    "first_day",
    metavar="YYYY-MM-DD",
    callback=day_option,
    help="Only records from this day (UTC).",
)
@click.option(
    "--to",
    "last_day",
    metavar="YYYY-MM-DD",
    callback=day_option,
    help="Only records up to this day (UTC), included.",
)
@json_format_option
@handles_errors
def evidence_list(
    config_path: Path,
    kinds: tuple[str, ...],
    first_day: date | None,
    last_day: date | None,
    output_format: str,
) -> None:
    """List evidence records in chain order (they hold counts and ids, never personal data)."""
    if first_day and last_day and first_day > last_day:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    start = period_bounds(first_day, first_day)[0] if first_day else None
    end = period_bounds(last_day, last_day)[1] if last_day else None
    store = open_existing(load_config(config_path))
    try:
        if output_format == "json":
            _list_json(store, start, end, kinds)
        else:
            _list_text(store, start, end, kinds)
    finally:
        store.close()


def _content(record: EvidenceRecord) -> dict[str, Any]:
    """The record's content, or the project's error naming the record (a tampered row)."""
    wrong = malformed(record)
    if wrong is not None:
        raise InvalidRequestError(f"evidence record {record.seq} was tampered with: {wrong}")
    try:
        return record.data()
    except ValueError as exc:
        raise InvalidRequestError(f"{exc}; run `gdpr-auditor evidence verify`") from None


def _list_json(
    store: StateStore, start: datetime | None, end: datetime | None, kinds: tuple[str, ...]
) -> None:
    # One record per line, written as read: a long chain never sits in memory whole.
    click.echo('{\n  "records": [', nl=False)
    separator = "\n"
    for record in list_records(store.engine, start, end, kinds):
        item = {**(record_json(record) or {}), "content": _content(record), "mac": record.mac}
        click.echo(separator + "    " + json.dumps(item, ensure_ascii=False), nl=False)
        separator = ",\n"
    click.echo("\n  ]\n}" if separator != "\n" else "]\n}")


def _list_text(
    store: StateStore, start: datetime | None, end: datetime | None, kinds: tuple[str, ...]
) -> None:
    count = 0
    for record in list_records(store.engine, start, end, kinds):
        count += 1
        say(f"{record.seq:>6}  {utc(record.at)}  {record.kind:<24} {record.content}")
    if count == 0:
        say("no evidence records")
