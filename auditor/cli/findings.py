"""`finding list|show|waive|unwaive`: the stored findings, their history, and a DPO's waivers."""

from __future__ import annotations

import getpass
import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from auditor.cli import cli, config_option, day_option, format_option, handles_errors, say, utcnow
from auditor.cli.db import store_for, when
from auditor.cli.output import terminal_safe
from auditor.store import FindingDetail, FindingEvent, StoredFinding, Waiver


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@cli.group()
def finding() -> None:
    """Stored findings: list them, show one's history, waive or unwaive one."""


@finding.command("list")
@config_option
@click.option(
    "--status",
    type=click.Choice(["open", "waived", "resolved", "all"]),
    default="open",
    show_default=True,
    help="open: open and not waived; waived: open under an active waiver.",
)
@click.option("--integration", metavar="ID", help="Only this integration's findings.")
@click.option("--rule", metavar="RULE", help="Only this rule's findings.")
@format_option
@handles_errors
def finding_list(
    config_path: Path,
    status: str,
    integration: str | None,
    rule: str | None,
    output_format: str,
) -> None:
    """List stored findings, worst first, with their waivers."""
    today = utcnow().date()
    store = store_for(config_path)
    try:
        found = store.list_findings(status=status, integration=integration, rule=rule, on=today)
        hidden = (
            len(store.list_findings(status="waived", integration=integration, rule=rule, on=today))
            if status == "open" and output_format == "table"
            else 0
        )
    finally:
        store.close()
    if output_format == "json":
        click.echo(json.dumps({"findings": [finding_json(f) for f in found]}, indent=2))
        return
    say(_table(found), nl=False)
    carried = sum(f.carried for f in found)
    if carried:
        say(
            f"{carried} finding{'s' if carried != 1 else ''} marked (carried) kept open: the probe "
            "that would show them gone failed; evidence as of LAST SEEN (finding show ID)"
        )
    if hidden:
        say(f"{hidden} waived finding{'s' if hidden != 1 else ''} not shown (--status waived)")


@finding.command("show")
@click.argument("finding_id", metavar="ID", type=int)
@config_option
@format_option
@handles_errors
def finding_show(finding_id: int, config_path: Path, output_format: str) -> None:
    """Show one finding with its history and waivers."""
    store = store_for(config_path)
    try:
        detail = store.get_finding(finding_id, on=utcnow().date())
    finally:
        store.close()
    if output_format == "json":
        doc = finding_json(detail)
        doc["events"] = [_event_json(e) for e in detail.events]
        doc["waivers"] = [_waiver_json(w) for w in detail.waivers]
        click.echo(json.dumps(doc, indent=2))
        return
    say(_detail_text(detail), nl=False)


@finding.command("waive")
@click.argument("finding_id", metavar="ID", type=int)
@config_option
@click.option("--reason", required=True, help="Why the finding is accepted.")
@click.option("--approver", required=True, metavar="NAME", help="Who accepts it (the DPO).")
@click.option(
    "--expires",
    required=True,
    metavar="YYYY-MM-DD",
    callback=day_option,
    help="The last day the waiver counts (UTC); then the finding counts as open again.",
)
@handles_errors
def finding_waive(
    finding_id: int, config_path: Path, reason: str, approver: str, expires: date
) -> None:
    """Accept a finding until a date: it stays listed but stops counting as open."""
    store = store_for(config_path)
    try:
        store.waive(finding_id, reason=reason, approver=approver, expires=expires, now=utcnow())
    finally:
        store.close()
    say(f"finding {finding_id} waived until {expires.isoformat()} (approver: {approver})")


@finding.command("unwaive")
@click.argument("finding_id", metavar="ID", type=int)
@config_option
@click.option("--by", metavar="NAME", help="Who revokes the waiver (default: your login name).")
@handles_errors
def finding_unwaive(finding_id: int, config_path: Path, by: str | None) -> None:
    """Revoke a finding's waiver: it counts as open again."""
    store = store_for(config_path)
    try:
        store.unwaive(finding_id, by=by or _who(), now=utcnow())
    finally:
        store.close()
    say(f"finding {finding_id}: waiver revoked")


