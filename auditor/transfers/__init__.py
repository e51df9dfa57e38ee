"""Transfers (GDPR Chapter V): the rules and the audit, plan -> probe -> evaluate."""
