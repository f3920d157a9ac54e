"""The stitcher: every stored event and short-link click resolved to a person (One ID), in the background.

The writers append events and clicks to DuckDB; the stitcher finds the ones without an
`event_persons` row (see siyu.events.person_store for how, without scanning the tables), reads
their identifiers (siyu.identity.extract) and resolves them, oldest first, in batches:

1. One SQL transaction per batch. Keys every event shares with a person already known are looked
   up once for the whole batch; an event whose keys all belong to one person and that brings
   nothing new is that person's without running the merge engine (the fast path). Everything
   else goes through `service.resolve_outcome`. In the same transaction every registered
   `PersonListener` hears `persons_merged` for each merge (in order), then `events_stitched` with
   each event's super ID as of the end of the batch.
2. After the commit, one DuckDB transaction appends the batch's `event_persons` rows, re-points
   rows of persons that were merged away (read from the merge log, so merges made elsewhere, e.g.
   by the identify API, are followed too), gives anonymous clicks to the person whose cookie they
   carry once that cookie is known, and moves the watermarks.

Failure handling: an error in one batch is narrowed down by halving it; the one event that still
fails is logged and stored as anonymous, so it never blocks the rest. Database outages are not
blamed on events: the batch is retried later. If the DuckDB write fails after the SQL commit, it is
retried from memory; if the process dies in between, the batch is stitched again at the next start
(resolving is idempotent; listeners may hear about those events twice). Events stored but not
stitched before a crash are found at the next start, as are events a previous run kept in its
spill file (one full anti-join at start-up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy.exc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.events.store import CLICK_EVENT_NAME
from siyu.identity import rebuild as graph_rebuild
from siyu.identity import service
from siyu.identity.engine import Key, Outcome
from siyu.identity.extract import click_identifiers, event_identifiers, person_traits, usable_keys
from siyu.identity.listeners import PersonListener, StitchedEvent
from siyu.identity.models import IdentityIdentifier, IdentityMerge
from siyu.identity.normalize import check_ref
from siyu.identity.rules import Rules, get_rules
from siyu.identity.store import key_filter, root_of
from siyu.sources import service as sources_service
from siyu.sources.models import Source
from siyu.threads import start_thread

log = logging.getLogger("siyu.identity.stitch")

KINDS = ("event", "click")
OVERLAP = timedelta(seconds=60)  # rows may be written this much later than their arrival time says
BATCH = 2000  # events per batch
CLICK_BATCH = 20_000  # clicks per batch (column-wise: cheap per row, costly per batch)
# A click's arrival is the moment the redirect queued it, and the writer appends in queue order, so
# clicks are never late except after a restart (spill file; the start-up pass catches those). The
# overlap anti-join, whose cost grows with the window's clicks, runs for them only this often.
CLICK_OVERLAP_CHECK_SECONDS = 30.0
FULL_POLL_SECONDS = 10.0  # look even when the writers wrote nothing (e.g. a bulk import appended directly)
RETRY_SECONDS = 5.0
STOP_BUDGET_SECONDS = 2.0  # stitching on shutdown; what is left waits for the next start
BACKGROUND_PAUSE = 1.0  # rest as long as each batch took: at most half the GIL while a backlog lasts
TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, TimeoutError)
I, M = IdentityIdentifier, IdentityMerge  # noqa: E741


@dataclass
class Item:
    """One stored event or click on its way to a person."""

    kind: str
    event_id: str
    workspace_id: int
    ts: datetime  # the event's own time, naive UTC as DuckDB keeps it
    arrival: datetime
    source_id: int | None = None
    type: str = "track"
    event: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # the identifier fields as stored
    keys: list[Key] = field(default_factory=list)  # to resolve
    lookups: list[Key] = field(default_factory=list)  # only to look up (a click's cookie)
    is_bot: bool = False
    super_id: int | None = None
    poisoned: bool = False

    def stitched(self) -> StitchedEvent:
        return StitchedEvent(
            workspace_id=self.workspace_id,
            event_id=self.event_id,
            kind=self.kind,
            type=self.type,
            event=self.event,
            timestamp=self.ts.replace(tzinfo=UTC),
            super_id=self.super_id,
            source_id=self.source_id,
            traits=self.traits,
            properties=self.properties,
            context=self.context,
        )


@dataclass
class Pending:
    """A batch resolved and committed in SQL, not yet written to DuckDB."""

    rows: list[Item]
    watermarks: dict[str, datetime | None]
    floors: dict[str, datetime | None]
    clicks: pa.Table | None = None  # event_persons rows of the clicks stitched column-wise


class Local:
    """The batch's view of the graph: key -> (super id, quarantined), with who holds what."""

    def __init__(self) -> None:
        self.owner: dict[Key, tuple[int, bool]] = {}
        self.held: dict[int, set[Key]] = {}

    def set(self, key: Key, person: int, quarantined: bool = False) -> None:
        old = self.owner.get(key)
        if old is not None:
            self.held.get(old[0], set()).discard(key)
        self.owner[key] = (person, quarantined)
        self.held.setdefault(person, set()).add(key)

    def forget(self, key: Key) -> None:
        old = self.owner.pop(key, None)
        if old is not None:
            self.held.get(old[0], set()).discard(key)

    def merged(self, survivor: int, absorbed: int) -> None:
        for key in self.held.pop(absorbed, set()):
            self.set(key, survivor, self.owner[key][1])

    def one_person(self, keys: Sequence[Key]) -> int | None:
        """The person every key belongs to (none new, none quarantined), or None."""
        person = None
        for key in keys:
            known = self.owner.get(key)
            if known is None or known[1] or (person is not None and known[0] != person):
                return None
            person = known[0]
        return person


