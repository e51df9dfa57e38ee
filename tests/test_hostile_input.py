"""Hostile documents for every file reader: only the project's errors come out, never a crash.

Every reader a user's file reaches (inventory, configuration, retention policies, consent imports
in CSV, JSON and JSON Lines, Fides and CSV register imports, the vendor catalogue, policy data,
IP-range files) gets generated documents: valid ones with a value replaced by something hostile,
re-encoded, cut short or padded with junk, and plain junk. A child process reads them
(tests/hostile_worker.py) with its heap capped at 1 GiB, and is given 60 s per document: a hang
or a blow-up fails the test as surely as a traceback does. These are guards, not speed tests.
"""

from __future__ import annotations

import json
import selectors
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.core.policies import shipped_policies
from tests.helpers import minimal

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_SECONDS = 60.0


# -- the reader process ------------------------------------------------------------------------


class Worker:
    """tests/hostile_worker.py as a child process, restarted after a document killed it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.hostile_worker"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        return self.process

    def read(self, kind: str, path: Path) -> dict[str, str]:
        """What the reader of `kind` made of the file: ok, error or crash (with the detail)."""
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"kind": kind, "path": str(path)}) + "\n")
        process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(DOCUMENT_SECONDS)
        if not ready:
            self.stop()
            return {"outcome": "crash", "detail": f"still reading after {DOCUMENT_SECONDS:g} s"}
        line = process.stdout.readline()
        if not line:
            status = process.wait(10)
            self.stop()
            return {"outcome": "crash", "detail": f"the reader process died ({status})"}
        answer: dict[str, str] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process = None


@pytest.fixture(name="worker", scope="module")
def _worker() -> Iterator[Worker]:
    worker = Worker()
    yield worker
    worker.stop()


@pytest.fixture(name="scratch", scope="module")
def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


# -- valid documents, one per reader -----------------------------------------------------------

_INVENTORY = {"integrations": [minimal("crm"), minimal("mail", hosting=["aws:eu-west-1"])]}
_CONFIG = {
    "inventory": ["inventory.yaml"],
    "dns": {"nameservers": ["127.0.0.1:53"], "timeout": 2, "concurrency": 4},
    "metrics": {"listen": "127.0.0.1:9000"},
    "jobs": {"audit": {"interval": "PT1H"}},
    "discovery": {"domains": ["example.com"], "pages": ["https://www.example.com/"]},
}
_RETENTION = {
    "policies": [
        {
            "id": "contacts",
            "source": "crm",
            "table": "contacts",
            "key": "id",
            "timestamp": "updated_at",
            "keep_for": "P2Y",
            "filter": {"status": "inactive"},
            "action": "anonymise",
            "anonymise": {"email": {"hash": True}, "name": None},
        }
    ]
}
_CONSENTS = [
    {"subject": "s1", "granted_at": "2026-01-05T10:00:00Z", "withdrawn_at": None},
    {"subject": 42, "granted_at": "2026-01-06", "withdrawn_at": "2026-02-01T00:00:00+02:00"},
]
_FIDES = {
    "system": [
        {
            "fides_key": "crm",
            "name": "CRM",
            "fidesctl_meta": {"endpoint_address": "https://api.crm.example"},
            "egress": [{"fides_key": "mail", "type": "system"}],
            "privacy_declarations": [
                {
                    "data_categories": ["user.contact.email", "user"],
                    "data_use": "marketing",
                    "data_subjects": ["employee"],
                    "retention_period": "3-5 years after the last order",
                    "processes_special_category_data": True,
                    "data_shared_with_third_parties": True,
                    "third_parties": "resellers",
                }
            ],
            "third_country_transfers": ["USA"],
            "does_international_transfers": True,
            "legal_basis_for_transfers": ["SCCs", "Consent"],
            "legal_name": "CRM Inc.",
            "legal_address": "1 Road, Town, United States",
            "responsibility": ["Controller"],
            "joint_controller_info": "partner",
            "dpa_location": "https://contracts.example/crm",
            "processes_personal_data": True,
            "exempt_from_privacy_regulations": False,
        }
    ]
}
_DATAMAP = {
    "items": [
        {
            "fides_key": "crm",
            "system_name": "CRM",
            "data_uses": ["marketing.communications.email"],
            "data_categories": "user.contact, user.name",
            "data_use_undeclared_data_categories": ["user.location"],
            "retention_period": "P2Y",
            "responsibility": ["Processor"],
            "legal_basis_for_transfers": ["BCRs"],
            "legal_address": "Dublin, Ireland",
        },
        {"fides_key": "crm", "system_name": "CRM", "legal_address": "Cork, Ireland"},
    ],
    "total": 2,
}
_AWS = {
    "syncToken": "1",
    "createDate": "2026-01-01-00-00-00",
    "prefixes": [{"ip_prefix": "3.5.0.0/16", "region": "eu-west-1", "service": "AMAZON"}],
    "ipv6_prefixes": [],
}


def _catalogue() -> dict[str, Any]:
    shipped = yaml.safe_load((shipped_policies() / "vendors.yaml").read_text())
    vendor = dict(shipped["vendors"][0], id="local-vendor")
    return {"vendors": [vendor]}


def _csv(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = [",".join(header)]
    lines += [",".join("" if row[c] is None else str(row[c]) for c in header) for row in rows]
    return "\n".join(lines) + "\n"


# kind -> (file name, format, valid data)
BASES: dict[str, tuple[str, str, Any]] = {
    "inventory": ("inventory.yaml", "yaml", _INVENTORY),
    "config": ("auditor.yaml", "yaml", _CONFIG),
    "retention": ("retention.yaml", "yaml", _RETENTION),
    "consent-csv": ("consents.csv", "csv", _CONSENTS),
    "consent-json": ("consents.json", "json", _CONSENTS),
    "consent-jsonl": ("consents.jsonl", "jsonl", _CONSENTS),
    "fides": ("fides.yaml", "yaml", _FIDES),
    "fides-json": ("fides.json", "json", _FIDES),
    "fides-datamap": ("datamap.json", "json", _DATAMAP),
    "register-csv": ("register.csv", "csv", [minimal("crm")]),
    "catalogue": ("vendors.yaml", "yaml", _catalogue()),
    "ip-ranges": ("ip-ranges.json", "json", _AWS),
}
POLICY_FILES = ["eea.yaml", "adequacy.yaml", "rules.yaml", "edges.yaml", "regions/aws.yaml"]
READER = {"consent-jsonl": "consent-json", "fides-json": "fides", "fides-datamap": "fides"}
"""The reader of a kind where it is another kind's: the format is in the file's content."""


# -- hostile values ----------------------------------------------------------------------------


def _bomb(levels: int) -> str:
    parts = ["&b0 [" + ",".join(["lol"] * 9) + "]"]
    parts += [f"&b{n} [" + ",".join([f"*b{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


# Written into the text in place of a token, unquoted: what no serialiser would write.
RAW_VALUES = {
    "huge-integer": "9" * 4301,
    "long-integer": "-" + "1" * 4300,
    "huge-float": "1e99999",
    "year-1-with-offset": "0001-01-01T00:30:00+01:00",
    "year-9999-with-offset": "9999-12-31T23:30:00-01:00",
    "february-31": "2026-02-31",
    "nested-900": "[" * 900 + "]" * 900,
    "nested-5000": "[" * 5000 + "]" * 5000,
    "nested-100000": "[" * 100_000 + "]" * 100_000,
    "alias-bomb": _bomb(9),
    "recursive-alias": "&r [1, *r]",
    "recursive-mapping": "&m {a: *m}",
    "duplicate-keys": "{a: 1, a: 2}",
    "duplicate-json-keys": '{"a": 1, "a": 2}',
}
# Values a serialiser writes (quoted where it must).
PLAIN_VALUES = st.one_of(
    st.sampled_from(
        [
            "P3000Y",
            "P1000Y",
            "P" + "9" * 5000 + "D",
            "PT99999999999999999999S",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "0001-01-01",
            "9999-12-31",
            "\x00\x1b\x7f",
            "\u2028\ufeff\u202e",
            "aws:" + "x" * 10_000,
            "US",
            "CN",
            10**4299,
            -(2**63),
            1e308,
            float("inf"),
            None,
            True,
            [],
            {},
        ]
    ),
    st.text(max_size=40),
    st.integers(),
    st.floats(),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _serialise(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    if fmt == "json":
        return json.dumps(data, indent=1)
    if fmt == "jsonl":
        rows = data if isinstance(data, list) else [data]
        return "".join(json.dumps(row) + "\n" for row in rows)
    return _csv(data)


@st.composite
def documents(draw: st.DrawFn, fmt: str, base: Any) -> bytes:
    """A valid document with a value, a key or the text itself made hostile."""
    data = base
    paths = _paths(base)
    token = None
    if fmt == "csv":
        row = draw(st.integers(0, len(base) - 1))
        column = draw(st.sampled_from(list(base[0])))
        value = draw(st.one_of(PLAIN_VALUES, st.sampled_from(list(RAW_VALUES))))
        data = _replace(base, (row, column), value if isinstance(value, str) else str(value))
    elif draw(st.booleans()):
        path = draw(st.sampled_from(paths))
        token = draw(st.sampled_from(list(RAW_VALUES)))
        data = _replace(base, path, f"@@{token}@@")
    else:
        path = draw(st.sampled_from(paths))
        data = _replace(base, path, draw(PLAIN_VALUES))
    try:
        text = _serialise(data, fmt)
    except (ValueError, OverflowError):
        text = repr(data)  # a value the format cannot hold: junk of its own
    if token is not None:
        text = text.replace(f'"@@{token}@@"', f"@@{token}@@")
        text = text.replace(f"'@@{token}@@'", f"@@{token}@@")
        text = text.replace(f"@@{token}@@", RAW_VALUES[token])
    return draw(_encoded(text))


@st.composite
def _encoded(draw: st.DrawFn, text: str) -> bytes:
    """The text as bytes: UTF-8, with a BOM, in Latin-1 or UTF-16, cut short, or spiked."""
    how = draw(st.sampled_from(["utf-8", "bom", "latin-1", "utf-16", "cut", "spiked", "nul"]))
    raw = text.encode("utf-8", errors="surrogatepass")
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "latin-1":
        return text.encode("latin-1", errors="replace") + "\nÜber: ü\n".encode("latin-1")
    if how == "utf-16":
        return text.encode("utf-16", errors="surrogatepass")
    if how == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if how in ("spiked", "nul"):
        at = draw(st.integers(0, len(raw)))
        spike = b"\x00" if how == "nul" else draw(st.binary(min_size=1, max_size=8))
        return raw[:at] + spike + raw[at:]
    return raw


def _write(scratch: Path, kind: str, content: bytes) -> tuple[str, Path]:
    """The reader's kind and the path to hand it (a policy directory for policy data)."""
    if kind.startswith("policies:"):
        directory = scratch / "policies"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(shipped_policies(), directory)
        (directory / kind.removeprefix("policies:")).write_bytes(content)
        return "policies", directory
    name = BASES[kind][0]
    path = scratch / name
    path.write_bytes(content)
    return READER.get(kind, kind), path


