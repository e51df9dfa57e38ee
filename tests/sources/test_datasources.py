"""Data sources and schema checks on SQLite, PostgreSQL and MariaDB: read-only sessions, URLs from
the environment, unreachable servers, reflected tables and columns, filters, key order."""

from __future__ import annotations

import sqlite3
import string
import textwrap
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    text,
)

from auditor.core.yamlsource import parse_yaml
from auditor.sources.config import (
    ConfigRef,
    DataSourceSettings,
    RowFilter,
    TableSelection,
    table_selection,
)
from auditor.sources.datasources import DataSource, DataSourceError, DataSources
from auditor.sources.keys import key_text
from auditor.sources.schema_check import ColumnNeed, bind_table
from tests.conftest import OrgDatabase
from tests.helpers import consent_settings, free_port

PASSWORD = "s3cret-Pa55"


def settings_for(url: str | None = None, env: str | None = None, read_only: bool = True) -> Any:
    ref = ConfigRef("auditor.yaml", "data_sources.crm", {"": 3})
    return DataSourceSettings("crm", url, env, read_only, ref)


def people_table(metadata: MetaData) -> Table:
    return Table(
        "people",
        metadata,
        Column("person_id", Integer, primary_key=True, autoincrement=False),
        Column("email", String(100), nullable=False),
        Column("Country", String(2)),
        Column("active", Boolean, nullable=False),
        Column("born", Date),
        Column("seen_at", DateTime(timezone=True)),
        Column("code", String(20), unique=True),
        UniqueConstraint("email", "Country"),
    )


def selection(table: str, row_filter: RowFilter | None = None) -> TableSelection:
    lines = {"": 10, "table": 11, "key": 12, "filter": 13, "filter.active": 13}
    ref = ConfigRef("auditor.yaml", "consent.mailchimp.shared", lines)
    return table_selection("crm", table, row_filter or {}, ref)


class TestOpening:
    def test_bare_dialect_names_mean_the_installed_drivers(self) -> None:
        """`postgresql://` opens with psycopg 3 and `mysql://` with PyMySQL; nothing connects yet."""
        sources = DataSources(
            {
                "pg": settings_for("postgresql://auditor@127.0.0.1:1/crm"),
                "my": settings_for("mysql://auditor@127.0.0.1:1/crm"),
            }
        )

        drivers = (sources["pg"].engine.url.drivername, sources["my"].engine.url.drivername)

        assert ("postgresql+psycopg", "mysql+pymysql") == drivers
        sources.close()

    def test_url_comes_from_the_named_environment_variable(self, tmp_path: Any) -> None:
        """`url_env` names a variable of the environment handed in, read when opened."""
        path = tmp_path / "crm.db"
        sqlite3.connect(path).close()
        environ = {"CRM_DATABASE_URL": f"sqlite:///{path}"}

        with (
            DataSources({"crm": settings_for(env="CRM_DATABASE_URL")}, environ) as sources,
            sources["crm"].connect() as connection,
        ):
            answer = connection.execute(text("SELECT 1")).scalar()

        assert 1 == answer

    def test_an_unset_variable_is_a_clear_error(self) -> None:
        """A missing environment variable names the variable and the data source."""
        with (
            DataSources({"crm": settings_for(env="CRM_DATABASE_URL")}, {}) as sources,
            pytest.raises(DataSourceError) as raised,
        ):
            sources["crm"]

        assert "data source 'crm': the environment variable CRM_DATABASE_URL is not set" == str(
            raised.value
        )

    def test_a_malformed_url_is_not_repeated(self) -> None:
        """A URL that does not parse is reported without its text, which may hold a password."""
        environ = {"CRM_DATABASE_URL": f"not a url {PASSWORD}"}
        with (
            DataSources({"crm": settings_for(env="CRM_DATABASE_URL")}, environ) as sources,
            pytest.raises(DataSourceError) as raised,
        ):
            sources["crm"]

        assert PASSWORD not in str(raised.value)
        assert "CRM_DATABASE_URL is not an SQLAlchemy URL" in str(raised.value)

    def test_a_missing_driver_is_named(self) -> None:
        """A dialect whose driver is not installed fails when opened, naming the driver."""
        with (
            DataSources({"crm": settings_for("mssql+pyodbc://u@host/db")}) as sources,
            pytest.raises(DataSourceError, match="mssql"),
        ):
            sources["crm"]


