"""`report` and `register`: the evidence report for a period, and the Art. 30 processing register."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path

import click

from auditor import __version__
from auditor.cli import (
    as_of_option,
    cli,
    config_option,
    day_option,
    handles_errors,
    load_all,
    parse_day,
    say,
    utcnow,
)
from auditor.cli.evidence import open_existing, run_check_first
from auditor.config import load_config
from auditor.core.errors import InvalidRequestError
from auditor.core.periods import PERIOD_FORMS, parse_period
from auditor.evidence.register import build_register, render_register
from auditor.evidence.render import render
from auditor.evidence.report import FORMATS, ReportInputs, build_report, period_bounds
from auditor.evidence.scheduled import write_atomically
from auditor.store.reporting import check_chain, read_period

out_option = click.option(
    "--out",
    metavar="PATH",
    default="-",
    show_default=True,
    help="Write to this file (replaced whole, never left half-written); - is standard output.",
)


def write_output(text: str, out: str) -> None:
    """Write `text` to standard output (`-`) or atomically to a file.

    Raises:
        InvalidRequestError: the file cannot be written.
    """
    if out == "-":
        click.echo(text, nl=False)
        return
    try:
        write_atomically(Path(out), text)
    except OSError as exc:
        raise InvalidRequestError(f"cannot write {out}: {exc.strerror or exc}") from None


def _generated_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise click.BadParameter(
            f"expected an ISO 8601 time with its offset, such as 2026-04-01T08:00:00Z, got {value!r}",
            param_hint="--generated-at",
        )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.max.replace(tzinfo=UTC)  # past the calendar's end: out of range below
    parse_day(moment.date().isoformat(), "--generated-at")  # the same range as every date
    return moment


@cli.command(short_help="Write the evidence report for a period (HTML, JSON or CSV).")
@config_option
@click.option(
    "--period",
    "period",
    metavar="PERIOD",
    help="The period by name: last-month, last-quarter, YYYY-Qn, YYYY-MM or YYYY "
    "(instead of --from and --to).",
)
@click.option(
    "--from",
    "first_day",
    metavar="YYYY-MM-DD",
    callback=day_option,
    help="First day (UTC).",
)
@click.option(
    "--to",
    "last_day",
    metavar="YYYY-MM-DD",
    callback=day_option,
    help="Last day (UTC), included.",
)
@as_of_option("Show the adequacy decisions in force that day (default: the --to day).", parsed=True)
@click.option(
    "--generated-at",
    metavar="TIME",
    help="A time to print as the report's making (none by default, so that reports compare).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="html",
    show_default=True,
    help="html for people (prints well), json for tools (docs/report-schema.json), csv findings.",
)
@out_option
@handles_errors
def report(
    config_path: Path,
    period: str | None,
    first_day: date | None,
    last_day: date | None,
    as_of: date | None,
    generated_at: str | None,
    output_format: str,
    out: str,
) -> None:
    """Write the evidence report for a period: what was checked, against which rules and data,
    what was found, what was done about it, and whether the evidence chain is intact.

    The period is --period (last-month, last-quarter, 2026-Q3, 2026-11, 2026; months and
    quarters of the calendar, in UTC) or --from and --to. The same records always give the
    same bytes. Exit status: 0 written (a broken chain is reported in it, and on standard
    error), 2 bad usage or invalid configuration, 3 the state database cannot be read (or holds
    no audit yet: run `check` first).
    """
    first_day, last_day = report_period(period, first_day, last_day, utcnow().date())
    day = as_of or last_day
    stamp = _generated_at(generated_at)
    config = load_config(config_path)
    policies, integrations = load_all(config)
    start, end = period_bounds(first_day, last_day)
    store = open_existing(config)
    try:
        records = read_period(store.engine, start, end)
        chain = check_chain(store)
        audited = store.latest_run(successful=False) is not None
    finally:
        store.close()
    if not audited:
        say(f"gdpr-auditor: no audit is recorded yet: {run_check_first(config)}", err=True)
    document = build_report(
        ReportInputs(
            first_day=first_day,
            last_day=last_day,
            as_of=day,
            generated_at=stamp,
            tool_version=__version__,
            config_digest=config.digest,
            policies=policies,
            integrations=integrations,
            records=records,
            chain=chain,
        )
    )
    write_output(render(document, output_format), out)
    if not chain.verification.ok:
        say(
            f"gdpr-auditor: warning: the evidence chain did not verify: "
            f"{chain.verification.problem}",
            err=True,
        )


def report_period(
    period: str | None, first_day: date | None, last_day: date | None, today: date
) -> tuple[date, date]:
    """The report's first and last day, from --period or from --from and --to.

    Raises:
        click.UsageError: both forms or neither are given, or only one of --from and --to.
        click.BadParameter: the period is not one of the forms, or --from is after --to.
    """
    if period is not None:
        if first_day is not None or last_day is not None:
            raise click.UsageError("give either --period or --from and --to, not both")
        try:
            first, last = parse_period(period, today)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--period") from None
        for moment in (first, last):
            parse_day(moment.isoformat(), "--period")  # the range every date is held to
        return first, last
    if first_day is None or last_day is None:
        missing = "--to" if first_day is not None else "--from"
        if first_day is None and last_day is None:
            raise click.UsageError(
                f"give the period: --period ({PERIOD_FORMS}), or --from and --to"
            )
        raise click.UsageError(f"{missing} is missing: give --from and --to, or --period")
    if first_day > last_day:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    return first_day, last_day


@cli.command(short_help="Export the inventory as a record of processing activities (Art. 30).")
@config_option
@as_of_option(
    "Judge transfers by the adequacy decisions in force that day (default: today, UTC).",
    parsed=True,
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "json"]),
    default="json",
    show_default=True,
    help="csv: one row per integration; json: nested.",
)
@out_option
@handles_errors
def register(config_path: Path, as_of: date | None, output_format: str, out: str) -> None:
    """Export the inventory as an Art. 30 record of processing activities.

    Per integration: the recipient (vendor and role), categories of data, transfers to third
    countries with their safeguards, retention periods, backup locations and sub-processors.
    Nothing is probed and no database is needed.
    """
    day = as_of or utcnow().date()
    config = load_config(config_path)
    policies, integrations = load_all(config)
    entries = build_register(integrations, policies, day)
    write_output(render_register(entries, day, policies, output_format), out)
    if out != "-" and sys.stderr.isatty():
        say(f"wrote {len(entries)} processing activities to {out}", err=True)