def assert_only_project_errors(worker: Worker, scratch: Path, kind: str, content: bytes) -> str:
    reader, path = _write(scratch, kind, content)
    answer = worker.read(reader, path)
    assert answer["outcome"] != "crash", (
        f"{kind} reader on {content[:300]!r}...:\n{answer['detail']}"
    )
    return answer["outcome"]


# -- the properties ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*BASES, *(f"policies:{name}" for name in POLICY_FILES)])
def test_the_valid_documents_the_mutations_start_from_are_read(
    worker: Worker, scratch: Path, kind: str
) -> None:
    """So that a mutation reaches the checks behind the parser, not only the parser."""
    if kind.startswith("policies:"):
        content = (shipped_policies() / kind.removeprefix("policies:")).read_bytes()
    else:
        _, fmt, base = BASES[kind]
        content = _serialise(base, fmt).encode()

    assert "ok" == assert_only_project_errors(worker, scratch, kind, content)


_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", list(BASES))
@_SETTINGS
@given(data=st.data())
def test_mutated_documents_get_only_the_projects_errors(
    worker: Worker, scratch: Path, kind: str, data: st.DataObject
) -> None:
    _, fmt, base = BASES[kind]
    content = data.draw(documents(fmt, base))

    assert_only_project_errors(worker, scratch, kind, content)


