"""The reference `approval` chart: process a request on a queue, then a person decides."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from statemachine import State, StateChart

from signoff.engine import RunModel, StateKind
from signoff.engine.errors import InvalidEventDataError

THRESHOLD = 0.25


class Approval(StateChart[RunModel]):
    """Unprocessed → SendingToQueue → WaitingForApproval → Finished / Error."""

    allow_event_without_transition = False  # an event the state refuses raises (→ 409)
    catch_errors_as_events = False  # a bug in a callback fails loudly, the transaction rolls back

    unprocessed = State(initial=True)
    sending_to_queue = State()
    waiting_for_approval = State()
    finished = State(final=True)
    error = State()

    process = unprocessed.to(sending_to_queue)
    processed = sending_to_queue.to(waiting_for_approval, cond="above_threshold") | (
        sending_to_queue.to(error)
    )
    failed = sending_to_queue.to(error)
    approve = waiting_for_approval.to(finished)
    reject = waiting_for_approval.to(sending_to_queue, validators="reason_given")
    expire = waiting_for_approval.to(error)
    retry = error.to(sending_to_queue)

    def above_threshold(self, data: dict[str, Any]) -> bool:
        return float(data["output"]) > THRESHOLD

    def reason_given(self, reason: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InvalidEventDataError("A rejection needs a reason.")

    def on_enter_sending_to_queue(self, state: State) -> None:
        self.model.request_job("approval", state=state.id)

    def on_enter_waiting_for_approval(self, state: State) -> None:
        timeout = self.model.input.get("approval_timeout_s")
        if timeout:
            self.model.request_timer("expire", state=state.id, delay_s=float(timeout))

    def on_process(self) -> None:
        self.model.context.pop("last_error", None)

    def on_processed(self, data: dict[str, Any]) -> None:
        self.model.context["output"] = float(data["output"])
        self.model.context["attempts"] = int(data.get("attempts", 1))
        if float(data["output"]) <= THRESHOLD:
            self.model.context["last_error"] = f"output {data['output']} is not above {THRESHOLD}"

    def on_failed(self, data: dict[str, Any]) -> None:
        self.model.context["attempts"] = int(data.get("attempts", 0))
        self.model.context["last_error"] = str(data.get("error", "processing failed"))

    def on_expire(self) -> None:
        self.model.context["last_error"] = "the approval deadline passed"

    def on_retry(self) -> None:
        self.model.context.pop("last_error", None)

    def on_approve(self, actor: str, at: str, reason: str | None = None) -> None:
        self._decide("approve", actor, at, reason)

    def on_reject(self, actor: str, at: str, reason: str | None = None) -> None:
        self._decide("reject", actor, at, reason)

    def _decide(self, decision: str, actor: str, at: str, reason: str | None) -> None:
        decisions = list(self.model.context.get("decisions", []))
        decisions.append({"decision": decision, "actor": actor, "at": at, "reason": reason})
        self.model.context["decisions"] = decisions


class ApprovalInput(msgspec.Struct, kw_only=True):
    """The fields of a run's input that the `approval` chart reads; others are kept as given."""

    output: Annotated[float, msgspec.Meta(ge=0)] | None = None
    approval_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=366 * 86400)] | None = None


KINDS = {
    "sending_to_queue": StateKind.WORK,
    "waiting_for_approval": StateKind.WAIT,
    "finished": StateKind.SUCCESS,
    "error": StateKind.FAILURE,
}
INTERNAL_EVENTS = frozenset({"processed", "failed", "expire"})
# What drives each guard and validator both ways, for the generated path tests.
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "processed": [{"data": {"output": 0.9, "attempts": 1}}, {"data": {"output": 0.1}}],
    "failed": [{"data": {"error": "queue down", "attempts": 5}}],
    "approve": [{"reason": "looks right"}],
    "reject": [{"reason": "numbers are off"}, {"reason": ""}],
}
