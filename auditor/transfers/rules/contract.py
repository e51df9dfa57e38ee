"""Contract rules (Art. 28): a signed DPA, no vendor use of the data, a disclosed location."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.core.model import Finding
from auditor.transfers.rules import AuditContext, rule


@rule("contract-dpa-missing", "contract-vendor-data-use", "contract-location-undisclosed")
def contract_rules(context: AuditContext) -> Iterator[Finding]:
    """A processor needs a DPA signed by the audit date; the vendor must not use or own the data."""
    for integration in context.integrations.values():
        contract = integration.contract
        if integration.role == "processor":
            signed = contract.dpa_signed
            if signed is None:
                yield context.finding(
                    "contract-dpa-missing",
                    integration,
                    f"{integration.name} processes personal data for you but no signed data "
                    "processing agreement is recorded",
                )
            elif signed > context.as_of:
                yield context.finding(
                    "contract-dpa-missing",
                    integration,
                    f"the data processing agreement with {integration.name} was signed only on "
                    f"{signed}, after the audit date {context.as_of}",
                    evidence={"dpa_signed": signed.isoformat()},
                )
        reasons = []
        if contract.vendor_may_use_data:
            reasons.append("the contract lets the vendor use the data for its own purposes")
        if contract.data_ownership != "customer":
            reasons.append(f"data ownership is recorded as {contract.data_ownership!r}")
        if reasons:
            yield context.finding(
                "contract-vendor-data-use",
                integration,
                f"{integration.vendor}: {'; '.join(reasons)}",
                evidence={
                    "vendor_may_use_data": contract.vendor_may_use_data,
                    "data_ownership": contract.data_ownership,
                },
            )
        if not integration.hosting:
            yield context.finding(
                "contract-location-undisclosed",
                integration,
                f"{integration.name} declares no hosting place; ask the vendor where the data is "
                "hosted and record it",
            )