class Stitcher:
    """Background worker of the Runtime (start/stop), plus the operations that must not race it.

    `lock` serialises batches with unmerges, server-side identifies and anything else that changes
    which person an event belongs to (e.g. erasure: hold it while deleting a person's rows)."""

    def __init__(
        self,
        db: Database,
        store: Any,
        listeners: list[PersonListener],
        drain: Callable[[], None] | None = None,
        activity: Callable[[], object] | None = None,
        poll_seconds: float = 1.0,
        batch: int = BATCH,
        click_batch: int = CLICK_BATCH,
    ):
        self.db = db
        self.store = store
        self.listeners = listeners  # the Runtime's list: listeners registered later are called too
        self.drain = drain or (lambda: None)
        self.activity = activity or (lambda: None)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.click_batch = click_batch
        self._click_check = 0.0
        self.lock = threading.RLock()
        self.stitched = 0  # rows written to event_persons
        self.poisoned = 0  # events stored as anonymous because they could not be stitched
        self.fast = 0  # events resolved from the batch's lookup alone
        self.slow = 0  # events that went through the merge engine
        self._state: dict[str, Any] | None = None
        self._pending: Pending | None = None
        self._kinds: dict[int, str] = {}
        self._kinds_generation = -1
        self._seen_activity: object = object()
        self._last_full = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- worker -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        if self._thread is None:
            self._thread = start_thread(self._run, "siyu-stitcher")

    def stop(self, timeout: float = 60.0) -> None:
        """Stitch what is stored (the Runtime stops the writers first, so that is everything), then end."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._due():
                    self.run_until_idle(stop=self._stopping, pause=BACKGROUND_PAUSE)
                delay = self.poll_seconds
            except Exception:
                log.exception("stitching failed; retrying in %.0f s", RETRY_SECONDS)
                delay = RETRY_SECONDS
            self._wake.wait(delay)
            self._wake.clear()
        try:
            # Bounded: a backlog left by a burst is stitched at the next start (from the watermarks),
            # instead of holding up the shutdown for minutes.
            self.run_until_idle(budget=STOP_BUDGET_SECONDS)
        except Exception:
            log.exception("final stitching failed; the rest is stitched at the next start")

    def _due(self) -> bool:
        """Skip the store while nothing was written (an idle server polls nothing but a counter)."""
        seen = self.activity()
        now = time.monotonic()
        if seen != self._seen_activity or now - self._last_full >= FULL_POLL_SECONDS or self._state is None:
            self._seen_activity, self._last_full = seen, now
            return True
        return False

    def run_until_idle(
        self, budget: float | None = None, stop: threading.Event | None = None, pause: float = 0.0
    ) -> int:
        """Stitch batches until nothing is left (or `budget` seconds have passed, or `stop` is set);
        returns how many events and clicks were stitched. With `pause`, rest `pause` × the time each
        batch took before the next: the background worker shares the GIL with the redirect and the
        tracking API, and a burst's backlog may be stitched a little later rather than slow them."""
        deadline = None if budget is None else time.monotonic() + budget
        total = 0
        while True:
            started = time.monotonic()
            done = self.step()
            total += done
            if done and pause and stop is not None:
                stop.wait((time.monotonic() - started) * pause)
            if done == 0 or (stop is not None and stop.is_set()):
                return total
            if deadline is not None and time.monotonic() >= deadline:
                log.info("stitching paused with work left; it continues at the next start")
                return total

    def step(self) -> int:
        """One batch: select, resolve (SQL), write (DuckDB). Returns how many rows it stitched."""
        with self.lock:
            state = self._load_state()
            if self._pending is not None:  # committed in SQL, DuckDB refused last time
                self._save(self._pending)
            batch, clicks, marks = self._next_batch(state)
            if not batch and not clicks.num_rows:
                self._sync()  # merges and cookies from elsewhere (identify API, scripts)
                return 0
            personal = pc.and_(pc.is_valid(clicks["person_ref"]), pc.invert(clicks["is_bot"]))
            batch = _unique(batch + self._items("click", clicks.filter(personal).to_pylist()))
            if batch:
                self._stitch(sorted(batch, key=lambda i: (i.ts, i.kind, i.event_id)))
            # After the batch's events: a cookie identified just now already counts for its clicks.
            rest = self._stitch_clicks(clicks.filter(pc.invert(personal)))
            self._save(Pending(batch, *marks, clicks=rest))
            return len(batch) + rest.num_rows

    # -- selecting --------------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        if self._state is not None:
            return self._state
        saved = self.store.stitch_state()
        state: dict[str, Any] = {
            "watermarks": {k: _time(saved.get(f"{k}.watermark")) for k in KINDS},
            "floors": dict.fromkeys(KINDS),
        }
        if "merges" in saved:
            state["merges"], state["cookies"] = int(saved["merges"]), int(saved["cookies"])
        else:  # first run: event_persons is empty, so older merges and cookies have nothing to re-point
            with self.db.session() as session:
                state["merges"] = session.scalar(select(func.coalesce(func.max(M.id), 0)))
                state["cookies"] = session.scalar(select(func.coalesce(func.max(I.id), 0)))
        self.drain()  # a previous run's spill file is queued again at start: written before we look
        for kind in KINDS:
            mark = state["watermarks"][kind]
            if mark is not None:
                state["floors"][kind] = self.store.oldest_unstitched(kind, mark - OVERLAP)
        self._state = state
        return state

    def _next_batch(self, state: dict[str, Any]) -> tuple[list[Item], pa.Table, tuple[dict, dict]]:
        """The batch's events (as Items) and clicks (as one Arrow table, see `_stitch_clicks`)."""
        watermarks = dict(state["watermarks"])
        floors = dict(state["floors"])
        mark = watermarks["event"]
        rows: list[dict[str, Any]] = []
        if mark is not None:
            low = floors["event"] or mark - OVERLAP
            rows = self.store.unstitched_between("event", low, mark, self.batch)
            if floors["event"] is not None and len(rows) < self.batch:
                floors["event"] = None  # the late rows fit in this batch: back to the normal overlap
        fresh = self.store.arrivals_after("event", mark, self.batch - len(rows))
        if fresh:
            watermarks["event"] = fresh[-1]["arrival"]
        items = self._items("event", rows + fresh)
        mark = watermarks["click"]
        late = None
        now = time.monotonic()
        if mark is not None and (floors["click"] is not None or now - self._click_check >= CLICK_OVERLAP_CHECK_SECONDS):
            self._click_check = now
            low = floors["click"] or mark - OVERLAP
            late = self.store.unstitched_clicks_between(low, mark, self.click_batch)
            if floors["click"] is not None and late.num_rows < self.click_batch:
                floors["click"] = None
        new = self.store.click_arrivals(mark, self.click_batch - (late.num_rows if late is not None else 0))
        if new.num_rows:
            watermarks["click"] = new["arrival"][-1].as_py()
        clicks = pa.concat_tables([late, new]) if late is not None else new
        return _unique(items), clicks, (watermarks, floors)

    def _items(self, kind: str, rows: list[dict[str, Any]]) -> list[Item]:
        if kind == "event":
            return [
                Item(
                    "event",
                    r["event_id"],
                    r["workspace_id"],
                    r["ts"] or r["arrival"],  # a row without its own time is placed at its arrival
                    r["arrival"],
                    source_id=r["source_id"],
                    type=r["type"],
                    event=r["event"],
                    traits=person_traits(r["type"], r["traits"], r["context"]),
                    properties=r["properties"] if isinstance(r["properties"], dict) else {},
                    context=r["context"] if isinstance(r["context"], dict) else {},
                    raw=r,
                )
                for r in rows
            ]
        details = {}
        if rows:
            wanted = [r["event_id"] for r in rows if not r["is_bot"]]
            details = self.store.click_details(wanted, min(r["ts"] for r in rows), max(r["ts"] for r in rows))
        out = []
        for r in rows:
            context, properties = details.get(r["event_id"], ({}, {}))
            out.append(
                Item(
                    "click",
                    r["event_id"],
                    r["workspace_id"],
                    r["ts"],
                    r["arrival"],
                    event=CLICK_EVENT_NAME,
                    properties=properties or {},
                    context=context or {},
                    raw=r,
                    is_bot=bool(r["is_bot"]),
                )
            )
        return out

    # -- resolving ----------------------------------------------------------------------------------------
    def _stitch_clicks(self, clicks: pa.Table) -> pa.Table:
        """`event_persons` rows of clicks without a personal link, column-wise.

        Such a click never creates or merges a person: it belongs to whoever holds its visitor cookie
        (a lookup), else to no one. Under a redirect load of thousands of clicks a second, an Item,
        dicts and JSON per click held the serving process's GIL ~30 µs a click (measured); here the
        Python work is per distinct cookie, and listeners hear only of clicks that have a person
        (anonymous ones carry nothing a listener keeps)."""
        if clicks.num_rows == 0:
            return _empty_rows()
        # Per row, only Arrow compute (C++, GIL released): which clicks can have a person at all
        # (a cookie, not a bot) and which need a lookup. Per-row Python (to_pylist of whole columns,
        # list comprehensions) held the GIL for 20-30 ms per 20,000-click batch under load.
        visitor = clicks["visitor_id"]
        usable = pc.and_(
            pc.invert(pc.fill_null(clicks["is_bot"], False)), pc.fill_null(pc.not_equal(visitor, ""), False)
        )
        # A cookie the redirect minted for this very click was unknown to One ID when the click was
        # stored; if it has been identified since, `_sync` re-attributes its clicks (known cookies).
        asked = pc.and_(usable, pc.invert(pc.fill_null(clicks["new_visitor"], False)))
        pairs = clicks.filter(asked).group_by(["workspace_id", "visitor_id"]).aggregate([])
        wanted: dict[int, list[str]] = {}
        for ws, value in zip(pairs["workspace_id"].to_pylist(), pairs["visitor_id"].to_pylist(), strict=True):
            wanted.setdefault(ws, []).append(value)
        known_ws: list[int] = []
        known_visitor: list[str] = []
        known_person: list[int] = []
        with self.db.session() as session:
            for ws, values in wanted.items():
                rules = get_rules(session, ws)
                spelled: dict[Key, str] = {}
                for value in values:
                    for key in usable_keys(rules, [("visitor_cookie", value)]):
                        spelled[key] = value
                local = _lookup(session, ws, set(spelled))
                for key, (person, quarantined) in local.owner.items():
                    if not quarantined:
                        known_ws.append(ws)
                        known_visitor.append(spelled[key])
                        known_person.append(person)
            owners = _owners(clicks, usable, known_ws, known_visitor, known_person)
            hits = pc.is_valid(owners)
            hit_count = pc.sum(hits).as_py() or 0
            if hit_count and self.listeners:
                items = self._items("click", clicks.filter(hits).to_pylist())
                for item, owner in zip(items, owners.filter(hits).to_pylist(), strict=True):
                    item.super_id = owner
                for listener in self.listeners:
                    listener.events_stitched(session, [item.stitched() for item in items])
        self.fast += hit_count
        return pa.table(
            {
                "workspace_id": clicks["workspace_id"].cast(pa.int32()),
                "event_id": clicks["event_id"],
                "kind": pa.repeat(pa.scalar("click", pa.string()), clicks.num_rows),
                "super_id": owners,
                "ts": clicks["ts"].cast(pa.timestamp("us")),
            }
        )

    def _stitch(self, items: list[Item]) -> None:
        """Resolve and notify in one transaction; halve the batch around whatever fails."""
        try:
            self._resolve(items)
        except TRANSIENT:
            raise
        except Exception:
            if len(items) == 1:
                item = items[0]
                log.exception("%s %s of workspace %s cannot be stitched; stored as anonymous", *_who(item))
                item.super_id, item.poisoned = None, True
                self.poisoned += 1
                return
            for item in items:
                item.super_id = None
            half = len(items) // 2
            self._stitch(items[:half])
            self._stitch(items[half:])

    def _resolve(self, items: list[Item]) -> None:
        with self.db.session() as session:
            kinds = self._source_kinds(session, {i.source_id for i in items if i.source_id is not None})
            locals_: dict[int, Local] = {}
            rules: dict[int, Rules] = {}
            for item in items:
                ws = item.workspace_id
                if ws not in rules:
                    rules[ws] = get_rules(session, ws)
                _keys_of(item, rules[ws], kinds.get(item.source_id) if item.source_id is not None else None)
            for ws in rules:
                keys = {k for i in items if i.workspace_id == ws for k in (*i.keys, *i.lookups)}
                locals_[ws] = _lookup(session, ws, keys)
            merges: list[tuple[int, int, int]] = []
            parent: dict[int, int] = {}
            for item in items:
                if item.is_bot:  # crawlers and link previews belong to no one
                    item.super_id = None
                    continue
                item.super_id = self._resolve_one(session, item, locals_[item.workspace_id], merges, parent)
            for item in items:
                item.super_id = _root(parent, item.super_id)
            for ws, survivor, absorbed in merges:
                for listener in self.listeners:
                    listener.persons_merged(session, ws, survivor, absorbed)
            stitched = [i.stitched() for i in items if not i.is_bot]
            if stitched:
                for listener in self.listeners:
                    listener.events_stitched(session, stitched)

    def _resolve_one(
        self, session: Session, item: Item, local: Local, merges: list, parent: dict[int, int]
    ) -> int | None:
        person = local.one_person(item.keys) if item.keys else None
        if person is not None:
            self.fast += 1
        elif item.keys:
            self.slow += 1
            outcome = service.resolve_outcome(session, item.workspace_id, item.keys, _ref(item.event_id))
            person = outcome.person
            _learn(session, item, local, outcome)
            for absorbed in outcome.merged:
                merges.append((item.workspace_id, outcome.person, absorbed))
                parent[absorbed] = outcome.person
        if person is None and item.lookups:
            known = local.owner.get(item.lookups[0])
            if known is not None and not known[1]:
                person = known[0]
        return person

    def _source_kinds(self, session: Session, ids: Iterable[int]) -> dict[int, str]:
        if self._kinds_generation != sources_service.generation:
            self._kinds.clear()
            self._kinds_generation = sources_service.generation
        missing = [i for i in ids if i not in self._kinds]
        if missing:
            self._kinds.update(session.execute(select(Source.id, Source.kind).where(Source.id.in_(missing))).all())
        return self._kinds

    # -- writing ------------------------------------------------------------------------------------------
    def _save(self, pending: Pending) -> None:
        self._pending = pending
        state = self._state
        assert state is not None
        repoint, cookies, marks = self._changes()
        rows = _rows_table(pending.rows)
        if pending.clicks is not None and pending.clicks.num_rows:
            rows = pa.concat_tables([rows, pending.clicks])
        saved = {f"{k}.watermark": _iso(pending.watermarks[k]) for k in KINDS}
        saved.update(merges=str(marks[0]), cookies=str(marks[1]))
        self.store.save_stitched(rows, saved, repoint, cookies)
        self._pending = None
        state["watermarks"], state["floors"] = pending.watermarks, pending.floors
        state["merges"], state["cookies"] = marks
        self.stitched += rows.num_rows

    def _sync(self) -> None:
        """Apply merges and newly known cookies that happened outside a batch."""
        state = self._state
        assert state is not None
        repoint, cookies, marks = self._changes()
        if marks == (state["merges"], state["cookies"]):
            return
        self.store.save_stitched(
            _rows_table([]),
            {"merges": str(marks[0]), "cookies": str(marks[1])},
            repoint,
            cookies,
        )
        state["merges"], state["cookies"] = marks

    def _changes(self) -> tuple[pa.Table, pa.Table, tuple[int, int]]:
        """(re-pointings, known cookies, new marks) from the merge log and the identifiers added since.

        The marks are the highest ids at the time of reading: the identifiers of other types added
        meanwhile are not read again."""
        state = self._state
        assert state is not None
        with self.db.session() as session:
            top = session.scalar(select(func.coalesce(func.max(I.id), 0)))
            merges = session.execute(
                select(M.id, M.action, M.workspace_id, M.merged_id, M.survivor_id)
                .where(M.id > state["merges"])
                .order_by(M.id)
            ).all()
            roots: dict[int, int] = {}
            repoint = []
            for _, action, ws, absorbed, survivor in merges:
                if action == "merge":
                    if survivor not in roots:
                        roots[survivor] = root_of(session, survivor)
                    repoint.append((ws, absorbed, roots[survivor]))
            cookies = session.execute(
                select(I.id, I.workspace_id, I.value, I.person_id, I.quarantined)
                .where(I.id > state["cookies"], I.id <= top, I.id_type == "visitor_cookie")
                .order_by(I.id)
            ).all()
        marks = (merges[-1][0] if merges else state["merges"], max(state["cookies"], top))
        known = [(ws, value, person) for _, ws, value, person, quarantined in cookies if not quarantined]
        return (
            pa.table(
                {
                    "workspace_id": pa.array([r[0] for r in repoint], pa.int32()),
                    "old": pa.array([r[1] for r in repoint], pa.int64()),
                    "new": pa.array([r[2] for r in repoint], pa.int64()),
                }
            ),
            pa.table(
                {
                    "workspace_id": pa.array([r[0] for r in known], pa.int32()),
                    "visitor_id": pa.array([r[1] for r in known], pa.string()),
                    "super_id": pa.array([r[2] for r in known], pa.int64()),
                }
            ),
            marks,
        )

    # -- operations that change who owns which events -------------------------------------------------------
    def identify(self, workspace_id: int, identifiers: Sequence[Any], event_ref: str | None = None) -> Outcome:
        """Server-side identify: link a set of identifiers now (listeners hear of merges), and follow
        the merges and the newly known cookie in `event_persons` at once."""
        with self.lock:
            self._load_state()
            with self.db.session() as session:
                outcome = service.resolve_outcome(session, workspace_id, identifiers, event_ref)
                for absorbed in outcome.merged:
                    for listener in self.listeners:
                        listener.persons_merged(session, workspace_id, outcome.person, absorbed)
            self._sync()
        return outcome

    def unmerge(self, workspace_id: int, person_id: object, actor: str = "") -> service.Unmerged:
        """Split a person back out (`service.unmerge`), re-assign both persons' events from the events'
        own identifiers, then tell the listeners (`person_split`, which may read the new assignment):
        all or nothing."""
        with self.lock:
            self._load_state()
            self._sync()  # event_persons must show every merge before the split is applied to it
            with self.db.session() as session:
                split = service.unmerge(session, workspace_id, person_id, actor)
                rows = list(self.store.identity_rows(workspace_id, [split.kept, split.restored]))
                owners = self._owners(session, workspace_id, rows)
                self.store.assign_persons(workspace_id, _assignments(rows, owners))
                try:
                    for listener in self.listeners:
                        listener.person_split(session, workspace_id, split.kept, split.restored)
                    session.commit()
                except BaseException:
                    self.store.assign_persons(workspace_id, _assignments(rows, [r["super_id"] for r in rows]))
                    raise
            self._sync()
            return split

    def _owners(self, session: Session, workspace_id: int, rows: list[dict[str, Any]]) -> list[int | None]:
        """Who each stored event belongs to now, from its own identifiers (read-only)."""
        rules = get_rules(session, workspace_id)
        kinds = self._source_kinds(session, {r["source_id"] for r in rows if r["source_id"] is not None})
        keys = []
        for row in rows:
            resolve, lookups = ([], []) if row["is_bot"] else _row_identifiers(row, kinds, rules)
            keys.append([*resolve, *lookups])
        return service.reassign_events(session, workspace_id, keys)

    def rebuild(self, workspace_id: int, actor: str = "") -> graph_rebuild.RebuildReport:
        """Recompute a workspace's graph from all its stored events and clicks (`rebuild.rebuild`).

        Every super ID is new afterwards: `event_persons` is rewritten and the listeners hear
        `events_stitched` for every event again, in time order, so what they derive from events is
        rebuilt under the new IDs. (What was recorded against an old super ID by other means, e.g.
        by hand in the console, stays with that old ID.)"""
        with self.lock:
            self._load_state()
            self._sync()
            rows = list(self.store.identity_rows(workspace_id))
            with self.db.session() as session:
                rules = get_rules(session, workspace_id)
                kinds = self._source_kinds(session, {r["source_id"] for r in rows if r["source_id"] is not None})
                split = [([], []) if r["is_bot"] else _row_identifiers(r, kinds, rules) for r in rows]
                report = graph_rebuild.rebuild(
                    session, workspace_id, [resolve for resolve, _ in split], [_ref(r["event_id"]) for r in rows], actor
                )
                owners = list(report.super_ids)
                cookie_only = [i for i, (resolve, lookups) in enumerate(split) if lookups and not resolve]
                answers = service.reassign_events(session, workspace_id, [split[i][1] for i in cookie_only])
                for i, owner in zip(cookie_only, answers, strict=True):
                    owners[i] = owner
                items = [_replayed(workspace_id, r, owner) for r, owner in zip(rows, owners, strict=True)]
                for start in range(0, len(items), self.batch):
                    chunk = [i.stitched() for i in items[start : start + self.batch] if not i.is_bot]
                    for listener in self.listeners:
                        listener.events_stitched(session, chunk)
            self.store.replace_event_persons(workspace_id, _rows_table(items), {})
            self._sync()
            return report


