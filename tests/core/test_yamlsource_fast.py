"""Plain YAML is built straight from the parser's events, with the line map made only on demand;
everything else goes the checked way. Both must give the same data and the same errors."""

from __future__ import annotations

import datetime

import pytest

from auditor.core.errors import InvalidInputError
from auditor.core.yamlsource import fast_load, parse_yaml

SAME = [
    "",
    "---\n",
    "a: 1\nb: [x, y]\nc: {d: e}\n",
    "a: yes\nb: NO\nc: True\nd: 0x10\ne: 1_000\nf: 1:20\ng: .inf\nh: 2021-02-03\nj: ~\nk: null\n",
    "l: '1'\nm: 1.5e3\nn: 2021-02-03T10:00:00Z\no: 0o17\np: 017\nq: -0b101\nr: +12\n",
    'a: "multi\\nline"\nb: >\n  folded\n  text\nc: |\n  lit\n',
    "a:\n  - b\n  -\n  - c: d\n",
    "? a\n",
    "1: a\n2.5: b\nnull: c\n2021-01-01: d\n",
    "x: 99999999999999999999999999\n",
    "- [1, [2, [3, {a: [4]}]]]\n",
]


@pytest.mark.parametrize("text", SAME)
def test_the_fast_path_builds_what_the_checked_path_builds(text: str) -> None:
    fast = fast_load(text)
    checked = parse_yaml(text + "# a: &anchor makes no difference in a comment\n", "x.yaml")
    assert fast == checked.data
    assert repr(fast) == repr(checked.data)  # the same types too (1 is not True, dates stay dates)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: 2\na: 3\n", 3),  # a key twice
        ("x:\n  y: 1\n  y: 2\n", 3),
        ("'a': 1\na: 2\n", 2),
        ("a: 2021-02-31\n", 1),  # no such day
        ("a: [1, 2\n", 2),  # not well-formed
    ],
)
def test_problems_are_reported_by_the_checked_path_with_their_line(text: str, line: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_yaml(text, "x.yaml")
    assert caught.value.issues[0].line == line


def test_anchors_aliases_and_merge_keys_take_the_checked_path() -> None:
    doc = parse_yaml("base: &b {a: 1}\nuse: *b\nmerged:\n  <<: *b\n  c: 2\n", "x.yaml")
    assert doc.data == {"base": {"a": 1}, "use": {"a": 1}, "merged": {"a": 1, "c": 2}}
    assert doc.line_of(("merged", "c")) == 5


def test_the_line_map_of_a_plain_document_is_built_when_a_line_is_asked_for() -> None:
    doc = parse_yaml("integrations:\n  - id: a\n    hosting: [DE]\n  - id: b\n", "x.yaml")
    assert doc.data == {"integrations": [{"id": "a", "hosting": ["DE"]}, {"id": "b"}]}
    assert doc._lines is None  # nothing asked yet: never built
    assert doc.line_of(("integrations", 1, "id")) == 4
    assert doc.line_of(("integrations", 0, "hosting", 0)) == 3
    assert doc.lines[("integrations",)] == 1


def test_a_date_is_a_date_on_both_paths() -> None:
    assert fast_load("d: 2026-11-22\n") == {"d": datetime.date(2026, 11, 22)}
