"""The organisation's own databases: named data sources and the checks of their reflected schemas,
shared by every capability that sends SQL there (consent coverage, retention)."""

from __future__ import annotations

from auditor.sources.datasources import DataSource, DataSourceError, DataSources

__all__ = ["DataSource", "DataSourceError", "DataSources"]
