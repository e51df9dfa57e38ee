"""Comparing keys across databases and dialects: whether two key columns compare as integers or as
text, the SQL that makes every dialect sort and match text keys alike, and day bounds on times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# --- portable expressions ---------------------------------------------------------------------

KeyKind = Literal["integer", "text"]
"""How subject keys compare: as integers when both key columns are integers, else as text."""


def key_kind(first: ColumnElement[Any], second: ColumnElement[Any]) -> KeyKind:
    """Integers when both columns are integer columns; text (in a canonical form) otherwise."""
    both = isinstance(first.type, sa.Integer) and isinstance(second.type, sa.Integer)
    return "integer" if both else "text"


class _KeyTextType(TypeDecorator[str]):
    """Text, from whatever the driver returns (MySQL returns the binary form as bytes)."""

    impl = sa.String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", errors="surrogateescape")
        return None if value is None else str(value)


class key_text(FunctionElement[str]):
    """A key's canonical text, compared and sorted by code point on every dialect.

    PostgreSQL: `CAST(x AS TEXT) COLLATE "C"`; SQLite: `CAST(x AS TEXT) COLLATE BINARY`; MySQL
    and MariaDB: `CAST(CONVERT(x USING utf8mb4) AS BINARY)` (their default collations ignore case
    and trailing spaces). In UTF-8, byte order is code point order, which is Python's `str`
    order, so a merge in Python agrees with the database's ORDER BY.
    """

    type = _KeyTextType()
    inherit_cache = True


def _argument(element: key_text, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(key_text)
def _key_text_default(element: key_text, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.cast(next(iter(element.clauses)), sa.String()), **kw)


@compiles(key_text, "postgresql")
def _key_text_postgresql(element: key_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f'CAST({_argument(element, compiler, **kw)} AS TEXT) COLLATE "C"'


@compiles(key_text, "sqlite")
def _key_text_sqlite(element: key_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_argument(element, compiler, **kw)} AS TEXT) COLLATE BINARY"


@compiles(key_text, "mysql")
@compiles(key_text, "mariadb")
def _key_text_mysql(element: key_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(CONVERT({_argument(element, compiler, **kw)} USING utf8mb4) AS BINARY)"


def sort_key(column: ColumnElement[Any], kind: KeyKind) -> ColumnElement[Any]:
    """The expression to select and ORDER BY for a merge: the integer, or the canonical text."""
    return column if kind == "integer" else key_text(column)


def joinable_forms(
    first: ColumnElement[Any],
    second: ColumnElement[Any],
    kind: KeyKind,
    dialect: str,
    collations: tuple[str | None, str | None] = (None, None),
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The two keys in forms that are equal, and are DISTINCT alike, exactly when `keys_match`
    says they name the same subject: as they are where it compares them as they are on
    PostgreSQL (integers; two text columns of one collation), so that an index on either gives
    the order of a merge join; else both as `key_text`. For joining lists of distinct keys,
    where `keys_match`'s forms on SQLite, MySQL and MariaDB would let a column's collation
    merge two keys that differ.
    """
    if kind == "integer":
        return first, second
    both_text = isinstance(first.type, sa.String) and isinstance(second.type, sa.String)
    if both_text and dialect == "postgresql" and collations[0] == collations[1]:
        return first, second
    return key_text(first), key_text(second)


def keys_match(
    first: ColumnElement[Any],
    second: ColumnElement[Any],
    kind: KeyKind,
    dialect: str,
    collations: tuple[str | None, str | None] = (None, None),
) -> ColumnElement[bool]:
    """Whether two keys name the same subject: equal integers, or identical canonical text.

    Two text columns are compared so that an index on `first` can serve, where that cannot
    fail: on SQLite under BINARY; on PostgreSQL as they are when they share a collation (its
    deterministic collations equal identical text only); on MySQL and MariaDB under `first`'s
    collation (`collations` are the two columns'), in front of the exact test. Otherwise, both
    sides are compared as `key_text`.
    """
    if kind == "integer":
        return first == second
    exact = key_text(first) == key_text(second)
    if not (isinstance(first.type, sa.String) and isinstance(second.type, sa.String)):
        return exact
    if dialect == "sqlite":
        return first == sa.collate(second, "BINARY")
    mine, theirs = collations
    if dialect == "postgresql" and mine == theirs:
        return first == second
    if dialect in {"mysql", "mariadb"} and mine is not None:
        # Two implicit collations are an "illegal mix": bring `second` into `first`'s.
        near = first == second if mine == theirs else first == _in_collation(second, mine)
        return sa.and_(near, exact)
    return exact


class _convert_using(FunctionElement[str]):  # lower case: it reads like the SQL it is
    """MySQL's `CONVERT(x USING charset)`; the charset comes from reflection, never config."""

    type = sa.String()
    inherit_cache = False  # `charset` is not part of the cache key: never cache

    def __init__(self, expression: ColumnElement[Any], charset: str) -> None:
        if not _CHARSET.match(charset):
            raise ValueError(f"not a character set name: {charset!r}")
        self.charset = charset
        super().__init__(expression)


_CHARSET = re.compile(r"^[A-Za-z0-9_]+$")


@compiles(_convert_using)
def _convert_using_mysql(element: _convert_using, compiler: SQLCompiler, **kw: Any) -> str:
    argument = compiler.process(next(iter(element.clauses)), **kw)
    return f"CONVERT({argument} USING {element.charset})"


def _in_collation(expression: ColumnElement[Any], collation: str) -> ColumnElement[Any]:
    charset = collation.split("_", 1)[0]
    return sa.collate(_convert_using(expression, charset), collation)


def before_day(column: ColumnElement[Any], day: date, dialect: str) -> ColumnElement[bool]:
    """The column's date or instant is before `day` starts (00:00 UTC)."""
    value, start = _day_start(column, day, dialect)
    return value < start


def from_day(column: ColumnElement[Any], day: date, dialect: str) -> ColumnElement[bool]:
    """The column's date or instant is on `day` (from 00:00 UTC) or later."""
    value, start = _day_start(column, day, dialect)
    return value >= start


def _day_start(
    column: ColumnElement[Any], day: date, dialect: str
) -> tuple[ColumnElement[Any], ColumnElement[Any] | Any]:
    if dialect == "sqlite":
        # SQLite keeps dates as text: julianday() reads ISO 8601 with a space or a T, with or
        # without an offset (converted to UTC) or fractional seconds, where text order would not.
        return sa.func.julianday(column), sa.func.julianday(sa.literal(day.isoformat()))
    if isinstance(column.type, sa.DateTime):
        start = datetime.combine(day, time(), tzinfo=UTC)
        if not column.type.timezone:
            start = start.replace(tzinfo=None)  # a naive column holds UTC (the session is UTC)
        return column, start
    return column, day
