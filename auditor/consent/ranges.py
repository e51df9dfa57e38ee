"""Key ranges that divide the consent pushdown's count on PostgreSQL among its parallel workers:
cut points taken from the planner's statistics of the consents' subjects."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from auditor.sources.keys import KeyKind
from auditor.sources.schema_check import BoundTable

MAX_PIECES = 16
"""At most this many key ranges, whatever the server allows per query."""

# Of each table (found as the statement finds it): its schema and name, and whether its key
# column leads a B-tree index over all its rows.
_TABLES = sa.text(
    """
SELECT t.side, n.nspname, c.relname,
       EXISTS (SELECT 1
               FROM pg_index AS i
               JOIN pg_class AS ic ON ic.oid = i.indexrelid
               JOIN pg_am AS am ON am.oid = ic.relam
               JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = c.oid AND a.attname = t.col
                 AND am.amname = 'btree' AND i.indpred IS NULL),
       current_setting('max_parallel_workers_per_gather')::int
FROM (VALUES ('shared', CAST(:shared AS text), CAST(:key AS name)),
             ('consents', CAST(:consents AS text), CAST(:subject AS name))) AS t (side, tab, col)
JOIN pg_class AS c ON c.oid = to_regclass(t.tab)
JOIN pg_namespace AS n ON n.oid = c.relnamespace
"""
)

# A column's histogram bounds, in its order; pg_stats asked by schema, table and column names,
# so that it reads its catalogues by index.
_HISTOGRAM = sa.text(
    """
SELECT histogram_bounds::text::text[]
FROM pg_stats
WHERE schemaname = :schema AND tablename = :table AND attname = :column
ORDER BY inherited DESC
LIMIT 1
"""
)


def key_cuts(
    connection: Connection, shared: BoundTable, consents: BoundTable, kind: KeyKind
) -> list[Any]:
    """Ascending keys that cut the keys into as many ranges as PostgreSQL runs processes for
    one query (its workers per Gather, and the leader), each holding about as many consents by
    the histogram of their subjects (else of the shared keys): a range's time follows its
    consents and the shared subjects that hold them, where rows of the shared table outside
    its filter cost little.

    None where the ranges would not be read once each in key order: when the shared key or
    the consents' subject leads no B-tree index (each range would scan the whole table); and
    none without statistics (a view, a table not yet analysed) or without parallel workers.
    Whatever the cuts, each key falls in exactly one range: the counts do not depend on them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the server could not be asked (the caller translates).
    """
    preparer = connection.dialect.identifier_preparer
    columns = {"shared": shared.column("key").name, "consents": consents.column("subject").name}
    found = connection.execute(
        _TABLES,
        {
            "shared": preparer.format_table(shared.table),
            "key": columns["shared"],
            "consents": preparer.format_table(consents.table),
            "subject": columns["consents"],
        },
    ).all()
    tables = {side: (schema, name, indexed) for side, schema, name, indexed, _ in found}
    pieces = min(int(found[0][-1]) + 1, MAX_PIECES) if found else 1
    if pieces < 2 or len(tables) < 2 or not all(facts[2] for facts in tables.values()):
        return []
    for side in ("consents", "shared"):
        schema, name, _ = tables[side]
        parameters = {"schema": schema, "table": name, "column": columns[side]}
        bounds = connection.execute(_HISTOGRAM, parameters).scalar()
        if bounds:
            break
    else:
        return []
    values: list[Any] = [int(value) for value in bounds] if kind == "integer" else bounds
    cuts = [values[len(values) * piece // pieces] for piece in range(1, pieces)]
    # The bounds are in the columns' order (one collation, or integers), so the cuts ascend;
    # equal ones (a value frequent enough to recur) would make an empty range: cut once.
    return list(dict.fromkeys(cuts))
