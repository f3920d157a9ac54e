"""De-duplication on `messageId`, per workspace, for at least 24 hours (Segment's promise).

SDKs retry a batch whose response they did not see, so the same message can arrive twice; the
messageId (a UUID the SDK sets) says so. Design:

* In memory, on the event loop: a check is one hash and a few set look-ups, no I/O, so it can run
  inline in the request for every message (≈0.5 µs).
* Time buckets: ids are kept in sets of `window / buckets` (6 h) each; a message is a duplicate if
  any of the last `buckets + 1` sets has it, so an id is remembered for 24 to 30 hours, and expiry
  is dropping a whole set.
* 64-bit keys: `hash((workspace_id, messageId))`, not the text, to bound memory (about 60 bytes an
  id). The chance that two different ids collide among 2 million is about 1 in 10 million.
* Survives restarts without a second store: the `events` table already holds every accepted
  message's workspace, messageId and receivedAt, so `warm()` reloads the last window from it at
  startup (about 1 s per million ids). Messages still queued when a process is killed hard were
  never stored and are forgotten with it, which is right: a retry of them should be accepted.
* Bounded: past `max_ids` the oldest bucket is dropped early (the window shrinks, logged), so a
  flood cannot exhaust memory; 2 million ids ≈ 120 MB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

log = logging.getLogger("siyu.events")
DAY_SECONDS = 24 * 3600


class MessageIdFilter:
    def __init__(
        self,
        window_seconds: float = DAY_SECONDS,
        buckets: int = 4,
        max_ids: int = 2_000_000,
        clock: Callable[[], float] = time.time,
    ):
        self.window = window_seconds
        self.span = window_seconds / buckets
        self.keep = buckets + 1
        self.max_ids = max_ids
        self.clock = clock
        self._buckets: dict[int, set[int]] = {}
        self._active: list[set[int]] = []  # newest first: what a check looks in
        self._current_index = -1
        self._current: set[int] = set()
        self._size = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return self._size

    def _bucket_for(self, index: int) -> set[int]:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = set()
            self._expire(index)
        return bucket

    def _expire(self, newest: int) -> None:
        for index in [i for i in self._buckets if i <= newest - self.keep]:
            self._size -= len(self._buckets.pop(index))
        self._refresh()

    def _refresh(self) -> None:
        order = sorted(self._buckets, reverse=True)
        self._active = [self._buckets[i] for i in order]
        self._current_index = order[0] if order else -1
        self._current = self._buckets[order[0]] if order else set()

    def _trim(self) -> None:
        while self._size > self.max_ids and len(self._buckets) > 1:
            oldest = min(self._buckets)
            self._size -= len(self._buckets.pop(oldest))
            log.warning(
                "message-id de-duplication: over %d ids, forgetting ids older than %s",
                self.max_ids,
                datetime.fromtimestamp((oldest + 1) * self.span, UTC).isoformat(),
            )
            self._refresh()

    def seen(self, workspace_id: int, message_id: str, now: float | None = None) -> bool:
        """True if this id was seen in the window (a duplicate); else remember it and return False."""
        key = hash((workspace_id, message_id))
        for bucket in self._active:
            if key in bucket:
                self.duplicates += 1
                return True
        index = int((self.clock() if now is None else now) // self.span)
        bucket = self._current if index == self._current_index else self._bucket_for(index)
        bucket.add(key)
        self._size += 1
        if self._size > self.max_ids:
            self._trim()
        return False

    def all_new(self, workspace_id: int, message_ids: Sequence[str], now: float | None = None) -> bool:
        """`seen()` for a whole batch, when none of its ids was seen: remember them all and return True.

        Otherwise remember nothing and return False, and the caller asks `seen()` id by id (in order:
        a batch may repeat an id of its own). Set operations in C instead of a Python call an id: the
        common case, a batch of new messages, costs ~0.1 µs an id instead of ~0.35."""
        keys = {hash((workspace_id, message_id)) for message_id in message_ids}
        if len(keys) != len(message_ids) or not all(keys.isdisjoint(bucket) for bucket in self._active):
            return False
        index = int((self.clock() if now is None else now) // self.span)
        bucket = self._current if index == self._current_index else self._bucket_for(index)
        bucket.update(keys)
        self._size += len(keys)
        if self._size > self.max_ids:
            self._trim()
        return True

    def warm(self, rows: Iterable[tuple[int, str, datetime]]) -> int:
        """Remember stored (workspace_id, message_id, received_at) rows; returns how many."""
        count = 0
        now_index = int(self.clock() // self.span)
        for workspace_id, message_id, received_at in rows:
            if received_at.tzinfo is None:  # the store keeps naive UTC
                received_at = received_at.replace(tzinfo=UTC)
            index = min(int(received_at.timestamp() // self.span), now_index)
            if index <= now_index - self.keep:
                continue
            bucket = self._buckets.get(index)
            if bucket is None:
                bucket = self._buckets[index] = set()
            before = len(bucket)
            bucket.add(hash((workspace_id, message_id)))
            self._size += len(bucket) - before
            count += 1
        self._expire(now_index)
        self._trim()
        return count
