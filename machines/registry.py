"""The registered definitions: name → chart, version, state meanings and job handlers."""

from __future__ import annotations

import random

from signoff.engine import Definition, JobKind, Registry
from signoff.machines import approval, purchase_order
from signoff.machines.jobs import approval_job, purchase_order_job
from signoff.machines.lifecycle import Lifecycle


def build_registry(
    failure_rate: float = 0.25,
    rng: random.Random | None = None,
    extra_jobs: dict[str, JobKind] | None = None,
) -> Registry:
    """Every definition Signoff ships, with the approval job's failure rate set."""
    jobs = {
        "approval": approval_job(failure_rate, rng),
        "purchase_order": purchase_order_job(failure_rate, rng),
        **(extra_jobs or {}),
    }
    definitions = [
        Definition(
            name="approval",
            version=1,
            chart=approval.Approval,
            kinds=approval.KINDS,
            internal_events=approval.INTERNAL_EVENTS,
            input_type=approval.ApprovalInput,
            description="Process a request on a queue; a person approves or rejects the output.",
            examples=approval.EXAMPLES,
        ),
        Definition(
            name="purchase_order",
            version=1,
            chart=purchase_order.PurchaseOrder,
            kinds=purchase_order.KINDS,
            internal_events=purchase_order.INTERNAL_EVENTS,
            input_type=purchase_order.PurchaseOrderInput,
            description=(
                "Check an order, then legal and finance review it in parallel; finance needs "
                f"2 approvers from {purchase_order.FINANCE_QUORUM_AMOUNT:,} up."
            ),
            regions=purchase_order.REGIONS,
            examples=purchase_order.EXAMPLES,
            example_inputs=purchase_order.EXAMPLE_INPUTS,
        ),
    ]
    return Registry.of(definitions, Lifecycle, jobs)
