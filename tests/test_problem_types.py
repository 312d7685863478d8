"""Every problem type the server can answer with is a named URN, listed once in the README's
table with its status; the table names nothing the code cannot produce."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from signoff.api import connections, guard, origin
from signoff.api.errors import KINDS, STATUS, _slug
from signoff.engine import errors

README = Path(__file__).parents[1] / "README.md"
ROW = re.compile(r"^\| `([a-z-]+)` \| (\d{3}) \|", re.MULTILINE)


def subclasses(cls: type[errors.EngineError]) -> Iterator[type[errors.EngineError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def produced() -> dict[str, int]:
    """type → status, from the error tree, the HTTP statuses and the request guards."""
    types: dict[str, int] = {}
    for cls in subclasses(errors.EngineError):
        status = next((code for known, code in STATUS if issubclass(cls, known)), None)
        if status is not None:
            types[_slug(cls.__new__(cls))] = status
    types.update({kind: status for status, kind in KINDS.items()})
    for exc in (guard.InputRejected, guard.BodyUnstorable, guard.NotJson):
        types[exc.problem_type] = exc.status_code
    types.update(origin.PROBLEM_TYPES)
    types.update(connections.PROBLEM_TYPES)
    return types


def test_the_readme_lists_every_problem_type_with_its_status() -> None:
    block = README.read_text().split("<!-- problem-types:begin -->")[1]
    block = block.split("<!-- problem-types:end -->")[0]
    listed = {name: int(status) for name, status in ROW.findall(block)}
    assert listed == produced()


def test_every_default_message_is_one_line() -> None:
    """A docstring is an error's message; one that runs over lines must reach a client as one
    sentence, not with the source's line breaks and indentation."""
    for cls in subclasses(errors.EngineError):
        default = cls.__new__(cls)
        errors.EngineError.__init__(default)  # the default message, whatever cls's arguments
        assert "\n" not in default.message and "  " not in default.message, cls.__name__
