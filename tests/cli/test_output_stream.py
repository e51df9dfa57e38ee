"""The JSON output is written item by item, in chunks: any number of items gives valid JSON."""

from __future__ import annotations

import io
import json

import pytest

from auditor.cli.output import _write_items


@pytest.mark.parametrize("count", [0, 1, 2, 511, 512, 513, 1024, 1025, 2000])
def test_lists_of_any_length_are_written_as_valid_json_one_item_per_line(count: int) -> None:
    items = [{"n": number, "text": "é"} for number in range(count)]
    stream = io.StringIO()
    _write_items(iter(items), stream)
    text = stream.getvalue()
    assert json.loads(text) == items
    assert text.count("\n") == (count + 1 if count else 0)
