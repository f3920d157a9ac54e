"""The in-process click queue and its writer thread.

The redirect calls `ClickQueue.put` (a deque append: no lock, no I/O). A daemon thread wakes every
`flush_seconds`, takes everything queued, enriches it and bulk-appends one Arrow table to the
event store. `stop()` drains the queue, so a graceful shutdown loses no click; on a hard kill
(SIGKILL, power loss) the clicks of the last flush interval that were still queued are lost.

The writer shares the serving process (and its GIL) with the redirect's event loop, so it is built
to stay out of the loop's way: enrichment is columnar (see `siyu.clicks.enrich`), and on first start
the startup heap is frozen out of the cyclic GC (see `freeze_startup_heap`).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from siyu.clicks.enrich import PrivacyLookup, enrich
from siyu.clicks.record import RawClick
from siyu.events.store import EventStore
from siyu.geo import default_lookup

log = logging.getLogger("siyu.clicks")
BatchListener = Callable[[pa.Table], None]
_heap_frozen = False


def freeze_startup_heap() -> None:
    """Load the geo tables, collect once, then move every live object out of the GC's reach.

    Queued clicks and batch temporaries are promoted to the oldest GC generation at a steady pace,
    so full collections come every few seconds under load, and each traversed the whole startup
    heap (modules, FastAPI/SQLAlchemy, geo tables: ~120k objects, 65-140 ms measured) while
    holding the GIL: a stall for every request in flight, which alone set the p99 latency. Frozen
    objects are never collected by the cyclic GC; they are the long-lived state of the process
    anyway. Once per process; geo data is loaded first so its big tables are frozen too.
    """
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    default_lookup().warm()
    gc.collect()
    gc.freeze()


class ClickQueue:
    def __init__(
        self,
        store: EventStore,
        privacy: PrivacyLookup,
        flush_seconds: float = 0.5,
        max_batch: int = 50_000,
        spill_path: Path | None = None,
    ):
        self._store = store
        self._privacy = privacy
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self.spill_path = spill_path
        self._items: deque[RawClick] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.listeners: list[BatchListener] = []
        self.written = 0
        self.failed_batches = 0

    def put(self, click: RawClick) -> None:
        self._items.append(click)

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        self._recover_spill()
        freeze_startup_heap()  # here: in the serving process, after the app is built, before traffic
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="siyu-click-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self._flush(until_empty=False)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns how many clicks were written."""
        return self._flush(until_empty=True)

    def _flush(self, until_empty: bool) -> int:
        """Write the queued clicks in batches of at most `max_batch`.

        The periodic flush takes only what was queued when it started: chasing the clicks that
        arrive meanwhile kept the writer in a loop of back-to-back ~500-row batches under load,
        paying the per-batch costs (Arrow building, DuckDB commit) ten times as often and competing
        with the event loop without pause. `flush()` and the final flush at shutdown still write
        until the queue is empty.
        """
        with self._flush_lock:
            total = 0
            remaining = len(self._items)
            while self._items and (until_empty or remaining > 0):
                batch: list[RawClick] = []
                popleft = self._items.popleft
                limit = self._max_batch if until_empty else min(self._max_batch, remaining)
                try:
                    while len(batch) < limit:
                        batch.append(popleft())
                except IndexError:
                    pass
                remaining -= len(batch)
                written = self._write(batch)
                if written < 0:  # the store refused: leave the rest queued for the next round
                    break
                total += written
            return total

    def _write(self, batch: Sequence[RawClick]) -> int:
        try:
            table = enrich(batch, self._privacy)
            self._store.append_clicks(table)
        except Exception:  # keep the clicks: put them back and try again next round
            log.exception("writing %d clicks failed; will retry", len(batch))
            self.failed_batches += 1
            self._items.extendleft(reversed(batch))
            return -1
        self.written += table.num_rows
        for listener in self.listeners:
            try:
                listener(table)
            except Exception:
                log.exception("click listener failed")
        return table.num_rows

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()
        if self._items and self.spill_path is not None:
            self._spill()

    def _recover_spill(self) -> None:
        """Queue clicks a previous run had to keep on disk, so they reach the store after all."""
        import orjson

        if self.spill_path is None or not self.spill_path.exists():
            return
        recovering = self.spill_path.with_suffix(".recovering")
        self.spill_path.replace(recovering)
        with recovering.open("rb") as fh:
            for line in fh:
                if line.strip():
                    self._items.append(RawClick(**orjson.loads(line)))
        recovering.unlink()
        log.warning("recovered %d clicks kept on disk by the previous run", len(self._items))

    def _spill(self) -> None:
        """The store still refuses at shutdown: keep the clicks on disk rather than lose them."""
        import orjson

        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spill_path.open("ab") as fh:
            while self._items:
                fh.write(orjson.dumps(self._items.popleft()._asdict()) + b"\n")
        log.error("event store unavailable at shutdown: clicks kept in %s", self.spill_path)
