"""gdpr-auditor: where an organisation's SaaS integrations keep personal data, checked against the GDPR."""

from __future__ import annotations

__version__ = "0.1.0"
