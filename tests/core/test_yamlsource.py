"""The one YAML loader: duplicate keys at any depth, recursive aliases and alias bombs are errors
naming file and line, and the line map records each written value once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.config import load_config
from auditor.core.errors import InvalidInputError, Issue
from auditor.core.yamlsource import MAX_ALIAS_NODES, parse_yaml


def issues_of(text: str) -> list[Issue]:
    with pytest.raises(InvalidInputError) as caught:
        parse_yaml(textwrap.dedent(text), "f.yaml")
    return list(caught.value.issues)


def alias_bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level an anchored list of `width` aliases to the one before."""
    lines = ["l0: &l0 [" + ",".join(["lol"] * width) + "]"]
    lines += [
        f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * width) + "]"
        for level in range(1, levels)
    ]
    return "\n".join(lines) + f"\nintegrations: [*l{levels - 1}]\n"


class TestDuplicateKeys:
    def test_a_second_hosting_key_in_an_inventory_entry_is_an_error_not_a_silent_de(
        self, tmp_path: Path
    ) -> None:
        """`hosting: [CN]` then `hosting: [DE]` in one entry: exit 2 naming file, line and key."""
        text = textwrap.dedent(
            """\
            integrations:
              - id: crm
                name: CRM
                category: crm
                role: processor
                data_categories: [contact]
                hosting: [CN]
                backups: {regions: [DE], retention: P30D}
                retention: P1Y
                contract: {dpa_signed: 2024-01-01}
                hosting: [DE]
            """
        )
        (tmp_path / "inventory.yaml").write_text(text)
        config = tmp_path / "auditor.yaml"
        config.write_text("inventory: [inventory.yaml]\n")
        lines = text.splitlines()
        first, second = (n for n, line in enumerate(lines, start=1) if "hosting:" in line)
        assert "[CN]" in lines[first - 1] and "[DE]" in lines[second - 1]

        result = CliRunner().invoke(cli, ["validate", "--config", str(config)])

        assert 2 == result.exit_code, result.output
        assert f"inventory.yaml:{second}: integrations[0].hosting: duplicate key 'hosting'" in (
            result.stderr
        )
        assert f"first on line {first}" in result.stderr
        assert "Traceback" not in result.output

    @pytest.mark.parametrize(
        ("text", "line", "field"),
        [
            ("a: 1\nb: 2\na: 3\n", 3, "a"),
            ("a:\n  b:\n    - c: 1\n      d: 2\n      c: 3\n", 5, "a.b[0].c"),
            ("a: {b: {c: 1, c: 2}}\n", 1, "a.b.c"),
            ("1: x\n0x1: y\n", 2, "0x1"),  # the same integer key, written twice
            ("a: true\nb:\n  true: 1\n  True: 2\n", 4, "b.True"),
        ],
    )
    def test_a_key_twice_in_one_mapping_at_any_depth_is_named_with_its_line(
        self, text: str, line: int, field: str
    ) -> None:
        """Flow and block mappings, nested in mappings and sequences, keys compared as values."""
        [issue] = issues_of(text)

        assert (line, field) == (issue.line, issue.field)
        assert issue.message.startswith("duplicate key")

    def test_every_duplicate_of_a_file_is_listed(self) -> None:
        issues = issues_of("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n")

        assert [(2, "a"), (5, "b.c")] == [(i.line, i.field) for i in issues]

    def test_a_configuration_with_a_key_twice_is_invalid(self, tmp_path: Path) -> None:
        """The same loader reads the configuration: a second `inventory` is not a silent override."""
        config = tmp_path / "auditor.yaml"
        config.write_text("inventory: [a.yaml]\ndns: {timeout: 2}\ninventory: [b.yaml]\n")

        with pytest.raises(InvalidInputError) as caught:
            load_config(config)

        assert [3] == [issue.line for issue in caught.value.issues]
        assert "duplicate key 'inventory'" in str(caught.value)

    def test_a_merge_key_overridden_by_the_mapping_is_not_a_duplicate(self) -> None:
        """`<<: *base` then the same key: YAML's merge says the mapping's own value wins."""
        doc = parse_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n", "f.yaml")

        assert {"x": 3, "y": 2} == doc.data["c"]


class TestAliases:
    @pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {x: 1, y: *a}\n"])
    def test_a_recursive_alias_is_an_error_naming_the_anchor(self, text: str) -> None:
        [issue] = issues_of(text)

        assert 1 == issue.line
        assert issue.message.startswith("recursive alias")

    def test_an_alias_bomb_is_refused_before_anything_is_built(self) -> None:
        """Nine levels of nine aliases (under 500 bytes) would stand for 387 million values."""
        text = alias_bomb(9)
        assert len(text) < 500

        [issue] = issues_of(text)

        assert "aliases expand this document" in issue.message
        assert f"{MAX_ALIAS_NODES:,}" in issue.message

    def test_aliases_within_the_limit_build_the_data_and_map_lines_once(self) -> None:
        """Four levels stand for 6,561 strings: accepted, but the line map holds only the 50
        written values (an alias is not followed), while the data repeats them."""
        doc = parse_yaml(alias_bomb(4), "f.yaml")

        assert 9**4 == len(_leaves(doc.data["integrations"]))
        assert len(doc.lines) < 50
        assert 1 == doc.line_of(("l0", 3))
        assert 5 == doc.line_of(("integrations", 0, 5, 2))  # an alias: the line that uses it

    def test_reuse_just_over_the_limit_is_refused_and_just_under_is_not(self) -> None:
        block = "base: &b [" + ", ".join(["x"] * 99) + "]\n"  # 100 values with its list
        under = block + "uses:\n" + "  - *b\n" * (MAX_ALIAS_NODES // 100)
        over = block + "uses:\n" + "  - *b\n" * (MAX_ALIAS_NODES // 100 + 1)

        assert MAX_ALIAS_NODES // 100 == len(parse_yaml(under, "f.yaml").data["uses"])
        [issue] = issues_of(over)
        assert "aliases expand this document" in issue.message


class TestValuesPythonCannotHold:
    @pytest.mark.parametrize(
        ("text", "line", "fragment"),
        [
            ("a: 1\nb: " + "9" * 4301 + "\n", 2, "4300 digits"),
            ("a: 1\nb: 2026-02-31\n", 2, "day is out of range"),
            ("a: 1\nb: [x, {c: 2026-13-01}]\n", 2, "month must be in 1..12"),
            ("a: 1\nb: \x01\n", 2, "control characters are not allowed"),
        ],
    )
    def test_values_python_cannot_build_are_errors_naming_the_line(
        self, text: str, line: int, fragment: str
    ) -> None:
        [issue] = issues_of(text)

        assert line == issue.line
        assert fragment in issue.message
        assert "set_int_max_str_digits" not in issue.message

    def test_a_byte_order_mark_is_skipped(self) -> None:
        assert {"a": 1} == parse_yaml("\ufeffa: 1\n", "f.yaml").data


def _leaves(value: object) -> list[object]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
