"""The running system: settings, databases, caches and background workers, started and stopped once.

Delivery layers (REST, console, redirect, CLI) receive a Runtime instead of reaching for globals.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select

from siyu.clicks.writer import ClickQueue
from siyu.config import Settings
from siyu.consent.listener import ConsentListener
from siyu.db import Database
from siyu.events.dedupe import MessageIdFilter
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.ingest import Ingestor
from siyu.events.writer import EventQueue
from siyu.identity.stitch import Stitcher
from siyu.links import service as link_service
from siyu.profiles.listener import ProfileListener
from siyu.redirect.cache import LinkCache
from siyu.tags.worker import TagWorker
from siyu.value.worker import ValueWorker
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
    # One ID: every PersonListener (siyu.identity.listeners) the stitcher calls, in order, inside its
    # SQL transaction. Register with `runtime.person_listeners.append(listener)` before start().
    person_listeners: list = field(default_factory=list)
    started: bool = False
    stitcher: Stitcher = field(init=False)
    tags: TagWorker = field(init=False)
    value: ValueWorker = field(init=False)

    def __post_init__(self) -> None:
        # One ID: resolves every stored event and click to a person in the background; it is in
        # `background`, but stopped after the writers (see stop()), so it stitches all they wrote.
        self.stitcher = Stitcher(
            self.db,
            self.store,
            self.person_listeners,
            drain=self._drain_writers,
            activity=lambda: (self.clicks.written, self.events.written),
            poll_seconds=float(self.settings.extra.get("stitch_poll_seconds", 1.0)),
        )
        self.background.append(self.stitcher)
        # Tags and segments (siyu.tags.worker): facts, tags and segments recomputed on a schedule and on
        # demand; simple event-count tags kept current as the stitcher resolves new events.
        self.tags = TagWorker(
            self.db,
            self.store,
            self.stitcher.lock,
            interval_seconds=float(self.settings.extra.get("tags_interval_seconds", 900.0)),
            first_run_seconds=float(self.settings.extra.get("tags_first_run_seconds", 10.0)),
        )
        self.person_listeners.append(self.tags.listener)
        self.background.append(self.tags)
        # Customer value (siyu.value.worker): RFM, CLV, clusters, repurchase, basket, referrals per workspace,
        # on a schedule and on demand, in its own thread; value tags reach segments via the tag worker.
        self.value = ValueWorker(
            self.db,
            self.store,
            interval_seconds=float(
                self.settings.extra.get("value_interval_seconds", os.environ.get("SIYU_VALUE_INTERVAL_SECONDS", 21600))
            ),
            first_run_seconds=float(self.settings.extra.get("value_first_run_seconds", 120.0)),
            after_run=lambda workspace_id: self.tags.recompute(workspace_id, cause="model"),
        )
        self.background.append(self.value)

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
            enricher=settings.click_enricher,
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
            # traits follow merges, splits and erasures; consent sent with tracked events is recorded
            person_listeners=[ProfileListener(store), ConsentListener()],
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
            if worker is not self.stitcher:
                worker.stop()
        self.links.stop()
        self.clicks.stop()
        self.events.stop()
        self.stitcher.stop()  # after the writers drained: it stitches everything they wrote
        if self.links.on_link_committed in link_service.committed_listeners:
            link_service.committed_listeners.remove(self.links.on_link_committed)
        self.started = False

    def _drain_writers(self) -> None:
        self.clicks.flush()
        self.events.flush()

    def stitch_now(self) -> int:
        """Write what the writers hold and resolve every stored event and click to its person now
        (tests, the CLI, bulk imports); returns how many were stitched."""
        self._drain_writers()
        return self.stitcher.run_until_idle()

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
