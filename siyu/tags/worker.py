"""The running system's tag and segment computation: on a schedule, on demand, and as events arrive.

One run, per workspace: refresh the per-person facts (siyu.segments.facts), compute the fact and rule
tags (siyu.tags.compute), recompute the segments (siyu.segments.service). Runs never overlap (`lock`),
whether the schedule, an API call or the CLI started them. The schedule's interval is the setting
`tags_interval_seconds` (default 900; 0 turns the schedule off); the first run follows the start by
`tags_first_run_seconds` (default 10).

Streaming: the listener queues the persons whose new events a streaming tag counts; the worker
decides them at most every `stream_seconds`, after waiting for the stitcher's batch to be written
(it takes the stitcher's lock once), so the events are in `event_persons` when they are counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from siyu.db import Database
from siyu.events.store import EventStore
from siyu.segments import facts
from siyu.segments.service import recompute_segments
from siyu.tags import compute
from siyu.tags.listener import TagListener
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.tags")


@dataclass
class RunReport:
    workspace_id: int
    facts: facts.Refreshed
    tags: list[compute.TagResult]
    segments: list[Any]
    seconds: float
    cause: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "cause": self.cause,
            "at": self.at,
            "seconds": round(self.seconds, 3),
            "persons": self.facts.persons,
            "events_refresh": self.facts.events,
            "events_appended": self.facts.appended,
            "tags": [t.as_dict() for t in self.tags],
            "segments": [s.as_dict() for s in self.segments],
        }


class TagWorker:
    def __init__(
        self,
        db: Database,
        store: EventStore,
        stitch_lock: Any,
        interval_seconds: float = 900.0,
        first_run_seconds: float = 10.0,
        stream_seconds: float = 1.0,
    ):
        self.db = db
        self.store = store
        self.stitch_lock = stitch_lock
        self.interval = interval_seconds
        self.first_run = first_run_seconds
        self.stream_seconds = stream_seconds
        self.lock = threading.RLock()  # one computation at a time
        self.listener = TagListener(self.notify, self.forget, self.changed)
        self.last: dict[int, RunReport] = {}
        self._known: dict[int, facts.Known] = {}  # who changed since each workspace's last refresh
        self._copied: set[int] = set()  # workspaces whose SQL facts this process has copied whole
        self._pending: dict[int, set[int]] = defaultdict(set)
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- streaming ---------------------------------------------------------------------------------------
    def notify(self, touched: Mapping[int, set[int]]) -> None:
        with self._pending_lock:
            for ws, ids in touched.items():
                self._pending[ws] |= ids
        self._wake.set()

    def run_streaming(self) -> list[compute.TagResult]:
        """Decide the streaming tags of the persons queued so far."""
        with self.stitch_lock:  # the stitcher's batch that queued them is written once it lets go
            pass
        with self._pending_lock:
            pending, self._pending = self._pending, defaultdict(set)
        results = []
        with self.lock:
            for ws, ids in pending.items():
                results += compute.stream(self.db, self.store, ws, ids)
        return results

    def changed(self, workspace_id: int, touched: Iterable[int] = (), gone: Iterable[int] = ()) -> None:
        """The listener saw these persons change (traits, identifiers) or go (merged away, erased)."""
        with self._pending_lock:
            known = self._known.setdefault(workspace_id, facts.Known())
            known.touched.update(touched)
            known.gone.update(gone)

    def refresh_facts(self, workspace_id: int, full_events: bool = False) -> facts.Refreshed:
        """Bring the workspace's facts up to date, reading again only who changed once this process has
        copied the SQL side whole (it has seen every change since)."""
        with self.lock:
            with self._pending_lock:
                known = self._known.pop(workspace_id, facts.Known())
            try:
                refreshed = facts.refresh(
                    self.db,
                    self.store,
                    workspace_id,
                    full_events=full_events,
                    known=known if workspace_id in self._copied else None,
                )
            except BaseException:
                self.changed(workspace_id, known.touched, known.gone)
                raise
            if refreshed.sql == "full":
                self._copied.add(workspace_id)
            return refreshed

    def forget(self, workspace_id: int, super_ids: list[int]) -> None:
        with self.lock:
            try:
                facts.forget_person(self.store, workspace_id, super_ids)
            except Exception:  # the next refresh drops them anyway
                log.exception("dropping erased persons from the facts failed")

    # -- runs ---------------------------------------------------------------------------------------------
    def recompute(
        self, workspace_id: int | None = None, *, full_events: bool = False, cause: str = "manual"
    ) -> list[RunReport]:
        """Refresh facts, compute tags, recompute segments: for one workspace, or all of them."""
        if workspace_id is None:
            with self.db.session() as session:
                ids = list(session.scalars(select(Workspace.id).order_by(Workspace.id)))
        else:
            ids = [workspace_id]
        reports = []
        with self.lock:
            for ws in ids:
                started = time.perf_counter()
                refreshed = self.refresh_facts(ws, full_events=full_events)
                tags = compute.compute_tags(self.db, self.store, ws, cause=cause, now=refreshed.at)
                segments = recompute_segments(self.db, self.store, ws, now=refreshed.at)
                report = RunReport(ws, refreshed, tags, segments, time.perf_counter() - started, cause)
                self.last[ws] = report
                reports.append(report)
        return reports

    def recompute_segments(
        self, workspace_id: int, segment_ids: list[int], refresh: bool = False, wait: float = 5.0
    ) -> list[Any] | None:
        """Recompute some segments now (after refreshing the facts, if asked); None when a run is under
        way and does not end within `wait` seconds: the segments are computed with it, or the next."""
        if not self.lock.acquire(timeout=wait):
            return None
        try:
            if refresh:
                self.refresh_facts(workspace_id)
            return recompute_segments(self.db, self.store, workspace_id, segment_ids)
        finally:
            self.lock.release()

    # -- the thread -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="siyu-tags", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        due = time.monotonic() + self.first_run
        while not self._stopping.is_set():
            now = time.monotonic()
            timeout = max(0.0, due - now) if self.interval > 0 else None
            if self._wake.wait(timeout):
                self._wake.clear()
                self._stopping.wait(self.stream_seconds)  # gather a little before deciding
            if self._stopping.is_set():
                break
            try:
                if self._pending:
                    self.run_streaming()
                if self.interval > 0 and time.monotonic() >= due:
                    self.recompute(cause="schedule")
                    due = time.monotonic() + self.interval
            except Exception:
                log.exception("tag computation failed; retrying on the next run")
                due = time.monotonic() + min(self.interval, 60.0) if self.interval > 0 else due
