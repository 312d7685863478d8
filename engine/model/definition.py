"""What a business chart declares to the runtime: state meanings, events, jobs, input."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec
from statemachine import StateChart


class StateKind(enum.Enum):
    """What a business state means to the run lifecycle."""

    WORK = "work"  # a job runs while the run is here -> lifecycle `running`
    WAIT = "wait"  # a person must act -> lifecycle `waiting`
    SUCCESS = "success"  # a final, successful state -> lifecycle `completed`
    FAILURE = "failure"  # processing failed -> lifecycle `errored`


class JobRequest(msgspec.Struct, frozen=True):
    """A job (or, with a delay and an event, a timer) that a state asked for on entry."""

    kind: str
    state: str
    payload: dict[str, Any] = {}
    delay_s: float = 0.0


class RunModel:
    """The domain model a chart runs on: its configuration, context, input and job intents.

    Charts record intent here and never perform I/O; the dispatcher writes the intents as
    job rows in the same transaction as the transition.
    """

    def __init__(self, state: Any, context: dict[str, Any], input: Mapping[str, Any]) -> None:
        self.state = state
        self.context = context
        self.input = input
        self.requests: list[JobRequest] = []

    def request_job(self, kind: str, state: str, **payload: Any) -> None:
        self.requests.append(JobRequest(kind=kind, state=state, payload=payload))

    def request_timer(self, event: str, state: str, delay_s: float) -> None:
        self.requests.append(
            JobRequest(kind=TIMER_KIND, state=state, payload={"event": event}, delay_s=delay_s)
        )


TIMER_KIND = "timer"

# The lifecycle chart's contract with the engine: events the engine derives from the business
# chart, and the control events operators send.
RUN, WAIT, COMPLETE, FAIL = "run", "wait", "complete", "fail"
CONTROL_EVENTS = ("pause", "resume", "cancel")
PAUSED, CANCELLED = "paused", "cancelled"


class JobOutcome(msgspec.Struct, frozen=True):
    """The event a finished job sends to its run."""

    event: str
    data: dict[str, Any] = {}


@dataclass(frozen=True)
class JobContext:
    """What a job handler sees: the run it works for and its attempt number (1-based)."""

    run_id: str
    input: Mapping[str, Any]
    payload: Mapping[str, Any]
    attempt: int


JobHandler = Callable[[JobContext], Awaitable[JobOutcome]]


@dataclass(frozen=True)
class JobKind:
    """A job handler and the event it sends when its attempts are exhausted."""

    name: str
    handler: JobHandler
    failure_event: str


Migration = Callable[[list[str], dict[str, Any]], tuple[list[str], dict[str, Any]]]


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key
class Definition:
    """A registered business chart and what its states and events mean to the runtime."""

    name: str
    version: int
    chart: type[StateChart[Any]]
    kinds: Mapping[str, StateKind]
    internal_events: frozenset[str] = frozenset()
    input_type: type[msgspec.Struct] | None = None
    description: str = ""
    # Events the run's creator may not send under SIGNOFF_SEPARATION_OF_DUTIES.
    approval_events: frozenset[str] = frozenset({"approve"})
    # Approval regions (parallel states decided separately) → the group whose approvers
    # decide there. When set, every decision event names its region in `data.region`, and
    # the dispatcher admits only approvers of that region's group (engine/regions.py).
    regions: Mapping[str, str] = field(default_factory=dict)
    decision_events: frozenset[str] = frozenset({"approve", "reject"})
    # Per event, the keyword arguments (data, reason, actor) that drive each of its guards and
    # validators one way or the other; the path generator (engine/paths.py) sends each, on a
    # run started with each of `example_inputs`.
    examples: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    example_inputs: Sequence[Mapping[str, Any]] = ({},)
    # Moves a run's stored (configuration, context) from the previous version to this one;
    # None: they carry over as they are (engine/versions.py).
    migrate: Migration | None = None

    @cached_property
    def structural_hash(self) -> str:
        """What the chart's stored snapshots depend on (engine/structure.py)."""
        from signoff.engine.charts.structure import structural_hash

        return structural_hash(self.chart, self.kinds)


@dataclass(frozen=True)
class Registry:
    """Every definition by name (its newest version, which new runs start on), the older
    versions that existing runs may still be on, and the run-lifecycle chart they all share."""

    definitions: Mapping[str, Definition]
    lifecycle: type[StateChart[Any]]
    jobs: Mapping[str, JobKind] = field(default_factory=dict)
    older: Sequence[Definition] = ()

    @classmethod
    def of(
        cls,
        definitions: Sequence[Definition],
        lifecycle: type[StateChart[Any]],
        jobs: Mapping[str, JobKind] | None = None,
    ) -> Registry:
        """From every version of every definition; the highest version of a name is current."""
        newest: dict[str, Definition] = {}
        for d in definitions:
            if d.name not in newest or d.version > newest[d.name].version:
                newest[d.name] = d
        current = set(map(id, newest.values()))
        rest = [d for d in definitions if id(d) not in current]
        return cls(newest, lifecycle, dict(jobs or {}), rest)

    def get(self, name: str) -> Definition:
        from signoff.engine.errors import DefinitionNotFoundError

        try:
            return self.definitions[name]
        except KeyError:
            raise DefinitionNotFoundError(name) from None

    def versions(self, name: str) -> list[Definition]:
        """Every registered version of `name`, oldest first."""
        return sorted(
            (d for (n, _), d in self._by_version.items() if n == name), key=lambda d: d.version
        )

    @cached_property
    def _by_version(self) -> dict[tuple[str, int], Definition]:
        # Looked up on every transition: built once.
        return {(d.name, d.version): d for d in (*self.older, *self.definitions.values())}

    def version(self, name: str, version: int) -> Definition:
        from signoff.engine.errors import SnapshotError

        found = self._by_version.get((name, version))
        if found is not None:
            return found
        self.get(name)  # an unknown name is DefinitionNotFoundError
        raise SnapshotError(
            f"Version {version} of {name!r} is not registered (registered: "
            f"{', '.join(str(d.version) for d in self.versions(name))}); register it beside "
            "the newer one so its runs can continue, or migrate them (signoff migrate-runs)."
        )
