"""A generic in-process batch queue with one writer thread: the only way anything reaches DuckDB.

DuckDB allows one writing process, and the server's single worker is it. Request handlers call
`put`/`put_many` (deque appends: no lock, no I/O); a daemon thread wakes every `flush_seconds`,
takes what is queued and hands it to `write_batch` in chunks of at most `max_batch`, which turns
it into one Arrow table and appends it. `stop()` drains the queue, so a graceful shutdown loses
nothing; if the store still refuses at shutdown, the items are kept in a JSON-lines spill file and
queued again by the next `start()`. On a hard kill (SIGKILL, power loss) the items of the last
flush interval are lost.

Subclasses say how to write a batch and how to (de)serialise one item for the spill file; clicks
(`siyu.clicks.writer.ClickQueue`) and tracked events (`siyu.events.writer.EventQueue`) share the
rest.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import orjson

from siyu.threads import start_thread

T = TypeVar("T")
log = logging.getLogger("siyu.events")


class BatchQueue(Generic[T]):
    """Queue plus writer thread; `write_batch` returns rows written and raises if the store refuses."""

    kind = "items"  # for log lines and the thread name
    # Queued items (as `len(self)` counts them) above which the writer does not wait `flush_seconds`
    # before its next batch. Measured with the tracking API at ~80,000 events/s: resting half a
    # second between appends let the queue pass the API's 429 threshold although the writer could
    # keep up; below this a rest keeps batches large (fewer per-batch costs on the serving GIL).
    backlog = 20_000

    def __init__(self, flush_seconds: float = 0.5, max_batch: int = 50_000, spill_path: Path | None = None):
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self.spill_path = spill_path
        self._items: deque[T] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.written = 0
        self.failed_batches = 0

    # -- what subclasses provide -------------------------------------------------------------
    def write_batch(self, batch: Sequence[T]) -> int:
        raise NotImplementedError

    def encode(self, item: T) -> bytes:
        return orjson.dumps(item)

    def decode(self, line: bytes) -> T:
        return orjson.loads(line)

    # -- producer side ------------------------------------------------------------------------
    def put(self, item: T) -> None:
        self._items.append(item)

    def put_many(self, items: Iterable[T]) -> None:
        self._items.extend(items)

    def __len__(self) -> int:
        return len(self._items)

    # -- writer thread ------------------------------------------------------------------------
    def start(self) -> None:
        self._recover_spill()
        self._stopping.clear()
        if self._thread is None:
            self._thread = start_thread(self._run, f"siyu-{self.kind}-writer")

    def _run(self) -> None:
        wrote = 0
        while not self._stopping.is_set():
            # Rest between batches, unless behind (a tracking burst) and the store is taking them.
            if wrote == 0 or len(self) < self.backlog:
                self._wake.wait(self._flush_seconds)
            self._wake.clear()
            wrote = self._flush(until_empty=False)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns how many rows were written."""
        return self._flush(until_empty=True)

    def _flush(self, until_empty: bool) -> int:
        """Write the queued items in batches of at most `max_batch`.

        The periodic flush takes only what was queued when it started: chasing the items that
        arrive meanwhile kept the writer in a loop of back-to-back small batches under load,
        paying the per-batch costs (Arrow building, DuckDB commit) many times as often and competing
        with the event loop without pause. `flush()` and the final flush at shutdown still write
        until the queue is empty.
        """
        with self._flush_lock:
            total = 0
            remaining = len(self._items)
            while self._items and (until_empty or remaining > 0):
                batch: list[T] = []
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

    def _write(self, batch: Sequence[T]) -> int:
        try:
            written = self.write_batch(batch)
        except Exception:  # keep the items: put them back and try again next round
            log.exception("writing %d %s failed; will retry", len(batch), self.kind)
            self.failed_batches += 1
            self._items.extendleft(reversed(batch))
            return -1
        self.written += written
        return written

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

    # -- spill file ---------------------------------------------------------------------------
    def _recover_spill(self) -> None:
        """Queue items a previous run had to keep on disk, so they reach the store after all."""
        if self.spill_path is None or not self.spill_path.exists():
            return
        recovering = self.spill_path.with_suffix(".recovering")
        self.spill_path.replace(recovering)
        count = 0
        with recovering.open("rb") as fh:
            for line in fh:
                if line.strip():
                    self._items.append(self.decode(line))
                    count += 1
        recovering.unlink()
        log.warning("recovered %d %s kept on disk by the previous run", count, self.kind)

    def _spill(self) -> None:
        """The store still refuses at shutdown: keep the items on disk rather than lose them."""
        assert self.spill_path is not None
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spill_path.open("ab") as fh:
            while self._items:
                fh.write(self.encode(self._items.popleft()) + b"\n")
        log.error("event store unavailable at shutdown: %s kept in %s", self.kind, self.spill_path)
