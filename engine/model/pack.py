"""A pack: definitions and the job handlers they need, brought to Signoff together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signoff.engine.model.definition import Definition
from signoff.engine.model.jobs import JobKind


@dataclass(frozen=True)
class Pack:
    """What one package contributes: from your code (`signoff serve --app mypkg:pack`), from an
    installed distribution (the entry-point group `signoff.definitions`), or Signoff's own
    `approval` and `purchase_order` (the pack named `signoff`). Older versions of a definition
    go in `definitions` beside the newest, so their runs can continue."""

    name: str
    definitions: Sequence[Definition]
    jobs: Sequence[JobKind] = ()
