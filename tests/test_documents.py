"""Chart documents (YAML, JSON, SCXML) deployed at run time: checked before anything is stored,
stored as append-only versions, run like code charts, and hostile input refused or bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff import DocumentRejectedError
from signoff.engine import generated_paths
from signoff.engine.documents.compile import compile_document, digest
from tests.helpers import EXAMPLE

DOCS = EXAMPLE / "expense_report"
YAML_TEXT = (DOCS / "expense_claim.yaml").read_text()
SCXML_TEXT = (DOCS / "expense_claim.scxml").read_text()


def as_json(text: str = YAML_TEXT) -> str:
    return json.dumps(yaml.safe_load(text))


def edited(change: Any) -> str:
    """The example document (YAML) with `change(doc)` applied to its parsed form."""
    doc = yaml.safe_load(YAML_TEXT)
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def reasons(text: str, fmt: str = "yaml", **kw: Any) -> list[str]:
    with pytest.raises(DocumentRejectedError) as refused:
        compile_document(text, fmt, **kw)
    return refused.value.reasons


@pytest.mark.parametrize(
    ("fmt", "text"), [("yaml", YAML_TEXT), ("json", as_json()), ("scxml", SCXML_TEXT)]
)
def test_the_example_document_compiles_in_each_format_and_its_paths_cover_it(
    fmt: str, text: str
) -> None:
    compiled = compile_document(text, fmt)
    definition = compiled.definition
    assert compiled.hash == digest(text)
    assert definition.source == fmt
    assert {s: k.value for s, k in definition.kinds.items()}["paying"] == "work"
    assert definition.deciders == {"manager_review": "managers", "finance_review": "finance"}
    assert definition.internal_events == {"paid_out", "payment_declined"}
    examples = definition.examples or {"approve": [{"actor": "a"}, {"actor": "b"}]}
    inputs = definition.example_inputs if definition.examples else [{"amount": 7500}]
    walk = generated_paths.walk(definition.chart, examples, inputs)
    generated_paths.check(definition.chart, walk)  # every state and transition is covered
    assert any("finance_review --approve" in p.describe(walk.start) for p in walk.paths)


def test_a_document_with_many_problems_is_refused_with_every_reason() -> None:
    def break_it(doc: dict[str, Any]) -> None:
        doc["signoff"]["deciders"].pop("finance_review")  # a wait state nobody decides
        doc["signoff"]["jobs"]["paying"]["kind"] = "teleport"  # an unknown job kind
        doc["states"]["orphan"] = {"transitions": [{"event": "x", "target": "paid"}]}
        doc["states"]["limbo"] = {"transitions": [{"event": "y", "target": "limbo"}]}
        doc["states"]["submitted"]["transitions"].append({"event": "stall", "target": "limbo"})
        doc["signoff"]["kinds"]["ghost"] = "wait"  # a state the chart lacks

    found = "\n".join(reasons(edited(break_it)))
    for expected in (
        "wait state 'finance_review' has nobody to decide",
        "unknown job kind 'teleport'",
        "state 'orphan' cannot be reached",
        "state 'limbo' has no way to finish",
        "kinds names the state 'ghost'",
    ):
        assert expected in found, found


@pytest.mark.parametrize(
    ("guard", "says"),
    [
        ("input.__class__.__bases__", "reads the attribute '__class__'"),
        ("__import__('os').system('id')", "calls a function"),
        ("open('/etc/passwd')", "calls a function"),
        ("request_job", "names 'request_job'"),
        ("[x for x in input]", "uses ListComp"),
        ("lambda: 1", "uses Lambda"),
        ("input[data['k']]", "subscripts with something other than a literal key"),
    ],
)
def test_guards_may_only_compare_what_a_run_holds(guard: str, says: str) -> None:
    def set_guard(doc: dict[str, Any]) -> None:
        doc["states"]["finance_review"]["transitions"][0]["cond"] = guard

    assert any(says in r for r in reasons(edited(set_guard))), reasons(edited(set_guard))


HOSTILE = {
    "script in SCXML": (
        "scxml",
        SCXML_TEXT.replace(
            '<state id="submitted">',
            '<state id="submitted"><onentry><script>import os; os.system("id")</script></onentry>',
        ),
        "enter/exit actions are not supported",
    ),
    "external data src": (
        "scxml",
        SCXML_TEXT.replace(
            '<state id="submitted">',
            '<datamodel><data id="x" src="file:///etc/passwd"/></datamodel><state id="submitted">',
        ),
        "a datamodel is not supported",
    ),
    "invoke src": (
        "scxml",
        SCXML_TEXT.replace(
            '<state id="submitted">',
            '<state id="submitted"><invoke src="file:///etc/other.scxml"/>',
        ),
        "invoke is not supported",
    ),
    "callback by name": (
        "yaml",
        edited(lambda d: d["states"]["submitted"].update(enter=["request_job"])),
        "enter/exit actions are not supported",
    ),
    "eventless loop": (
        "yaml",
        edited(
            lambda d: d["states"].update(
                spin={"transitions": [{"target": "spun"}]},
                spun={"transitions": [{"target": "spin"}]},
            )
        ),
        "every transition needs an event",
    ),
    "huge": ("yaml", YAML_TEXT + "\n# " + "x" * 70_000 + "\n", "the limit is 65536"),
    "deep YAML": ("yaml", "a: " + "{b: " * 200 + "1" + "}" * 200, "nests deeper than 32"),
    "deep JSON": ("json", "[" * 30_000 + "]" * 30_000, "nests deeper than 32"),
    "YAML aliases": (
        "yaml",
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        "anchors and aliases are not allowed",
    ),
    "XML entities": (
        "scxml",
        '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        '<scxml xmlns="http://www.w3.org/2005/07/scxml" name="x">&lol2;</scxml>',
        "a DOCTYPE is not allowed",
    ),
    "not a chart": ("json", '{"signoff": {}, "name": "x", "states": 5}', "not a chart"),
    "no section": ("yaml", "name: plain\nstates: {a: {final: true}}\n", "no `signoff` section"),
    "bad section": (
        "yaml",
        edited(lambda d: d["signoff"].update(kinds={"paying": "sleeping"})),
        "signoff section",
    ),
    "remote schema reference": (
        "yaml",
        edited(lambda d: d["signoff"].update(input_schema={"$ref": "https://evil.example/s"})),
        "input_schema may refer only within itself",
    ),
    "bad input schema": (
        "yaml",
        edited(lambda d: d["signoff"].update(input_schema={"type": "banana"})),
        "input_schema is not a JSON Schema",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused(case: str) -> None:
    fmt, text, says = HOSTILE[case]
    found = reasons(text, fmt)
    assert any(says in r for r in found), found


@pytest.mark.parametrize("name", ["expense_claim.yaml", "expense_claim.scxml"])
def test_signoff_paths_walks_a_document_file(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signoff", "paths", str(DOCS / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "finance_review --approve(actor='finn')--> paying" in done.stdout


def test_signoff_paths_says_why_a_document_cannot_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(edited(lambda d: d["signoff"]["deciders"].clear()))
    done = subprocess.run(
        [sys.executable, "-m", "signoff", "paths", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "wait state 'manager_review' has nobody to decide" in done.stderr


def test_allowed_hosts_match_names_and_subdomains() -> None:
    from signoff.engine.documents.http_job import host_allowed

    assert host_allowed("http://10.0.0.1/x", [])  # none set: any host
    hosts = ["pay.example.com", "*.bank.test"]
    assert host_allowed("https://pay.example.com/p", hosts)
    assert host_allowed("https://eu.bank.test:8443/p", hosts)
    assert not host_allowed("http://169.254.169.254/latest/meta-data", hosts)
    assert not host_allowed("https://pay.example.com.evil.test/p", hosts)
    assert not host_allowed("https://bank.test.evil/p", hosts)


def test_a_document_may_call_only_the_allowed_hosts() -> None:
    found = reasons(YAML_TEXT, allowed_hosts=["pay.example.com"])
    assert found == [
        "job in 'paying': the host of http://127.0.0.1:8099/payments is not in "
        "SIGNOFF_HTTP_ALLOWED_HOSTS (pay.example.com)"
    ]
    assert compile_document(YAML_TEXT, "yaml", allowed_hosts=["127.0.0.1"]).name == "expense_claim"


async def test_an_http_job_to_a_host_no_longer_allowed_fails_without_calling() -> None:
    from signoff import JobContext, PermanentJobError
    from signoff.engine.documents.http_job import http_job
    from tests.payments import payment_service

    async with payment_service() as receiver:
        payload = {"url": receiver.url, "success": "ok", "state": "paying"}
        ctx = JobContext("run-1", {}, payload, 1)
        with pytest.raises(PermanentJobError, match="not in SIGNOFF_HTTP_ALLOWED_HOSTS"):
            await http_job(["pay.example.com"]).handler(ctx)
        assert receiver.requests == []
        outcome = await http_job().handler(ctx)  # no list: any host
        assert (outcome.event, len(receiver.requests)) == ("ok", 1)
