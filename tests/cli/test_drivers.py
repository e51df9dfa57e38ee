"""A database URL whose driver is not installed: one line naming the driver and the extra that
installs it (exit 3), never a traceback; `validate` lists it as a problem with its line.

The driver is made missing for real: the command runs in a child Python whose import system
refuses `psycopg` and `pymysql` (a `sitecustomize` on its path), as on a plain install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import minimal

BLOCKER = '''
import sys

class _NotInstalled:
    """Refuses the database drivers, as an interpreter without them would."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"psycopg", "psycopg_binary", "psycopg2", "pymysql", "MySQLdb"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
'''

PG = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL = "mysql://root@127.0.0.1:3306/test"
PG_DRIVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # the driver filled in
POSTGRES_LINE = "needs the PostgreSQL driver psycopg, which is not installed: " + (
    "pip install 'gdpr-auditor[postgres]'"
)
MYSQL_LINE = (
    "needs the MySQL driver pymysql, which is not installed: pip install 'gdpr-auditor[mysql]'"
)


def without_drivers(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `gdpr-auditor ARGS` in a child Python in which no database driver can be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(tmp_path: Path, **sections: object) -> Path:
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"integrations": [minimal("crm")]}))
    path = tmp_path / "auditor.yaml"
    path.write_text(yaml.safe_dump({"inventory": ["inventory.yaml"], **sections}, sort_keys=False))
    return path


def test_the_blocker_really_hides_the_driver(tmp_path: Path) -> None:
    """The child interpreter cannot import psycopg, while this one can."""
    import psycopg  # noqa: F401 (installed here: the test extra has it)

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    result = subprocess.run(
        [sys.executable, "-c", "import psycopg"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert 1 == result.returncode and "No module named 'psycopg'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "verb", [["finding", "list"], ["check"], ["db", "status"], ["report", "--period", "2026"]]
)
def test_a_postgresql_state_database_without_psycopg_is_one_line_and_exit_3(
    tmp_path: Path, verb: list[str]
) -> None:
    """Every command opening the state database says which driver and extra, in one line."""
    config = write_config(tmp_path, database={"url": PG})

    result = without_drivers(tmp_path, *verb, "--config", str(config))

    assert 3 == result.returncode, result.stderr
    expected = f"gdpr-auditor: the state database {PG_DRIVER_URL} {POSTGRES_LINE}"
    assert [expected] == result.stderr.splitlines()


@pytest.mark.slow
def test_a_data_source_without_its_driver_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """A MySQL data source whose driver is missing: `retention plan` says so in one line."""
    policy = {"id": "old", "source": "crm", "table": "contacts", "key": "id", "timestamp": "ts"}
    (tmp_path / "retention.yaml").write_text(
        yaml.safe_dump({"policies": [{**policy, "keep_for": "P2Y"}]})
    )
    config = write_config(
        tmp_path, data_sources={"crm": {"url": MYSQL}}, retention=["retention.yaml"]
    )

    result = without_drivers(tmp_path, "retention", "plan", "--config", str(config))

    assert 3 == result.returncode, result.stderr
    assert [f"gdpr-auditor: data source 'crm': {MYSQL_LINE}"] == result.stderr.splitlines()


@pytest.mark.slow
def test_validate_lists_driverless_urls_with_their_lines(tmp_path: Path) -> None:
    """`validate` reports the state database's and each data source's missing driver as a
    problem naming the key and its line (exit 2); a URL in an unset variable is not judged."""
    config = write_config(
        tmp_path,
        database={"url": PG},
        data_sources={
            "crm": {"url": MYSQL},
            "shop": {"url": "sqlite:///shop.db"},
            "later": {"url_env": "GDPR_AUDITOR_TEST_UNSET_URL"},
        },
    )

    result = without_drivers(tmp_path, "validate", "--config", str(config))

    assert 2 == result.returncode
    assert [
        "2 problems found:",
        f"  {config}:4: database.url: the state database {POSTGRES_LINE}",
        f"  {config}:7: data_sources.crm.url: the data source {MYSQL_LINE}",
    ] == result.stderr.splitlines()


@pytest.mark.slow
def test_an_unsupported_state_database_is_a_validate_problem(tmp_path: Path) -> None:
    """A state database that is not SQLite or PostgreSQL is a configuration error with its line."""
    config = write_config(tmp_path, database={"url": MYSQL})

    result = without_drivers(tmp_path, "validate", "--config", str(config))

    assert 2 == result.returncode
    assert (
        f"{config}:4: database.url: the state database must be SQLite or PostgreSQL, not mysql"
    ) in result.stderr
