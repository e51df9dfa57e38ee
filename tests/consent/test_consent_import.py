"""Importing consent exports into the state store, on SQLite and PostgreSQL: idempotent, all or
nothing, bad rows named by line without their keys, subject keys only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from auditor.cli import cli
from auditor.consent.imports import (
    SUBJECT_KEY_ENV,
    Format,
    ImportColumns,
    SubjectHasher,
    read_consents,
    subject_key,
)
from auditor.core.errors import InvalidInputError
from auditor.store import ImportCounts, StateStore
from auditor.store.schema import evidence, imported_consents
from tests.helpers import write_config

KEY = b"a-test-subject-key-0123456789"
ENV = {SUBJECT_KEY_ENV: KEY.decode()}
PURPOSE = "newsletter-us"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

EXPORT = """\
subject,granted_at,withdrawn_at,channel
alice@example.com,2026-01-05T10:00:00Z,,web
bob@example.com,2026-02-01,2026-06-30T12:00:00+02:00,web
42,2025-12-31T23:00:00,,app
0042,2025-12-31T23:00:00,,app
"carol, jr@example.com",2026-03-01T08:00:00Z,,web
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def import_file(
    store: StateStore, path: Path, purpose: str = PURPOSE, columns: ImportColumns | None = None
) -> ImportCounts:
    fmt: Format = "csv" if path.suffix == ".csv" else "json"
    rows = read_consents(path, fmt, columns or ImportColumns(), SubjectHasher(KEY))
    return store.import_consents(purpose, rows, digest="d" * 64, at=NOW)


def stored_rows(store: StateStore) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(imported_consents).order_by(imported_consents.c.id)
            )
        ]


def evidence_kinds(store: StateStore) -> list[str]:
    return [record.kind for record in store.evidence_records()]


def keyed(subject: str) -> str:
    return hmac.new(KEY, subject.encode(), hashlib.sha256).hexdigest()


