"""Evidence for auditors: the tamper-evident record chain, and reports built from it."""
