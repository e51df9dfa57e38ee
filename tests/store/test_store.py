"""The state store contract, run on SQLite and on PostgreSQL: runs, finding lifecycle, waivers."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table, func, select, text, update

from auditor.core.durations import parse_duration
from auditor.core.errors import (
    FindingNotFoundError,
    GeoDataError,
    InvalidRequestError,
    SchemaVersionError,
    StoreError,
)
from auditor.core.lifecycle import Status
from auditor.core.model import (
    Facet,
    Finding,
    Integration,
    Location,
    Observation,
    PlaceCheck,
    Resolution,
    Severity,
    Verdict,
)
from auditor.core.ports import DataSet
from auditor.core.results import AuditResult
from auditor.store import (
    SCHEMA_VERSION,
    RunSummary,
    StateStore,
    prune_cutoff,
    record_audit,
    recording,
)
from auditor.store.schema import finding_events, observations, place_checks, schema_meta
from tests.helpers import integrations_from, minimal

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
GEOIP_BUILT = datetime(2026, 10, 28, 4, 5, 6, tzinfo=UTC)


def upgrade(state_url: str) -> tuple[int | None, int]:
    """Upgrade the state database as `db upgrade` does (opened without checking its version);
    return (before, after)."""
    with closing(StateStore.open(state_url, check_version=False)) as unchecked:
        return unchecked.upgrade()


def inventory(*categories: tuple[str, str]) -> tuple[Integration, ...]:
    entries = [minimal(ident, category=category) for ident, category in categories]
    return tuple(integrations_from(yaml.safe_dump({"integrations": entries})))


INTEGRATIONS = inventory(("crm", "crm"), ("mail", "email-marketing"), ("stats", "analytics"))


def unsafe(integration: str = "crm", place: str = "US", message: str = "hosting US") -> Finding:
    return Finding(
        rule="transfer-unsafeguarded",
        integration=integration,
        severity=Severity.CRITICAL,
        article="Art. 44",
        message=message,
        facet=Facet.HOSTING,
        place=place,
        country=place,
        evidence={"reason": "no adequacy", "as_of": date(2026, 11, 1)},
    )


def no_dpa(integration: str = "mail") -> Finding:
    return Finding(
        rule="contract-dpa-missing",
        integration=integration,
        severity=Severity.CRITICAL,
        article="Art. 28(3)",
        message="no DPA",
    )


def observed(integration: str, hostname: str, address: str, country: str) -> Observation:
    resolution = Resolution(hostname, "ok", addresses=(address,), cname_chain=("lb." + hostname,))
    return Observation(integration, hostname, resolution, (Location(address, country, "geoip"),))


def audit(
    at: datetime,
    findings: Sequence[Finding] = (),
    *,
    integrations: Sequence[Integration] = INTEGRATIONS,
    places: Sequence[PlaceCheck] = (),
    observed_: Sequence[Observation] = (),
) -> AuditResult:
    return AuditResult(
        as_of=at.date(),
        started_at=at,
        finished_at=at + timedelta(seconds=3),
        integrations=tuple(integrations),
        observations=tuple(observed_),
        places=tuple(places),
        findings=tuple(findings),
        policy_digest="policy-sha",
        datasets=(DataSet("geoip-country", "GeoLite2-Country", "country.mmdb", GEOIP_BUILT),),
    )


def record(store: StateStore, result: AuditResult) -> RunSummary:
    run_id = store.begin_run(
        result.started_at, tool_version="0.1.0", config_digest="config-sha", policy_digest="p"
    )
    return store.finish_run(run_id, result, result.finished_at)


def events_of(store: StateStore, finding_id: int) -> list[str]:
    return [event.change for event in store.get_finding(finding_id).events]


def count_rows(store: StateStore, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


class TestSchemaVersions:
    def test_an_empty_database_gets_the_current_schema(self, state_url: str) -> None:
        """Opening an empty database creates the schema at this code's version."""
        store = StateStore.open(state_url)

        assert SCHEMA_VERSION == store.schema_version()
        store.close()

    def test_reopening_keeps_what_was_recorded(self, state_url: str) -> None:
        """A second open finds the schema in place and the runs recorded before."""
        first = StateStore.open(state_url)
        record(first, audit(T0, [unsafe()]))
        first.close()

        second = StateStore.open(state_url)
        latest = second.latest_run()
        second.close()

        assert latest is not None
        assert 1 == latest.findings

    def test_an_older_schema_is_refused_then_upgraded(self, state_url: str) -> None:
        """A version-0 marker is refused with the upgrade command; upgrade() brings it to current."""
        store = StateStore.open(state_url)
        record(store, audit(T0, [unsafe()]))
        with store.engine.begin() as conn:
            conn.execute(update(schema_meta).values(version=0))
        store.close()

        with pytest.raises(SchemaVersionError) as refused:
            StateStore.open(state_url)
        steps = upgrade(state_url)
        upgraded = StateStore.open(state_url)
        kept = upgraded.list_findings()
        upgraded.close()

        assert "gdpr-auditor db upgrade --config FILE" in str(refused.value)
        assert (0, SCHEMA_VERSION) == (refused.value.found, refused.value.needed)
        assert (0, SCHEMA_VERSION) == steps
        assert ["transfer-unsafeguarded"] == [f.rule for f in kept]

    def test_tables_without_a_version_marker_count_as_version_0(self, state_url: str) -> None:
        """A half-created schema (no marker) is refused, and the upgrade completes it."""
        store = StateStore.open(state_url)
        with store.engine.begin() as conn:
            schema_meta.drop(conn)
            finding_events.drop(conn)
        store.close()

        with pytest.raises(SchemaVersionError):
            StateStore.open(state_url)
        steps = upgrade(state_url)
        upgraded = StateStore.open(state_url)
        record(upgraded, audit(T0, [unsafe()]))
        history = events_of(upgraded, upgraded.list_findings()[0].id)
        upgraded.close()

        assert (0, SCHEMA_VERSION) == steps
        assert ["new"] == history

    def test_a_newer_schema_is_refused_and_left_alone(self, state_url: str) -> None:
        """A database from a newer gdpr-auditor is refused; upgrade() refuses too, changing nothing."""
        store = StateStore.open(state_url)
        with store.engine.begin() as conn:
            conn.execute(update(schema_meta).values(version=SCHEMA_VERSION + 1))
        store.close()

        with pytest.raises(SchemaVersionError) as refused:
            StateStore.open(state_url)
        unchecked = StateStore.open(state_url, check_version=False)
        with pytest.raises(SchemaVersionError):
            unchecked.upgrade()
        version = unchecked.schema_version()
        unchecked.close()

        assert "upgrade gdpr-auditor" in str(refused.value)
        assert SCHEMA_VERSION + 1 == version

    def test_version_1_database_gets_room_for_the_scope_unconfirmed_verdict(
        self, state_url: str
    ) -> None:
        """Version 1 kept verdicts in 16 characters; after the upgrade `scope-unconfirmed` fits."""
        store = StateStore.open(state_url)
        with store.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE place_checks ALTER COLUMN verdict TYPE VARCHAR(16)"))
            conn.execute(update(schema_meta).values(version=1))
        store.close()

        steps = upgrade(state_url)
        upgraded = StateStore.open(state_url)
        check = PlaceCheck(
            "crm", Facet.HOSTING, "CA", "CA", Verdict.SCOPE_UNCONFIRMED, "Decision 2002/2/EC"
        )
        record(upgraded, audit(T0, places=[check]))
        with upgraded.engine.connect() as conn:
            stored = conn.execute(select(place_checks.c.verdict)).scalars().all()
        upgraded.close()

        assert (1, SCHEMA_VERSION) == steps
        assert ["scope-unconfirmed"] == stored

    def test_upgrade_of_an_empty_database_creates_it(self, state_url: str) -> None:
        """`db upgrade` on an empty database creates the schema: (None, current)."""
        store = StateStore.open(state_url, check_version=False)
        before = store.schema_version()
        steps = store.upgrade()
        again = store.upgrade()
        store.close()

        assert before is None
        assert (None, SCHEMA_VERSION) == steps
        assert (SCHEMA_VERSION, SCHEMA_VERSION) == again


