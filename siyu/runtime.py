"""The running system: settings, databases, caches and background workers, started and stopped once.

Delivery layers (REST, console, redirect, CLI) receive a Runtime instead of reaching for globals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select

from siyu.clicks.writer import ClickQueue
from siyu.config import Settings
from siyu.db import Database
from siyu.events.dedupe import MessageIdFilter
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.ingest import Ingestor
from siyu.events.writer import EventQueue
from siyu.links import service as link_service
from siyu.redirect.cache import LinkCache
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: DuckDBEventStore
    clicks: ClickQueue
    links: LinkCache
    events: EventQueue  # tracked events (siyu.api.tracking), written like clicks
    ingestor: Ingestor
    background: list = field(default_factory=list)
    started: bool = False

    @classmethod
    def create(cls, settings: Settings, migrate: bool = True) -> Runtime:
        db = Database(settings.database_url)
        if migrate:
            db.migrate()
        store = DuckDBEventStore(settings.events_path)
        privacy = _privacy_lookup(db)
        clicks = ClickQueue(
            store,
            privacy,
            flush_seconds=settings.click_flush_seconds,
            spill_path=settings.data_dir / "clicks-unwritten.jsonl",
        )
        cache = LinkCache(
            db,
            store.clicks_served,
            poll_seconds=settings.cache_poll_seconds,
            primary_host=urlsplit(settings.base_url).netloc.lower() or None,
        )
        events = EventQueue(
            store,
            privacy,
            flush_seconds=settings.click_flush_seconds,
            spill_path=settings.data_dir / "events-unwritten.jsonl",
        )
        dedupe = MessageIdFilter(max_ids=int(settings.extra.get("dedupe_max_ids", 2_000_000)))
        return cls(
            settings=settings,
            db=db,
            store=store,
            clicks=clicks,
            links=cache,
            events=events,
            ingestor=Ingestor(events, dedupe),
        )

    @property
    def scheme(self) -> str:
        return "https" if self.settings.base_url.startswith("https") else "http"

    def link_context(self, workspace_id: int, actor: str = "") -> link_service.Context:
        return link_service.Context(workspace_id=workspace_id, actor=actor, base_host=self.settings.base_host)

    def start(self) -> None:
        if self.started:
            return
        link_service.committed_listeners.append(self.links.on_link_committed)
        self.clicks.start()
        self.ingestor.warm(self.store)  # before the first event: ids of the last 24 h count as seen
        self.events.start()
        self.links.start()
        for worker in self.background:
            worker.start()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        for worker in reversed(self.background):
            worker.stop()
        self.links.stop()
        self.clicks.stop()
        self.events.stop()
        if self.links.on_link_committed in link_service.committed_listeners:
            link_service.committed_listeners.remove(self.links.on_link_committed)
        self.started = False

    def close(self) -> None:
        self.stop()
        self.store.close()
        self.db.dispose()


def _privacy_lookup(db: Database, ttl: float = 10.0):
    """Workspace id -> (ip_mode, salt), cached for `ttl` seconds: the writer asks once per click,
    and a changed privacy setting applies within that time."""
    cache: dict[int, tuple[float, tuple[str, bytes]]] = {}

    def lookup(workspace_id: int) -> tuple[str, bytes]:
        hit = cache.get(workspace_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        with db.session() as session:
            row = session.execute(
                select(Workspace.ip_mode, Workspace.ip_salt).where(Workspace.id == workspace_id)
            ).first()
        value = ("none", b"") if row is None else (row[0], bytes.fromhex(row[1]))
        cache[workspace_id] = (now + ttl, value)
        return value

    return lookup
