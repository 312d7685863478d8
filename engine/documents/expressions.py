"""What a guard in a document may say: comparisons over the event and the run, nothing else.

python-statemachine's restricted evaluator (`trusted=False`) already refuses calls, dunder
access and builtins. Signoff allows less still, so that a guard reads only what a run holds:
the names below, literals, subscripts with literal keys, comparisons, arithmetic, `and`/`or`/
`not`, and `In('state')`. Anything else is a reason to refuse the document.
"""

from __future__ import annotations

import ast

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


def problems(expression: str) -> list[str]:
    """Why `expression` may not be a guard (empty: it may)."""
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
        reason = _refuse(node)
        if reason and reason not in found:
            found.append(reason)
    return found


def _refuse(node: ast.AST) -> str | None:
    if isinstance(node, ast.Expression | ast.BoolOp | ast.UnaryOp | ast.BinOp | ast.Compare):
        return None
    if isinstance(node, _OPERATORS):
        return None
    if isinstance(node, ast.Name):
        if node.id in NAMES or node.id == "In":
            return None
        return f"names {node.id!r} (a guard may name {', '.join(sorted(NAMES))})"
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
            isinstance(node.func, ast.Name)
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