class TestUnreachable:
    @pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
    def test_a_server_that_is_down_names_the_source_and_hides_the_password(
        self, scheme: str
    ) -> None:
        """Connecting to a closed port raises DataSourceError at once, password masked."""
        url = f"{scheme}://auditor:{PASSWORD}@127.0.0.1:{free_port()}/crm"
        with (
            DataSources({"crm": settings_for(url)}, connect_timeout=3) as sources,
            pytest.raises(DataSourceError) as raised,
            sources["crm"].connect(),
        ):
            pass

        message = str(raised.value)
        assert message.startswith("data source 'crm': cannot connect to ")
        assert "auditor:***@127.0.0.1" in message
        assert PASSWORD not in message
        assert PASSWORD not in repr(raised.value.reason)

    def test_a_missing_sqlite_file_is_not_created(self, tmp_path: Any) -> None:
        """Read-only SQLite opens an existing file only: a wrong path fails, creating nothing."""
        path = tmp_path / "nowhere.db"
        with (
            DataSources({"crm": settings_for(f"sqlite:///{path}")}) as sources,
            pytest.raises(DataSourceError, match="unable to open"),
            sources["crm"].connect(),
        ):
            pass

        assert not path.exists()


class TestReadOnly:
    def test_sessions_refuse_writes(self, org_database: OrgDatabase) -> None:
        """A read-only data source reads, and every write is refused by the database itself."""
        metadata = MetaData()
        people = people_table(metadata)
        metadata.create_all(org_database.engine)
        with DataSources({"crm": settings_for(org_database.url)}) as sources:
            source = sources["crm"]
            with source.connect() as connection:
                count = connection.execute(select(people.c.person_id)).all()
            with pytest.raises(DataSourceError) as raised, source.connect() as connection:
                row = {"person_id": 1, "email": "a@example.com", "active": True}
                connection.execute(insert(people).values(row))
                connection.commit()

        assert [] == count
        assert source.read_only_enforced
        message = str(raised.value).lower()
        assert any(word in message for word in ("read-only", "read only", "readonly"))

    def test_a_writable_source_writes_when_asked(self, org_database: OrgDatabase) -> None:
        """`read_only: false` (for retention enforcement) leaves the session writable."""
        metadata = MetaData()
        people = people_table(metadata)
        metadata.create_all(org_database.engine)
        with (
            DataSources({"crm": settings_for(org_database.url, read_only=False)}) as sources,
            sources["crm"].connect() as connection,
        ):
            row = {"person_id": 1, "email": "a@example.com", "active": True}
            connection.execute(insert(people).values(row))
            connection.commit()
            count = len(connection.execute(select(people.c.person_id)).all())

        assert 1 == count

    @pytest.mark.postgres
    def test_postgresql_keeps_the_url_options_and_runs_in_utc(
        self, postgres_schema_url: str
    ) -> None:
        """The read-only and UTC settings are added to the URL's own `options` (search_path)."""
        with (
            DataSources({"crm": settings_for(postgres_schema_url)}) as sources,
            sources["crm"].connect() as connection,
        ):
            shown = [
                connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("default_transaction_read_only", "TimeZone", "search_path")
            ]

        assert ["on", "UTC"] == shown[:2]
        assert str(shown[2]).startswith("gdpr_test_")

    @pytest.mark.postgres
    def test_postgresql_drivers_without_libpq_options_get_session_statements(
        self, postgres_schema_url: str
    ) -> None:
        """For a PostgreSQL driver that takes no libpq `options` (pg8000, ...), the session is
        made read-only and UTC by statements on each new connection."""
        from sqlalchemy.engine import make_url

        from auditor.sources.datasources import _postgresql_engine

        engine = _postgresql_engine(make_url(postgres_schema_url), True, 3, libpq=False)
        with engine.connect() as connection:
            shown = [
                connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("transaction_read_only", "TimeZone")
            ]
        engine.dispose()

        assert ["on", "UTC"] == shown

    @pytest.mark.mariadb
    def test_mariadb_sessions_are_read_only_and_in_utc(self, mariadb_database_url: str) -> None:
        """MariaDB sessions start READ ONLY with the time zone at +00:00."""
        with (
            DataSources({"crm": settings_for(mariadb_database_url)}) as sources,
            sources["crm"].connect() as connection,
        ):
            row = connection.execute(
                text("SELECT @@session.tx_read_only, @@session.time_zone")
            ).one()

        assert (1, "+00:00") == tuple(row)