class TestUrls:
    def test_a_password_never_appears_in_the_error(self) -> None:
        """An unreachable PostgreSQL server is a StoreError naming the URL with its password hidden."""
        with pytest.raises(StoreError) as failed:
            StateStore.open("postgresql://auditor:s3cret-pw@127.0.0.1:1/state")

        assert "s3cret-pw" not in str(failed.value)
        assert "auditor:***@127.0.0.1:1/state" in str(failed.value)
        assert "s3cret-pw" not in repr(failed.value.args)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql+pymysql://root@127.0.0.1/test", "must be SQLite or PostgreSQL"),
            ("not a url", "not a valid SQLAlchemy URL"),
        ],
    )
    def test_unsupported_urls_are_refused(self, url: str, message: str) -> None:
        """Only SQLite and PostgreSQL are state databases; junk is not a URL."""
        with pytest.raises(StoreError, match=message):
            StateStore.open(url)

    def test_a_sqlite_file_in_a_missing_directory_is_a_store_error(self, tmp_path: object) -> None:
        """SQLite's "unable to open" becomes a StoreError, not an SQL traceback."""
        with pytest.raises(StoreError, match="unable to open database file"):
            StateStore.open(f"sqlite:///{tmp_path}/missing/dir/state.db")


class TestFindingLifecycle:
    def test_new_still_open_resolved_reopened_keeps_first_seen(self, store: StateStore) -> None:
        """A finding's life across four audits, with its history and first_seen kept."""
        first = record(store, audit(T0, [unsafe()]))
        second = record(store, audit(T0 + DAY, [unsafe()]))
        third = record(store, audit(T0 + 2 * DAY, []))
        resolved = store.list_findings(status="resolved")
        fourth = record(store, audit(T0 + 3 * DAY, [unsafe()]))
        (found,) = store.list_findings()

        assert (1, 0, 0, 0) == (first.new, first.resolved, first.reopened, first.still_open)
        assert (0, 0, 0, 1) == (second.new, second.resolved, second.reopened, second.still_open)
        assert (0, 1, 0, 0) == (third.new, third.resolved, third.reopened, third.still_open)
        assert (0, 0, 1, 0) == (fourth.new, fourth.resolved, fourth.reopened, fourth.still_open)
        assert [T0 + 2 * DAY] == [f.resolved_at for f in resolved]
        assert Status.OPEN == found.status
        assert T0 == found.first_seen
        assert T0 + 3 * DAY == found.last_seen
        assert found.resolved_at is None
        assert 1 == found.reopened
        assert ["new", "resolved", "reopened"] == events_of(store, found.id)

    def test_history_events_name_their_runs(self, store: StateStore) -> None:
        """Lifecycle events carry the run that caused them and that run's audit time."""
        record(store, audit(T0, [unsafe()]))
        record(store, audit(T0 + DAY, []))
        runs = [store.latest_run()]
        (found,) = store.list_findings(status="all")

        events = store.get_finding(found.id).events

        assert runs[0] is not None
        assert [(T0, 1), (T0 + DAY, runs[0].id)] == [(e.at, e.run_id) for e in events]
        assert {"severity": "critical"} == events[0].detail

    def test_identity_is_rule_integration_facet_place(self, store: StateStore) -> None:
        """Two places are two findings; a finding without a place is its own identity."""
        record(store, audit(T0, [unsafe(place="US"), unsafe(place="CN"), no_dpa()]))

        found = store.list_findings()

        assert [
            ("contract-dpa-missing", "mail", None, None),
            ("transfer-unsafeguarded", "crm", Facet.HOSTING, "CN"),
            ("transfer-unsafeguarded", "crm", Facet.HOSTING, "US"),
        ] == sorted(((f.rule, f.integration, f.facet, f.place) for f in found), key=str)

    def test_a_still_open_finding_takes_the_latest_message_and_evidence(
        self, store: StateStore
    ) -> None:
        """Content follows the latest audit; identity, first_seen and history do not change."""
        record(store, audit(T0, [unsafe(message="old words")]))
        changed = unsafe(message="new words")
        changed.evidence["via"] = "lb.example"
        record(store, audit(T0 + DAY, [changed]))

        (found,) = store.list_findings()

        assert "new words" == found.message
        assert {"reason": "no adequacy", "as_of": "2026-11-01", "via": "lb.example"} == (
            found.evidence
        )
        assert T0 == found.first_seen
        assert ["new"] == events_of(store, found.id)

    def test_datetimes_come_back_aware_utc(self, store: StateStore) -> None:
        """A time given in another zone is stored as the same instant and returned in UTC."""
        paris = timezone(timedelta(hours=1))
        local = datetime(2026, 11, 1, 11, 0, tzinfo=paris)
        record(store, audit(local, [unsafe()]))

        run = store.latest_run()
        (found,) = store.list_findings()

        assert run is not None
        for moment in (run.started_at, run.finished_at, found.first_seen, found.last_seen):
            assert moment is not None
            assert UTC == moment.tzinfo
        assert T0 == run.started_at
        assert GEOIP_BUILT == run.geoip_built
        assert (GEOIP_BUILT,) == tuple(d.built for d in run.datasets)

    def test_a_naive_datetime_is_refused(self, store: StateStore) -> None:
        """Naive datetimes never reach the database."""
        with pytest.raises(StoreError, match="naive datetime"):
            store.begin_run(
                datetime(2026, 11, 1, 10, 0),  # noqa: DTZ001  (the point of the test)
                tool_version="0.1.0",
                config_digest="c",
                policy_digest="p",
            )

    def test_an_unknown_finding_is_a_lookup_error(self, store: StateStore) -> None:
        """get_finding of an id that does not exist raises FindingNotFoundError (a LookupError)."""
        with pytest.raises(LookupError) as missing:
            store.get_finding(4242)

        assert isinstance(missing.value, FindingNotFoundError)
        assert "no finding with id 4242" == str(missing.value)


