"""The `purchase_order` chart: after processing, legal and finance review in parallel.

Each region needs its own approval from an approver of its group; finance needs two distinct
approvers when the order's amount is at least FINANCE_QUORUM_AMOUNT, one otherwise. A
rejection in either region sends the whole order back to processing, and a new review round
starts. The order is approved when both regions are final (`done.state.review`).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from statemachine import State, StateChart

from signoff.engine import RunModel, StateKind
from signoff.engine.errors import DuplicateApprovalError, InvalidEventDataError

FINANCE_QUORUM_AMOUNT = 10_000
FINANCE_QUORUM = 2  # distinct finance approvers at or above that amount; 1 below it


class PurchaseOrder(StateChart[RunModel]):
    """Draft → Processing → Review (legal ∥ finance) → Approved / Error."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    draft = State(initial=True)
    processing = State()

    class review(State.Parallel):
        class legal(State.Compound):
            legal_pending = State(initial=True)
            legal_approved = State(final=True)

        class finance(State.Compound):
            finance_pending = State(initial=True)
            # One approval counted, another needed: an explicit state, because a
            # self-transition inside one region would re-enter the other region too.
            finance_partial = State()
            finance_approved = State(final=True)

    approved = State(final=True)
    error = State()

    process = draft.to(processing)
    processed = processing.to(review)
    failed = processing.to(error)
    retry = error.to(processing)
    approve = (
        review.legal.legal_pending.to(
            review.legal.legal_approved, cond="for_legal", validators="counts_once"
        )
        | review.finance.finance_pending.to(
            review.finance.finance_approved,
            cond=["for_finance", "quorum_reached"],
            validators="counts_once",
        )
        | review.finance.finance_pending.to(
            review.finance.finance_partial, cond="for_finance", validators="counts_once"
        )
        | review.finance.finance_partial.to(
            review.finance.finance_approved,
            cond=["for_finance", "quorum_reached"],
            validators="counts_once",
        )
    )
    # A veto in either region ends the whole review: the order goes back for rework.
    reject = (
        review.legal.legal_pending.to(processing, cond="for_legal", validators="reason_given")
        | review.finance.finance_pending.to(
            processing, cond="for_finance", validators="reason_given"
        )
        | review.finance.finance_partial.to(
            processing, cond="for_finance", validators="reason_given"
        )
    )
    done_state_review = review.to(approved)

    # --- guards: what the run's decisions say ---------------------------------------------

    def for_legal(self, data: dict[str, Any]) -> bool:
        return data.get("region") == "legal"

    def for_finance(self, data: dict[str, Any]) -> bool:
        return data.get("region") == "finance"

    def quorum_reached(self, actor: str) -> bool:
        """This approval makes the finance quorum: counted from this round's decisions."""
        counted = {d["actor"] for d in self._round() if d["region"] == "finance"}
        return len(counted | {actor}) >= self.finance_needed()

    def finance_needed(self) -> int:
        amount = float(self.model.input.get("amount", 0))
        return FINANCE_QUORUM if amount >= FINANCE_QUORUM_AMOUNT else 1

    def counts_once(self, actor: str) -> None:
        if any(d["actor"] == actor for d in self._round()):
            raise DuplicateApprovalError(actor)

    def reason_given(self, reason: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InvalidEventDataError("A rejection needs a reason.")

    def _round(self) -> list[dict[str, Any]]:
        """Approvals of the current review round."""
        round_ = self.model.context.get("round", 0)
        return [
            d
            for d in self.model.context.get("decisions", [])
            if d["round"] == round_ and d["decision"] == "approve"
        ]

    # --- actions: record intent and decisions ---------------------------------------------

    def on_enter_processing(self, state: State) -> None:
        self.model.request_job("purchase_order", state=state.id)

    def on_enter_review(self) -> None:
        self.model.context["round"] = self.model.context.get("round", 0) + 1
        self.model.context["needed"] = {"legal": 1, "finance": self.finance_needed()}

    def on_process(self) -> None:
        self.model.context.pop("last_error", None)

    def on_processed(self, data: dict[str, Any]) -> None:
        self.model.context["attempts"] = int(data.get("attempts", 1))

    def on_failed(self, data: dict[str, Any]) -> None:
        self.model.context["attempts"] = int(data.get("attempts", 0))
        self.model.context["last_error"] = str(data.get("error", "processing failed"))

    def on_retry(self) -> None:
        self.model.context.pop("last_error", None)

    def on_approve(
        self, actor: str, at: str, data: dict[str, Any], reason: str | None = None
    ) -> None:
        self._decide("approve", actor, at, data, reason)

    def on_reject(
        self, actor: str, at: str, data: dict[str, Any], reason: str | None = None
    ) -> None:
        self._decide("reject", actor, at, data, reason)

    def _decide(
        self, decision: str, actor: str, at: str, data: dict[str, Any], reason: str | None
    ) -> None:
        decisions = list(self.model.context.get("decisions", []))
        decisions.append(
            {
                "decision": decision,
                "region": data["region"],
                "round": self.model.context.get("round", 0),
                "actor": actor,
                "at": at,
                "reason": reason,
            }
        )
        self.model.context["decisions"] = decisions


class PurchaseOrderInput(msgspec.Struct, kw_only=True):
    """The fields of a purchase order the chart reads; others are kept as given."""

    amount: Annotated[float, msgspec.Meta(ge=0, le=1e12)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None


KINDS = {
    "processing": StateKind.WORK,
    "review": StateKind.WAIT,
    "approved": StateKind.SUCCESS,
    "error": StateKind.FAILURE,
}
INTERNAL_EVENTS = frozenset({"processed", "failed"})
# Region → the group whose approvers decide in it (SIGNOFF_TOKENS: `fay:approver@finance:…`).
REGIONS = {"legal": "legal", "finance": "finance"}
# For the generated path tests: a small and a large order, and distinct approvers, so the
# walker meets both quorum rules, a partial finance approval and a veto from each region.
EXAMPLE_INPUTS: list[dict[str, Any]] = [{"amount": 500}, {"amount": 25_000}]
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "processed": [{"data": {"attempts": 1}}],
    "failed": [{"data": {"error": "ledger down", "attempts": 5}}],
    "approve": [
        {"data": {"region": "legal"}, "actor": "lee"},
        {"data": {"region": "finance"}, "actor": "fay"},
        {"data": {"region": "finance"}, "actor": "finn"},
    ],
    "reject": [
        {"data": {"region": "legal"}, "actor": "lee", "reason": "clause 7 is missing"},
        {"data": {"region": "finance"}, "actor": "fay", "reason": "over budget"},
        {"data": {"region": "finance"}, "actor": "fay", "reason": ""},
    ],
}
