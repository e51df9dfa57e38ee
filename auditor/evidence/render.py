"""The evidence report's renderings: JSON, CSV and HTML (a Jinja2 template) of one document."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2

from auditor.core.adequacy import SAFEGUARD_NAMES
from auditor.evidence.report import CSV_COLUMNS

# -- rendering -----------------------------------------------------------------------------------


def render_json(document: Mapping[str, Any]) -> str:
    """The document as indented JSON, ending in a newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_csv(document: Mapping[str, Any]) -> str:
    """The findings of the document as CSV, one row per finding (CSV_COLUMNS)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in document["findings"]["items"]:
        waiver = item["waiver"] or {}
        row = {
            **item,
            "waiver_reason": waiver.get("reason"),
            "waiver_approver": waiver.get("approver"),
            "waiver_expires": waiver.get("expires"),
            "waiver_created_at": waiver.get("created_at"),
            "waiver_state": waiver.get("state_at_end"),
        }
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor.evidence", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
    )
    environment.filters["safeguard"] = lambda name: SAFEGUARD_NAMES.get(name, name)
    return environment


def render_html(document: Mapping[str, Any]) -> str:
    """The document as one self-contained HTML page (inline styles, no scripts or external files)."""
    return _templates().get_template("report.html").render(doc=document)


def render(document: Mapping[str, Any], output_format: str) -> str:
    """The document in one of FORMATS."""
    if output_format == "json":
        return render_json(document)
    if output_format == "csv":
        return render_csv(document)
    return render_html(document)
