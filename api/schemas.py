"""Request bodies: frozen msgspec Structs that refuse unknown fields."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
Reason = Annotated[str, msgspec.Meta(max_length=2000)]
# A person's actor name, as SIGNOFF_TOKENS spells it.
Actor = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f:,]+$")]
RefId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RefType = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CreateRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    definition: Name
    input: dict[str, Any] | None = None
    ref_id: RefId | None = None
    ref_type: RefType | None = None


class SendEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event: Name
    data: dict[str, Any] | None = None
    reason: Reason | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of the shortcut endpoints; `reject` requires a reason. A definition with approval
    regions (`purchase_order`) takes the region the decision is for."""

    reason: Reason | None = None
    region: Name | None = None


class DeployDefinition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A chart document: its format and its text (a JSON document too is sent as text)."""

    format: Literal["yaml", "json", "scxml"]
    document: Annotated[str, msgspec.Meta(min_length=1)]
