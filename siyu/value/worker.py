"""The running system's value computation: every workspace on a schedule, and on demand.

Runs happen in this worker's thread, never in a request: the redirect path and the API stay free while
numpy and scikit-learn work (they release the GIL for most of it). Runs never overlap (`lock`),
whether the schedule, an API call (`POST /api/v1/value/run`) or the console started them. On demand,
`request()` queues a run (a row in `value_runs`) and wakes the thread; `run_now()` runs in the
caller's thread under the same lock (tests, `wait=true`).

Schedule: a workspace is recomputed when its last run is older than `value_interval_seconds`
(default 6 h; 0 turns the schedule off), checked first `value_first_run_seconds` (default 120) after
start and then every minute. After a run, `after_run(workspace_id)` lets the tag worker refresh the
facts, so segments on value tags see the new values.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from siyu.db import Database, utcnow
from siyu.events.store import EventStore
from siyu.threads import set_os_thread_name
from siyu.value import service
from siyu.value.models import ValueRun
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.value")
TICK_SECONDS = 60.0


class ValueWorker:
    def __init__(
        self,
        db: Database,
        store: EventStore,
        interval_seconds: float = 6 * 3600.0,
        first_run_seconds: float = 120.0,
        after_run: Callable[[int], Any] | None = None,
    ):
        self.db = db
        self.store = store
        self.interval = interval_seconds
        self.first_run = first_run_seconds
        self.after_run = after_run
        self.lock = threading.Lock()
        self.running: int | None = None  # workspace being computed now
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- on demand ---------------------------------------------------------------------------------------
    def request(self, workspace_id: int, actor: str = "", cause: str = "manual") -> dict[str, Any]:
        """Queue a run for the thread (or return the one already queued)."""
        with self.db.session() as session:
            queued = service.run_dict(service.queue_run(session, workspace_id, cause, actor))
        self._wake.set()
        return queued

    def run_now(self, workspace_id: int, actor: str = "", cause: str = "manual") -> dict[str, Any]:
        """Run in the caller's thread, after any run in progress; the finished run."""
        with self.db.session() as session:
            queued = service.queue_run(session, workspace_id, cause, actor).id
        return self._execute(workspace_id, queued, cause, actor)

    def _execute(self, workspace_id: int, run_id: int, cause: str, actor: str = "") -> dict[str, Any]:
        with self.lock:
            with self.db.session() as session:
                row = session.get(ValueRun, run_id)
                if row is not None and row.status != "queued":  # another caller ran it meanwhile
                    return service.run_dict(row)
            self.running = workspace_id
            try:
                result = service.run(self.db, self.store, workspace_id, cause=cause, actor=actor, run_id=run_id)
            finally:
                self.running = None
        if result["status"] == "succeeded" and self.after_run is not None:
            try:
                self.after_run(workspace_id)
            except Exception:
                log.exception("refreshing tags after the value run of workspace %s failed", workspace_id)
        return result

    # -- the thread ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        if self._thread is None:
            self._abandon_interrupted()
            self._thread = threading.Thread(target=self._loop, name="siyu-value", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _abandon_interrupted(self) -> None:
        """Runs left 'running' by a process that stopped mid-run never finish: say so."""
        with self.db.session() as session:
            session.execute(
                update(ValueRun)
                .where(ValueRun.status == "running")
                .values(status="failed", error="interrupted: the server stopped during the run", finished_at=utcnow())
            )

    def _loop(self) -> None:
        set_os_thread_name("siyu-value")
        due = time.monotonic() + self.first_run
        while not self._stopping.is_set():
            timeout = max(0.0, due - time.monotonic()) if self.interval > 0 else None
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.run_queued()
                if self.interval > 0 and time.monotonic() >= due:
                    self.run_scheduled()
                    due = time.monotonic() + min(self.interval, TICK_SECONDS)
            except Exception:
                log.exception("value worker failed; retrying on the next tick")
                due = time.monotonic() + TICK_SECONDS

    def run_queued(self) -> int:
        """Run every queued run, oldest first; how many ran."""
        done = 0
        while not self._stopping.is_set():
            with self.db.session() as session:
                row = session.scalar(select(ValueRun).where(ValueRun.status == "queued").order_by(ValueRun.id).limit(1))
                if row is None:
                    return done
                job = (row.workspace_id, row.id, row.cause, row.requested_by)
            self._execute(job[0], job[1], job[2], job[3])
            done += 1
        return done

    def run_scheduled(self) -> int:
        """Recompute the workspaces whose last run is older than the interval; how many ran."""
        cutoff = utcnow() - timedelta(seconds=self.interval)
        with self.db.session() as session:
            last = dict(
                session.execute(
                    select(ValueRun.workspace_id, func.max(ValueRun.created_at)).group_by(ValueRun.workspace_id)
                ).all()
            )
            workspaces = list(session.scalars(select(Workspace.id).order_by(Workspace.id)))
        done = 0
        for ws in workspaces:
            if self._stopping.is_set():
                break
            latest = last.get(ws)
            if latest is None or latest.replace(tzinfo=cutoff.tzinfo) < cutoff:
                with self.db.session() as session:
                    run_id = service.queue_run(session, ws, "schedule").id
                self._execute(ws, run_id, "schedule")
                done += 1
        return done
