"""Diagrams: committed files match the code; endpoints draw charts and light a run's states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signoff.engine.charts.drawing import (
    charts,
    dot_source,
    mermaid_source,
    source_digest,
    stamped_source,
)
from signoff.machines.registry import build_registry
from tests.helpers import LiveServer, eventually

DIAGRAMS = Path(__file__).parent.parent / "diagrams"
FIX = "run `signoff diagrams` and commit the result"


@pytest.mark.parametrize("name", sorted(charts(build_registry())))
def test_committed_diagrams_match_the_code(name: str) -> None:
    chart = charts(build_registry())[name]
    dot = dot_source(chart)
    assert (DIAGRAMS / f"{name}.dot").read_text() == dot, FIX
    assert (DIAGRAMS / f"{name}.mmd").read_text() == mermaid_source(chart), FIX
    svg = (DIAGRAMS / f"{name}.svg").read_bytes()
    assert b"<svg" in svg
    assert stamped_source(svg) == source_digest(dot), FIX


def test_dot_is_the_same_in_every_process() -> None:
    assert dot_source(build_registry().lifecycle) == dot_source(build_registry().lifecycle)
    assert "__initial_1" in dot_source(build_registry().lifecycle)


def test_a_region_draws_only_its_own_states() -> None:
    """A rejection from a parallel region goes back to `processing`, which stays outside the
    review cluster (Graphviz places a node in the first subgraph that mentions it)."""
    import pydot

    chart = build_registry().get("purchase_order").chart
    graphs = pydot.graph_from_dot_data(dot_source(chart))
    assert graphs is not None, "the DOT did not parse"
    (graph,) = graphs

    def mentioned(sub: Any) -> set[str]:
        names = {str(n.get_name()) for n in sub.get_nodes()}
        for edge in sub.get_edges():
            names |= {str(edge.get_source()), str(edge.get_destination())}
        for inner in sub.get_subgraphs():
            names |= mentioned(inner)
        return names

    (review,) = [g for g in graph.get_subgraphs() if g.get_name() == "cluster_review"]
    inside = mentioned(review)
    assert {"legal_pending", "finance_partial", "finance_approved"} <= inside
    assert not inside & {"processing", "draft", "approved", "error"}


async def test_definition_diagram_in_every_format(live_server: LiveServer) -> None:
    client = live_server.client
    svg = await client.get("/api/definitions/approval/diagram")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"<title>waiting_for_approval</title>" in svg.content
    dot = await client.get("/api/definitions/approval/diagram", params={"format": "dot"})
    assert dot.text.startswith("digraph Approval {")
    mermaid = await client.get("/api/definitions/approval/diagram", params={"format": "mermaid"})
    assert mermaid.text.startswith("stateDiagram-v2")
    assert ":::active" not in mermaid.text
    missing = await client.get("/api/definitions/nope/diagram")
    assert missing.status_code == 404
    bad = await client.get("/api/definitions/approval/diagram", params={"format": "png"})
    assert (bad.status_code, bad.headers["content-type"]) == (400, "application/problem+json")


async def test_run_diagram_lights_the_active_state(live_server: LiveServer) -> None:
    client = live_server.client
    run = (
        await client.post("/api/runs", json={"definition": "approval", "input": {"output": 0.9}})
    ).json()
    await client.post(f"/api/runs/{run['id']}/process")

    async def waiting() -> bool:
        view = (await client.get(f"/api/runs/{run['id']}")).json()
        return bool(view["state"] == "waiting_for_approval")

    await eventually(waiting)
    url = f"/api/runs/{run['id']}/diagram"
    mermaid = (await client.get(url, params={"format": "mermaid"})).text
    assert "waiting_for_approval:::active" in mermaid
    assert "unprocessed:::active" not in mermaid
    svg = (await client.get(url)).text
    node = svg.split("<title>waiting_for_approval</title>", 1)[1].split("</g>", 1)[0]
    assert 'fill="turquoise"' in node
    other = svg.split("<title>unprocessed</title>", 1)[1].split("</g>", 1)[0]
    assert 'fill="turquoise"' not in other
    assert (await client.get("/api/runs/nope/diagram")).status_code == 404
