"""The expense report chart: a manager, then finance, review a claim; then it is paid.

submitted → manager_review (the `managers` group decides) → finance_review (the `finance`
group; two distinct approvers from 5,000) → paying (a job pays over HTTP) → paid. A rejection in
either review sends the report back to its submitter, who changes it and submits it again.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from statemachine import State, StateChart

from signoff import DuplicateApprovalError, InvalidEventDataError, RunModel, StateKind

TWO_APPROVERS_FROM = 5_000


class ExpenseReport(StateChart[RunModel]):
    """Submitted → ManagerReview → FinanceReview → Paying → Paid."""

    allow_event_without_transition = False  # an event the state refuses is a 409
    catch_errors_as_events = False  # a bug in a callback rolls the transition back

    submitted = State(initial=True)
    manager_review = State()
    finance_review = State()
    paying = State()
    paid = State(final=True)
    payment_failed = State()

    submit = submitted.to(manager_review)
    approve = (
        manager_review.to(finance_review)
        | finance_review.to(paying, cond="quorum_reached", validators="counts_once")
        | finance_review.to(finance_review, validators="counts_once")  # one more needed
    )
    reject = manager_review.to(submitted, validators="reason_given") | finance_review.to(
        submitted, validators="reason_given"
    )
    paid_out = paying.to(paid)
    payment_declined = paying.to(payment_failed)
    retry_payment = payment_failed.to(paying)

    # --- guards and validators: read the run's input and decisions -------------------------

    def quorum_reached(self, actor: str) -> bool:
        return len(self._finance_approvers() | {actor}) >= self.finance_needed()

    def finance_needed(self) -> int:
        return 2 if float(self.model.input["amount"]) >= TWO_APPROVERS_FROM else 1

    def counts_once(self, actor: str) -> None:
        if actor in self._finance_approvers():
            raise DuplicateApprovalError(actor)

    def reason_given(self, reason: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InvalidEventDataError("Say what must change: a rejection needs a reason.")

    def _finance_approvers(self) -> set[str]:
        round_ = self.model.context.get("round", 0)
        return {
            d["actor"]
            for d in self.model.context.get("decisions", [])
            if (d["state"], d["round"], d["decision"]) == ("finance_review", round_, "approve")
        }

    # --- actions: record intent and decisions ----------------------------------------------

    def on_submit(self) -> None:
        self.model.context["round"] = self.model.context.get("round", 0) + 1

    def on_enter_paying(self, state: State) -> None:
        self.model.request_job("pay_expense", state=state.id)

    def on_approve(self, source: State, actor: str, at: str, reason: str | None = None) -> None:
        self._decide("approve", source, actor, at, reason)

    def on_reject(self, source: State, actor: str, at: str, reason: str | None = None) -> None:
        self._decide("reject", source, actor, at, reason)

    def on_paid_out(self, data: dict[str, Any]) -> None:
        self.model.context["payment_id"] = data["payment_id"]
        self.model.context.pop("last_error", None)

    def on_payment_declined(self, data: dict[str, Any]) -> None:
        self.model.context["last_error"] = str(data.get("error", "the payment failed"))

    def _decide(
        self, decision: str, source: State, actor: str, at: str, reason: str | None
    ) -> None:
        decisions = list(self.model.context.get("decisions", []))
        decisions.append(
            {
                "decision": decision,
                "state": source.id,
                "round": self.model.context.get("round", 0),
                "actor": actor,
                "at": at,
                "reason": reason,
            }
        )
        self.model.context["decisions"] = decisions


class ExpenseInput(msgspec.Struct, kw_only=True):
    """What a claim says; other fields are kept as given."""

    amount: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "EUR"
    payee: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    purpose: Annotated[str, msgspec.Meta(max_length=2000)] = ""


KINDS = {
    "manager_review": StateKind.WAIT,
    "finance_review": StateKind.WAIT,
    "paying": StateKind.WORK,
    "paid": StateKind.SUCCESS,
    "payment_failed": StateKind.FAILURE,
}
DECIDERS = {"manager_review": "managers", "finance_review": "finance"}
INTERNAL_EVENTS = frozenset({"paid_out", "payment_declined"})
# For `signoff paths expense_report`: both quorum rules, a repeat approver, both rejections.
EXAMPLE_INPUTS: list[dict[str, Any]] = [
    {"amount": 120, "payee": "Ada"},
    {"amount": 7_500, "payee": "Grace"},
]
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "approve": [{"actor": "mia"}, {"actor": "fay"}, {"actor": "finn"}],
    "reject": [{"actor": "mia", "reason": "receipt missing"}, {"actor": "mia", "reason": ""}],
    "paid_out": [{"data": {"payment_id": "pay-1"}}],
    "payment_declined": [{"data": {"error": "account closed", "attempts": 1}}],
}
