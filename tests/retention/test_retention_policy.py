"""Retention policy files: the documented format, defaults, and errors naming file, policy, key, line."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.yamlsource import parse_yaml
from auditor.retention import (
    LegalHold,
    Replacement,
    RetentionPolicy,
    check_references,
    load_retention_policies,
    parse_retention,
)
from auditor.sources.config import ConfigRef, DataSourceSettings
from tests.helpers import integrations_from, minimal

FULL = """\
policies:
  - id: crm-contacts-2y
    description: Inactive CRM contacts
    source: crm
    table: sales.contacts
    key: id
    timestamp: last_activity_at
    keep_for: P2Y
    filter: {status: inactive, region: [eu, uk], deleted_at: null}
    legal_hold: {column: legal_hold}
    action: anonymise
    anonymise: {email: {hash: true}, name: null, phone: {value: redacted}, since: {value: 2020-01-01}}
    batch_size: 500
    max_rows_per_run: 5000
    max_share: 0.5
    mode: enforce
    integration: crm
  - id: tickets
    source: helpdesk
    table: tickets
    key: ticket_id
    timestamp: closed_at
    keep_for: P6M
    legal_hold: {table: held_tickets, key: ticket_id, filter: {active: true}}
"""


def parsed(text: str) -> tuple[list[RetentionPolicy], list[Issue]]:
    return parse_retention(parse_yaml(textwrap.dedent(text), "retention.yaml"))


def problems(text: str) -> list[str]:
    found, issues = parse_retention(parse_yaml(textwrap.dedent(text), "retention.yaml"))
    assert not found or issues
    return [str(issue) for issue in issues]


def one_policy(**overrides: object) -> str:
    entry: dict[str, object] = {
        "id": "contacts",
        "source": "crm",
        "table": "contacts",
        "key": "id",
        "timestamp": "updated_at",
        "keep_for": "P1Y",
    }
    entry.update(overrides)
    return yaml.safe_dump({"policies": [entry]}, sort_keys=False)


def test_the_documented_format_is_read_into_frozen_policies() -> None:
    """Every key of the documented format ends up in the policy, replacements in order."""
    found, issues = parse_retention(parse_yaml(FULL, "retention.yaml"))

    assert [] == issues
    crm, tickets = found
    assert ("crm-contacts-2y", "crm", "sales", "contacts") == (
        crm.id,
        crm.source,
        crm.selection.schema,
        crm.selection.table,
    )
    assert (24, "id", "last_activity_at") == (crm.keep_for.total_months, crm.key, crm.timestamp)
    assert LegalHold(column="legal_hold") == crm.legal_hold
    assert (
        Replacement("email", "hash"),
        Replacement("name", "null"),
        Replacement("phone", "value", "redacted"),
        Replacement("since", "value", date(2020, 1, 1)),
    ) == crm.anonymise
    assert ("anonymise", 500, 5000, 0.5, "enforce") == (
        crm.action,
        crm.batch_size,
        crm.max_rows_per_run,
        crm.max_share,
        crm.mode,
    )
    assert ["status", "region", "deleted_at"] == [term.column for term in crm.selection.filter]
    assert crm.selection.filter[2].or_null
    assert "crm" == crm.subject
    assert tickets.legal_hold is not None and tickets.legal_hold.table is not None
    assert ("held_tickets", "ticket_id") == (tickets.legal_hold.table.table, tickets.legal_hold.key)
    assert "helpdesk" == tickets.legal_hold.table.source


def test_defaults_report_in_plan_mode_with_the_documented_limits() -> None:
    """Without them: action report, mode plan, batches of 1000, 100000 rows a run, 20 % share."""
    found, issues = parsed(one_policy())

    assert [] == issues
    policy = found[0]
    assert ("report", "plan", 1000, 100_000, 0.2, None) == (
        policy.action,
        policy.mode,
        policy.batch_size,
        policy.max_rows_per_run,
        policy.max_share,
        policy.legal_hold,
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"keep_for": "2 years"}, "keep_for", "not an ISO 8601 duration"),
        ({"keep_for": "P0D"}, "keep_for", "longer than zero"),
        ({"action": "purge"}, "action", "'report', 'anonymise' or 'delete'"),
        ({"mode": "auto"}, "mode", "'plan' or 'enforce'"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"max_share": 1.5}, "max_share", "less than or equal to 1"),
        ({"max_share": 0}, "max_share", "greater than 0"),
        ({"table": ".contacts"}, "table", "not a table name"),
        ({"key": " id"}, "key", "not a table or column name"),
        ({"filter": {"status": []}}, "filter", "an empty list matches no row"),
        ({"integration": "CRM"}, "integration", "lower-case slug"),
        ({"action": "anonymise"}, None, "action anonymise needs anonymise"),
        ({"anonymise": {"email": None}}, None, "only used with action: anonymise"),
        (
            {"action": "anonymise", "anonymise": {"updated_at": None}},
            None,
            "may not change column 'updated_at', the timestamp",
        ),
        (
            {"action": "anonymise", "anonymise": {"email": {"hash": False}}},
            "anonymise.email",
            "hash: true is the only hash setting",
        ),
        (
            {"action": "anonymise", "anonymise": {"email": {"value": None}}},
            "anonymise.email",
            "write the column with a null value",
        ),
        (
            {"action": "anonymise", "anonymise": {"email": {"hash": True, "value": "x"}}},
            "anonymise.email",
            "expected null, {hash: true} or {value: ...}",
        ),
        ({"legal_hold": {}}, "legal_hold", "set either column"),
        ({"legal_hold": {"table": "held"}}, "legal_hold", "needs key"),
        (
            {"legal_hold": {"column": "hold", "key": "id"}},
            "legal_hold",
            "belong to a legal-hold table",
        ),
    ],
)
def test_a_bad_value_is_named_by_file_policy_key_and_line(
    overrides: dict[str, object], field: str | None, message: str
) -> None:
    """Each mistake gives one Issue naming the file, the policy by its id, the key and the line."""
    _, issues = parsed(one_policy(**overrides))

    assert 1 == len(issues), issues
    issue = issues[0]
    assert ("retention.yaml", "policy 'contacts'") == (issue.source, issue.entry)
    assert message in issue.message
    if field is not None:
        assert issue.field is not None and issue.field.startswith(field)
    assert issue.line is not None and issue.line >= 2


def test_a_missing_key_and_an_unknown_top_level_key_are_reported_with_the_others() -> None:
    """One bad policy does not hide another's problems, nor a stray top-level key."""
    text = """\
    policies:
      - id: first
        source: crm
        table: t
        key: id
        keep_for: P1Y
      - id: second
        source: crm
        table: t
        key: id
        timestamp: ts
        keep_for: forever
    colour: red
    """

    assert [
        "retention.yaml:13: colour: unknown key",
        "retention.yaml:2: policy 'first': timestamp: required key is missing",
        (
            "retention.yaml:12: policy 'second': keep_for: not an ISO 8601 duration (such as P2Y, "
            "P14M, P30D, PT1H): 'forever'"
        ),
    ] == problems(text)


