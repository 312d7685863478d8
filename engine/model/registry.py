"""Every definition a process runs, by name and version, with the lifecycle chart and job kinds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from statemachine import StateChart

from signoff.engine.errors import DefinitionNotFoundError, DefinitionRetiredError, SnapshotError
from signoff.engine.model.definition import Definition
from signoff.engine.model.jobs import JobKind
from signoff.engine.model.lifecycle import LifecycleEvent, LifecycleState
from signoff.engine.model.pack import Pack
from signoff.engine.model.run_model import TIMER_KIND

# Job kinds the engine itself runs: timers, and chart documents' `http` calls.
RESERVED_KINDS = frozenset({TIMER_KIND, "http"})


@dataclass(frozen=True)
class Registry:
    """Every definition by name (its newest version, which new runs start on), the older
    versions that existing runs may still be on, and the run-lifecycle chart they all share."""

    definitions: Mapping[str, Definition]
    lifecycle: type[StateChart[Any]]
    jobs: Mapping[str, JobKind] = field(default_factory=dict)
    older: Sequence[Definition] = ()
    # Versions (name, version) that start no new runs (chart documents retired at run time).
    retired: frozenset[tuple[str, int]] = frozenset()

    def __post_init__(self) -> None:
        # The definitions from code stay; chart documents come and go (load_documents).
        object.__setattr__(self, "_code", (*self.older, *self.definitions.values()))
        object.__setattr__(self, "definitions", dict(self.definitions))
        object.__setattr__(self, "older", list(self.older))
        object.__setattr__(self, "jobs", dict(self.jobs))

    def add_job(self, job: JobKind) -> None:
        """Add a job kind every process runs (Signoff's built-in `http`), unless one of that
        name is registered already."""
        jobs = self.jobs
        assert isinstance(jobs, dict)
        jobs.setdefault(job.name, job)

    def code_names(self) -> frozenset[str]:
        """The names of the definitions that come from code (packs), not documents."""
        code: tuple[Definition, ...] = self.__dict__["_code"]
        return frozenset(d.name for d in code)

    def load_documents(self, documents: Sequence[tuple[Definition, bool]]) -> None:
        """Replace the definitions from chart documents with `documents` (each with whether it
        is retired); new runs take the newest version of a name that is not retired."""
        code: tuple[Definition, ...] = self.__dict__["_code"]
        names = self.code_names()
        every = [*code, *(d for d, _ in documents if d.name not in names)]
        retired = frozenset((d.name, d.version) for d, off in documents if off)
        newest: dict[str, Definition] = {}
        for d in every:
            if (d.name, d.version) not in retired and (
                d.name not in newest or d.version > newest[d.name].version
            ):
                newest[d.name] = d
        current = set(map(id, newest.values()))
        definitions, older = self.definitions, self.older
        assert isinstance(definitions, dict) and isinstance(older, list)
        definitions.clear()
        definitions.update(newest)
        older[:] = [d for d in every if id(d) not in current]
        object.__setattr__(self, "retired", retired)
        self.__dict__.pop("_by_version", None)

    @classmethod
    def of(
        cls,
        definitions: Sequence[Definition],
        lifecycle: type[StateChart[Any]],
        jobs: Mapping[str, JobKind] | None = None,
    ) -> Registry:
        """From every version of every definition; the highest version of a name is current."""
        _check_lifecycle(lifecycle)
        newest: dict[str, Definition] = {}
        for d in definitions:
            if d.name not in newest or d.version > newest[d.name].version:
                newest[d.name] = d
        current = set(map(id, newest.values()))
        rest = [d for d in definitions if id(d) not in current]
        return cls(newest, lifecycle, dict(jobs or {}), rest)

    @classmethod
    def of_packs(cls, packs: Sequence[Pack], lifecycle: type[StateChart[Any]]) -> Registry:
        """Every definition and job kind of `packs`. A name that two packs both provide is an
        error (ValueError naming both), never a silent override."""
        owners: dict[str, str] = {}
        definitions: list[Definition] = []
        jobs: dict[str, JobKind] = {}
        for pack in packs:
            for d in pack.definitions:
                _provide(owners, f"definition {d.name!r}", pack.name)
                definitions.append(d)
            for job in pack.jobs:
                if job.name in RESERVED_KINDS or job.name in jobs:
                    raise ValueError(
                        f"pack {pack.name!r} provides the job kind {job.name!r}, which "
                        + ("is Signoff's own" if job.name in RESERVED_KINDS else "is taken")
                    )
                _provide(owners, f"job kind {job.name!r}", pack.name)
                jobs[job.name] = job
        return cls.of(definitions, lifecycle, jobs)

    def get(self, name: str) -> Definition:
        """The version of `name` new runs start on."""
        try:
            return self.definitions[name]
        except KeyError:
            if self.versions(name):
                raise DefinitionRetiredError(
                    f"Every version of {name!r} is retired: it starts no new runs."
                ) from None
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

    def find(self, name: str, version: int) -> Definition | None:
        """That version of that definition, if this process has it."""
        return self._by_version.get((name, version))

    def version(self, name: str, version: int) -> Definition:
        found = self._by_version.get((name, version))
        if found is not None:
            return found
        self.get(name)  # an unknown name is DefinitionNotFoundError
        raise SnapshotError(
            f"Version {version} of {name!r} is not registered (registered: "
            f"{', '.join(str(d.version) for d in self.versions(name))}); register it beside "
            "the newer one so its runs can continue, or migrate them (signoff migrate-runs)."
        )


def _provide(owners: dict[str, str], what: str, pack: str) -> None:
    """Record that `pack` provides `what` (versions of one definition come from one pack)."""
    first = owners.setdefault(what, pack)
    if first != pack:
        raise ValueError(f"{what} comes from two packs, {first!r} and {pack!r}; load one of them")


def _check_lifecycle(chart: type[StateChart[Any]]) -> None:
    """The lifecycle chart must speak the engine's vocabulary (signoff.engine.model.lifecycle)."""
    states = set(chart.states_map)
    events = {str(e.id) for s in chart.states_map.values() for t in s.transitions for e in t.events}
    missing = [str(s) for s in LifecycleState if s not in states]
    missing += [str(e) for e in LifecycleEvent if e not in events]
    if missing:
        raise ValueError(f"{chart.__name__} lacks the lifecycle names {', '.join(missing)}")
