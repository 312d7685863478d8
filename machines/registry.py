"""Signoff's own pack, `signoff`: the `approval` and `purchase_order` charts and their jobs.

Loaded like any installed pack, through the entry-point group `signoff.definitions`
(pyproject.toml); SIGNOFF_PACKS leaves it out when it names other packs only.
"""

from __future__ import annotations

import random

from signoff.engine import Definition, JobKind, Pack, Registry, Settings
from signoff.machines import approval, purchase_order
from signoff.machines.jobs import approval_job, purchase_order_job
from signoff.machines.lifecycle import Lifecycle

DEFINITIONS = [
    Definition(
        name="approval",
        version=1,
        chart=approval.Approval,
        kinds=approval.KINDS,
        internal_events=approval.INTERNAL_EVENTS,
        input_type=approval.ApprovalInput,
        description="Process a request on a queue; a person approves or rejects the output.",
        examples=approval.EXAMPLES,
        slas={"waiting_for_approval": 86400},  # a person decides within a day
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
        slas={"review": 3 * 86400},  # legal and finance both decide within three days
        examples=purchase_order.EXAMPLES,
        example_inputs=purchase_order.EXAMPLE_INPUTS,
    ),
]


def job_kinds(failure_rate: float = 0.25, rng: random.Random | None = None) -> list[JobKind]:
    """The simulated jobs of the shipped charts, failing transiently at `failure_rate`."""
    return [approval_job(failure_rate, rng), purchase_order_job(failure_rate, rng)]


def pack(settings: Settings) -> Pack:
    """The entry point: the shipped charts, with SIGNOFF_FAILURE_RATE."""
    return Pack("signoff", DEFINITIONS, job_kinds(settings.failure_rate))


def build_registry(
    failure_rate: float = 0.25,
    rng: random.Random | None = None,
    extra_jobs: dict[str, JobKind] | None = None,
) -> Registry:
    """A registry of the shipped charts alone (tests and benchmarks), `extra_jobs` replacing
    handlers by kind."""
    jobs = {j.name: j for j in job_kinds(failure_rate, rng)} | (extra_jobs or {})
    return Registry.of(DEFINITIONS, Lifecycle, jobs)
