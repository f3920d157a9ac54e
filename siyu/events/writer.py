"""The tracked-event queue: what the ingester settled, appended by the writer thread as Arrow.

One queue item per request (an `EventChunk`): the request's constants once (workspace, source,
receivedAt, batch context) and one list per column for its events. Per request rather than per
event, because every per-event Python object costs GIL time twice, once built on the event loop and
once taken apart by the writer: the writer used to spend ~0.75 µs an event zipping rows into
columns and converting the constants row by row.

The writer applies the workspace's IP privacy mode (as clicks do) and appends one table per batch
of chunks. `len(queue)` counts events, not chunks: it is what the tracking API's 429 threshold reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from siyu.events.queue import BatchQueue
from siyu.events.store import EVENT_INPUT_SCHEMA, EventStore
from siyu.geo.privacy import store_ip

PrivacyLookup = Callable[[int], tuple[str, bytes]]  # workspace id -> (ip_mode, salt)


class EventChunk(NamedTuple):
    """The events one request queued. The sequences are columns of EVENT_INPUT_SCHEMA, one entry an
    event; `raws` are the messages as JSON text, `ips` before the privacy mode applies."""

    workspace_id: int
    source_id: int
    received_us: int
    batch_context: str | None
    message_ids: Sequence[str]
    types: Sequence[str]
    timestamps: Sequence[int]
    original_timestamps: Sequence[int | None]
    sent_ats: Sequence[int | None]
    ips: Sequence[str | None]
    raws: Sequence[str]


_CONSTANTS = ("workspace_id", "source_id", "received_at", "batch_context")  # one value a chunk
_COLUMNS = ("message_id", "type", "timestamp", "original_timestamp", "sent_at", "ip", "raw")  # one an event
_FIELD = {f.name: f for f in EVENT_INPUT_SCHEMA}


class EventQueue(BatchQueue[EventChunk]):
    kind = "events"

    def __init__(self, store: EventStore, privacy: PrivacyLookup, max_batch: int = 500, **kwargs):
        # max_batch counts chunks (requests): 500 of SDK batches is ~50,000 events an append.
        super().__init__(max_batch=max_batch, **kwargs)
        self._store = store
        self._privacy = privacy
        self._events = 0  # queued, not yet written
        self._count_lock = threading.Lock()

    # -- producer side ------------------------------------------------------------------------
    def put(self, item: EventChunk) -> None:
        self._count(len(item.message_ids))
        super().put(item)

    def put_many(self, items: Iterable[EventChunk]) -> None:
        items = list(items)
        self._count(sum(len(item.message_ids) for item in items))
        super().put_many(items)

    def __len__(self) -> int:
        """Events waiting to be written (not chunks)."""
        return self._events

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self._events += delta

    # -- writer thread ------------------------------------------------------------------------
    def write_batch(self, batch: Sequence[EventChunk]) -> int:
        table = events_table(batch, self._privacy)
        self._store.append_events(table)
        self._count(-table.num_rows)
        return table.num_rows

    # -- spill file (the queue's hooks: encode when spilling at shutdown, decode when recovering) ----
    # One line an event, as earlier versions wrote it: a spill file survives an upgrade or a downgrade.
    def encode(self, item: EventChunk) -> bytes:
        self._count(-len(item.message_ids))  # leaves the queue for the file
        workspace_id, source_id, received_us, batch_context = item[:4]
        return b"\n".join(
            orjson.dumps((mid, workspace_id, source_id, type_, ts, original, sent, received_us, ip, batch_context, raw))
            for mid, type_, ts, original, sent, ip, raw in zip(*item[4:], strict=True)
        )

    def decode(self, line: bytes) -> EventChunk:
        mid, workspace_id, source_id, type_, ts, original, sent, received_us, ip, context, raw = orjson.loads(line)
        self._count(1)  # back in the queue
        return EventChunk(
            workspace_id, source_id, received_us, context, [mid], [type_], [ts], [original], [sent], [ip], [raw]
        )


def events_table(chunks: Sequence[EventChunk], privacy: PrivacyLookup) -> pa.Table:
    """One EVENT_INPUT_SCHEMA table of the chunks' events, IPs as the workspaces' privacy modes keep them."""
    counts = [len(chunk.message_ids) for chunk in chunks]
    repeat = pa.array(np.repeat(np.arange(len(chunks)), counts))  # chunk index of each event
    columns: dict[str, Any] = {}
    for position, name in enumerate(_CONSTANTS):
        values = pa.array([chunk[position] for chunk in chunks], _FIELD[name].type)
        columns[name] = values.take(repeat)
    for position, name in enumerate(_COLUMNS, start=4):
        values = list(chain.from_iterable(chunk[position] for chunk in chunks))
        columns[name] = pa.array(values, _FIELD[name].type)
    modes = {workspace_id: privacy(workspace_id) for workspace_id in {chunk.workspace_id for chunk in chunks}}
    columns["ip"] = private_ips(columns["workspace_id"], columns["ip"], modes)
    return pa.Table.from_arrays([columns[f.name] for f in EVENT_INPUT_SCHEMA], schema=EVENT_INPUT_SCHEMA)


def private_ip(ip: str, mode: str, salt: bytes) -> str | None:
    """`siyu.geo.privacy.store_ip`, with a fast path for plain IPv4 in the full and truncated modes.

    `ipaddress` parsing costs ~10 µs an address, and event IPs are mostly distinct: profiled under
    load it was the largest single cost of the event writer. A canonical dotted quad (what
    `parse_ip` accepts, unchanged by it) is checked and truncated with string operations instead;
    anything else goes the exact way.
    """
    if mode in ("full", "truncated"):
        parts = ip.split(".")
        octet = _OCTET.get
        if len(parts) == 4 and octet(parts[0]) and octet(parts[1]) and octet(parts[2]) and octet(parts[3]):
            return ip if mode == "full" else f"{parts[0]}.{parts[1]}.{parts[2]}.0"
    return store_ip(ip, mode, salt)


_OCTET = {str(n): True for n in range(256)}  # canonical octets only: no sign, blank or leading zero
_OCTET_RE = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = f"^{_OCTET_RE}(?:\\.{_OCTET_RE}){{3}}$"  # what `private_ip`'s fast path takes (RE2: no \n at $)
_FAST_MODES = ("full", "truncated")


def private_ips(workspaces: pa.Array, ips: pa.Array, modes: Mapping[int, tuple[str, bytes]]) -> pa.Array:
    """`private_ip` of every (workspace, ip) pair, as Arrow compute where it can: plain IPv4 under the full
    and truncated modes is matched and truncated by vectorised regexes (no GIL, ~0.2 µs an address,
    against ~1.2 µs in a Python loop); everything else (IPv6, odd text, hashed, none) goes through
    `private_ip` one by one, memoised per batch."""
    if ips.null_count == len(ips):
        return ips
    truncating = [w for w, (mode, _) in modes.items() if mode == "truncated"]
    fast_workspaces = [w for w, (mode, _) in modes.items() if mode in _FAST_MODES]
    fast = ips
    if truncating:
        truncated = pc.replace_substring_regex(ips, r"\.[0-9]+$", ".0")
        fast = (
            truncated
            if len(truncating) == len(modes)
            else pc.if_else(pc.is_in(workspaces, pa.array(truncating, workspaces.type)), truncated, ips)
        )
    slow = pc.invert(pc.match_substring_regex(ips, _CANONICAL_IPV4))
    if len(fast_workspaces) < len(modes):
        slow = pc.or_(slow, pc.invert(pc.is_in(workspaces, pa.array(fast_workspaces, workspaces.type))))
    slow = pc.fill_null(pc.and_(slow, pc.is_valid(ips)), False)
    if not pc.any(slow).as_py():
        return fast
    memo: dict[tuple[int, str], str | None] = {}
    values: list[str | None] = []
    for workspace_id, ip in zip(workspaces.filter(slow).to_pylist(), ips.filter(slow).to_pylist(), strict=True):
        key = (workspace_id, ip)
        stored = memo.get(key, key)
        if stored is key:
            stored = memo[key] = private_ip(ip, *modes[workspace_id])
        values.append(stored)  # type: ignore[arg-type]
    return pc.replace_with_mask(fast, slow, pa.array(values, pa.string()))
