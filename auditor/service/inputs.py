"""What a job reads when it starts: a valid configuration with its policy data and inventory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from auditor.config import Config
from auditor.core.model import Integration
from auditor.core.policies import PolicyData


@dataclass(frozen=True, slots=True)
class Inputs:
    """One loaded, valid set of inputs; a reload makes a new one, a running job keeps its own."""

    config: Config
    policies: PolicyData
    integrations: Sequence[Integration]
