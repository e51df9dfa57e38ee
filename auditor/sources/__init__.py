"""SQL sent to the organisation's own databases: named data sources, schema checks, consent coverage."""

from __future__ import annotations

from auditor.sources.consent import (
    BoundConsent,
    ConsentCoverage,
    bind_consent,
    check_consent,
    coverage,
    gaps,
)
from auditor.sources.datasources import DataSource, DataSourceError, DataSources

__all__ = [
    "BoundConsent",
    "ConsentCoverage",
    "DataSource",
    "DataSourceError",
    "DataSources",
    "bind_consent",
    "check_consent",
    "coverage",
    "gaps",
]
