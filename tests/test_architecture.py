"""The functional core imports no adapter library, and only the composition root names adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "auditor"
CORE = [
    "model",
    "errors",
    "durations",
    "ports",
    "policies",
    "places",
    "adequacy",
    "inventory",
    "validation",
    "yamlsource",
    "jsonsource",
    "iso3166",
    "audit",
    "rules",
    "staleness",
]
FORBIDDEN = {
    "sqlalchemy",
    "dns",
    "geoip2",
    "maxminddb",
    "prometheus_client",
    "apscheduler",
    "structlog",
    "requests",
    "auditor.probes",
    "auditor.store",
    "auditor.daemon",
    "auditor.cli",
    "auditor.wiring",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def core_files() -> list[Path]:
    files = []
    for name in CORE:
        package = PACKAGE / name
        files.extend(
            sorted(package.rglob("*.py")) if package.is_dir() else [PACKAGE / f"{name}.py"]
        )
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_no_adapter(path: Path) -> None:
    """Core modules stay pure: no DNS, GeoIP, SQL, metrics, scheduler, logging or HTTP library."""
    bad = {
        m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)
    }

    assert set() == bad


def test_datetime_now_appears_only_in_the_shell() -> None:
    """Nothing but the command line and the daemon reads the clock."""
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "datetime.now(" in path.read_text() or "date.today(" in path.read_text()
    )

    assert readers == [p for p in readers if p in {"cli/__init__.py", "daemon.py"}]


def test_cli_text_output_goes_through_the_escaping_printer() -> None:
    """Every `click.echo` in the CLI prints a machine format (JSON, YAML, CSV, HTML) or a fixed
    progress line; text for people goes through `say`, which escapes control characters, so a
    name or reason from a file or the database cannot recolour the terminal or forge a line."""
    allowed_sources = {"json.dumps", "inventory_stubs", "result.to_yaml", "text"}
    offenders = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "echo"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "click"
            ):
                continue
            first = node.args[0] if node.args else None
            source = ast.unparse(first.func if isinstance(first, ast.Call) else first or node)
            constant = isinstance(first, ast.Constant) or (
                isinstance(first, ast.IfExp)
                and isinstance(first.body, ast.Constant)
                and isinstance(first.orelse, ast.Constant)
            )
            inside_say = path.name == "__init__.py" and source.startswith("'\\n'.join")
            progress = isinstance(first, ast.JoinedStr) and ast.unparse(first).startswith("f'\\r")
            json_pieces = "json.dumps" in ast.unparse(first) if first is not None else False
            if source in allowed_sources or constant or inside_say or progress or json_pieces:
                continue
            offenders.append(f"{path.name}:{node.lineno}: click.echo({source})")
    assert [] == offenders