class TestSchemaCheck:
    def bind(
        self, source: DataSource, chosen: TableSelection, *needs: ColumnNeed
    ) -> tuple[Any, list[str]]:
        with source.connect() as connection:
            bound, issues = bind_table(source, connection, chosen, needs)
        return bound, [str(issue) for issue in issues]

    @pytest.fixture(name="source")
    def _source(self, org_database: OrgDatabase) -> Any:
        """A read-only data source holding the tables `people` and `orders`."""
        metadata = MetaData()
        people_table(metadata)
        Table("orders", metadata, Column("order_id", Integer, primary_key=True))
        metadata.create_all(org_database.engine)
        with DataSources({"crm": settings_for(org_database.url)}) as sources:
            yield sources["crm"]

    @pytest.mark.parametrize(
        ("table", "column", "issue"),
        [
            (
                "persons",
                "person_id",
                (
                    "auditor.yaml:11: consent.mailchimp.shared.table: table 'persons' not found "
                    "in data source 'crm' (tables: orders, people)"
                ),
            ),
            (
                "people",
                "cust_id",
                (
                    "auditor.yaml:12: consent.mailchimp.shared.key: column 'cust_id' not in "
                    "table people (columns: Country, active, born, code, email, person_id, seen_at)"
                ),
            ),
        ],
        ids=["table", "column"],
    )
    def test_a_missing_table_or_column_is_named_with_those_there(
        self, source: DataSource, table: str, column: str, issue: str
    ) -> None:
        """An unknown table or column is an Issue naming the setting, its line and the tables
        there, or the table's columns."""
        _, issues = self.bind(source, selection(table), ColumnNeed("key", column))

        assert [issue] == issues

    def test_names_differing_only_in_case_match_when_unambiguous(self, source: DataSource) -> None:
        """`PEOPLE.person_ID` and `country` bind to the reflected spellings."""
        bound, issues = self.bind(
            source, selection("PEOPLE"), ColumnNeed("key", "person_ID"), ColumnNeed("c", "country")
        )

        assert [] == issues
        assert ("people", "person_id", "Country") == (
            bound.table.name,
            bound.column("key").name,
            bound.column("c").name,
        )

    def test_time_and_text_columns_are_type_checked(self, source: DataSource) -> None:
        """A granted_at that is not a date or timestamp, or a purpose that is not text, is an
        Issue (on SQLite, whose dates are text, only the text check can fail)."""
        _, issues = self.bind(
            source,
            selection("people"),
            ColumnNeed("granted_at", "active", "time"),
            ColumnNeed("purpose", "person_id", "text"),
            ColumnNeed("withdrawn_at", "seen_at", "time"),
            ColumnNeed("since", "born", "time"),
        )

        assert any("granted_at: column 'active' is" in issue for issue in issues)
        assert "not a date or timestamp" in issues[0]
        assert "consent.mailchimp.shared.purpose: column 'person_id' is" in issues[-1]
        assert 2 == len(issues)

    def test_unique_columns_are_recognised(self, source: DataSource) -> None:
        """A one-column primary key or unique constraint makes a column unique; a column that is
        part of a composite unique constraint is not."""
        bound, _ = self.bind(
            source,
            selection("people"),
            ColumnNeed("key", "person_id"),
            ColumnNeed("code", "code"),
            ColumnNeed("email", "email"),
        )

        assert (True, True, False) == tuple(map(bound.is_unique, ("key", "code", "email")))

    def test_filters_bind_values_of_the_columns_types(
        self, source: DataSource, org_database: OrgDatabase
    ) -> None:
        """Equality, IN, IS NULL and a null in a list select the same rows on every dialect."""
        rows = [
            {
                "person_id": 1,
                "email": "a@x",
                "Country": "DE",
                "active": True,
                "born": date(1990, 1, 1),
            },
            {"person_id": 2, "email": "b@x", "Country": "NO", "active": True, "born": None},
            {"person_id": 3, "email": "c@x", "Country": None, "active": True, "born": None},
            {"person_id": 4, "email": "d@x", "Country": "DE", "active": False, "born": None},
        ]
        with org_database.engine.begin() as connection:
            connection.execute(insert(people_table(MetaData())), rows)
        wanted: RowFilter = {"active": True, "Country": ["DE", None], "born": None}
        bound, issues = self.bind(source, selection("people", wanted), ColumnNeed("k", "person_id"))

        with source.connect() as connection:
            chosen = connection.execute(
                select(bound.column("k")).where(*bound.conditions).order_by(bound.column("k"))
            ).scalars()
            found = list(chosen)

        assert [] == issues
        assert [3] == found

    def test_a_filter_value_that_does_not_fit_its_column_is_an_issue(
        self, source: DataSource
    ) -> None:
        """`active: "yes"` on a BOOLEAN, or a filter on an unknown column, names the filter key."""
        _, issues = self.bind(
            source,
            selection("people", {"active": "yes", "nickname": "x"}),
            ColumnNeed("k", "person_id"),
        )

        assert 2 == len(issues)
        assert (
            "auditor.yaml:13: consent.mailchimp.shared.filter.active: value 'yes' does not fit"
            in issues[0]
        )
        assert (
            "consent.mailchimp.shared.filter.nickname: column 'nickname' not in table" in issues[1]
        )


