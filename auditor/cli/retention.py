"""`retention plan|enforce`: what retention enforcement would do, and doing it in recorded batches."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from auditor.cli import cli, config_option, format_option, handles_errors, say, utcnow
from auditor.config import Config, load_config
from auditor.core.errors import InvalidInputError, Issue
from auditor.retention import (
    Batch,
    BoundPolicy,
    Enforcement,
    RetentionPlan,
    RetentionPolicy,
    anonymise_key,
    bind_policy,
    check_guard,
    check_references,
    enforce_policy,
    load_retention_policies,
    plan_policy,
    reconcile_policy,
)
from auditor.service.wiring import open_store
from auditor.sources.config import DataSourceSettings
from auditor.sources.datasources import DataSources
from auditor.store import StateStore


@dataclass(frozen=True, slots=True)
class _Setup:
    """What the retention verbs need from the configuration file."""

    policies: tuple[RetentionPolicy, ...]
    data_sources: Mapping[str, DataSourceSettings]
    config: Config


policy_option = click.option(
    "--policy",
    "policy_ids",
    multiple=True,
    metavar="ID",
    help="Only this retention policy (repeat for several; default: every policy).",
)
max_rows_option = click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    metavar="N",
    help="Process at most N records per policy (lowers each policy's max_rows_per_run).",
)


@cli.group()
def retention() -> None:
    """Records past their retention period (Art. 5(1)(e)) in the organisation's databases."""


