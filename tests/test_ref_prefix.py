"""`ref_id_prefix` is an index range over ref ids compared code point by code point, on
SQLite and PostgreSQL: exactly the ids that start with the prefix, case and all, with `%`, `_`
and `/` meaning themselves, and at the edges of Unicode."""

from __future__ import annotations

import pytest

from signoff.engine.runtime import Runtime
from signoff.engine.storage.queries import RunFilter, prefix_range

REF_IDS = [
    "INV-1", "INV-10", "INV-2", "inv-1", "INV_1", "INVX1", "INV%1", "INV/1", "IN", "INW",
    "INV-1\U0010ffff", "INV-1\U0010ffffz", "INV-\ud7ff", "INV-\ue000", "é-1", "éa", "f",
]  # fmt: skip
PREFIXES = [
    "INV-1", "INV", "inv", "INV_", "INV%", "INV/", "INV-1\U0010ffff", "INV-\ud7ff", "é",
    "\U0010ffff", "Z", "INV-10",
]  # fmt: skip


def test_the_range_holds_exactly_the_strings_with_the_prefix() -> None:
    assert prefix_range("ab") == ("ab", "ac")
    assert prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert prefix_range("\U0010ffff") == ("\U0010ffff", None)
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")  # past the surrogates
    for prefix in PREFIXES:
        low, high = prefix_range(prefix)
        for ref in REF_IDS:
            inside = low <= ref and (high is None or ref < high)
            assert inside == ref.startswith(prefix), (prefix, ref)


@pytest.mark.parametrize("limit", [50, 2])
async def test_the_list_finds_exactly_the_ref_ids_with_the_prefix(
    runtime: Runtime, limit: int
) -> None:
    for ref in REF_IDS:
        await runtime.dispatcher.create("approval", actor="a", ref_id=ref, ref_type="t")
    for prefix in PREFIXES:
        found: list[str] = []
        cursor = None
        while True:  # every page, when a page holds fewer than all
            page = await runtime.queries.page(RunFilter(ref_id_prefix=prefix), limit, cursor)
            found += [run.ref_id or "" for run in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert sorted(found) == sorted(r for r in REF_IDS if r.startswith(prefix)), prefix
