"""The in-process click queue and its writer thread.

The redirect calls `ClickQueue.put` (a deque append: no lock, no I/O). A daemon thread wakes every
`flush_seconds`, takes everything queued, has it enriched (in the child process of
`siyu.clicks.enricher` under `siyu serve`, else in this thread) and bulk-appends one Arrow table to
the event store. `stop()` drains the queue, so a graceful shutdown loses no click; on a hard kill
(SIGKILL, power loss) the clicks of the last flush interval that were still queued are lost.
The queue/thread/spill mechanism is the generic `siyu.events.queue.BatchQueue`, shared with the
tracking API's events.

The writer shares the serving process (and its GIL) with the redirect's event loop, so it is built
to stay out of the loop's way: enrichment leaves the process when it can and is columnar either way
(see `siyu.clicks.enrich`), and on first start the interpreter is tuned for that sharing (see
`prepare_serving_process`).
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pyarrow as pa

from siyu.clicks.enrich import PrivacyLookup, enrich
from siyu.clicks.enricher import EnricherProcess, EnricherUnavailable
from siyu.clicks.record import RawClick
from siyu.events.queue import BatchQueue
from siyu.events.store import EventStore
from siyu.geo import default_lookup

log = logging.getLogger("siyu.clicks")
BatchListener = Callable[[pa.Table], None]
GIL_SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005
_prepared = False


def prepare_serving_process() -> None:
    """Once per process, when the click writer starts (in the server: after the app is built,
    before traffic), tune the interpreter for a GIL shared by the event loop and the writer.

    * Freeze the startup heap out of the cyclic GC (after loading the geo tables, and one
      collection). Queued clicks and batch temporaries reach the oldest generation at a steady
      pace, so under load a full collection came every few seconds, and each traversed the whole
      startup heap (modules, FastAPI/SQLAlchemy, geo tables: ~120k objects, 65-180 ms measured)
      holding the GIL: a stall for every request in flight, which alone set the p99 latency.
      Frozen objects are never collected; they are the long-lived state of the process anyway.
    * Hand the GIL over after 1 ms instead of 5 ms: while the writer enriches a batch, the event
      loop and granian's threads (which need the GIL to start each request) otherwise wait up to
      5 ms per turn. Measured: +15-30 % redirects/s under load, lower p99.
    """
    global _prepared
    if _prepared:
        return
    _prepared = True
    default_lookup().warm()
    gc.collect()
    gc.freeze()
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)


class ClickQueue(BatchQueue[RawClick]):
    """Clicks from the redirect: enriched in whole batches by the writer thread, then appended."""

    kind = "clicks"

    def __init__(
        self,
        store: EventStore,
        privacy: PrivacyLookup,
        flush_seconds: float = 0.5,
        max_batch: int = 50_000,
        spill_path: Path | None = None,
        enricher: str = "thread",
    ):
        super().__init__(flush_seconds=flush_seconds, max_batch=max_batch, spill_path=spill_path)
        self._store = store
        self._privacy = privacy
        self.listeners: list[BatchListener] = []
        # "process": enrich in a child process (siyu.clicks.enricher), keeping the GIL for the
        # redirect; "thread": in this writer thread (tests, CLI, one-off tools).
        self.enricher = EnricherProcess() if enricher == "process" else None

    def start(self) -> None:
        prepare_serving_process()
        super().start()

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        if self.enricher is not None:
            self.enricher.stop()

    def _enrich(self, batch: Sequence[RawClick]) -> pa.Table:
        if self.enricher is not None:
            try:
                return self.enricher.enrich(batch, self._privacy)
            except EnricherUnavailable:
                pass  # logged by the enricher; this batch is enriched here instead
        return enrich(batch, self._privacy)

    def write_batch(self, batch: Sequence[RawClick]) -> int:
        table = self._enrich(batch)
        self._store.append_clicks(table)
        for listener in self.listeners:
            try:
                listener(table)
            except Exception:
                log.exception("click listener failed")
        return table.num_rows

    def encode(self, item: RawClick) -> bytes:
        return orjson.dumps(dict(zip(RawClick._fields, item, strict=True)))

    def decode(self, line: bytes) -> RawClick:
        return tuple(RawClick(**orjson.loads(line)))  # type: ignore[return-value]  # plain, like the redirect's
