"""Paths through a chart, found by running it: every transition, on the way to a final state.

The walker starts from the chart's initial configuration and sends every event with every
example the definition gives for it (`Definition.examples`: the data and reason that make each
guard go one way or the other; default: no data). Whatever the real chart does is an edge:
(configuration, event, example) → configuration. From that graph it builds, for every edge, one
path from the start through that edge to a final state (shortest prefix and suffix), and keeps
each distinct path once. It also reports what cannot be tested that way: states never entered
and configurations from which no final state can be reached. tests/test_paths.py runs every
path through the engine; `signoff paths NAME` prints them for reviewers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from statemachine import StateChart
from statemachine.exceptions import TransitionNotAllowed

from engine import snapshots
from engine.definition import RunModel
from engine.errors import EngineError

Config = tuple[str, ...]
History = tuple[tuple[str, tuple[str, ...]], ...]
Chart = type[StateChart[Any]]
NO_DATA: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Step:
    """One event of a path: what to send, and the configuration it leads to."""

    event: str
    kwargs: Mapping[str, Any]
    to: Config
    history: History = ()  # history-state values after the step (they steer later steps)


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]

    @property
    def final(self) -> Config:
        return self.steps[-1].to

    def describe(self, start: Config) -> str:
        parts = [_leaves(start)]
        for step in self.steps:
            extra = ", ".join(f"{k}={v!r}" for k, v in step.kwargs.items())
            parts.append(f"--{step.event}{f'({extra})' if extra else ''}--> {_leaves(step.to)}")
        return " ".join(parts)


@dataclass
class Walk:
    """Every path the walker found, and what it could not cover."""

    start: Config
    paths: list[Path]
    edges: set[tuple[Config, str, Config]]
    unreachable_states: list[str] = field(default_factory=list)
    dead_ends: list[Config] = field(default_factory=list)


def walk(chart: Chart, examples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> Walk:
    examples = examples or {}
    start: Node = (_config(_machine(chart, ((), ()))), ())
    graph: dict[Node, list[Step]] = {}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        if node in graph:
            continue
        graph[node] = []
        if _is_final(chart, node):
            continue
        for event in snapshots.event_names(chart):
            for kwargs in examples.get(event, [NO_DATA]):
                step = _send(chart, node, event, kwargs)
                if step is None:
                    continue
                graph[node].append(step)
                if _node(step) not in graph:
                    todo.append(_node(step))
    to_final = _distances_to_final(chart, graph)
    prefix = _shortest_prefixes(start, graph)
    candidates: dict[tuple[Any, ...], Path] = {}
    edges: set[tuple[Config, str, Config]] = set()
    for node, steps in graph.items():
        for step in steps:
            edges.add((node[0], step.event, step.to))
            if node not in prefix or _node(step) not in to_final:
                continue
            route = (*prefix[node], step, *_suffix(_node(step), graph, to_final))
            key = tuple((s.event, _encode(s.kwargs), s.to, s.history) for s in route)
            candidates.setdefault(key, Path(route))
    # The shortest paths first; keep one only if it takes a transition (or a guard outcome)
    # that no path kept so far takes.
    covered: set[tuple[Config, str, bytes, Config]] = set()
    paths: list[Path] = []
    for path in sorted(candidates.values(), key=lambda p: (len(p.steps), p.describe(start[0]))):
        labels = set(_labels(start[0], path))
        if not labels <= covered:
            covered |= labels
            paths.append(path)
    entered = {s for node in graph for s in node[0]}
    return Walk(
        start=start[0],
        paths=paths,
        edges=edges,
        unreachable_states=sorted(set(chart.states_map) - entered),
        dead_ends=sorted({n[0] for n in graph if n not in to_final}),
    )


class ChartNotTestableError(EngineError):
    """The chart has states or configurations its generated paths cannot cover."""


def check(chart: Chart, result: Walk) -> None:
    """Raise if a state is never entered or a configuration can never finish."""
    problems = []
    if result.unreachable_states:
        problems.append(f"states never entered: {', '.join(result.unreachable_states)}")
    if result.dead_ends:
        shown = "; ".join(_leaves(c) for c in result.dead_ends)
        problems.append(f"no final state reachable from: {shown}")
    if problems:
        raise ChartNotTestableError(f"{chart.__name__}: " + " | ".join(problems))


Node = tuple[Config, History]


def _node(step: Step) -> Node:
    return (step.to, step.history)


def _machine(chart: Chart, node: Node) -> StateChart[Any]:
    config, history = node
    return snapshots.restore(chart, RunModel(None, {}, {}), list(config), dict(history))


def _config(machine: StateChart[Any]) -> Config:
    return tuple(snapshots.configuration(machine))


def _is_final(chart: Chart, node: Node) -> bool:
    return snapshots.is_final(_machine(chart, node))


def _send(chart: Chart, node: Node, event: str, kwargs: Mapping[str, Any]) -> Step | None:
    machine = _machine(chart, node)
    try:
        machine.send(event, **{"actor": "paths", "at": "now", "data": {}, **kwargs})
    except (TransitionNotAllowed, EngineError):
        return None
    history = tuple(sorted((k, tuple(v)) for k, v in snapshots.history_values(machine).items()))
    return Step(event, kwargs, _config(machine), history)


def _distances_to_final(chart: Chart, graph: dict[Node, list[Step]]) -> dict[Node, int]:
    back: dict[Node, list[Node]] = {n: [] for n in graph}
    for node, steps in graph.items():
        for step in steps:
            back[_node(step)].append(node)
    dist = {n: 0 for n in graph if _is_final(chart, n)}
    todo = deque(dist)
    while todo:
        node = todo.popleft()
        for prev in back[node]:
            if prev not in dist:
                dist[prev] = dist[node] + 1
                todo.append(prev)
    return dist


def _shortest_prefixes(start: Node, graph: dict[Node, list[Step]]) -> dict[Node, list[Step]]:
    prefix: dict[Node, list[Step]] = {start: []}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        for step in graph[node]:
            if _node(step) not in prefix:
                prefix[_node(step)] = [*prefix[node], step]
                todo.append(_node(step))
    return prefix


def _suffix(node: Node, graph: dict[Node, list[Step]], dist: dict[Node, int]) -> list[Step]:
    steps: list[Step] = []
    while dist[node] > 0:
        step = min(
            (s for s in graph[node] if dist.get(_node(s), -1) == dist[node] - 1),
            key=lambda s: s.event,
        )
        steps.append(step)
        node = _node(step)
    return steps


def _labels(start: Config, path: Path) -> list[tuple[Config, str, bytes, Config]]:
    labels, at = [], start
    for step in path.steps:
        labels.append((at, step.event, _encode(step.kwargs), step.to))
        at = step.to
    return labels


def _encode(kwargs: Mapping[str, Any]) -> bytes:
    return msgspec.json.encode(kwargs, order="sorted")


def _leaves(config: Config) -> str:
    return "+".join(config) if config else "(none)"
