"""An expense report process on Signoff, packaged outside Signoff.

Installed, it is found through its entry point (group `signoff.definitions`, name
`expense_report`), so a stock `signoff serve` runs it with no flag; or name it explicitly with
`signoff serve --app expense_report:pack`. The payment service's address comes from
EXPENSE_PAYMENT_URL.
"""

from __future__ import annotations

import os

from expense_report import chart
from expense_report.payment import pay_expense
from signoff import Definition, Pack, Settings

DEFAULT_PAYMENT_URL = "http://127.0.0.1:8099/payments"

EXPENSE_REPORT = Definition(
    name="expense_report",
    version=1,
    chart=chart.ExpenseReport,
    kinds=chart.KINDS,
    deciders=chart.DECIDERS,
    internal_events=chart.INTERNAL_EVENTS,
    decision_events=frozenset({"approve", "reject"}),
    input_type=chart.ExpenseInput,
    description="A manager, then finance, review an expense claim; then it is paid.",
    examples=chart.EXAMPLES,
    example_inputs=chart.EXAMPLE_INPUTS,
)


def pack(settings: Settings) -> Pack:
    """The entry point: the definition and its payment job."""
    url = os.environ.get("EXPENSE_PAYMENT_URL", DEFAULT_PAYMENT_URL)
    return Pack("expense_report", [EXPENSE_REPORT], [pay_expense(url)])