def _replayed(workspace_id: int, row: dict[str, Any], owner: int | None) -> Item:
    return Item(
        row["kind"],
        row["event_id"],
        workspace_id,
        row["ts"],
        row["ts"],
        source_id=row["source_id"],
        type=row["type"],
        event=row["event"],
        traits=person_traits(row["type"], row["traits"], row["context"]),
        properties=row["properties"] if isinstance(row["properties"], dict) else {},
        context=row["context"] if isinstance(row["context"], dict) else {},
        is_bot=bool(row["is_bot"]),
        super_id=None if row["is_bot"] else owner,
    )


def _owners(
    clicks: pa.Table, usable: pa.Array, workspaces: list[int], visitors: list[str], persons: list[int]
) -> pa.Array:
    """Per click, the super ID holding its (workspace, visitor cookie), else null (also for the
    clicks that are not `usable`): matched in Arrow on a joined key, not row by row in Python."""
    if not persons:
        return pa.nulls(clicks.num_rows, pa.int64())

    def joined(ws: pa.Array, visitor: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(pc.cast(ws, pa.string()), visitor, "\x1f")

    wanted = joined(pa.array(workspaces, pa.int64()), pa.array(visitors, pa.string()))
    index = pc.index_in(joined(clicks["workspace_id"], clicks["visitor_id"]), value_set=wanted)
    owners = pc.take(pa.array(persons, pa.int64()), index)
    return pc.if_else(usable, owners, pa.scalar(None, pa.int64()))


def _empty_rows() -> pa.Table:
    return _rows_table([])


def _rows_table(items: Sequence[Item]) -> pa.Table:
    return pa.table(
        {
            "workspace_id": pa.array([i.workspace_id for i in items], pa.int32()),
            "event_id": pa.array([i.event_id for i in items], pa.string()),
            "kind": pa.array([i.kind for i in items], pa.string()),
            "super_id": pa.array([i.super_id for i in items], pa.int64()),
            "ts": pa.array([i.ts for i in items], pa.timestamp("us")),
        }
    )


def _keys_of(item: Item, rules: Rules, source_kind: str | None) -> None:
    item.keys, item.lookups = _row_identifiers({**item.raw, "kind": item.kind}, {}, rules, source_kind)


def _row_identifiers(
    row: dict[str, Any], kinds: dict[int, str], rules: Rules, source_kind: str | None = None
) -> tuple[list[Key], list[Key]]:
    """(keys to resolve, keys only to look up) of a stored event or click."""
    if row["kind"] == "click":
        resolve, lookups = click_identifiers(row.get("person_ref"), row.get("visitor_id"))
        return usable_keys(rules, resolve), usable_keys(rules, lookups)
    if source_kind is None and row.get("source_id") is not None:
        source_kind = kinds.get(row["source_id"])
    context = row.get("context")
    pairs = event_identifiers(
        type_=row.get("type"),
        user_id=row.get("user_id"),
        anonymous_id=row.get("anonymous_id"),
        previous_id=row.get("previous_id"),
        traits=person_traits(row.get("type"), row.get("traits"), context),
        context=context,
        source_kind=source_kind,
        known_types=rules,
    )
    return usable_keys(rules, pairs), []


def _lookup(session: Session, workspace_id: int, keys: set[Key]) -> Local:
    """Who holds each of these keys now: one indexed query per 500 keys."""
    local = Local()
    wanted = sorted(keys)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(I.id_type, I.value, I.person_id, I.quarantined).where(
                I.workspace_id == workspace_id, key_filter(chunk)
            )
        )
        for t, v, person, quarantined in rows:
            if (t, v) in keys:
                local.set((t, v), person, bool(quarantined))
    return local


