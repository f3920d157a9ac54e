"""The generic batch queue behind the click and event writers (siyu.events.queue.BatchQueue)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from siyu.events.queue import BatchQueue


class Recorder(BatchQueue[int]):
    """Writes into a list; `arrivals` are queued during the first write (a burst still coming in)."""

    def __init__(self, arrivals: int = 0, fail: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.batches: list[list[int]] = []
        self.attempts = 0
        self.arrivals = arrivals
        self.fail = fail
        self.second_batch = threading.Event()

    def write_batch(self, batch: Sequence[int]) -> int:
        self.attempts += 1
        if self.fail:
            raise OSError("store unavailable")
        self.batches.append(list(batch))
        if self.arrivals:
            self.put_many(range(1000, 1000 + self.arrivals))
            self.arrivals = 0
        if len(self.batches) == 2:
            self.second_batch.set()
        return len(batch)


def test_a_writer_that_is_behind_writes_the_next_batch_without_resting():
    queue = Recorder(arrivals=50, flush_seconds=3600)  # rests an hour between batches otherwise
    queue.backlog = 50
    queue.put_many(range(10))
    queue.start()
    queue._wake.set()  # the first batch now, instead of in an hour
    try:
        assert queue.second_batch.wait(20), "the backlog waited for the next hour"
        assert queue.batches == [list(range(10)), list(range(1000, 1050))]
    finally:
        queue.stop()


def test_a_writer_below_the_backlog_rests_between_batches():
    queue = Recorder(arrivals=49, flush_seconds=3600)
    queue.backlog = 50
    queue.put_many(range(10))
    queue.start()
    queue._wake.set()
    try:
        assert not queue.second_batch.wait(0.5)  # 49 queued: fewer than the backlog, so it rests
        assert len(queue) == 49
    finally:
        queue.stop()
    assert queue.batches[-1] == list(range(1000, 1049))  # and stop() still writes them


def test_a_refusing_store_is_not_retried_in_a_busy_loop_however_long_the_backlog():
    queue = Recorder(fail=True, flush_seconds=3600)
    queue.backlog = 5
    queue.put_many(range(100))
    queue.start()
    queue._wake.set()
    time.sleep(0.5)
    try:
        assert queue.attempts == 1  # one failed attempt, then the usual rest
        assert len(queue) == 100  # nothing lost
    finally:
        queue.fail = False
        queue.stop()
    assert sum(len(b) for b in queue.batches) == 100
