"""The state store: one repository over the state database, composed of one part per aggregate
(runs and observations, findings and waivers, consents, retention batches) over the connections
and evidence log they share."""

from __future__ import annotations

from auditor.store.connection import FINDING_STATES
from auditor.store.consent_store import ConsentStore
from auditor.store.findings import FindingStore
from auditor.store.intent_store import IntentStore
from auditor.store.runs import RunStore


class StateStore(RunStore, FindingStore, ConsentStore, IntentStore):
    """The one repository over the state database; open it with `StateStore.open(url)`."""


__all__ = ["FINDING_STATES", "StateStore"]