@retention.command("plan")
@config_option
@policy_option
@max_rows_option
@format_option
@handles_errors
def retention_plan(
    config_path: Path, policy_ids: tuple[str, ...], max_rows: int | None, output_format: str
) -> None:
    """Count what enforcement would do now, changing no record: overdue, held and to-be-processed
    records per policy, the oldest overdue record's age, and the deadline used.

    Batches an earlier enforcement left unsettled (killed, or its state database unavailable)
    are reconciled first: what they did is found in the data source and recorded as evidence.

    Exit status: 0, 2 invalid configuration or policies, 3 a data source or the state database
    cannot be reached.
    """
    with _reconciled(_load(config_path), policy_ids) as (_, bound, reconciled):
        now = utcnow()
        plans = [plan_policy(one, now, max_rows) for one in bound]
    if output_format == "json":
        doc = {
            "planned_at": _iso(now),
            "policies": [
                {**plan.as_json(), "reconciled": _reconciled_json(reconciled[plan.policy])}
                for plan in plans
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        say(_plan_table(plans), nl=False)
        _say_reconciled(reconciled)


@retention.command("enforce")
@config_option
@policy_option
@max_rows_option
@click.option(
    "--allow-large-share",
    is_flag=True,
    help="Process more than a policy's max_share of its table in this run.",
)
@format_option
@handles_errors
def retention_enforce(
    config_path: Path,
    policy_ids: tuple[str, ...],
    max_rows: int | None,
    allow_large_share: bool,
    output_format: str,
) -> None:
    """Anonymise or delete overdue records not on legal hold, in batches, each recorded as
    evidence in the state database. Policies with action `report` are only planned.

    Every selected policy is planned and checked first: if one would be refused (read-only data
    source, more than its max_share of its table, a keyed hash without
    GDPR_AUDITOR_ANONYMISE_KEY), nothing is changed in any.

    Each batch's intent is committed in the state database before the batch changes anything, and
    settled with its evidence record after it; batches an earlier run left unsettled are
    reconciled first. When the state database cannot take an intent (locked past its timeout, or
    down), that batch does not run and enforcement stops.

    Exit status: 0 done, 2 refused or invalid configuration, 3 a database cannot be reached (the
    batches committed before stay done; run it again to finish).
    """
    setup = _load(config_path)
    secret = anonymise_key(os.environ)
    with _reconciled(setup, policy_ids) as (store, bound, reconciled):
        # Several policies are all planned and checked before any is enforced. One alone is
        # planned and checked by its run, which on PostgreSQL counts a large table while its
        # first batches run, committing none before the check has passed.
        plans: dict[str, RetentionPlan] = {}
        if len(bound) > 1:
            now = utcnow()
            plans = {one.policy.id: plan_policy(one, now, max_rows) for one in bound}
            for one in bound:
                check_guard(one, plans[one.policy.id], secret, allow_large_share)
        results = []
        for one in bound:
            enforcement = enforce_policy(
                one,
                utcnow,
                store,
                secret=secret,
                max_rows=max_rows,
                allow_large_share=allow_large_share,
                plan=plans.get(one.policy.id),
            )
            results.append((enforcement, plan_policy(one, utcnow(), max_rows)))
    if output_format == "json":
        doc = {
            "policies": [
                {
                    **_enforcement_json(done, after),
                    "reconciled": _reconciled_json(reconciled[done.plan.policy]),
                }
                for done, after in results
            ]
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        say(_enforce_table(results), nl=False)
        _say_reconciled(reconciled)


# --- the configuration ------------------------------------------------------------------------


def _load(config_path: Path) -> _Setup:
    """Read the configuration and the retention files it names.

    Raises:
        InvalidInputError: either is invalid (every problem is listed), or names no retention
            files.
    """
    config = load_config(config_path)
    if not config.retention:
        issue = Issue(str(config.path), "no retention policies: add retention: [FILE or DIR, ...]")
        raise InvalidInputError([issue])
    data_sources = config.data_sources
    try:
        policies = load_retention_policies(config.retention, display=config.base)
    except InvalidInputError as exc:
        raise config.located(exc) from None
    issues = check_references(policies, data_sources)
    if issues:
        raise InvalidInputError(issues)
    return _Setup(tuple(policies), data_sources, config)


def _chosen(policies: Sequence[RetentionPolicy], ids: Sequence[str]) -> list[RetentionPolicy]:
    if not ids:
        return list(policies)
    known = {policy.id: policy for policy in policies}
    unknown = [ident for ident in ids if ident not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise click.BadParameter(
            f"no retention policy {unknown[0]!r} (policies: {listed})", param_hint="--policy"
        )
    return [known[ident] for ident in dict.fromkeys(ids)]


@contextmanager
def _reconciled(
    setup: _Setup, policy_ids: Sequence[str]
) -> Iterator[tuple[StateStore, list[BoundPolicy], dict[str, list[Batch]]]]:
    """The state store and the chosen policies bound to their data sources (both open for the
    block), with the batches an earlier run left unsettled reconciled first, by policy id."""
    store = open_store(setup.config, os.environ)
    try:
        with DataSources(setup.data_sources) as sources:
            bound = _bind(_chosen(setup.policies, policy_ids), sources)
            reconciled = {one.policy.id: reconcile_policy(one, store, utcnow) for one in bound}
            yield store, bound, reconciled
    finally:
        store.close()


def _bind(policies: Sequence[RetentionPolicy], sources: DataSources) -> list[BoundPolicy]:
    """Bind every policy, collecting every policy's schema problems into one error."""
    bound: list[BoundPolicy] = []
    issues: list[Issue] = []
    for policy in policies:
        try:
            bound.append(bind_policy(policy, sources))
        except InvalidInputError as exc:
            issues += exc.issues
    if issues:
        raise InvalidInputError(issues)
    return bound


# --- output -----------------------------------------------------------------------------------


def _plan_table(plans: Sequence[RetentionPlan]) -> str:
    if not plans:
        return "no retention policies selected\n"
    header = ("POLICY", "ACTION", "DEADLINE", "OVERDUE", "HELD", "TO PROCESS", "SHARE", "OLDEST")
    rows = [header]
    for plan in plans:
        age = plan.oldest_age_seconds
        share = f"{plan.share:.1%}" + (" !" if plan.share_exceeded else "")
        rows.append(
            (
                plan.policy,
                plan.action,
                _iso(plan.deadline) or "",
                str(plan.overdue),
                str(plan.held),
                str(plan.to_process),
                share,
                "-" if age is None else f"{age / 86400:.0f} days",
            )
        )
    lines = _columns(rows)
    if any(plan.share_exceeded for plan in plans):
        lines.append(
            "! more than the policy's max_share: enforce refuses it without --allow-large-share"
        )
    return "\n".join(lines) + "\n"


def _enforce_table(results: Sequence[tuple[Enforcement, RetentionPlan]]) -> str:
    if not results:
        return "no retention policies selected\n"
    rows = [("POLICY", "ACTION", "OUTCOME", "PROCESSED", "BATCHES", "STILL OVERDUE", "HELD")]
    for done, after in results:
        rows.append(
            (
                done.plan.policy,
                done.plan.action,
                done.outcome,
                str(done.processed),
                str(done.batches),
                str(after.eligible),
                str(after.held),
            )
        )
    return "\n".join(_columns(rows)) + "\n"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    numeric = {
        index for index in range(len(widths)) if all(_number(row[index]) for row in rows[1:])
    }
    return [
        "  ".join(
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def _enforcement_json(done: Enforcement, after: RetentionPlan) -> dict[str, Any]:
    doc = done.as_json()
    doc["after"] = after.as_json()
    return doc


def _reconciled_json(batches: Sequence[Batch]) -> dict[str, int]:
    return {
        "batches": len(batches),
        "rows": sum(batch.rows for batch in batches),
        "undetermined": sum(batch.undetermined for batch in batches),
    }


def _say_reconciled(reconciled: Mapping[str, Sequence[Batch]]) -> None:
    """One line on stderr per policy whose unsettled batches were reconciled."""
    for policy, batches in sorted(reconciled.items()):
        if batches:
            rows = sum(batch.rows for batch in batches)
            say(
                f"policy {policy}: reconciled {len(batches)} unsettled batch"
                f"{'es' if len(batches) != 1 else ''} of an earlier run ({rows} records "
                "processed), recorded as evidence",
                err=True,
            )
        undetermined = sum(batch.undetermined for batch in batches)
        if undetermined:
            say(
                f"warning: policy {policy}: what {undetermined} of them did cannot be known (their "
                "server has restarted, failed over or been replaced since, and their ranges "
                "still hold eligible records); recorded as undetermined, with no records counted",
                err=True,
            )


def _iso(when: Any) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")
