"""What a guard in a document (or a trigger's condition) may say: comparisons over the event
and the run, nothing else.

python-statemachine's restricted evaluator (`trusted=False`) already refuses calls, dunder
access and builtins. Signoff allows less still, so that a guard reads only what a run holds:
the names below, literals, subscripts with literal keys, comparisons, arithmetic, `and`/`or`/
`not`, and `In('state')`. Anything else is a reason to refuse the document. A trigger's
condition and input mapping (signoff.engine.model.triggers) are in the same language over the
event's `data` alone, evaluated here by `evaluate` (no run exists yet, so no `In`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from statemachine.io.evaluators import normalize_cond

# What a guard may name: the event's data and reason, who sends it, the run's input and
# context, and `approvals` (distinct approvers of the current wait state, this one included).
NAMES = frozenset({"data", "reason", "actor", "input", "context", "approvals"})
MAX_LENGTH = 500
_OPERATORS = (
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.Mod, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.Load,
)  # fmt: skip


def problems(expression: str, names: frozenset[str] = NAMES) -> list[str]:
    """Why `expression` may not be a guard naming `names` (empty: it may); `In('state')` only
    where the guard runs on a chart (the default names)."""
    if len(expression) > MAX_LENGTH:
        return [f"is longer than {MAX_LENGTH} characters"]
    try:
        tree = ast.parse(normalize_cond(expression), mode="eval")
    except SyntaxError as exc:
        return [f"is not an expression ({exc.msg})"]
    except (ValueError, RecursionError, MemoryError):
        return ["is not an expression"]
    found: list[str] = []
    for node in ast.walk(tree):
        reason = _refuse(node, names)
        if reason and reason not in found:
            found.append(reason)
    return found


def _refuse(node: ast.AST, names: frozenset[str]) -> str | None:
    charted = names == NAMES
    if isinstance(node, ast.Expression | ast.BoolOp | ast.UnaryOp | ast.BinOp | ast.Compare):
        return None
    if isinstance(node, _OPERATORS):
        return None
    if isinstance(node, ast.Name):
        if node.id in names or (charted and node.id == "In"):
            return None
        return f"names {node.id!r} (it may name {', '.join(sorted(names))})"
    if isinstance(node, ast.Constant):
        ok = node.value is None or isinstance(node.value, str | int | float | bool)
        return None if ok else f"holds a {type(node.value).__name__} literal"
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str | int):
            return None
        return "subscripts with something other than a literal key"
    if isinstance(node, ast.List | ast.Tuple):
        return None
    if isinstance(node, ast.Call):
        if (
            charted
            and isinstance(node.func, ast.Name)
            and node.func.id == "In"
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return None
        return "calls a function (only In('state') is allowed)"
    if isinstance(node, ast.Attribute):
        return f"reads the attribute {node.attr!r} (use subscripts: data['amount'])"
    return f"uses {type(node).__name__}, which a guard may not"


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}  # fmt: skip
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}  # fmt: skip


def evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    """The value of an expression `problems` accepts, over `names` (no `In`). A missing key
    or a type mismatch raises LookupError or TypeError, as Python would."""
    tree = ast.parse(normalize_cond(expression), mode="eval")
    return _value(tree.body, names)


def _value(node: ast.expr, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise LookupError(f"name {node.id!r} is not defined")
        return names[node.id]
    if isinstance(node, ast.Subscript):
        return _value(node.value, names)[_value(node.slice, names)]
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(e, names) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for value in node.values:
            result = _value(value, names)
            if bool(result) is isinstance(node.op, ast.Or):
                return result  # `or` stops at the first true value, `and` at the first false
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Mult) and not _numbers(left, right):
            raise TypeError("only numbers multiply")  # no 'x' * 10**9 in a condition
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _value(node.left, names)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _value(comparator, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise TypeError(f"{type(node).__name__} is not evaluated here")


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
