"""Safe YAML loading that remembers the line of every value, so errors can point at it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from auditor.core.errors import InvalidInputError, Issue

Loc = tuple[str | int, ...]


# libyaml's parser where PyYAML was built with it: ten times faster on large inventories.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_ALIAS_NODES = 100_000
"""How many values aliases may add to a document by repeating anchored ones: far more than any
hand-written reuse needs (a block of 20 values repeated 5,000 times), far fewer than a "billion
laughs" document of a few hundred bytes expands to."""


class YamlDocument:
    """A parsed YAML file and the line (1-based) where each value starts.

    The line map is built when something first asks for a line (an error to report): a valid
    file is parsed once, straight into data, and never pays for it.
    """

    __slots__ = ("_lines", "_text", "data", "source")

    def __init__(
        self, source: str, data: Any, lines: dict[Loc, int] | None = None, text: str | None = None
    ) -> None:
        self.source = source
        self.data = data
        self._lines = lines
        self._text = text  # parsed again for the line map, when one is asked for

    @property
    def lines(self) -> dict[Loc, int]:
        """The line of every value and key, by location (built on first use)."""
        if self._lines is None:
            self._lines = line_map(self._text, self.source) if self._text is not None else {}
            self._text = None
        return self._lines

    def line_of(self, loc: Loc) -> int | None:
        """Return the line of the value at `loc`, or of its nearest enclosing value."""
        lines = self.lines
        for end in range(len(loc), -1, -1):
            line = lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


