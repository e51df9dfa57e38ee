"""The state database's tables (SQLAlchemy Core) and the UTC-aware timestamp type they use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores timezone-aware datetimes as UTC and always returns them aware, on SQLite too.

    SQLite has no time zone type: the UTC wall time is stored and UTC is put back on reading.
    A naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use timezone-aware UTC")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit identities.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column[Any]:
    return Column("id", Id, primary_key=True, autoincrement=True)


schema_meta = Table(
    "schema_meta",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: one row
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

audit_runs = Table(
    "audit_runs",
    metadata,
    _id(),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("tool_version", String(64), nullable=False),
    Column("config_digest", String(128), nullable=False),
    Column("policy_digest", String(128), nullable=False),
    Column("as_of", Date),
    Column("geoip_built", UTCDateTime),  # the GeoIP country database's build time
    Column("datasets", Json, nullable=False, default=list),  # every data set with its build time
    Column("integrations", Integer, nullable=False, default=0),
    Column("hostnames", Integer, nullable=False, default=0),
    Column("findings", Integer, nullable=False, default=0),  # open after this run
    Column("new", Integer, nullable=False, default=0),
    Column("resolved", Integer, nullable=False, default=0),
    Column("reopened", Integer, nullable=False, default=0),
    # Since schema version 3: findings kept open because a probe they rest on failed, and the
    # probes that failed (endpoint hostnames: not personal data).
    Column("carried", Integer, nullable=False, default=0, server_default="0"),
    Column("probes_failed", Json, nullable=False, default=list, server_default="[]"),
    CheckConstraint("outcome IN ('running', 'success', 'error', 'interrupted')", name="outcome"),
    Index(None, "outcome", "id"),
)

run_integrations = Table(
    "run_integrations",
    metadata,
    Column("run_id", Id, ForeignKey("audit_runs.id"), primary_key=True),
    Column("integration", String, primary_key=True),
    Column("category", String, nullable=False),
)

observations = Table(
    "observations",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("audit_runs.id"), nullable=False, index=True),
    Column("integration", String, nullable=False),
    Column("hostname", String, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("addresses", Json, nullable=False),
    Column("cname_chain", Json, nullable=False),
    Column("countries", Json, nullable=False),  # one per address, null where unknown
    Column("edge_reason", Text),
)

place_checks = Table(
    "place_checks",
    metadata,
    _id(),
    Column("run_id", Id, ForeignKey("audit_runs.id"), nullable=False, index=True),
    Column("integration", String, nullable=False),
    Column("facet", String(16), nullable=False),
    Column("place", String, nullable=False),
    Column("country", String(2)),
    Column("verdict", String(32), nullable=False),  # 16 in schema version 1
    Column("basis", Text, nullable=False),
    Column("via", Text),
)

findings = Table(
    "findings",
    metadata,
    _id(),
    Column("rule", String, nullable=False),
    Column("integration", String, nullable=False),
    # "" rather than NULL: NULLs never collide in a unique constraint, so the identity would not hold.
    Column("facet", String(16), nullable=False),
    Column("place", String, nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("article", String, nullable=False),
    Column("country", String(2)),
    Column("message", Text, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("reopened", Integer, nullable=False, default=0),  # how many times it came back
    Column("first_run_id", Id, ForeignKey("audit_runs.id")),
    Column("last_run_id", Id, ForeignKey("audit_runs.id")),
    # Since schema version 3. The probes the last evidence came from ("endpoint:HOST"); while
    # one fails the finding is carried: kept open, `carried_since` the first run that could not
    # see it and `carried_reason` why, both null once a run sees it again.
    Column("probes", Json, nullable=False, default=list, server_default="[]"),
    Column("carried_since", UTCDateTime),
    Column("carried_reason", Text),
    UniqueConstraint("rule", "integration", "facet", "place"),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    Index(None, "status", "integration"),
)

finding_events = Table(
    "finding_events",
    metadata,
    _id(),
    Column("finding_id", Id, ForeignKey("findings.id"), nullable=False, index=True),
    Column("run_id", Id, ForeignKey("audit_runs.id"), index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("change", String(16), nullable=False),
    Column("detail", Json, nullable=False),
    CheckConstraint(
        "change IN ('new', 'resolved', 'reopened', 'waived', 'unwaived', 'waiver-expired')",
        name="change",
    ),
)

waivers = Table(
    "waivers",
    metadata,
    _id(),
    Column("finding_id", Id, ForeignKey("findings.id"), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("approver", String, nullable=False),
    Column("expires", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String),
    # When the waiver-expired event was recorded, so that it is recorded once.
    Column("expiry_recorded_at", UTCDateTime),
)

evidence = Table(
    "evidence",
    metadata,
    # Append-only: each record hashes its content and the previous record (auditor/evidence/chain.py).
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String, nullable=False, index=True),
    Column("content", Text, nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prev_hash", String(64), nullable=False),
    Column("mac", String(64)),
)

imported_consents = Table(
    "imported_consents",
    metadata,
    # Consents loaded from a consent platform's export (`consent import`). The subject key is
    # only here as an HMAC-SHA256 with GDPR_AUDITOR_SUBJECT_KEY: never in clear.
    _id(),
    Column("subject_hash", String(64), nullable=False),
    Column("purpose", String, nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime),
    Column("source_digest", String(64), nullable=False),  # sha256 of the file that brought it
    Column("imported_at", UTCDateTime, nullable=False),
    Column("updated_digest", String(64)),  # the file that recorded its withdrawal later, if one did
    Column("updated_at", UTCDateTime),
    # A consent's identity: importing a file again finds its rows here. It also serves the
    # coverage check's `subject_hash IN (...) AND purpose = ...` lookups.
    UniqueConstraint("subject_hash", "purpose", "granted_at"),
)

consent_coverage = Table(
    "consent_coverage",
    metadata,
    # The latest consent check of each integration: the counts of the last successful one, and
    # whether the last attempt failed since (then the counts are stale).
    Column("integration", String, primary_key=True),
    Column("purpose", String, nullable=False),
    Column("as_of", Date),
    Column("shared", BigInteger),
    Column("missing", BigInteger),
    Column("withdrawn", BigInteger),
    Column("path", String(16)),
    Column("duration_seconds", Float),
    Column("checked_at", UTCDateTime),  # when the last successful check finished
    Column("failed_at", UTCDateTime),  # when a later check failed; null once one succeeds again
    Column("error", Text),
)

notifications_sent = Table(
    "notifications_sent",
    metadata,
    # One row per finding event the webhook notifier handled, plus one baseline row: the last
    # event when notifications were enabled. Events up to the baseline are history, never sent.
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    Column("finding_id", BigInteger),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

retention_intents = Table(
    "retention_intents",
    metadata,
    # One row per retention batch, committed before the batch changes the data source and settled
    # with its evidence record after it (auditor/core/ledger.py). `keys` holds the batch's
    # keys only while it is pending: settling erases them. A batch by row address names its
    # data-source transaction instead (`source_transaction`, kept once settled: no personal data).
    _id(),
    Column("policy", String, nullable=False),
    Column("run", String(32), nullable=False),
    Column("batch", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("source", String, nullable=False),
    Column("table_name", String, nullable=False),
    Column("deadline", UTCDateTime, nullable=False),
    Column("key_range", String(80), nullable=False),
    Column("key_range_keyed", Boolean, nullable=False),
    Column("keys", Json),
    Column("planned", Integer, nullable=False),  # how many keys the batch may process
    Column("source_transaction", Json),  # id, server, processed, start, stop (schema 5)
    Column("state", String(16), nullable=False),
    Column("rows", BigInteger),  # processed, once settled
    Column("created_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime),
    CheckConstraint("state IN ('pending', 'confirmed', 'reconciled')", name="state"),
    Index(None, "policy", "state"),
)

TABLES = tuple(metadata.sorted_tables)