class TestRuns:
    def test_a_run_is_recorded_in_one_transaction(self, store: StateStore) -> None:
        """A failure part-way through finish_run leaves nothing of that run and the prior state."""
        record(
            store,
            audit(T0, [unsafe()], observed_=[observed("crm", "a.example", "192.0.2.1", "DE")]),
        )
        run_id = store.begin_run(
            T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )
        # The same integration twice breaks the primary key of the run's integrations, which are
        # written after the findings, their events, the observations and the place checks.
        broken = audit(
            T0 + DAY,
            [no_dpa()],
            integrations=INTEGRATIONS + INTEGRATIONS[:1],
            observed_=[observed("mail", "b.example", "198.51.100.1", "US")],
            places=[PlaceCheck("mail", Facet.HOSTING, "US", "US", Verdict.UNSAFEGUARDED, "none")],
        )

        with pytest.raises(StoreError):
            store.finish_run(run_id, broken, T0 + DAY)

        (found,) = store.list_findings(status="all")
        latest_any = store.latest_run(successful=False)
        assert ("transfer-unsafeguarded", Status.OPEN) == (found.rule, found.status)
        assert T0 == found.last_seen
        assert latest_any is not None
        assert (run_id, "running") == (latest_any.id, latest_any.outcome)
        assert 1 == count_rows(store, observations)
        assert 0 == count_rows(store, place_checks)
        assert 1 == count_rows(store, finding_events)

    def test_fail_run_keeps_the_last_success(self, store: StateStore) -> None:
        """A failed run is recorded with its error; the latest successful run is the earlier one."""
        record(store, audit(T0, [unsafe()]))
        run_id = store.begin_run(
            T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )

        store.fail_run(run_id, T0 + DAY, "GeoDataError: country.mmdb: corrupt database")

        success, latest = store.latest_run(), store.latest_run(successful=False)
        assert success is not None and latest is not None
        assert T0 == success.started_at
        assert (run_id, "error") == (latest.id, latest.outcome)
        assert "GeoDataError: country.mmdb: corrupt database" == latest.error
        assert T0 + DAY == latest.finished_at

    def test_runs_left_running_become_interrupted(self, store: StateStore) -> None:
        """mark_interrupted closes runs a killed process left; finishing one later is refused."""
        record(store, audit(T0))
        run_id = store.begin_run(
            T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )

        marked = store.mark_interrupted(T0 + 2 * DAY)
        again = store.mark_interrupted(T0 + 3 * DAY)

        latest = store.latest_run(successful=False)
        assert (1, 0) == (marked, again)
        assert latest is not None
        assert (run_id, "interrupted", T0 + 2 * DAY) == (
            latest.id,
            latest.outcome,
            latest.finished_at,
        )
        with pytest.raises(StoreError, match="not a running audit run"):
            store.finish_run(run_id, audit(T0 + DAY), T0 + DAY)

    def test_a_run_stopped_on_purpose_is_interrupted_with_its_reason(
        self, store: StateStore
    ) -> None:
        """interrupt_run closes that run only, as interrupted with the reason; finishing it fails."""
        record(store, audit(T0))
        run_id = store.begin_run(
            T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )

        store.interrupt_run(run_id, T0 + 2 * DAY, "stopped: the daemon is stopping")

        latest, success = store.latest_run(successful=False), store.latest_run()
        assert latest is not None and success is not None
        assert (run_id, "interrupted", T0 + 2 * DAY, "stopped: the daemon is stopping") == (
            latest.id,
            latest.outcome,
            latest.finished_at,
            latest.error,
        )
        assert T0 == success.started_at
        with pytest.raises(StoreError, match="not a running audit run"):
            store.finish_run(run_id, audit(T0 + DAY), T0 + DAY)

    def test_interrupt_run_closes_only_the_run_it_names(self, store: StateStore) -> None:
        """Another run still running stays running, unlike with mark_interrupted."""
        first = store.begin_run(T0, tool_version="0.1.0", config_digest="c", policy_digest="p")
        store.begin_run(T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p")

        store.interrupt_run(first, T0 + DAY, "stopped: this replica is on standby")

        runs = store.status(T0.date()).runs
        assert (1, 1) == (runs["interrupted"], runs["running"])

    def test_interrupt_run_leaves_a_finished_run_alone(self, store: StateStore) -> None:
        """A run already failed or finished keeps its outcome, time and error when interrupted."""
        record(store, audit(T0))
        finished = store.latest_run()
        failed = store.begin_run(
            T0 + DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )
        store.fail_run(failed, T0 + DAY, "boom")
        assert finished is not None

        store.interrupt_run(finished.id, T0 + 2 * DAY, "late")
        store.interrupt_run(failed, T0 + 2 * DAY, "late")

        latest, success = store.latest_run(successful=False), store.latest_run()
        assert latest is not None and success is not None
        assert (failed, "error", "boom", T0 + DAY) == (
            latest.id,
            latest.outcome,
            latest.error,
            latest.finished_at,
        )
        assert (finished.id, "success", finished.finished_at) == (
            success.id,
            success.outcome,
            success.finished_at,
        )

    def test_prune_keeps_the_latest_successful_run(self, store: StateStore) -> None:
        """Observations and place checks of old runs go; the latest successful run's stay."""
        checks = [PlaceCheck("crm", Facet.HOSTING, "DE", "DE", Verdict.EEA, "EEA")]
        for day in range(3):
            seen = [observed("crm", "a.example", "192.0.2.1", "DE")]
            record(store, audit(T0 + day * DAY, places=checks, observed_=seen))
        failed = store.begin_run(
            T0 + 3 * DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )
        store.fail_run(failed, T0 + 3 * DAY, "boom")

        deleted = store.prune_observations(T0 + 10 * DAY)

        # Two old runs: one observation, one place check and three integrations each.
        assert 2 * (1 + 1 + 3) == deleted
        assert 1 == count_rows(store, observations)
        assert checks == store.latest_places()
        assert {"crm": 1, "email-marketing": 1, "analytics": 1} == store.latest_categories()
        assert 0 == store.prune_observations(T0 + 10 * DAY)

    def test_prune_spares_runs_after_the_cutoff(self, store: StateStore) -> None:
        """Only runs started before the cutoff lose their observations."""
        for day in range(3):
            record(
                store,
                audit(T0 + day * DAY, observed_=[observed("crm", "a.example", "192.0.2.1", "DE")]),
            )

        store.prune_observations(T0 + DAY)

        assert 2 == count_rows(store, observations)

    def test_latest_places_and_observation_countries(self, store: StateStore) -> None:
        """The latest run's place checks come back as PlaceChecks, in the order given."""
        checks = [
            PlaceCheck("crm", Facet.HOSTING, "US", "US", Verdict.UNSAFEGUARDED, "none"),
            PlaceCheck(
                "crm", Facet.ENDPOINT, "edge.example", None, Verdict.EDGE, "CDN", via="edge.example"
            ),
        ]
        record(store, audit(T0, places=checks[:1]))
        record(store, audit(T0 + DAY, places=checks))

        assert checks == store.latest_places()


class TestRunsLargerThanOneStatement:
    """A run's rows are written ROWS_PER_STATEMENT at a time (here 2): nothing is lost at the
    seams between statements, and every row gets its own id and history."""

    @pytest.fixture(autouse=True)
    def _two_rows_per_statement(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(recording, "ROWS_PER_STATEMENT", 2)

    def test_every_row_of_a_run_is_written_and_every_new_finding_has_its_event(
        self, store: StateStore
    ) -> None:
        """Five new findings, observations, place checks and integrations, in three statements each."""
        names = [f"vendor{n}" for n in range(5)]
        result = audit(
            T0,
            [unsafe(name) for name in names],
            integrations=inventory(*((name, "crm") for name in names)),
            places=[
                PlaceCheck(name, Facet.HOSTING, "US", "US", Verdict.UNSAFEGUARDED, "none")
                for name in names
            ],
            observed_=[observed(name, f"api.{name}.example", "192.0.2.1", "DE") for name in names],
        )

        summary = record(store, result)
        stored = store.list_findings()

        assert (5, 5) == (summary.new, summary.open)
        assert names == sorted(finding.integration for finding in stored)
        assert len({finding.id for finding in stored}) == 5
        assert all(["new"] == events_of(store, finding.id) for finding in stored)
        assert (5, 5, 5) == (
            count_rows(store, observations),
            count_rows(store, place_checks),
            count_rows(store, finding_events),
        )

    def test_a_later_run_updates_resolves_and_reopens_across_statements(
        self, store: StateStore
    ) -> None:
        """Seen again (with a new message), resolved, then reopened: each of five findings."""
        names = [f"vendor{n}" for n in range(5)]
        record(store, audit(T0, [unsafe(name) for name in names]))
        record(store, audit(T0 + DAY, [unsafe(name, message="moved") for name in names]))
        record(store, audit(T0 + 2 * DAY, []))
        summary = record(store, audit(T0 + 3 * DAY, [unsafe(name) for name in names]))
        stored = store.list_findings()

        assert (0, 5, 5) == (summary.new, summary.reopened, summary.open)
        assert {T0 + 3 * DAY} == {finding.last_seen for finding in stored}
        assert all(
            ["new", "resolved", "reopened"] == events_of(store, finding.id) for finding in stored
        )


class TestWaivers:
    def test_a_waived_finding_stays_listed_but_is_not_open(self, store: StateStore) -> None:
        """Waiving moves a finding from open to waived; list shows it with its waiver."""
        record(store, audit(T0, [unsafe(), no_dpa()]))
        target = next(f for f in store.list_findings() if f.rule == "contract-dpa-missing")

        store.waive(
            target.id,
            reason="DPA in signature",
            approver="Dana DPO",
            expires=date(2026, 12, 31),
            now=T0,
        )

        on = T0.date()
        assert ["transfer-unsafeguarded"] == [f.rule for f in store.open_findings(on)]
        (waived,) = store.list_findings(status="waived", on=on)
        assert waived.waived
        assert waived.waiver is not None
        assert ("DPA in signature", "Dana DPO", date(2026, 12, 31)) == (
            waived.waiver.reason,
            waived.waiver.approver,
            waived.waiver.expires,
        )
        assert 2 == len(store.list_findings(on=on))
        assert ["new", "waived"] == events_of(store, target.id)

    def test_snapshot_gives_the_soonest_waiver_expiry_by_rule(self, store: StateStore) -> None:
        """The metrics' waiver expiry is the earliest last day of an active waiver, by rule."""
        record(store, audit(T0, [unsafe(), no_dpa()]))
        target = next(f for f in store.list_findings() if f.rule == "contract-dpa-missing")
        on = T0.date()

        assert {} == store.snapshot_counts(on).waiver_expiry
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 31), now=T0)

        assert {("contract-dpa-missing", "critical"): date(2026, 12, 31)} == (
            store.snapshot_counts(on).waiver_expiry
        )
        assert {} == store.snapshot_counts(date(2027, 1, 1)).waiver_expiry

    def test_an_expired_waiver_counts_no_more_and_is_recorded_once(self, store: StateStore) -> None:
        """After its expiry day a waiver stops counting at once; expire_waivers records it once."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 11, 5), now=T0)

        last_day = store.open_findings(date(2026, 11, 5))
        day_after = store.open_findings(date(2026, 11, 6))
        expired = store.expire_waivers(datetime(2026, 11, 6, 0, 1, tzinfo=UTC))
        again = store.expire_waivers(datetime(2026, 11, 7, tzinfo=UTC))

        assert [] == last_day
        assert [target.id] == [f.id for f in day_after]
        assert [target.id] == expired
        assert [] == again
        assert ["new", "waived", "waiver-expired"] == events_of(store, target.id)
        assert [target.id] == [f.id for f in store.list_findings(status="open")]

    def test_an_expired_waiver_of_a_resolved_finding_reopens_nothing(
        self, store: StateStore
    ) -> None:
        """expire_waivers returns only findings that are open: a resolved one is recorded but not returned."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 11, 2), now=T0)
        record(store, audit(T0 + DAY, []))

        expired = store.expire_waivers(T0 + 5 * DAY)

        assert [] == expired
        assert "waiver-expired" == events_of(store, target.id)[-1]

    def test_unwaive_makes_it_open_again(self, store: StateStore) -> None:
        """Revoking the waiver puts the finding back among the open ones; twice is refused."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 1), now=T0)

        store.unwaive(target.id, by="Olaf Ops", now=T0 + DAY)

        assert [target.id] == [f.id for f in store.open_findings(T0.date() + DAY)]
        detail = store.get_finding(target.id)
        assert ["new", "waived", "unwaived"] == [e.change for e in detail.events]
        assert [("Olaf Ops", T0 + DAY)] == [(w.revoked_by, w.revoked_at) for w in detail.waivers]
        with pytest.raises(InvalidRequestError, match="no active waiver"):
            store.unwaive(target.id, by="Olaf Ops", now=T0 + DAY)

    def test_a_new_waiver_replaces_the_active_one(self, store: StateStore) -> None:
        """One active waiver per finding: the old one is revoked and both changes are recorded."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()
        first = store.waive(target.id, reason="r1", approver="a", expires=date(2026, 12, 1), now=T0)

        second = store.waive(
            target.id, reason="r2", approver="b", expires=date(2027, 1, 1), now=T0 + DAY
        )

        detail = store.get_finding(target.id, on=T0.date() + DAY)
        assert ["new", "waived", "unwaived", "waived"] == [e.change for e in detail.events]
        assert {"waiver_id": first, "by": "b", "replaced": True} == detail.events[2].detail
        assert detail.waiver is not None
        assert second == detail.waiver.id
        assert [(first, "b"), (second, None)] == [(w.id, w.revoked_by) for w in detail.waivers]

    def test_a_waiver_survives_resolution_and_reopening(self, store: StateStore) -> None:
        """A finding that comes back while its waiver is active is still waived."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 31), now=T0)
        record(store, audit(T0 + DAY, []))
        record(store, audit(T0 + 2 * DAY, [unsafe()]))

        assert [] == store.open_findings(T0.date() + 2 * DAY)
        assert [target.id] == [f.id for f in store.list_findings(status="waived", on=T0.date())]

    @pytest.mark.parametrize(
        ("reason", "approver", "expires", "message"),
        [
            ("", "Dana", date(2026, 12, 1), "needs a reason and an approver"),
            ("accepted", "  ", date(2026, 12, 1), "needs a reason and an approver"),
            ("accepted", "Dana", date(2026, 10, 31), "is in the past"),
        ],
    )
    def test_invalid_waivers_are_refused(
        self, store: StateStore, reason: str, approver: str, expires: date, message: str
    ) -> None:
        """A waiver needs a reason, an approver and an expiry not before today."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()

        with pytest.raises(InvalidRequestError, match=message):
            store.waive(target.id, reason=reason, approver=approver, expires=expires, now=T0)
        assert ["new"] == events_of(store, target.id)

    def test_a_waiver_may_end_today(self, store: StateStore) -> None:
        """An expiry of today is allowed and counts until the end of the day."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()

        store.waive(target.id, reason="r", approver="a", expires=T0.date(), now=T0)

        assert [] == store.open_findings(T0.date())

    def test_waiving_an_unknown_finding_is_refused(self, store: StateStore) -> None:
        """Unknown ids raise FindingNotFoundError for waive and unwaive."""
        with pytest.raises(FindingNotFoundError):
            store.waive(7, reason="r", approver="a", expires=date(2026, 12, 1), now=T0)
        with pytest.raises(FindingNotFoundError):
            store.unwaive(7, by="a", now=T0)

    def test_an_unknown_status_filter_is_refused(self, store: StateStore) -> None:
        """list_findings accepts open, waived, resolved and all."""
        with pytest.raises(InvalidRequestError, match="unknown finding status"):
            store.list_findings(status="closed")


class TestSnapshotCounts:
    def test_counts_for_the_metrics(self, store: StateStore) -> None:
        """Open by (rule, severity, integration), waived by (rule, severity), places, categories."""
        checks = [
            PlaceCheck("crm", Facet.HOSTING, "US", "US", Verdict.UNSAFEGUARDED, "none"),
            PlaceCheck("crm", Facet.BACKUP, "DE", "DE", Verdict.EEA, "EEA"),
            PlaceCheck("mail", Facet.HOSTING, "DE", "DE", Verdict.EEA, "EEA"),
            PlaceCheck("mail", Facet.ENDPOINT, "e.example", None, Verdict.EDGE, "CDN"),
        ]
        record(store, audit(T0, [unsafe(), unsafe(place="CN"), no_dpa(), no_dpa("stats")]))
        record(store, audit(T0 + DAY, [unsafe(), unsafe(place="CN"), no_dpa()], places=checks))
        waived = next(f for f in store.list_findings() if f.place == "CN")
        store.waive(waived.id, reason="r", approver="a", expires=date(2026, 12, 1), now=T0 + DAY)

        counts = store.snapshot_counts(T0.date() + DAY)

        assert {
            ("transfer-unsafeguarded", "critical", "crm"): 1,
            ("contract-dpa-missing", "critical", "mail"): 1,
        } == counts.open_findings
        assert {("transfer-unsafeguarded", "critical"): 1} == counts.waived_findings
        assert (
            frozenset({("contract-dpa-missing", "critical", "stats")}) == counts.recently_resolved
        )
        assert {("unsafeguarded", "US"): 1, ("eea", "DE"): 2, ("edge", ""): 1} == counts.places
        assert {"crm": 1, "email-marketing": 1, "analytics": 1} == counts.integrations_by_category
        assert {("geoip-country", "GeoLite2-Country"): GEOIP_BUILT} == counts.data_built
        assert counts.last_run is not None
        assert T0 + DAY == counts.last_run.started_at

    def test_data_build_times_keep_the_oldest_file_of_a_name(self, store: StateStore) -> None:
        """Of Cloudflare's two lists, the older dates the data set; an undated file is left out."""
        older, newer = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
        ranges = (
            DataSet("ip-ranges", "cloudflare", "ips-v4", newer, 10, "fetched"),
            DataSet("ip-ranges", "cloudflare", "ips-v6", older, 7, "fetched"),
            DataSet("ip-ranges", "do", "digitalocean.csv", None, 5),
        )
        result = audit(T0)
        record(store, replace(result, datasets=result.datasets + ranges))

        counts = store.snapshot_counts(T0.date())

        assert {
            ("geoip-country", "GeoLite2-Country"): GEOIP_BUILT,
            ("ip-ranges", "cloudflare"): older,
        } == counts.data_built

    def test_a_fully_waived_triple_is_reported_for_zeroing(self, store: StateStore) -> None:
        """A (rule, severity, integration) whose only open finding is waived is in recently_resolved."""
        record(store, audit(T0, [no_dpa()]))
        (target,) = store.list_findings()
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 1), now=T0)

        counts = store.snapshot_counts(T0.date())

        assert {} == counts.open_findings
        assert frozenset({("contract-dpa-missing", "critical", "mail")}) == counts.recently_resolved

    def test_an_empty_store_counts_nothing(self, store: StateStore) -> None:
        """Before any run every aggregate is empty and there is no last run."""
        counts = store.snapshot_counts(T0.date())

        assert ({}, {}, {}, {}, None) == (
            counts.open_findings,
            counts.waived_findings,
            counts.places,
            counts.integrations_by_category,
            counts.last_run,
        )

    def test_status_counts_runs_and_findings(self, store: StateStore) -> None:
        """status() gives runs by outcome and findings by state."""
        record(store, audit(T0, [unsafe(), no_dpa()]))
        record(store, audit(T0 + DAY, [unsafe(), unsafe(place="CN")]))
        failed = store.begin_run(
            T0 + 2 * DAY, tool_version="0.1.0", config_digest="c", policy_digest="p"
        )
        store.fail_run(failed, T0 + 2 * DAY, "boom")
        target = next(f for f in store.list_findings() if f.place == "CN")
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 1), now=T0)

        status = store.status(T0.date())

        assert SCHEMA_VERSION == status.schema_version
        assert {"success": 2, "error": 1, "interrupted": 0, "running": 0} == status.runs
        assert {"open": 1, "waived": 1, "resolved": 1} == status.findings
        assert status.latest_run is not None and status.latest_success is not None
        assert ("error", "success") == (status.latest_run.outcome, status.latest_success.outcome)


