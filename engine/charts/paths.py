"""Paths through a chart, found by running it: every transition, on the way to a final state.

The walker starts a run of the chart with each example input (`Definition.example_inputs`) and
sends every event with every example the definition gives for it (`Definition.examples`: the
data, reason and actor that make each guard go one way or the other; default: no data).
Whatever the real chart does is an edge: (configuration, event, example) → configuration. A
node is the whole snapshot (input, configuration, history values and context), because guards
such as a quorum read the run's context; each (input, configuration, history) is explored with
at most `max_contexts` contexts, the first met breadth-first, which keeps loops that only add
context finite; a transition seen only into an unexplored snapshot is then finished from it
by the shortest way the chart allows. From that graph it builds, for every edge, one path from
a start through that edge to a final state (shortest prefix and suffix), and keeps each
distinct path once. It also reports what cannot be tested that way: states never entered and
configurations from which no final state can be reached. tests/test_paths.py runs every
path through the engine; `signoff paths NAME` prints them for reviewers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec
from statemachine import StateChart
from statemachine.exceptions import TransitionNotAllowed

from signoff.engine.charts import snapshots
from signoff.engine.errors import EngineError
from signoff.engine.model.run_model import RunModel, model_for

Config = tuple[str, ...]
History = tuple[tuple[str, tuple[str, ...]], ...]
Chart = type[StateChart[Any]]
Examples = Mapping[str, Sequence[Mapping[str, Any]]]
NO_DATA: Mapping[str, Any] = {}


@dataclass(frozen=True)
class Step:
    """One event of a path: what to send, and the configuration it leads to."""

    event: str
    kwargs: Mapping[str, Any]
    to: Config
    history: History = ()  # history-state values after the step (they steer later steps)
    context: bytes = b"{}"  # the run's context after the step (guards may read it)


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]
    input: Mapping[str, Any] = field(default_factory=dict)  # what the run is created with

    @property
    def final(self) -> Config:
        return self.steps[-1].to

    def describe(self, start: Config) -> str:
        parts = [f"[input {_encode(self.input).decode()}]"] if self.input else []
        parts.append(_leaves(start))
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


# A node: (index of the example input, configuration, history values, context as JSON).
Node = tuple[int, Config, History, bytes]


def walk(
    chart: Chart,
    examples: Examples | None = None,
    inputs: Sequence[Mapping[str, Any]] = ({},),
    max_contexts: int = 2,
) -> Walk:
    examples = examples or {}
    inputs = list(inputs) or [{}]
    starts: list[Node] = []
    for i in range(len(inputs)):
        first = _machine(chart, (i, (), (), b"{}"), inputs)
        starts.append((i, _config(first), (), _encode(first.model.context)))
    explore = _Explorer(chart, examples, inputs)
    graph = explore.graph
    queued = set(starts)
    contexts: dict[tuple[int, Config, History], int] = {}
    todo = deque(starts)
    while todo:
        node = todo.popleft()
        for step in explore.steps(node):
            target = _node(node, step)
            if target in queued or contexts.get(target[:3], 0) >= max_contexts:
                continue  # loops that only add context stop here
            contexts[target[:3]] = contexts.get(target[:3], 0) + 1
            queued.add(target)
            todo.append(target)
    # A transition seen only into a snapshot left unexplored above still deserves a path:
    # finish such a snapshot by the shortest way the real chart allows, until every
    # transition has a path or its snapshots cannot finish.
    tried: set[tuple[Config, str, Config]] = set()
    while True:
        to_final = _distances_to_final(chart, graph)
        finishing = {
            (node[1], step.event, step.to)
            for node, steps in graph.items()
            for step in steps
            if _node(node, step) in to_final
        }
        waiting = {
            (node[1], step.event, step.to): _node(node, step)
            for node, steps in graph.items()
            for step in steps
            if _node(node, step) not in to_final
        }
        waiting = {k: t for k, t in waiting.items() if k not in finishing and k not in tried}
        if not waiting:
            break
        for label, target in waiting.items():
            tried.add(label)
            explore.finish(target, max_steps=len(chart.states_map))
    prefix = _shortest_prefixes(starts, graph)
    candidates: dict[tuple[Any, ...], Path] = {}
    edges: set[tuple[Config, str, Config]] = set()
    for node, steps in graph.items():
        for step in steps:
            edges.add((node[1], step.event, step.to))
            target = _node(node, step)
            if node not in prefix or target not in to_final:
                continue
            route = (*prefix[node], step, *_suffix(target, graph, to_final))
            key = (node[0], *((s.event, _encode(s.kwargs), s.to, s.history) for s in route))
            candidates.setdefault(key, Path(route, inputs[node[0]]))
    # The shortest paths first; keep one only if it takes a transition (or a guard outcome)
    # that no path kept so far takes.
    start = starts[0][1]
    covered: set[tuple[Config, str, bytes, Config]] = set()
    paths: list[Path] = []
    for path in sorted(candidates.values(), key=lambda p: (len(p.steps), p.describe(start))):
        labels = set(_labels(start, path))
        if not labels <= covered:
            covered |= labels
            paths.append(path)
    # Entered: in a configuration explored, or one a step led to (a final one may not be
    # explored further).
    entered = {s for node in graph for s in node[1]}
    entered |= {s for steps in graph.values() for step in steps for s in step.to}
    can_finish = {n[1] for n in to_final}
    return Walk(
        start=start,
        paths=paths,
        edges=edges,
        unreachable_states=sorted(set(chart.states_map) - entered),
        dead_ends=sorted({n[1] for n in graph} - can_finish),
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


class _Explorer:
    """Sends every event and example to snapshots, once each, into a shared graph."""

    def __init__(
        self, chart: Chart, examples: Examples, inputs: Sequence[Mapping[str, Any]]
    ) -> None:
        self.chart, self.examples, self.inputs = chart, examples, inputs
        self.graph: dict[Node, list[Step]] = {}

    def steps(self, node: Node) -> list[Step]:
        if node not in self.graph:
            found: list[Step] = []
            if not _is_final(self.chart, node[1]):
                for event in snapshots.event_names(self.chart):
                    for kwargs in self.examples.get(event, [NO_DATA]):
                        step = _send(self.chart, node, event, kwargs, self.inputs)
                        if step is not None:
                            found.append(step)
            self.graph[node] = found
        return self.graph[node]

    def finish(self, start: Node, max_steps: int) -> None:
        """Explore breadth-first from `start` until a final state, at most `max_steps` deep."""
        depth = {start: 0}
        todo = deque([start])
        while todo:
            node = todo.popleft()
            if _is_final(self.chart, node[1]):
                return
            if depth[node] >= max_steps:
                continue
            for step in self.steps(node):
                target = _node(node, step)
                if target not in depth:
                    depth[target] = depth[node] + 1
                    todo.append(target)


def _node(source: Node, step: Step) -> Node:
    return (source[0], step.to, step.history, step.context)


def _machine(chart: Chart, node: Node, inputs: Sequence[Mapping[str, Any]]) -> StateChart[Any]:
    i, config, history, context = node
    model = model_for(chart, None, msgspec.json.decode(context), inputs[i])
    return snapshots.restore(chart, model, list(config), dict(history))


def _config(machine: StateChart[Any]) -> Config:
    return tuple(snapshots.configuration(machine))


@lru_cache(maxsize=1024)
def _is_final(chart: Chart, config: Config) -> bool:
    return snapshots.is_final(snapshots.restore(chart, RunModel(None, {}, {}), list(config), {}))


def _send(
    chart: Chart,
    node: Node,
    event: str,
    kwargs: Mapping[str, Any],
    inputs: Sequence[Mapping[str, Any]],
) -> Step | None:
    machine = _machine(chart, node, inputs)
    try:
        machine.send(event, **{"actor": "paths", "at": "now", "data": {}, **kwargs})
    except (TransitionNotAllowed, EngineError):
        return None
    except (LookupError, TypeError, ValueError, ArithmeticError):
        if getattr(chart, "model_type", None) is None:
            raise  # a code chart's bug: it fails loudly
        return None  # a document's guard cannot read this example's data: refused, as at run time
    history = tuple(sorted((k, tuple(v)) for k, v in snapshots.history_values(machine).items()))
    return Step(event, kwargs, _config(machine), history, _encode(machine.model.context))


def _distances_to_final(chart: Chart, graph: dict[Node, list[Step]]) -> dict[Node, int]:
    back: dict[Node, list[Node]] = {n: [] for n in graph}
    for node, steps in graph.items():
        for step in steps:
            back.setdefault(_node(node, step), []).append(node)
    dist = {n: 0 for n in back if _is_final(chart, n[1])}
    todo = deque(dist)
    while todo:
        node = todo.popleft()
        for prev in back[node]:
            if prev not in dist:
                dist[prev] = dist[node] + 1
                todo.append(prev)
    return dist


def _shortest_prefixes(starts: list[Node], graph: dict[Node, list[Step]]) -> dict[Node, list[Step]]:
    prefix: dict[Node, list[Step]] = {start: [] for start in starts}
    todo = deque(starts)
    while todo:
        node = todo.popleft()
        for step in graph.get(node, []):  # a snapshot never explored leads nowhere yet
            target = _node(node, step)
            if target not in prefix:
                prefix[target] = [*prefix[node], step]
                todo.append(target)
    return prefix


def _suffix(node: Node, graph: dict[Node, list[Step]], dist: dict[Node, int]) -> list[Step]:
    steps: list[Step] = []
    while dist[node] > 0:
        here = node
        step = min(
            (s for s in graph[here] if dist.get(_node(here, s), -1) == dist[here] - 1),
            key=lambda s: (s.event, _encode(s.kwargs)),
        )
        steps.append(step)
        node = _node(here, step)
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
