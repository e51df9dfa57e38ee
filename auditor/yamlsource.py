"""Safe YAML loading that remembers the line of every value, so errors can point at it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import InvalidInputError, Issue

Loc = tuple[str | int, ...]


# libyaml's parser where PyYAML was built with it: ten times faster on large inventories.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type, misc]
    """A safe loader with YAML 1.2 booleans: only true/false, so Norway's `NO` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML file and the line (1-based) where each value starts."""

    source: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Return the line of the value at `loc`, or of its nearest enclosing value."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def _record(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _record(value_node, (*loc, key_node.value), lines)
                # An error about a key points at the key, not at a value on the next line.
                lines[(*loc, key_node.value)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*loc, index), lines)


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse YAML text with `yaml.safe_load` semantics and YAML 1.2 booleans.

    Raises:
        InvalidInputError: the text is not well-formed YAML (naming the line).
    """
    try:
        # One parse gives both the node tree (for lines) and the data built from it.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError([Issue(source, f"not valid YAML: {problem}", line=line)]) from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        _record(node, (), lines)
    return YamlDocument(source=source, data=data, lines=lines)


def load_yaml(path: Path, source: str | None = None) -> YamlDocument:
    """Read and parse a YAML file.

    Raises:
        InvalidInputError: the file cannot be read or is not well-formed YAML.
    """
    name = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError([Issue(name, f"cannot read: {reason}")]) from exc
    return parse_yaml(text, name)


def yaml_files(paths: Sequence[Path], noun: str) -> tuple[list[Path], list[Issue]]:
    """Expand files and directories (searched recursively) into the YAML files they hold, sorted.

    `noun` names what the files hold, for the messages ("inventory", "retention").
    """
    files: list[Path] = []
    issues: list[Issue] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file()
            )
            if not found:
                issues.append(Issue(str(path), f"directory holds no .yaml {noun} files"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            issues.append(Issue(str(path), f"{noun} file or directory does not exist"))
    return files, issues


def display_name(path: Path, base: Path | None) -> str:
    """The path relative to `base` (the config file's directory) when it is under it."""
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)
