"""The outbox is exact: a transition writes a delivery for every subscription active when it
commits, even one another process created a moment ago (this process had seen none), and none
when nobody subscribes. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from signoff.engine import Runtime
from signoff.machines.registry import build_registry
from tests.helpers import settings_for


async def deliveries(rt: Runtime) -> list[str]:
    async with rt.store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT payload FROM jobs WHERE kind = 'webhook'"))
        return [str(r[0]) for r in rows]


async def test_a_subscription_from_elsewhere_is_never_missed(database_url: str) -> None:
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        run = (await rt.dispatcher.create("approval", actor="olga", input={"output": 0.9})).view()
        await rt.dispatcher.dispatch(run.id, "pause", actor="olga")  # this process saw nobody
        assert await deliveries(rt) == []
        now = datetime.now(UTC)
        async with rt.store.engine.begin() as conn:  # another process subscribes
            await conn.execute(
                text(
                    "INSERT INTO webhooks (id, url, secret, definitions, events, active,"
                    " description, max_attempts, created_by, created_at, updated_at) VALUES"
                    " ('w1', 'http://127.0.0.1:9/', 'whsec_AAAA', '[]', '[]', :t, '', 3,"
                    " 'root', :now, :now)"
                ),
                {"t": True, "now": now},
            )
        await rt.dispatcher.dispatch(run.id, "resume", actor="olga")
        found = await deliveries(rt)
        assert len(found) == 1 and "transition" in found[0]
    finally:
        await rt.stop()