class TestRecordAudit:
    def test_a_successful_audit_is_begun_and_finished(self, store: StateStore) -> None:
        """record_audit returns the result and the summary of the run it recorded."""
        times = iter([T0, T0 + timedelta(seconds=5)])

        result, summary = record_audit(
            store,
            lambda: audit(T0, [unsafe()]),
            clock=lambda: next(times),
            tool_version="0.1.0",
            config_digest="c",
            policy_digest="p",
        )

        run = store.latest_run()
        assert run is not None
        assert (run.id, 1) == (summary.run_id, summary.new)
        assert (T0, T0 + timedelta(seconds=5)) == (run.started_at, run.finished_at)
        assert [unsafe()] == list(result.findings)

    def test_an_audit_that_raises_is_a_failed_run(self, store: StateStore) -> None:
        """The audit's exception propagates, and the run is recorded as an error saying why."""

        def broken() -> AuditResult:
            raise GeoDataError("country.mmdb", "corrupt database\nmore detail")

        with pytest.raises(GeoDataError):
            record_audit(
                store,
                broken,
                clock=lambda: T0,
                tool_version="0",
                config_digest="c",
                policy_digest="p",
            )

        run = store.latest_run(successful=False)
        assert run is not None
        assert ("error", "GeoDataError: country.mmdb: corrupt database") == (run.outcome, run.error)
        assert store.latest_run() is None


