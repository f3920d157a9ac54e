"""In-process cache of compiled links, so the redirect never waits on the database when warm.

Misses load in a worker thread (never on the event loop). Edits made in this process evict
entries right after commit; edits from other processes (the CLI, another server) are noticed by a
poller thread that watches `short_links.change_seq` every `poll_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import anyio.to_thread

from siyu.db import Database
from siyu.links.decide import CompiledLink
from siyu.links.service import changed_since, find_for_redirect, max_change_seq
from siyu.threads import start_thread

log = logging.getLogger("siyu.redirect")
MISS_TTL = 5.0  # seconds a "no such link" answer is remembered (scanners probe many slugs)


class LinkCache:
    def __init__(
        self,
        db: Database,
        clicks_served: Callable[[int], int],
        max_entries: int = 200_000,
        poll_seconds: float = 1.0,
        primary_host: str | None = None,
    ):
        self._db = db
        self._clicks_served = clicks_served
        self._max = max_entries
        self._poll_seconds = poll_seconds
        self._primary_host = primary_host
        self._entries: OrderedDict[tuple[str, str], CompiledLink | float] = OrderedDict()
        # A link can be cached under several keys (another case, a host alias): evict them all.
        self._keys_by_link: dict[int, set[tuple[str, str]]] = {}
        self.served: dict[int, int] = {}  # link id -> redirected non-bot clicks (store + this process)
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def peek(self, host: str, slug: str) -> CompiledLink | None | bool:
        """The cached answer (a link, or None for a remembered miss), or False when not cached."""
        entry = self._entries.get((host, slug))
        if entry is None:
            return False
        if isinstance(entry, float):
            return None if entry > time.monotonic() else False
        return entry

    async def get(self, host: str, slug: str) -> CompiledLink | None:
        found = self.peek(host, slug)
        if found is not False:
            return found  # type: ignore[return-value]
        return await anyio.to_thread.run_sync(self._load, host, slug)

    def _load(self, host: str, slug: str) -> CompiledLink | None:
        with self._db.session() as session:
            model = find_for_redirect(session, host, slug, self._primary_host)
            link = CompiledLink.from_model(model) if model is not None else None
        if link is not None and link.max_clicks is not None and link.id not in self.served:
            self.served[link.id] = self._clicks_served(link.id)
        self._entries[(host, slug)] = link if link is not None else time.monotonic() + MISS_TTL
        if link is not None:
            self._keys_by_link.setdefault(link.id, set()).add((host, slug))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return link

    def evict(self, host: str, slug: str, link_id: int | None = None) -> None:
        self._entries.pop((host, slug), None)
        for key in self._keys_by_link.pop(link_id, ()) if link_id is not None else ():
            self._entries.pop(key, None)

    def on_link_committed(self, event: str, link_id: int, host: str, slug: str) -> None:
        self.evict(host, slug, link_id)

    def clear(self) -> None:
        self._entries.clear()

    def start(self) -> None:
        with self._db.session() as session:
            self._seq = max_change_seq(session)
        self._thread = start_thread(self._poll, "siyu-link-poller")

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll_once()
            except Exception:
                log.exception("link cache poll failed")

    def poll_once(self) -> None:
        with self._db.session() as session:
            changes = changed_since(session, self._seq)
        for seq, link_id, host, slug in changes:
            self.evict(host, slug, link_id)
            self._seq = max(self._seq, seq)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
