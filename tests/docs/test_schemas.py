"""The published JSON Schemas: up to date with the models, and true to the example files."""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from auditor.cli import cli
from auditor.cli.schema import SCHEMAS, schema_text
from auditor.core.durations import DURATION_PATTERN, parse_duration
from auditor.core.yamlsource import load_yaml
from auditor.retention.policy import parse_retention
from tests.docs.samples import EXAMPLES, ROOT

PUBLISHED = ROOT / "docs" / "schemas"
REGENERATE = "regenerate them with `.venv/bin/gdpr-auditor schema --write docs/schemas`"
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@cache
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[kind](), format_checker=FormatChecker())


def as_json(path: Path) -> Any:
    """A YAML file as an editor's YAML 1.2 language server sees it: dates are strings."""

    def text(value: object) -> str:
        assert isinstance(value, date), value
        return value.isoformat()

    return json.loads(json.dumps(load_yaml(path).data, default=text))


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_published_schemas_are_what_the_models_give(kind: str) -> None:
    """docs/schemas/KIND.schema.json equals the schema generated from the models now."""
    published = PUBLISHED / f"{kind}.schema.json"

    assert published.is_file(), f"{published.name} is missing: {REGENERATE}"
    assert schema_text(kind) == published.read_text(), f"{published.name} is stale: {REGENERATE}"


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_each_schema_is_a_valid_2020_12_schema(kind: str) -> None:
    schema = SCHEMAS[kind]()

    Draft202012Validator.check_schema(schema)
    assert "https://json-schema.org/draft/2020-12/schema" == schema["$schema"]
    assert not any(name.startswith("_") for name in schema.get("$defs", {}))


EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_each_example_names_its_schema_and_validates_against_it(path: Path) -> None:
    """Every example file's first line names a published schema, relative to the file, and the
    file validates against it (so an editor shows no false error on it)."""
    match = SCHEMA_LINE.match(path.read_text().split("\n", 1)[0])
    assert match is not None, f"{path.name}: the first line names no schema"
    schema = (path.parent / match.group(1)).resolve()
    assert schema.parent == PUBLISHED.resolve() and schema.is_file(), match.group(1)

    kind = schema.name.removesuffix(".schema.json")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(kind).iter_errors(as_json(path))
    ]
    assert [] == errors


def test_the_examples_cover_every_schema() -> None:
    named = {
        SCHEMA_LINE.match(path.read_text().split("\n", 1)[0]).group(1).rsplit("/", 1)[-1]  # type: ignore[union-attr]
        for path in EXAMPLE_FILES
    }

    assert {f"{kind}.schema.json" for kind in SCHEMAS} == named


def test_the_retention_example_is_a_valid_retention_file() -> None:
    """The auditor reads examples/retention/crm.yaml, its schema comment included, without a
    problem (its tables are checked against a database only when a data source is bound)."""
    policies, issues = parse_retention(load_yaml(EXAMPLES / "retention" / "crm.yaml"))

    assert [] == issues
    assert ["crm-contacts-2y", "support-tickets-3y"] == [p.id for p in policies]


def test_the_schemas_reject_what_the_auditor_rejects_as_you_type() -> None:
    """Unknown keys, values outside a vocabulary, malformed durations and dates are marked."""
    entry = {"id": "crm", "name": "CRM", "category": "crm", "role": "processor"}
    bad = [
        {**entry, "data_categories": [], "hostnig": ["DE"]},
        {**entry, "data_categories": ["gossip"]},
        {**entry, "data_categories": [], "retention": "2 years"},
        {**entry, "data_categories": [], "contract": {"dpa_signed": "2024-13-01"}},
        {**entry, "data_categories": [], "transfer": {"safeguards": ["handshake"]}},
    ]

    assert [] == list(
        validator("inventory").iter_errors({"integrations": [{**entry, "data_categories": []}]})
    )
    for integration in bad:
        assert list(validator("inventory").iter_errors({"integrations": [integration]})), (
            integration
        )
    assert list(validator("config").iter_errors({"inventory": "inventory/", "dsn": {}}))
    assert list(
        validator("config").iter_errors(
            {"inventory": [], "jobs": {"audit": {"interval": "hourly"}}}
        )
    )


DURATIONS = st.from_regex(
    r"\s?[Pp](\d{1,3}[Yy])?(\d{1,3}[Mm])?(\d{1,3}[Ww])?(\d{1,3}[Dd])?([Tt](\d{1,3}[Hh])?(\d{1,3}[Mm])?(\d{1,3}[Ss])?)?\s?",
    fullmatch=True,
)


@given(st.one_of(DURATIONS, st.text(max_size=12)))
def test_the_duration_pattern_accepts_every_duration_the_auditor_reads(text: str) -> None:
    """A duration `parse_duration` reads is never marked wrong by an editor."""
    try:
        parse_duration(text)
    except ValueError:
        return
    assert re.search(DURATION_PATTERN, text), text


def test_schema_prints_one_and_writes_all(tmp_path: Path) -> None:
    runner = CliRunner()

    printed = runner.invoke(cli, ["schema", "inventory"])
    written = runner.invoke(cli, ["schema", "--write", str(tmp_path / "out")])
    neither = runner.invoke(cli, ["schema"])

    assert 0 == printed.exit_code and schema_text("inventory") == printed.stdout
    assert 0 == written.exit_code, written.output
    assert sorted(f"{kind}.schema.json" for kind in SCHEMAS) == sorted(
        p.name for p in (tmp_path / "out").iterdir()
    )
    assert 2 == neither.exit_code