class _Loader(_SafeLoader):  # type: ignore[valid-type, misc]
    """A safe loader with YAML 1.2 booleans (only true/false, so Norway's `NO` stays a string)
    whose construction errors name the value's line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            # An integer past Python's 4,300 digits, a 31 February: not YAMLErrors by themselves.
            text = str(node.value)
            shown = text if len(text) <= 40 else text[:37] + "..."
            reason = str(exc).split(";")[0]  # not Python's advice on sys.set_int_max_str_digits
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown!r}: {reason}", node.start_mark
            ) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class _Unusual(Exception):
    """A document the event builder leaves to the full path (anchors, tags, merge keys, ...)."""


_SCALAR, _MAP_START, _MAP_END = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.MappingEndEvent
_SEQ_START, _SEQ_END = yaml.SequenceStartEvent, yaml.SequenceEndEvent
_NULL, _BOOL = "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_BUILT_BY_CONSTRUCTOR = frozenset(
    {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
)
_TRUE = frozenset({"true", "True", "TRUE"})
_NO_KEY = object()


def fast_load(text: str) -> Any:
    """Build the data of a plain YAML document straight from the parser's events.

    Gives what the full path gives (the same implicit types, YAML 1.2 booleans), without a node
    graph or a line map. Raises _Unusual for anything it leaves to the full path: anchors,
    aliases, explicit tags, merge keys, collections as keys, a key twice, several documents;
    parse and construction errors propagate, and the full path reports them.

    It stays one loop of about 60 lines: one event at a time, no calls on the common path.
    """
    loader = _Loader(text)
    try:
        get = loader.get_event
        resolvers = loader.yaml_implicit_resolvers
        wildcard = resolvers.get(None, [])
        get()  # StreamStartEvent
        if isinstance(get(), yaml.StreamEndEvent):
            return None  # an empty stream
        stack: list[list[Any]] = []  # [container, pending key, is a mapping]
        while True:
            event = get()
            kind = event.__class__
            if kind is _SCALAR:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                value: Any = event.value
                if event.implicit[0]:  # plain: its type is resolved from its text
                    for tag, regexp in resolvers.get(value[:1], []) + wildcard:
                        if regexp.match(value):
                            if tag == _NULL:
                                value = None
                            elif tag == _BOOL:
                                value = value in _TRUE
                            elif tag in _BUILT_BY_CONSTRUCTOR:
                                node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
                                value = loader.yaml_constructors[tag](loader, node)
                            else:
                                raise _Unusual  # a merge key or a `=` value
                            break
            elif kind is _MAP_START or kind is _SEQ_START:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                if stack and stack[-1][2] and stack[-1][1] is _NO_KEY:
                    raise _Unusual  # a collection as a key
                stack.append([{}, _NO_KEY, True] if kind is _MAP_START else [[], None, False])
                continue
            elif kind is _MAP_END or kind is _SEQ_END:
                value = stack.pop()[0]
            else:
                raise _Unusual  # an alias
            if not stack:
                break
            top = stack[-1]
            if not top[2]:
                top[0].append(value)
            elif top[1] is _NO_KEY:
                if value in top[0]:
                    raise _Unusual  # a key twice: the full path reports it
                top[1] = value
            else:
                top[0][top[1]] = value
                top[1] = _NO_KEY
        if not isinstance(get(), yaml.DocumentEndEvent) or not isinstance(
            get(), yaml.StreamEndEvent
        ):
            raise _Unusual  # several documents
        return value
    finally:
        loader.dispose()


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
"""The tag of a `<<` merge key, which has no value of its own to build."""


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _children(node: yaml.Node) -> list[tuple[str | int | None, yaml.Node]]:
    """A collection's nodes with their keys (mapping values) or indexes; key nodes get None."""
    if isinstance(node, yaml.MappingNode):
        pairs: list[tuple[str | int | None, yaml.Node]] = []
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            pairs += [(None, key_node), (key, value_node)]
        return pairs
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    return []


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Checker:
    """Walks the composed node graph once, before any data is built from it, and maps lines.

    It refuses what the data would hide or blow up on: a key twice in one mapping (the later
    value would silently replace the earlier), an alias inside the value it names (a recursive
    structure), and aliases that expand the document by more than MAX_ALIAS_NODES values. Each
    node is visited once however many aliases name it, so a "billion laughs" costs its size in
    bytes, never its expansion; the line map records the anchored values once, at the anchor.
    """

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.issues: list[Issue] = []
        self.lines: dict[Loc, int] = {}

    def check(self, root: yaml.Node) -> None:
        expanded: dict[int, int] = {}  # node id -> the values it stands for, aliases expanded
        ancestors: set[int] = set()
        # Post-order without recursion: libyaml accepts a thousand levels of nesting.
        stack: list[tuple[yaml.Node, Loc | None, bool]] = [(root, (), False)]
        while stack:
            node, loc, done = stack.pop()
            ident = id(node)
            if done:
                ancestors.discard(ident)
                expanded[ident] = 1 + sum(expanded[id(child)] for _, child in _children(node))
                continue
            if ident in ancestors:
                message = "recursive alias: the value anchored here contains an alias to itself"
                raise InvalidInputError([Issue(self.source, message, line=_line(node))])
            if ident in expanded:
                continue  # an alias to a value already walked
            ancestors.add(ident)
            if loc is not None:
                self.lines.setdefault(loc, _line(node))  # a key's line, set first, stays
            if isinstance(node, yaml.MappingNode):
                self._duplicates(node, loc)
            stack.append((node, loc, True))
            for key, child in reversed(_children(node)):
                child_loc = None if loc is None or key is None else (*loc, key)
                stack.append((child, child_loc, False))
        added = expanded[id(root)] - len(expanded)
        if added > MAX_ALIAS_NODES:
            message = (
                f"aliases expand this document by {added:.3g} values, more than the "
                f'{MAX_ALIAS_NODES:,} allowed (a "billion laughs"?): anchor less, or write '
                "the values out"
            )
            raise InvalidInputError([Issue(self.source, message, line=1)])

    def _duplicates(self, node: yaml.MappingNode, loc: Loc | None) -> None:
        first: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a collection as a key is refused when the data is built
            line = _line(key_node)
            if loc is not None:
                # An error about a key points at the key, not at a value on the next line.
                self.lines.setdefault((*loc, key_node.value), line)
            # The key as the data holds it: `1` and `0x1`, `true` and `True` are one key.
            if key_node.tag in (_STR, _MERGE):
                key: object = (key_node.tag, key_node.value)  # most keys: no need to build them
            else:
                key = self.loader.construct_object(key_node)
                key = (_STR, key) if isinstance(key, str) else key
            if key not in first:
                first[key] = line
                continue
            message = (
                f"duplicate key {key_node.value!r} (first on line {first[key]}): each key may "
                "appear once in a mapping; the later value would silently replace the earlier"
            )
            where = _path((*loc, key_node.value)) if loc is not None else None
            self.issues.append(Issue(self.source, message, field=where, line=line))


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse YAML text with `yaml.safe_load` semantics and YAML 1.2 booleans.

    Plain documents (no anchors, aliases, tags or merge keys) are built straight from the
    parser's events, and their line map only when a line is asked for; anything else, and every
    document with a problem, takes the full path that checks and maps the node graph.

    Raises:
        InvalidInputError: the text is not well-formed YAML (naming the line), holds a key twice
            in one mapping, a recursive alias, or aliases expanding it past MAX_ALIAS_NODES.
    """
    try:
        data = fast_load(text)
    except (_Unusual, yaml.YAMLError, ValueError, OverflowError, TypeError, RecursionError):
        return _checked_parse(text, source)
    return YamlDocument(source=source, data=data, text=text)


def line_map(text: str, source: str) -> dict[Loc, int]:
    """The line of every value and key of a YAML text by location; empty if it does not parse."""
    try:
        return _checked_parse(text, source).lines
    except InvalidInputError:
        return {}


def _checked_parse(text: str, source: str) -> YamlDocument:
    """Parse via the node graph: check it (duplicate keys, aliases), map its lines, build the data."""
    try:
        # One parse gives both the node tree (for lines and checks) and the data built from it.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            checker = _Checker(loader, source)
            if node is not None:
                checker.check(node)
            if checker.issues:
                raise InvalidInputError(checker.issues)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
            line = text.count("\n", 0, exc.position) + 1
            problem = str(exc).split("\n")[0]  # not the position in the text: the line says it
        raise InvalidInputError([Issue(source, f"not valid YAML: {problem}", line=line)]) from exc
    except RecursionError:
        # PyYAML's own parser, where libyaml is missing, recurses once per level of nesting.
        message = "not valid YAML: nested too deeply"
        raise InvalidInputError([Issue(source, message)]) from None
    return YamlDocument(source=source, data=data, lines=checker.lines)


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
