"""The `signoff` section of a chart document: what the runtime needs that a chart cannot say.

signoff:
  kinds: {manager_review: wait, paying: work, paid: success, payment_failed: failure}
  deciders: {manager_review: managers, finance_review: finance}   # "*": any approver
  decisions: [approve, reject]          # default; they need the approver role
  input_schema: {type: object, ...}     # JSON Schema; a run's input is checked on create
  jobs:                                 # run on entering the state
    paying: {kind: http, url: https://pay.example/pay, success: paid_out,
             failure: payment_declined, timeout_s: 10, secret: payments,
             retry: {max_attempts: 6, backoff: exponential, base_s: 1, cap_s: 60}}
    cooling_off: {kind: delay, after: 2h, event: cooled}
  timers:                               # a deadline while the run is in the state
    manager_review: [{after: 3d, event: expire}, {deadline: due_at, event: expire}]
  tasks:                                # who may take a wait state's task, when it is due
    manager_review: {groups: [managers], users: [ada], due: 2d, remind_after: 4h,
                     escalate_after: 1d, escalate_to: directors}
  slas: {manager_review: 2d}            # a wait state's target stay; longer ones are breaches
  events:                               # the data a decision takes (JSON Schema)
    approve: {data: {type: object, properties: {amount: {type: number}}}}
  examples: {approve: [{actor: mia}]}   # for `signoff paths`
  triggers:                             # external events (POST /api/events) that start a run
    - {event: order.placed, when: "data['amount'] > 0", input: {order_id: "data['id']"}}
  receives:                             # per wait state, external events → chart events
    awaiting_payment:
      payment.received: {event: pay}    # to the runs with the event's ref_type and ref_id
      payment.matched: {event: pay, correlate: order_id}  # context (else input) order_id
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from signoff.engine.model.retry import Backoff

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")]
Group = Annotated[str, msgspec.Meta(pattern=r"^(\*|[A-Za-z0-9_.-]{1,100})$")]
ANY_APPROVER = "*"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DELAY_S = 366 * 86400


class Retry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    backoff: Backoff = Backoff.EXPONENTIAL
    base_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 0.5
    cap_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 60.0
    jitter: bool = True


class Job(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A job a work state runs: `http` (POST the run to `url`), `delay` (wait `after`, then
    send `event`), or a job kind a loaded pack provides by name."""

    kind: Name
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]{1,2000}$")] | None = None
    success: Name | None = None  # http: the event sent with the response's JSON as its data
    failure: Name | None = None  # the event sent when the attempts run out
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    secret: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,64}$")] | None = None
    retry: Retry | None = None
    after: str | None = None  # delay
    event: Name | None = None  # delay


class Timer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """While the run is in the state: send `event` `after` a while, or at the time the run's
    input holds in the field `deadline` (RFC 3339)."""

    event: Name
    after: str | None = None
    deadline: Name | None = None


class Task(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A wait state's task: its candidates (default: the state's deciders), when it is due,
    a reminder, and an escalation to another group."""

    groups: list[Group] = []
    users: list[Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f:,]{1,200}$")]] = []
    due: str | None = None
    remind_after: str | None = None
    escalate_after: str | None = None
    escalate_to: Group | None = None


class Event(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What an event takes: `data`, a JSON Schema its data must match."""

    data: dict[str, Any] | None = None


# An external event's name, as POST /api/events takes it.
ExternalName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")]


class Trigger(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An external event that starts a run when `when` holds over its `data`; the run's
    input is the data, or `input`: field → expression over `data`."""

    event: ExternalName
    when: str | None = None
    input: dict[Name, str] | None = None


class Receive(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What a wait state does with an external event: send the chart's `event`, to the runs
    with the event's ref, or with `correlate` to those holding its value of that key."""

    event: Name
    correlate: Name | None = None


class Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    kinds: dict[Name, Literal["work", "wait", "success", "failure"]] = {}
    deciders: dict[Name, Group] = {}
    decisions: list[Name] = msgspec.field(default_factory=lambda: ["approve", "reject"])
    reason_required: list[Name] = []  # events refused (422) without a reason
    input_schema: dict[str, Any] | None = None
    jobs: dict[Name, Job] = {}
    timers: dict[Name, list[Timer]] = {}
    tasks: dict[Name, Task] = {}
    events: dict[Name, Event] = {}
    examples: dict[Name, list[dict[str, Any]]] = {}
    example_inputs: list[dict[str, Any]] = []
    triggers: list[Trigger] = []
    receives: dict[Name, dict[ExternalName, Receive]] = {}
    slas: dict[Name, str] = {}  # wait state → duration (3d, 4h): its SLA in the stats


def seconds(text: str) -> float | None:
    """A duration like `90s`, `15m`, `4h`, `3d` or `2w` in seconds; None if it is not one."""
    found = _DURATION.match(text)
    if found is None:
        return None
    value = float(found.group(1)) * _UNIT[found.group(2)]
    return value if 0 < value <= MAX_DELAY_S else None
