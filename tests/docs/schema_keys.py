"""The keys a JSON Schema allows, as the dotted paths the reference pages document."""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "<name>"
"""A path segment standing for any key of a mapping whose keys the user chooses."""


def key_paths(schema: dict[str, Any]) -> set[str]:
    """Every key path of a schema: `dns.timeout`, `transfer.certifications[].since`,
    `data_sources.<name>.url`; a list of mappings adds `[]` to its key."""
    definitions = schema.get("$defs", {})
    paths: set[str] = set()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        while isinstance(ref, str):
            node = definitions[ref.removeprefix("#/$defs/")]
            ref = node.get("$ref")
        return node

    def walk(node: dict[str, Any], prefix: str, seen: frozenset[str]) -> None:
        node = resolve(node)
        for option in node.get("anyOf", []) + node.get("oneOf", []):
            walk(option, prefix, seen)
        if "items" in node and isinstance(node["items"], dict):
            walk(node["items"], f"{prefix}[]", seen)
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            if path not in seen:
                walk(sub, path, seen | {path})
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            walk(extra, f"{prefix}.{PLACEHOLDER}" if prefix else PLACEHOLDER, seen)

    walk(schema, "", frozenset())
    return paths


def documented(path: str, keys: set[str]) -> bool:
    """Whether a documented key stands for `path`: equal, segment by segment, where a
    documented `<...>` segment (`jobs.<job>.interval`) stands for any one segment."""
    parts = path.split(".")
    return any(_matches(key.split("."), parts) for key in keys)


def _matches(pattern: list[str], parts: list[str]) -> bool:
    if len(pattern) != len(parts):
        return False
    for want, have in zip(pattern, parts, strict=True):
        wildcard = want.startswith("<") and want.removesuffix("[]").endswith(">")
        if wildcard and want.endswith("[]") == have.endswith("[]"):
            continue
        if want != have:
            return False
    return True
