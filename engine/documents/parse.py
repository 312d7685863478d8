"""Reading a chart document: its format, its limits, its `signoff` section and its chart.

A YAML or JSON document is the chart in python-statemachine's native form (name, description,
states) plus a `signoff` key; an SCXML document carries the section as JSON inside a
`<signoff>` element under `<scxml>`. Every document is hostile input: its size, its nesting
and its node count are bounded before anything builds it (no recursion on its structure),
YAML anchors and aliases are refused (they multiply a small document), and so is an XML
DOCTYPE (entity expansion).
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass
from typing import Any

import msgspec
from statemachine.io.model import StateMachineDefinition
from statemachine.io.native import native_dict_to_definition
from statemachine.io.scxml.reader import parse_scxml
from statemachine.io.yaml.reader import YAMLReader

from signoff.engine.documents.section import Section
from signoff.engine.errors import DocumentRejectedError

FORMATS = ("yaml", "json", "scxml")
MAX_DEPTH = 32  # nesting of mappings, lists or elements
MAX_NODES = 20_000  # scalars, mappings, lists or elements
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Parsed:
    """A document read and bounded, not yet checked as a chart."""

    format: str
    name: str
    description: str
    chart_text: str  # what statemachine.io.load builds the chart from
    chart_format: str  # json or scxml
    section: Section
    ir: StateMachineDefinition


def parse(text: str, fmt: str, max_bytes: int) -> Parsed:
    """Read `text` as a `fmt` document; DocumentRejectedError says why it cannot be."""
    if fmt not in FORMATS:
        raise DocumentRejectedError([f"format must be one of {', '.join(FORMATS)}, not {fmt!r}"])
    size = len(text.encode())
    if size > max_bytes:
        raise DocumentRejectedError(
            [f"the document is {size} bytes; the limit is {max_bytes} (SIGNOFF_MAX_DOCUMENT_BYTES)"]
        )
    if fmt == "scxml":
        return _scxml(text)
    data = _yaml(text) if fmt == "yaml" else _json(text)
    if not isinstance(data, dict):
        raise DocumentRejectedError(["the document must be a mapping (name, states, signoff)"])
    raw_section = data.pop("signoff", None)
    if raw_section is None:
        raise DocumentRejectedError(["the document has no `signoff` section (kinds, deciders…)"])
    section = _section(raw_section)
    name = data.get("name")
    try:
        ir = native_dict_to_definition(data)
    except Exception as exc:
        raise DocumentRejectedError([f"not a chart: {exc}"]) from None
    return Parsed(
        fmt,
        _name(name),
        str(data.get("description") or ""),
        msgspec.json.encode(data).decode(),
        "json",
        section,
        ir,
    )


def _name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise DocumentRejectedError(
            [
                f"the chart's name must be lower-case letters, digits and _ (like expense_report), "
                f"not {name!r}"
            ]
        )
    return name


def _section(raw: Any) -> Section:
    try:
        return msgspec.convert(raw, Section)
    except msgspec.ValidationError as exc:
        raise DocumentRejectedError([f"signoff section: {exc}"]) from None


def _yaml(text: str) -> Any:
    import yaml

    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            nodes += 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise DocumentRejectedError(["YAML anchors and aliases are not allowed"])
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            _bound(nodes, depth)
        return YAMLReader().parse_document(text)
    except yaml.YAMLError as exc:
        raise DocumentRejectedError([f"not YAML: {exc}"]) from None


def _json(text: str) -> Any:
    depth = nodes = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            nodes += 1
        elif char in "[{":
            depth += 1
            nodes += 1
        elif char in "]}":
            depth -= 1
        elif char == ",":
            nodes += 1
        _bound(nodes, depth)
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise DocumentRejectedError([f"not JSON: {exc}"]) from None


def _bound(nodes: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DocumentRejectedError([f"the document nests deeper than {MAX_DEPTH} levels"])
    if nodes > MAX_NODES:
        raise DocumentRejectedError([f"the document has more than {MAX_NODES} nodes"])


def _scxml(text: str) -> Parsed:
    scan = _XmlScan()
    try:
        scan.feed(text)
    except xml.parsers.expat.ExpatError as exc:
        raise DocumentRejectedError([f"not XML: {exc}"]) from None
    if scan.section_text is None:
        raise DocumentRejectedError(["the SCXML document has no <signoff> element (its JSON)"])
    try:
        raw = msgspec.json.decode(scan.section_text)
    except msgspec.DecodeError as exc:
        raise DocumentRejectedError([f"<signoff> does not hold JSON: {exc}"]) from None
    section = _section(raw)
    try:
        ir = parse_scxml(text)
    except Exception as exc:
        raise DocumentRejectedError([f"not a chart: {exc}"]) from None
    return Parsed("scxml", _name(ir.name), "", text, "scxml", section, ir)


class _XmlScan:
    """Counts, bounds and reads an XML document with expat (iteratively: no recursion on its
    depth), refusing a DOCTYPE; keeps the text of `<signoff>` under the root."""

    def __init__(self) -> None:
        self.depth = self.nodes = 0
        self.section_text: str | None = None
        self._in_section = False
        self._chunks: list[str] = []
        parser = xml.parsers.expat.ParserCreate()
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._entity
        self._parser = parser

    def feed(self, text: str) -> None:
        self._parser.Parse(text, True)

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        self.nodes += 1
        _bound(self.nodes, self.depth)
        if self.depth == 2 and tag.rsplit(":", 1)[-1].rsplit("}", 1)[-1] == "signoff":
            self._in_section = True

    def _end(self, tag: str) -> None:
        if self._in_section and self.depth == 2:
            self._in_section = False
            self.section_text = "".join(self._chunks)
        self.depth -= 1

    def _text(self, data: str) -> None:
        if self._in_section:
            self._chunks.append(data)

    def _doctype(self, *args: Any) -> None:
        raise DocumentRejectedError(["a DOCTYPE is not allowed (XML entity expansion)"])

    def _entity(self, *args: Any) -> None:
        raise DocumentRejectedError(["XML entity declarations are not allowed"])
