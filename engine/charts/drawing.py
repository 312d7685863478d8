"""Charts as pictures: Graphviz DOT, Mermaid and SVG, optionally with a run's states lit."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from statemachine import StateChart
from statemachine.contrib.diagram import DotGraphMachine

from signoff.engine.charts import snapshots
from signoff.engine.model.registry import Registry
from signoff.engine.model.run_model import RunModel

Format = Literal["svg", "dot", "mermaid"]
MEDIA_TYPES = {
    "svg": "image/svg+xml",
    "dot": "text/vnd.graphviz; charset=utf-8",
    "mermaid": "text/plain; charset=utf-8",
}
_OBJECT_ID = re.compile(r"(?<=_)\d{9,}(?!\d)")


class RendererMissingError(RuntimeError):
    """No Graphviz renderer: install the `graphviz-pure` wheel or Debian's `graphviz`."""


def dot_source(chart: StateChart[Any] | type[StateChart[Any]]) -> str:
    """DOT for a chart class, or for an instance with its active states filled."""
    graph = DotGraphMachine(chart).get_graph()  # type: ignore[no-untyped-call]
    _hoist_edges(graph, graph)
    text = graph.to_string()
    # The library names helper nodes after Python object ids; number them in order instead,
    # so the same chart always gives the same text (the committed diagrams depend on it).
    ids: dict[str, str] = {}
    return _OBJECT_ID.sub(lambda m: ids.setdefault(m.group(), str(len(ids) + 1)), text)


def _hoist_edges(root: Any, graph: Any) -> set[str]:
    """Move edges that leave a cluster up to the top level; returns the nodes `graph` declares.

    python-statemachine writes a transition inside its source state's cluster. Graphviz puts a
    node into the first (sub)graph that mentions it, so a target outside the cluster that is
    declared later (a rejection from a parallel region back to `processing`) was drawn inside
    the region. At the top level, an edge places no node.
    """
    declared = {str(node.get_name()) for node in graph.get_nodes()}
    for sub in graph.get_subgraphs():
        declared |= _hoist_edges(root, sub)
    if graph is not root:
        leaving = [
            e
            for e in graph.get_edges()
            if str(e.get_source()) not in declared or str(e.get_destination()) not in declared
        ]
        for edge in leaving:
            graph.del_edge(edge.get_source(), edge.get_destination())
        for edge in leaving:
            root.add_edge(edge)
    return declared


def mermaid_source(chart: StateChart[Any] | type[StateChart[Any]]) -> str:
    return format(chart, "mermaid")


def renderer() -> str:
    """The `dot` executable: $SIGNOFF_DOT, else Graphviz's `dot` on PATH, else graphviz-pure."""
    candidates = [
        os.environ.get("SIGNOFF_DOT"),
        shutil.which("dot"),
        shutil.which("graphviz-pure"),
        str(Path(sys.executable).parent / "graphviz-pure"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RendererMissingError()


def _stamp(svg: bytes, dot: str) -> bytes:
    # Records which DOT the picture was drawn from: renderers differ in their SVG, so the
    # drift test compares this stamp rather than the drawing.
    digest = hashlib.sha256(dot.encode()).hexdigest()
    head, sep, rest = svg.partition(b"?>")
    stamp = b"\n<!-- signoff-source sha256=%s -->" % digest.encode()
    return head + sep + stamp + rest if sep else stamp + b"\n" + svg


@lru_cache(maxsize=256)
def render_svg(dot: str) -> bytes:
    """SVG of a DOT source (cached: a run's picture depends only on its configuration)."""
    done = subprocess.run(
        [renderer(), "-Tsvg"], input=dot.encode(), capture_output=True, check=True, timeout=30
    )
    return _stamp(done.stdout, dot)


def lit(chart: type[StateChart[Any]], configuration: list[str]) -> StateChart[Any]:
    """An instance of `chart` at `configuration`, for drawing with those states active."""
    return snapshots.restore(chart, RunModel(None, {}, {}), configuration, {})


async def render(chart: StateChart[Any] | type[StateChart[Any]], fmt: Format) -> bytes:
    if fmt == "mermaid":
        return mermaid_source(chart).encode()
    dot = dot_source(chart)
    if fmt == "dot":
        return dot.encode()
    return await asyncio.to_thread(render_svg, dot)


def charts(registry: Registry) -> dict[str, type[StateChart[Any]]]:
    """Every chart worth drawing: each definition, and the shared lifecycle machine."""
    return {
        **{n: d.chart for n, d in registry.definitions.items()},
        "lifecycle": registry.lifecycle,
    }


def write_all(registry: Registry, directory: Path) -> list[Path]:
    """Write `<name>.svg`, `.dot` and `.mmd` for every chart; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, chart in charts(registry).items():
        dot = dot_source(chart)
        outputs = {
            "dot": dot.encode(),
            "mmd": mermaid_source(chart).encode(),
            "svg": render_svg(dot),
        }
        for extension, data in outputs.items():
            path = directory / f"{name}.{extension}"
            path.write_bytes(data)
            written.append(path)
    return written


def stamped_source(svg: bytes) -> str | None:
    match = re.search(rb"signoff-source sha256=([0-9a-f]{64})", svg)
    return match.group(1).decode() if match else None


def source_digest(dot: str) -> str:
    return hashlib.sha256(dot.encode()).hexdigest()
