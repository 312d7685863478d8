"""The registered definitions: name → chart, version, state meanings and job handlers."""

from __future__ import annotations

import random

from engine.definition import Definition, JobKind, Registry
from machines import approval
from machines.jobs import approval_job
from machines.lifecycle import Lifecycle


def build_registry(
    failure_rate: float = 0.25,
    rng: random.Random | None = None,
    extra_jobs: dict[str, JobKind] | None = None,
) -> Registry:
    """Every definition Signoff ships, with the approval job's failure rate set."""
    jobs = {"approval": approval_job(failure_rate, rng), **(extra_jobs or {})}
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
    ]
    return Registry.of(definitions, Lifecycle, jobs)