# Letters of both cases, digits, spaces and punctuation below and above a space, accented
# and non-Latin letters: every way a collation could disagree with code point order.
KEY_ALPHABET = string.ascii_letters[:6] + string.ascii_uppercase[:6] + "0129 \t-_.~éÉßø中😀"


class TestKeyOrder:
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(keys=st.lists(st.text(alphabet=KEY_ALPHABET, max_size=4), min_size=1, max_size=30))
    def test_key_text_sorts_and_compares_like_python(
        self, org_database: OrgDatabase, keys: list[str]
    ) -> None:
        """ORDER BY key_text() returns keys in Python's code point order on every dialect, and
        key_text() equality is exact: case, trailing spaces and accents all count."""
        metadata = MetaData()
        # Whatever the column's own collation (MariaDB's default ignores case and trailing
        # spaces), key_text compares bytes.
        table = Table("keys", metadata, Column("k", String(40)), extend_existing=True)
        metadata.create_all(org_database.engine)
        with org_database.engine.begin() as connection:
            connection.execute(table.delete())
            connection.execute(insert(table), [{"k": key} for key in keys])
        a, b = table.alias("a"), table.alias("b")
        with (
            DataSources({"crm": settings_for(org_database.url)}) as sources,
            sources["crm"].connect() as connection,
        ):
            ordered = list(
                connection.execute(
                    select(key_text(table.c.k)).order_by(key_text(table.c.k))
                ).scalars()
            )
            pairs = connection.execute(
                select(key_text(a.c.k), key_text(b.c.k)).join_from(
                    a, b, key_text(a.c.k) == key_text(b.c.k)
                )
            ).all()

        assert sorted(keys) == ordered
        assert all(left == right for left, right in pairs)
        assert sum(keys.count(key) for key in keys) == len(pairs)


class TestConfigSources:
    def test_relative_sqlite_paths_are_relative_to_the_config_file(self, tmp_path: Any) -> None:
        """`sqlite:///crm.db` in /etc/x/auditor.yaml is /etc/x/crm.db."""
        doc = parse_yaml(
            textwrap.dedent(
                """
                data_sources:
                  crm: {url: "sqlite:///data/crm.db"}
                  abs: {url: "sqlite:////srv/crm.db"}
                  mem: {url: "sqlite://"}
                """
            ),
            "auditor.yaml",
        )

        sources = consent_settings(doc, base=tmp_path).data_sources

        assert f"sqlite:///{tmp_path / 'data/crm.db'}" == sources["crm"].url
        assert "sqlite:////srv/crm.db" == sources["abs"].url
        assert "sqlite://" == sources["mem"].url
