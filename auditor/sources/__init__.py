"""The organisation's own databases: named data sources and the checks of their reflected schemas,
shared by every capability that sends SQL there (consent coverage, retention).

The data sources themselves are `auditor.sources.datasources` (SQLAlchemy), imported by name:
the configuration's models here (`auditor.sources.config`) are loaded by every command, which
need not import SQLAlchemy for that."""