def _learn(session: Session, item: Item, local: Local, outcome: Outcome) -> None:
    """What a slow resolve changed, so that the batch's later events can take the fast path."""
    if outcome.person is None:
        return
    for absorbed in outcome.merged:
        local.merged(outcome.person, absorbed)
    refused = {r.via for r in outcome.refused}
    for key in refused:  # it may have been quarantined just now: ask again next time
        local.forget(key)
    erased = service.erased_among(session, item.workspace_id, item.keys)
    for key in item.keys:
        known = local.owner.get(key)
        if key in refused or key in erased or (known is not None and known[1]):
            continue
        local.set(key, outcome.person)


def _root(parent: dict[int, int], person: int | None) -> int | None:
    while person is not None and person in parent:
        person = parent[person]
    return person


def _unique(items: list[Item]) -> list[Item]:
    """One row per (workspace, kind, id): a message id sent twice long apart is stored twice."""
    seen: set[tuple[int, str, str]] = set()
    out = []
    for item in items:
        ident = (item.workspace_id, item.kind, item.event_id)
        if ident not in seen:
            seen.add(ident)
            out.append(item)
    return out


def _assignments(rows: list[dict[str, Any]], owners: Sequence[int | None]) -> pa.Table:
    return pa.table(
        {
            "kind": pa.array([r["kind"] for r in rows], pa.string()),
            "event_id": pa.array([r["event_id"] for r in rows], pa.string()),
            "super_id": pa.array(list(owners), pa.int64()),
        }
    )


def _ref(event_id: str) -> str | None:
    try:
        return check_ref(event_id, "event_ref")
    except Exception:
        return None


def _who(item: Item) -> tuple[str, str, int]:
    return item.kind, item.event_id, item.workspace_id


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""