class TestStore:
    def test_importing_the_same_file_twice_changes_nothing(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """The second import finds every row present: the table is identical, row for row,
        and the counts say so; each import leaves one evidence record."""
        path = write(tmp_path, "export.csv", EXPORT)

        first = import_file(store, path)
        before = stored_rows(store)
        second = import_file(store, path)

        assert (5, 5, 0, 0) == (first.read, first.inserted, first.updated, first.already_present)
        assert (5, 0, 0, 5) == (
            second.read,
            second.inserted,
            second.updated,
            second.already_present,
        )
        assert before == stored_rows(store)
        assert ["consent-import", "consent-import"] == evidence_kinds(store)

    def test_keys_are_stored_only_as_keyed_hashes(self, store: StateStore, tmp_path: Path) -> None:
        """No column holds a subject key: the table has HMAC-SHA256 hashes with the key, and
        `42` and `0042` are two subjects; times are UTC, the date-only grant at midnight."""
        import_file(store, write(tmp_path, "export.csv", EXPORT))

        rows = stored_rows(store)
        text = repr(rows)
        with store.engine.connect() as connection:
            chained = " ".join(r.content for r in connection.execute(select(evidence)))

        for subject in ("alice", "bob", "carol", "@example"):  # not hex: no hash can hold them
            assert subject not in text
            assert subject not in chained
        by_hash = {row.subject_hash: row for row in (r for r in _rows(store))}
        assert {
            keyed(s)
            for s in (
                "alice@example.com",
                "bob@example.com",
                "42",
                "0042",
                "carol, jr@example.com",
            )
        } == set(by_hash)
        bob = by_hash[keyed("bob@example.com")]
        assert (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 6, 30, 10, tzinfo=UTC)) == (
            bob.granted_at,
            bob.withdrawn_at,
        )
        assert datetime(2025, 12, 31, 23, tzinfo=UTC) == by_hash[keyed("42")].granted_at
        assert {PURPOSE} == {row.purpose for row in by_hash.values()}

    def test_a_later_export_records_a_withdrawal_and_never_undoes_one(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """A consent imported as standing and exported again as withdrawn gets the withdrawal;
        an export showing it standing again, or withdrawn later, changes nothing."""
        import_file(store, write(tmp_path, "1.csv", EXPORT))
        withdrawn = EXPORT.replace(
            "alice@example.com,2026-01-05T10:00:00Z,,web",
            "alice@example.com,2026-01-05T10:00:00Z,2026-09-01T00:00:00Z,web",
        )

        recorded = import_file(store, write(tmp_path, "2.csv", withdrawn))
        after = stored_rows(store)
        later = import_file(
            store, write(tmp_path, "3.csv", withdrawn.replace("2026-09-01", "2026-10-01"))
        )
        undone = import_file(store, write(tmp_path, "4.csv", EXPORT))

        assert (1, 4) == (recorded.updated, recorded.already_present)
        assert (0, 5) == (later.updated, later.already_present)
        assert (0, 5) == (undone.updated, undone.already_present)
        assert after == stored_rows(store)
        alice = next(r for r in _rows(store) if r.subject_hash == keyed("alice@example.com"))
        assert datetime(2026, 9, 1, tzinfo=UTC) == alice.withdrawn_at
        assert "d" * 64 == alice.updated_digest

    def test_a_row_repeated_in_a_file_counts_once_with_its_earliest_withdrawal(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """The same consent twice in one file (across batches too) is one row; the earlier
        withdrawal of the two is the one kept."""
        path = write(
            tmp_path,
            "dup.csv",
            """\
            subject,granted_at,withdrawn_at
            s1,2026-01-01,
            s1,2026-01-01,2026-05-01
            s1,2026-01-01,2026-07-01
            """,
        )
        rows = read_consents(path, "csv", ImportColumns(), SubjectHasher(KEY))

        found = store.import_consents(PURPOSE, rows, digest="e" * 64, at=NOW, batch_size=1)

        assert (3, 1, 1, 1) == (found.read, found.inserted, found.updated, found.already_present)
        assert [datetime(2026, 5, 1, tzinfo=UTC)] == [r.withdrawn_at for r in _rows(store)]

    def test_a_bad_row_imports_nothing_and_names_its_lines(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """Rows with a bad date, no subject, a withdrawal before the grant and a stray field
        are all named by line and column, without their subject keys; nothing is imported and
        no evidence is recorded, even though good rows came first."""
        path = write(
            tmp_path,
            "bad.csv",
            """\
            subject,granted_at,withdrawn_at
            good@example.com,2026-01-01,
            alice@example.com,yesterday,
            ,2026-01-01,
            bob@example.com,2026-03-01,2026-02-01
            carol@example.com,2026-03-01,,surplus
            """,
        )

        with pytest.raises(InvalidInputError) as raised:
            import_file(store, path)

        assert [
            (3, "granted_at", "not an ISO 8601 date or timestamp"),
            (4, "subject", "expected a subject key"),
            (5, "withdrawn_at", "withdrawn before it was granted"),
            (6, None, "more fields than the header has columns"),
        ] == [
            (issue.line, issue.field, issue.message.split(" (")[0].split(",")[0])
            for issue in raised.value.issues
        ]
        message = str(raised.value)
        for subject in ("alice", "bob", "carol", "good"):
            assert subject not in message
        assert [] == stored_rows(store)
        assert [] == evidence_kinds(store)

    def test_json_arrays_and_json_lines_name_the_line_of_the_bad_object(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """A JSON array spread over lines and JSON Lines give each object's line; integers are
        keys by their digits; a missing withdrawal is none."""
        array = write(
            tmp_path,
            "export.json",
            """\
            [
              {"subject": "alice@example.com", "granted_at": "2026-01-05T10:00:00Z"},
              {"subject": 42,
               "granted_at": "2026-01-06",
               "withdrawn_at": null},
              {"subject": 4.5, "granted_at": "2026-01-07"}
            ]
            """,
        )
        lines = write(
            tmp_path,
            "export.jsonl",
            '{"subject": "x1", "granted_at": "2026-01-05"}\n\n'
            '{"subject": "x2", "granted_at": 20260105}\n',
        )

        with pytest.raises(InvalidInputError) as in_array:
            import_file(store, array)
        with pytest.raises(InvalidInputError) as in_lines:
            import_file(store, lines)
        fixed = write(tmp_path, "fixed.json", array.read_text().replace("4.5", '"4.5"'))
        imported = import_file(store, fixed)

        assert [(6, "subject")] == [(i.line, i.field) for i in in_array.value.issues]
        assert "number with a fraction" in in_array.value.issues[0].message
        assert [(3, "granted_at")] == [(i.line, i.field) for i in in_lines.value.issues]
        assert 3 == imported.inserted
        assert keyed("42") in {row.subject_hash for row in _rows(store)}

    def test_other_column_names_and_a_missing_column(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        """Columns are named as the platform names them; a header without one says which."""
        path = write(
            tmp_path,
            "platform.csv",
            """\
            user_id,consented,revoked
            u1,2026-01-01T00:00:00Z,
            """,
        )
        columns = ImportColumns("user_id", "consented", "revoked")

        found = import_file(store, path, columns=columns)
        with pytest.raises(InvalidInputError) as raised:
            import_file(store, path)

        assert 1 == found.inserted
        assert (1, "no column 'subject', 'granted_at', 'withdrawn_at' in the header") == (
            raised.value.issues[0].line,
            raised.value.issues[0].message.split(" (")[0],
        )


def read_all(path: Path) -> list[Any]:
    fmt: Format = "csv" if path.suffix == ".csv" else "json"
    return list(read_consents(path, fmt, ImportColumns(), SubjectHasher(KEY)))


def file_issues(path: Path) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(InvalidInputError) as raised:
        read_all(path)
    return [(issue.line, issue.field, issue.message) for issue in raised.value.issues]


class TestHostileFiles:
    def test_a_key_twice_in_a_json_object_is_an_error_naming_its_line_and_key(
        self, tmp_path: Path
    ) -> None:
        """A second `withdrawn_at` would silently replace the first: refused, in arrays (at the
        object's line) and in JSON Lines."""
        array = write(
            tmp_path,
            "a.json",
            """\
            [
              {"subject": "s1", "granted_at": "2026-01-01"},
              {"subject": "s2", "granted_at": "2026-01-01",
               "withdrawn_at": "2026-02-01", "withdrawn_at": null}
            ]
            """,
        )
        lines = write(
            tmp_path,
            "a.jsonl",
            '{"subject": "s1", "granted_at": "2026-01-01"}\n'
            '{"subject": "s2", "granted_at": "2026-01-01", "x": {"k": 1, "k": 2}}\n',
        )

        [(line, _, message)] = file_issues(array)
        [(lines_line, _, lines_message)] = file_issues(lines)

        assert (3, "key 'withdrawn_at' appears twice in one object") == (
            line,
            message.removeprefix("not usable JSON: ").split(":")[0],
        )
        assert 2 == lines_line
        assert "key 'k' appears twice" in lines_message

    def test_a_column_twice_in_the_csv_header_is_an_error_naming_it(self, tmp_path: Path) -> None:
        """csv.DictReader would keep the last `withdrawn_at` column only."""
        path = write(
            tmp_path,
            "dup.csv",
            """\
            subject,granted_at,withdrawn_at,channel,withdrawn_at
            s1,2026-01-01,2026-02-01,web,
            """,
        )

        assert [(1, None, "column 'withdrawn_at' appears more than once in the header")] == (
            file_issues(path)
        )

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ('[{"subject": ' + "4" * 4301 + ', "granted_at": "2026-01-01"}]', "4300 digits"),
            ('{"subject": "s", "granted_at": "2026-01-01", "x": ' + "[" * 100_000, "nested too"),
            ("[" + "[" * 100_000 + "]" * 100_001, "nested too deeply"),
        ],
    )
    def test_numbers_python_cannot_hold_and_deep_nesting_are_file_errors(
        self, tmp_path: Path, text: str, fragment: str
    ) -> None:
        path = write(tmp_path, "hostile.json", text)

        [(line, _, message)] = file_issues(path)

        assert 1 == line
        assert fragment in message
        assert "set_int_max_str_digits" not in message

    @pytest.mark.parametrize(
        "stamp",
        ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00+00:01"],
    )
    def test_a_timestamp_outside_the_calendar_in_utc_is_a_row_error(
        self, tmp_path: Path, stamp: str
    ) -> None:
        """Year 1 and 9999 with an offset that moves them out of range when converted to UTC."""
        path = write(tmp_path, "edge.csv", f"subject,granted_at,withdrawn_at\ns,{stamp},\n")

        assert [(2, "granted_at", "outside the years 1 to 9999 once converted to UTC")] == (
            file_issues(path)
        )

    def test_the_first_and_last_instants_in_utc_are_read(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "edge.csv",
            "subject,granted_at,withdrawn_at\ns,0001-01-01,9999-12-31T23:59:59Z\n",
        )

        [consent] = read_all(path)

        assert (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) == (
            consent.granted_at,
            consent.withdrawn_at,
        )


def _rows(store: StateStore) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(imported_consents)))


class TestSubjectKey:
    def test_a_missing_or_short_key_is_an_error_naming_the_variable(self) -> None:
        """Without GDPR_AUDITOR_SUBJECT_KEY, or with a short one, nothing can be hashed."""
        with pytest.raises(InvalidInputError) as unset:
            subject_key({})
        with pytest.raises(InvalidInputError) as short:
            subject_key({SUBJECT_KEY_ENV: "short"})

        assert str(unset.value.issues[0]).startswith(f"{SUBJECT_KEY_ENV}: is not set")
        assert "shorter than 16 bytes" in str(short.value)
        assert KEY == subject_key(ENV)

    def test_hashes_are_hmac_sha256_of_the_keys_text(self) -> None:
        """The hasher gives HMAC-SHA256 in hex; another key gives another hash."""
        assert keyed("a@example.com") == SubjectHasher(KEY)("a@example.com")
        assert SubjectHasher(b"another-key-0123456789")("a") != SubjectHasher(KEY)("a")


# --- the command ------------------------------------------------------------------------------


def config_file(tmp_path: Path, state_url: str) -> Path:
    return write_config(tmp_path, [], database={"url": state_url})


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


class TestCommand:
    def test_import_prints_the_counts_and_again_finds_everything_present(
        self, state_url: str, tmp_path: Path
    ) -> None:
        """`consent import` prints read, inserted, recorded and present counts; twice is a no-op;
        a purpose no mapping uses gets a note on stderr."""
        config = config_file(tmp_path, state_url)
        path = write(tmp_path, "export.csv", EXPORT)
        args = ("consent", "import", str(path), "--config", str(config), "--purpose", PURPOSE)

        first = run(*args, env=ENV)
        second = run(*args, env=ENV)

        assert 0 == first.exit_code, first.output
        assert (
            "export.csv: read 5, inserted 5, withdrawals recorded 0, already present 0 "
            f"(purpose {PURPOSE!r})\n"
        ) == first.stdout
        assert "already present 5" in second.stdout
        assert "no consent mapping with imported consents" in first.stderr
        store = StateStore.open(state_url)
        try:
            records = [r for r in store.evidence_records() if r.kind == "consent-import"]
            content = json.loads(records[0].content)
        finally:
            store.close()
        assert {
            "file": "export.csv",
            "format": "csv",
            "purpose": PURPOSE,
            "read": 5,
            "inserted": 5,
            "updated": 0,
            "already_present": 0,
        }.items() <= content.items()
        assert 64 == len(content["file_sha256"])

    def test_a_bad_row_exits_2_naming_the_line_and_not_the_key(
        self, state_url: str, tmp_path: Path
    ) -> None:
        """Exit 2, `file:line: column: what is wrong`, the subject nowhere in the output."""
        config = config_file(tmp_path, state_url)
        path = write(tmp_path, "bad.csv", EXPORT.replace("2026-02-01,", "2026-02-31,"))

        result = run(
            "consent", "import", str(path), "--config", str(config), "--purpose", PURPOSE, env=ENV
        )

        assert 2 == result.exit_code
        assert f"{path}:3: granted_at: not an ISO 8601 date or timestamp" in result.stderr
        assert "bob" not in result.output

    def test_without_the_subject_key_nothing_is_read(self, state_url: str, tmp_path: Path) -> None:
        """No GDPR_AUDITOR_SUBJECT_KEY: exit 2 naming it, before the file is read."""
        config = config_file(tmp_path, state_url)
        path = write(tmp_path, "export.csv", EXPORT)

        result = run(
            "consent",
            "import",
            str(path),
            "--config",
            str(config),
            "--purpose",
            PURPOSE,
            env={SUBJECT_KEY_ENV: ""},
        )

        assert 2 == result.exit_code
        assert f"{SUBJECT_KEY_ENV}: is not set" in result.stderr

    def test_the_format_comes_from_the_name_or_the_option(
        self, state_url: str, tmp_path: Path
    ) -> None:
        """`.txt` needs --format; with --format json a JSON Lines file imports."""
        config = config_file(tmp_path, state_url)
        path = write(tmp_path, "export.txt", '{"subject": "a1", "granted_at": "2026-01-01"}\n')
        base = ("consent", "import", str(path), "--config", str(config), "--purpose", PURPOSE)

        guessed = run(*base, env=ENV)
        told = run(*base, "--format", "json", env=ENV)

        assert 2 == guessed.exit_code
        assert "pass --format csv or --format json" in guessed.stderr
        assert 0 == told.exit_code, told.output
        assert "inserted 1" in told.stdout
