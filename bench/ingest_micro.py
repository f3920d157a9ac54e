"""CPU µs per event of each stage of POST /v1/batch, in process (no server, no load generator).

    .venv/bin/python bench/ingest_micro.py                 # batches of 100, 200 batches, best of 5
    .venv/bin/python bench/ingest_micro.py --batches 500 --repeat 7

The bodies have the shape `ingest_batch.lua` sends (analytics-python batches: 80 % track, 10 %
identify, 10 % page, each with a context, properties or traits, a timestamp and a batch sentAt,
unique messageIds). Stages, each timed with `time.process_time` (CPU of the whole process, so
DuckDB's own threads count too), best of `--repeat`:

* slow: `orjson.loads` of the request bodies, then `Ingestor.ingest_batch` (validation,
  de-duplication, queueing): the path of any body the fast path is not sure of;
* fast: `prepare_batch` on the bodies (decoding and validation), then `Ingestor.ingest_prepared`
  (de-duplication, queueing): what POST /v1/batch spends on the event loop per event besides HTTP;
* write: the writer thread's `EventQueue.flush()` of what was queued into a fresh DuckDB store
  (Arrow building, IP privacy, the insert);
* write-py: the same flush with the store's insert left out: the writer's share of the GIL.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import orjson

from siyu.events.dedupe import MessageIdFilter
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.ingest import Ingestor, Sender, prepare_batch
from siyu.events.writer import EventQueue

EVENTS = ("Order Completed", "Product Viewed", "Coupon Redeemed", "Added to Cart", "Member Joined")
CITIES = ("Shanghai", "Hangzhou", "Shenzhen", "Chengdu", "Beijing")


def message(thread: int, n: int) -> str:
    user = n % 5000
    common = (
        f'"messageId":"b{thread}-{n}","anonymousId":"anon-{user}","userId":"user-{user}",'
        f'"timestamp":"2026-11-22T08:00:00.{n % 1000:03d}+00:00",'
        '"context":{"library":{"name":"analytics-python","version":"2.4.0"},'
        f'"ip":"10.{n % 200}.{n % 250}.{n % 199}",'
        '"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0.50"},'
        '"integrations":{}'
    )
    kind = n % 10
    if kind == 0:
        return f'{{"type":"identify",{common},"traits":{{"city":"{CITIES[n % 5]}","level":{n % 7}}}}}'
    if kind == 1:
        return (
            f'{{"type":"page",{common},"name":"Product",'
            f'"properties":{{"url":"https://shop.example.com/p/{n % 300}","path":"/p/{n % 300}"}}}}'
        )
    return (
        f'{{"type":"track",{common},"event":"{EVENTS[n % 5]}",'
        f'"properties":{{"revenue":{n % 500}.5,"currency":"CNY","sku":"SKU-{n % 800}"}}}}'
    )


def bodies(count: int, size: int, thread: int = 1) -> list[bytes]:
    out = []
    n = 0
    for _ in range(count):
        parts = []
        for _ in range(size):
            n += 1
            parts.append(message(thread, n))
        out.append(('{"batch":[' + ",".join(parts) + '],"sentAt":"2026-11-22T08:00:01.000+00:00"}').encode())
    return out


def _privacy(workspace_id: int) -> tuple[str, bytes]:
    return ("truncated", b"salt")


def one_round(data: list[bytes], events: int, tmp: Path, round_: int, fast: bool) -> dict[str, float]:
    store = DuckDBEventStore(tmp / f"events-{round_}-{fast}.duckdb")
    queue = EventQueue(store, _privacy, max_batch=50_000)
    ingestor = Ingestor(queue, MessageIdFilter())
    sender = Sender(1, 1)
    gc.collect()
    t0 = time.process_time()
    if fast:
        for body in data:
            prepared = prepare_batch(body)
            assert prepared is not None
            ingestor.ingest_prepared(sender, prepared, 1_795_000_000.0, "127.0.0.1")
    else:
        for body in data:
            ingestor.ingest_batch(sender, orjson.loads(body), 1_795_000_000.0, "127.0.0.1")
    t1 = time.process_time()
    stages = {"fast" if fast else "slow": t1 - t0}
    if fast:  # the writer's Python alone: the same rows into a store that does nothing
        items = list(queue._items)
        append, store.append_events = store.append_events, lambda table: None
        t2 = time.process_time()
        queue.flush()
        stages["write-py"] = time.process_time() - t2
        store.append_events = append
        queue.put_many(items)
    t2 = time.process_time()
    written = queue.flush()
    stages["write"] = time.process_time() - t2
    assert written == events, (written, events)
    store.close()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = bodies(args.batches, args.batch)
    events = args.batches * args.batch
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="siyu-ingest-micro-") as tmp:
        for r in range(args.repeat):
            for fast in (False, True):
                for stage, seconds in one_round(data, events, Path(tmp), r, fast).items():
                    best[stage] = min(best.get(stage, seconds), seconds)
    per = {stage: seconds / events * 1e6 for stage, seconds in best.items()}
    print(
        f"{events:,} events, batches of {args.batch}, best of {args.repeat} (CPU µs/event): "
        + ", ".join(f"{stage} {us:.2f}" for stage, us in per.items())
    )


if __name__ == "__main__":
    main()
