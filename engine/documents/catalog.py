"""The chart documents a process runs: deployed, loaded into its registry, kept current.

Deploying compiles a document (every reason it cannot run is a 422, and nothing is stored),
then stores it as the next version of its name unless it is the newest version already. Every
process loads every stored version at start and again whenever they change: at once on
PostgreSQL (NOTIFY signoff_definitions), within `poll_interval_s` on SQLite. A document is
compiled once per (hash, version).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from signoff.engine.documents.compile import Compiled, compile_document
from signoff.engine.errors import ConflictError, DocumentRejectedError, EngineError
from signoff.engine.model.definition import Definition
from signoff.engine.model.registry import Registry
from signoff.engine.storage import documents
from signoff.engine.storage.documents import StoredDocument
from signoff.engine.storage.store import Store

log = logging.getLogger("signoff.definitions")


@dataclass(frozen=True)
class Deployed:
    definition: Definition
    hash: str
    created: bool  # False: the same document was the newest version already


class Catalog:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        max_bytes: int,
        poll_interval_s: float = 2.0,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.allowed_hosts = tuple(allowed_hosts)
        self.registry = registry
        self.max_bytes = max_bytes
        self.poll_interval_s = poll_interval_s
        self.stored: list[StoredDocument] = []
        self._compiled: dict[tuple[str, int], Definition] = {}
        self._signature: tuple[int, int, int] | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def compile(self, text: str, fmt: str, version: int = 1) -> Compiled:
        """Check and build a document (DocumentRejectedError lists why it cannot run)."""
        compiled = compile_document(
            text,
            fmt,
            version=version,
            job_kinds=frozenset(self.registry.jobs),
            max_bytes=self.max_bytes,
            allowed_hosts=self.allowed_hosts,
        )
        if compiled.name in self.registry.code_names():
            raise DocumentRejectedError(
                [
                    f"{compiled.name!r} is a definition from code (a pack); give the document "
                    "another name"
                ]
            )
        return compiled

    async def deploy(self, text: str, fmt: str, actor: str, now: datetime) -> Deployed:
        compiled = self.compile(text, fmt)
        version, created = await documents.add(
            self.store, compiled.name, fmt, text, compiled.hash, actor, now
        )
        await self.refresh()
        definition = self.registry.find(compiled.name, version)
        if definition is None:  # it was stored: only a concurrent delete could do this
            raise ConflictError(f"{compiled.name} v{version} changed while it was deployed.")
        return Deployed(definition, compiled.hash, created)

    async def retire(self, name: str, version: int, now: datetime) -> bool:
        changed = await documents.retire(self.store, name, version, now)
        await self.refresh()
        return changed

    async def delete(self, name: str, version: int) -> None:
        await documents.delete(self.store, name, version)
        await self.refresh()

    async def refresh(self) -> None:
        """Load every stored version into the registry (compiling only what is new)."""
        self._signature = await documents.signature(self.store)
        rows = await documents.stored(self.store)
        loaded: list[tuple[Definition, bool]] = []
        code = self.registry.code_names()
        for row in rows:
            if row.name in code:
                log.error(
                    "stored document %s v%d is shadowed by code; skipped", row.name, row.version
                )
                continue
            definition = self._definition(row)
            if definition is not None:
                loaded.append((definition, row.retired_at is not None))
        self.stored = rows
        self.registry.load_documents(loaded)

    def _definition(self, row: StoredDocument) -> Definition | None:
        key = (row.hash, row.version)
        found = self._compiled.get(key)
        if found is None:
            try:
                compiled = compile_document(
                    row.document,
                    row.format,
                    version=row.version,
                    job_kinds=frozenset(self.registry.jobs),
                    max_bytes=max(self.max_bytes, len(row.document.encode())),
                )
            except EngineError as exc:
                # Stored once valid (a pack's job kind it names may be gone): its runs wait.
                log.error("stored document %s v%d cannot run: %s", row.name, row.version, exc)
                return None
            found = dataclasses.replace(compiled.definition, version=row.version)
            self._compiled[key] = found
        return found

    def changed(self) -> None:
        """Another process changed the stored documents (PostgreSQL's NOTIFY)."""
        self._changed.set()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name="signoff-definitions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        """Refresh when told, and look for changes every poll interval (other processes on
        SQLite, or a NOTIFY lost with its connection)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await self._changed.wait()
            told = self._changed.is_set()
            self._changed.clear()
            try:
                if told or await documents.signature(self.store) != self._signature:
                    await self.refresh()
            except Exception as exc:  # the database is away: try again next time
                log.info("could not look for new definitions: %s", exc)