def finding_json(found: StoredFinding) -> dict[str, Any]:
    return {
        "id": found.id,
        "rule": found.rule,
        "integration": found.integration,
        "facet": found.facet.value if found.facet else None,
        "place": found.place,
        "country": found.country,
        "severity": found.severity.value,
        "article": found.article,
        "message": found.message,
        "evidence": found.evidence,
        "status": found.state,
        "first_seen": when(found.first_seen),
        "last_seen": when(found.last_seen),
        "resolved_at": when(found.resolved_at),
        "reopened": found.reopened,
        "waiver": _waiver_json(found.waiver) if found.waiver else None,
        "probes": list(found.probes),
        "carried": found.carried,
        "carried_since": when(found.carried_since),
        "carried_reason": found.carried_reason,
    }


def _waiver_json(waiver: Waiver) -> dict[str, Any]:
    return {
        "id": waiver.id,
        "reason": waiver.reason,
        "approver": waiver.approver,
        "expires": waiver.expires.isoformat(),
        "created_at": when(waiver.created_at),
        "revoked_at": when(waiver.revoked_at),
        "revoked_by": waiver.revoked_by,
    }


def _event_json(event: FindingEvent) -> dict[str, Any]:
    return {"at": when(event.at), "change": event.change, "run_id": event.run_id, **event.detail}


def _table(found: list[StoredFinding]) -> str:
    if not found:
        return "no findings\n"
    header = ("ID", "STATUS", "SEVERITY", "RULE", "INTEGRATION", "FACET", "PLACE", "LAST SEEN")
    rows = [
        (
            str(f.id),
            f.state,
            f.severity.value,
            f.rule,
            f.integration,
            f.facet.value if f.facet else "-",
            f.place or "-",
            (when(f.last_seen) or "")[:10],
        )
        for f in found
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    for f, line_index in zip(found, range(1, len(lines)), strict=True):
        if f.carried and f.carried_since is not None:
            lines[line_index] += f"  (carried since {(when(f.carried_since) or '')[:10]})"
        if f.waiver is not None:
            lines[line_index] += (
                f"  (waived until {f.waiver.expires.isoformat()} by {f.waiver.approver})"
            )
    return "\n".join(terminal_safe(line) for line in lines) + "\n"


def _detail_text(detail: FindingDetail) -> str:
    place = detail.place or "-"
    if detail.country and detail.country != detail.place:
        place += f" ({detail.country})"
    status = detail.state
    if detail.waiver is not None:
        status += f" until {detail.waiver.expires.isoformat()}"
    lines = [
        f"finding {detail.id}: {detail.rule} ({detail.severity.value}, {detail.article})",
        f"  integration  {detail.integration}",
        f"  facet        {detail.facet.value if detail.facet else '-'}",
        f"  place        {place}",
        f"  status       {status}",
        f"  message      {detail.message}",
        f"  first seen   {when(detail.first_seen)}",
        f"  last seen    {when(detail.last_seen)}",
    ]
    if detail.carried:
        lines.append(
            f"  carried      since {when(detail.carried_since)}, evidence as last seen: "
            f"{detail.carried_reason}"
        )
    if detail.resolved_at is not None:
        lines.append(f"  resolved     {when(detail.resolved_at)}")
    if detail.reopened:
        lines.append(f"  re-opened    {detail.reopened} time{'s' if detail.reopened != 1 else ''}")
    if detail.evidence:
        lines.append(f"  evidence     {json.dumps(detail.evidence, sort_keys=True)}")
    lines.append("history")
    for event in detail.events:
        run = f" (run {event.run_id})" if event.run_id is not None else ""
        extra = ", ".join(f"{k}: {v}" for k, v in event.detail.items() if k != "waiver_id")
        lines.append(f"  {when(event.at)}  {event.change}{run}" + (f"  {extra}" if extra else ""))
    if detail.waivers:
        lines.append("waivers")
    for waiver in detail.waivers:
        if waiver.revoked_at is not None:
            state = f"revoked {when(waiver.revoked_at)} by {waiver.revoked_by}"
        elif waiver == detail.waiver:
            state = "active"
        else:
            state = "expired"
        lines.append(
            f"  #{waiver.id} until {waiver.expires.isoformat()}, approved by {waiver.approver} "
            f"on {(when(waiver.created_at) or '')[:10]}: {waiver.reason} [{state}]"
        )
    return "\n".join(terminal_safe(line) for line in lines) + "\n"
