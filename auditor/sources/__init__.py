"""SQL sent to the organisation's own databases: named data sources, schema checks, consent coverage."""

from __future__ import annotations

from auditor.sources.consent import (
    BoundConsent,
    ConsentCoverage,
    bind_consent,
    bind_shared,
    check_consent,
    coverage,
    gaps,
)
from auditor.sources.datasources import DataSource, DataSourceError, DataSources
from auditor.sources.imported import (
    BoundImported,
    ImportedConsentLookup,
    bind_imported,
    imported_coverage,
    imported_gaps,
)

__all__ = [
    "BoundConsent",
    "BoundImported",
    "ConsentCoverage",
    "DataSource",
    "DataSourceError",
    "DataSources",
    "ImportedConsentLookup",
    "bind_consent",
    "bind_imported",
    "bind_shared",
    "check_consent",
    "coverage",
    "gaps",
    "imported_coverage",
    "imported_gaps",
]
