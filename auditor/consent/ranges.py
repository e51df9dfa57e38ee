"""Key ranges that divide the consent pushdown's count on PostgreSQL among its parallel workers:
cut points taken from the planner's statistics of the shared key."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from auditor.sources.keys import KeyKind
from auditor.sources.schema_check import BoundTable

MAX_PIECES = 16
"""At most this many key ranges, whatever the server allows per query."""

_LEADS_AN_INDEX = """EXISTS (
    SELECT 1
    FROM pg_index AS i
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = ic.relam
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass(:{table}) AND a.attname = :{column}
      AND am.amname = 'btree' AND i.indpred IS NULL)"""

_SURVEY = sa.text(
    f"""
SELECT current_setting('max_parallel_workers_per_gather')::int,
       {_LEADS_AN_INDEX.format(table="shared", column="key")},
       {_LEADS_AN_INDEX.format(table="consents", column="subject")},
       (SELECT s.histogram_bounds::text::text[]
        FROM pg_stats AS s
        JOIN pg_namespace AS n ON n.nspname = s.schemaname
        JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.tablename
        WHERE c.oid = to_regclass(:shared) AND s.attname = :key
        ORDER BY s.inherited DESC
        LIMIT 1)
"""
)


def key_cuts(
    connection: Connection, shared: BoundTable, consents: BoundTable, kind: KeyKind
) -> list[Any]:
    """Ascending keys that cut the shared table's keys into as many ranges as PostgreSQL runs
    processes for one query (its workers per Gather, and the leader), holding about as many
    rows each by the table's statistics.

    None where the ranges would not be read once each in key order: when the shared key or
    the consents' subject leads no B-tree index (each range would scan the whole table); and
    none without statistics (a view, a table not yet analysed) or without parallel workers.
    Whatever the cuts, each key falls in exactly one range: the counts do not depend on them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the server could not be asked (the caller translates).
    """
    preparer = connection.dialect.identifier_preparer
    parameters = {
        "shared": preparer.format_table(shared.table),
        "key": shared.column("key").name,
        "consents": preparer.format_table(consents.table),
        "subject": consents.column("subject").name,
    }
    workers, key_indexed, subject_indexed, bounds = connection.execute(_SURVEY, parameters).one()
    pieces = min(int(workers) + 1, MAX_PIECES)
    if pieces < 2 or not (key_indexed and subject_indexed and bounds):
        return []
    values: list[Any] = [int(value) for value in bounds] if kind == "integer" else list(bounds)
    cuts = [values[len(values) * piece // pieces] for piece in range(1, pieces)]
    return list(dict.fromkeys(cuts))  # a value frequent enough to recur cuts once
