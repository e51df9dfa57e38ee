"""Test helper that builds real mmdb files with mmdb-writer, reusing the example builder in geodb/."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

_BUILDER = Path(__file__).resolve().parent.parent / "geodb" / "build_example_mmdb.py"


def _load_builder() -> ModuleType:
    # geodb/ is a directory of tools, not a package, so the script is loaded by its path.
    spec = importlib.util.spec_from_file_location("build_example_mmdb", _BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_builder = _load_builder()

EXAMPLE_BUILD_EPOCH: int = _builder.EXAMPLE_BUILD_EPOCH
EXAMPLE_COUNTRIES: Mapping[str, str] = _builder.EXAMPLE_COUNTRIES
EXAMPLE_ASNS: Mapping[str, tuple[int, str]] = _builder.EXAMPLE_ASNS


# Country-format (or, by `database_type`, City-format) and ASN-format writers, and one writing
# each network's record as given (path, networks, database_type); each returns its path.
build_country_db: Callable[..., Path] = _builder.build_country_db
build_asn_db: Callable[..., Path] = _builder.build_asn_db
build_records_db: Callable[..., Path] = _builder.build_records_db


def build_example_dbs(directory: Path) -> tuple[Path, Path]:
    """Write the offline example's country and ASN databases; return their paths."""
    return (
        build_country_db(directory / "example-country.mmdb", EXAMPLE_COUNTRIES),
        build_asn_db(directory / "example-asn.mmdb", EXAMPLE_ASNS),
    )