@pytest.mark.parametrize("name", POLICY_FILES)
@_SETTINGS
@given(data=st.data())
def test_mutated_policy_data_gets_only_the_projects_errors(
    worker: Worker, scratch: Path, name: str, data: st.DataObject
) -> None:
    base = yaml.safe_load((shipped_policies() / name).read_text())
    content = data.draw(documents("yaml", base))

    assert_only_project_errors(worker, scratch, f"policies:{name}", content)


@pytest.mark.parametrize("kind", [*BASES, "policies:eea.yaml"])
@settings(max_examples=15, deadline=None)
@given(junk=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_junk_gets_only_the_projects_errors(
    worker: Worker, scratch: Path, kind: str, junk: bytes
) -> None:
    assert_only_project_errors(worker, scratch, kind, junk)


# -- deliberate cases: each must be refused -----------------------------------------------------

YAML_KINDS = ["inventory", "config", "retention", "fides", "catalogue", "policies:eea.yaml"]
DELIBERATE_YAML = {
    "duplicate key at the top": "a: 1\nb: 2\na: 3\n",
    "duplicate key two deep": "a:\n  - b: 1\n    c: 2\n    b: 3\n",
    "duplicate key in a flow mapping four deep": "a: {b: [{c: {d: 1, d: 2}}]}\n",
    "alias bomb": "\n".join(
        [f"l0: &l0 [{','.join(['lol'] * 9)}]"]
        + [f"l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    )
    + "\n",
    "recursive alias": "a: &a [1, *a]\n",
    "recursive mapping": "a: &a {b: *a}\n",
    "huge integer": "a: " + "9" * 4301 + "\n",
    "deep nesting": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "31 February": "a: 2026-02-31\n",
    "control character": "a: b\x07c\n",
    "not UTF-8": "a: \u00fcber\n".encode("latin-1").decode("latin-1"),
}


@pytest.mark.parametrize("kind", YAML_KINDS)
@pytest.mark.parametrize("case", list(DELIBERATE_YAML))
def test_deliberately_hostile_yaml_is_refused_with_the_projects_error(
    worker: Worker, scratch: Path, kind: str, case: str
) -> None:
    text = DELIBERATE_YAML[case]
    content = text.encode("latin-1") if case == "not UTF-8" else text.encode()

    assert "error" == assert_only_project_errors(worker, scratch, kind, content)


_OBJECT = '{"subject": "s", "granted_at": "2026-01-01", "withdrawn_at": null'
DELIBERATE_CONSENTS = {
    "consent-json": {
        "duplicate key": f'[{_OBJECT}, "subject": "t"}}]',
        "duplicate key nested": f'[{_OBJECT}, "x": {{"y": [{{"z": 1, "z": 2}}]}}}}]',
        "huge integer": '[{"subject": ' + "4" * 4301 + ', "granted_at": "2026-01-01"}]',
        "deep nesting": "[" * 100_000 + "]" * 100_000,
        "year 1 with an offset": '[{"subject": "s", "granted_at": "0001-01-01T00:00:00+01:00"}]',
        "year 9999 with an offset": '[{"subject": "s", "granted_at": "9999-12-31T23:59-01:00"}]',
        "control character": '[{"subject": "s\x01", "granted_at": "2026-01-01"}]',
        "not UTF-8": '[{"subject": "\u00fc", "granted_at": "2026-01-01"}]',
    },
    "consent-jsonl": {
        "duplicate key": f'{_OBJECT}}}\n{_OBJECT}, "granted_at": "2026-01-02"}}\n',
        "deep nesting": f'{_OBJECT}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    },
    "consent-csv": {
        "duplicate column": "subject,granted_at,withdrawn_at,subject\ns,2026-01-01,,t\n",
        "year 1 with an offset": "subject,granted_at,withdrawn_at\ns,0001-01-01T00:00+01:00,\n",
        "year 9999 with an offset": "subject,granted_at,withdrawn_at\ns,9999-12-31T23:59-01:00,\n",
        "field past the csv limit": "subject,granted_at,withdrawn_at\n" + "s" * 200_000 + ",x,\n",
        "not UTF-8": "subject,granted_at,withdrawn_at\n\u00fc,2026-01-01,\n",
    },
    "register-csv": {
        "duplicate column after case folding": "id,name,Hosting,hosting \ncrm,CRM,CN,DE\n",
        "not UTF-8": "id,name\ncrm,M\u00fcller\n",
        "field past the csv limit": "id,name\ncrm," + "x" * 200_000 + "\n",
    },
    "fides-json": {
        "duplicate key": '{"system": [{"fides_key": "a", "fides_key": "b"}]}',
    },
    "ip-ranges": {
        "duplicate key": '{"createDate": "2026-01-01-00-00-00", "prefixes": [], "prefixes": []}',
        "huge integer": '{"createDate": "2026-01-01-00-00-00", "syncToken": ' + "1" * 5000 + "}",
        "deep nesting": '{"prefixes": ' + "[" * 100_000 + "]" * 100_000 + "}",
    },
}


@pytest.mark.parametrize(
    ("kind", "case"),
    [(kind, case) for kind, cases in DELIBERATE_CONSENTS.items() for case in cases],
)
def test_deliberately_hostile_imports_are_refused_with_the_projects_error(
    worker: Worker, scratch: Path, kind: str, case: str
) -> None:
    text = DELIBERATE_CONSENTS[kind][case]
    content = text.encode("latin-1") if case == "not UTF-8" else text.encode()

    assert "error" == assert_only_project_errors(worker, scratch, kind, content)


def test_a_byte_order_mark_is_no_error(worker: Worker, scratch: Path) -> None:
    """Editors on Windows write one; every reader skips it."""
    for kind, (_, fmt, base) in BASES.items():
        content = b"\xef\xbb\xbf" + _serialise(base, fmt).encode()
        assert "ok" == assert_only_project_errors(worker, scratch, kind, content), kind


def test_the_reader_process_is_capped_and_its_crashes_are_seen(
    worker: Worker, scratch: Path
) -> None:
    """The guard itself: an exception that is not the project's comes back as a crash, with
    its traceback, and the heap cap holds in the reader process."""
    answer = worker.read("no-such-reader", scratch)
    memory = worker.read("memory-hog", scratch)

    assert "crash" == answer["outcome"]
    assert "KeyError" in answer["detail"]
    assert "crash" == memory["outcome"]
    assert "MemoryError" in memory["detail"]
