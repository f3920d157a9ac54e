"""Write key -> source, cached: tracking calls arrive hundreds of times a second, sources change rarely.

Entries live `ttl` seconds (a change made by another process, e.g. the CLI, applies within that
time) and are dropped at once when this process commits a change to any source (see
`service.generation`). Unknown keys are cached too, so a client hammering with a wrong key costs
one query per `ttl`; the cache is cleared when it grows past `max_entries`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from siyu.db import Database
from siyu.sources import service
from siyu.sources.models import DEVICE_KINDS

MISS = object()


@dataclass(frozen=True)
class SourceRef:
    id: int
    workspace_id: int
    kind: str
    enabled: bool

    @property
    def device_side(self) -> bool:
        return self.kind in DEVICE_KINDS


class WriteKeyResolver:
    def __init__(self, db: Database, ttl: float = 10.0, max_entries: int = 10_000):
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, SourceRef | None]] = {}
        self._generation = service.generation

    def cached(self, write_key: str) -> SourceRef | None | object:
        """The cached answer, or MISS (then call `load`, off the event loop: it queries the database)."""
        if self._generation != service.generation:
            self._entries.clear()
            self._generation = service.generation
        hit = self._entries.get(write_key)
        if hit is None or hit[0] < time.monotonic():
            return MISS
        return hit[1]

    def load(self, write_key: str) -> SourceRef | None:
        generation = service.generation
        with self.db.session() as session:
            source = service.authenticate_write_key(session, write_key)
            ref = None if source is None else SourceRef(source.id, source.workspace_id, source.kind, source.enabled)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        if generation == service.generation:  # a change committed meanwhile: do not cache a stale answer
            self._entries[write_key] = (time.monotonic() + self.ttl, ref)
        return ref