def test_a_document_without_a_policies_list_is_an_error() -> None:
    """The file must hold `policies:` as a list."""
    assert ["retention.yaml:1: expected a mapping with a 'policies' list"] == problems("[]\n")
    assert ["retention.yaml:1: 'policies' must be a list"] == problems("policies: {}\n")


def test_files_and_directories_load_and_duplicate_ids_name_both_files(tmp_path: Path) -> None:
    """A directory's .yaml files load in order; an id used twice names the first file."""
    folder = tmp_path / "retention"
    folder.mkdir()
    (folder / "a.yaml").write_text(one_policy())
    (folder / "b.yml").write_text(one_policy(table="other"))
    (folder / "notes.txt").write_text("not a policy")

    with pytest.raises(InvalidInputError) as raised:
        load_retention_policies([folder], display=tmp_path)

    assert [
        "retention/b.yml:2: policy 'contacts': id: duplicate id, first used in retention/a.yaml"
    ] == [str(issue) for issue in raised.value.issues]


def test_missing_paths_and_empty_directories_are_errors(tmp_path: Path) -> None:
    """A path that is not there, or a directory without .yaml files, is reported."""
    (tmp_path / "empty").mkdir()

    with pytest.raises(InvalidInputError) as raised:
        load_retention_policies([tmp_path / "empty", tmp_path / "gone.yaml"])

    messages = [issue.message for issue in raised.value.issues]
    assert [
        "directory holds no .yaml retention files",
        "retention file or directory does not exist",
    ] == messages


def test_policies_load_from_a_file(tmp_path: Path) -> None:
    """A single file loads; its policies come back in order."""
    path = tmp_path / "retention.yaml"
    path.write_text(FULL)

    found = load_retention_policies([path], display=tmp_path)

    assert ["crm-contacts-2y", "tickets"] == [policy.id for policy in found]
    assert "retention.yaml" == found[0].ref.source


def test_references_to_unknown_sources_and_integrations_are_errors() -> None:
    """A policy's data source must be configured and its integration in the inventory."""
    found, _ = parse_retention(parse_yaml(FULL, "retention.yaml"))
    sources = {"crm": DataSourceSettings("crm", "sqlite://", None, True, ConfigRef("c", "d"))}
    inventory = integrations_from(
        "integrations:\n  - " + repr(minimal("mailchimp")).replace("'", '"') + "\n"
    )

    issues = check_references(found, sources, inventory)

    assert [
        (
            "retention.yaml:17: policy 'crm-contacts-2y': integration: no integration 'crm' in the "
            "inventory"
        ),
        (
            "retention.yaml:19: policy 'tickets': source: no data source named 'helpdesk' (data "
            "sources: crm)"
        ),
    ] == [str(issue) for issue in issues]


def test_a_keep_for_of_three_thousand_years_is_an_error_naming_policy_key_and_line() -> None:
    """`validate` used to accept P3000Y, and `retention plan` then crashed subtracting it."""
    text = one_policy(keep_for="P3000Y")

    [problem] = problems(text)

    line = 1 + text.splitlines().index("  keep_for: P3000Y")
    assert problem.startswith(f"retention.yaml:{line}: policy 'contacts': keep_for:")
    assert "duration longer than 1000 years" in problem