class TestPruneCutoff:
    @pytest.mark.parametrize(
        ("keep", "expected"),
        [
            ("P30D", datetime(2026, 2, 28, 10, 30, tzinfo=UTC)),
            ("P1M", datetime(2026, 2, 28, 10, 30, tzinfo=UTC)),
            ("PT12H", datetime(2026, 3, 29, 22, 30, tzinfo=UTC)),
            ("P1Y", datetime(2025, 3, 30, 10, 30, tzinfo=UTC)),
        ],
    )
    def test_calendar_units_count_back_from_now(self, keep: str, expected: datetime) -> None:
        """Months and years go back on the calendar (clamped at month ends); days and hours exactly."""
        now = datetime(2026, 3, 30, 10, 30, tzinfo=UTC)

        assert expected == prune_cutoff(parse_duration(keep), now)


class TestRowsAtTheCalendarsEnd:
    def test_a_waiver_expiring_on_the_calendars_last_day_is_refused(
        self, store: StateStore
    ) -> None:
        """The store bounds a waiver's expiry: ten years at most, and never 9999-12-31."""
        record(store, audit(T0, [unsafe()]))
        (target,) = store.list_findings()

        for expires in (date(2037, 1, 1), date.max):
            with pytest.raises(InvalidRequestError, match="too far away"):
                store.waive(target.id, reason="r", approver="a", expires=expires, now=T0)
        store.waive(target.id, reason="r", approver="a", expires=date(2036, 11, 1), now=T0)

    def test_a_stored_waiver_expiring_9999_12_31_never_breaks_the_scrape(
        self, store: StateStore
    ) -> None:
        """A row written straight into the database with the calendar's last day: the metrics
        still render, every other series is there, and its expiry is the end of that day."""
        from auditor.service.metrics import Exposition
        from auditor.service.snapshot import Snapshot
        from auditor.store.schema import waivers

        record(store, audit(T0, [unsafe(), no_dpa()]))
        target = next(f for f in store.list_findings() if f.rule == "contract-dpa-missing")
        store.waive(target.id, reason="r", approver="a", expires=date(2026, 12, 31), now=T0)
        with store.engine.begin() as conn:
            conn.execute(update(waivers).values(expires=date.max))

        counts = store.snapshot_counts(T0.date())
        snapshot = Snapshot(open_findings=counts.open_findings, waiver_expiry=counts.waiver_expiry)
        _, body = Exposition(lambda: snapshot).render("text/plain")

        samples = {
            (sample.name, sample.labels.get("rule")): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }
        end_of_9999 = datetime(9999, 12, 31, tzinfo=UTC).timestamp() + 86400
        expiry = "gdpr_auditor_waiver_expiry_timestamp_seconds"
        assert end_of_9999 == samples[(expiry, "contract-dpa-missing")]
        assert 1 == samples[("gdpr_auditor_findings_open", "transfer-unsafeguarded")]
