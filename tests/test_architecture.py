"""Architecture checks import-linter cannot make (its contracts in pyproject.toml keep the core
pure and the packages apart): only the shell reads the clock, and the CLI prints text for people
through its escaping printer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "auditor"


def test_datetime_now_appears_only_in_the_shell() -> None:
    """Nothing but the command line and the daemon reads the clock."""
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "datetime.now(" in path.read_text() or "date.today(" in path.read_text()
    )

    assert readers == [p for p in readers if p in {"cli/__init__.py", "service/daemon.py"}]


def test_cli_text_output_goes_through_the_escaping_printer() -> None:
    """Every `click.echo` in the CLI prints a machine format (JSON, YAML, CSV, HTML) or a fixed
    progress line; text for people goes through `say`, which escapes control characters, so a
    name or reason from a file or the database cannot recolour the terminal or forge a line."""
    allowed_sources = {"json.dumps", "inventory_stubs", "result.to_yaml", "schema_text", "text"}
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
