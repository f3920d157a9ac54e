"""Click enrichment in a child process (`siyu serve`'s default): same result as in-process, and no
click is lost when the child is missing, crashes or answers garbage."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from siyu.clicks.enrich import enrich
from siyu.clicks.enricher import EnricherProcess, EnricherUnavailable
from siyu.clicks.record import RawClick
from siyu.clicks.writer import ClickQueue
from siyu.events.duckdb_store import DuckDBEventStore

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)


def privacy(workspace_id: int) -> tuple[str, bytes]:
    return {1: ("full", b"salt-1"), 2: ("hashed", b"salt-2")}[workspace_id]


def clicks(n: int) -> list[RawClick]:
    return [
        RawClick(
            ts=1_760_000_000.0 + i,
            link_id=7,
            workspace_id=1 + i % 2,
            hostname="s.example.cn",
            slug="coffee",
            visitor_id=f"visitor{i:08d}",
            new_visitor=i % 3 == 0,
            ip=f"202.96.134.{i % 250 + 1}",
            user_agent=WECHAT if i % 2 else CHROME,
            method="GET",
            referrer="https://www.baidu.com/s?wd=coffee" if i % 4 == 0 else "",
            trigger="qr" if i % 5 == 0 else "link",
            outcome="redirected",
            query="utm_source=poster&utm_campaign=autumn" if i % 2 else "",
            destination="https://example.com/coffee",
            variant=None,
            platform="wechat" if i % 2 else "browser",
            person_ref="M-1001" if i == 3 else None,
        )
        for i in range(n)
    ]


def without_random_ids(table: pa.Table) -> pa.Table:
    return table.drop_columns(["click_id"])


def test_the_child_enriches_exactly_like_the_writer_thread():
    batch = clicks(400)
    child = EnricherProcess()
    try:
        from_child = child.enrich(batch, privacy)
    finally:
        child.stop()
    in_process = enrich(batch, privacy)
    assert from_child.schema == in_process.schema
    assert without_random_ids(from_child).equals(without_random_ids(in_process))
    assert child.batches == 1
    row = from_child.slice(1, 1).to_pylist()[0]
    assert (row["platform"], row["os"], row["utm_campaign"]) == ("wechat", "iOS", "autumn")
    assert row["ip"] != "202.96.134.2"  # workspace 2 keeps hashed IPs: the privacy map crossed over


def test_a_crashed_child_costs_no_click(tmp_path):
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    queue = ClickQueue(store, privacy, flush_seconds=60, enricher="process")
    try:
        queue.put_many(clicks(50))
        assert queue.flush() == 50
        assert queue.enricher.batches == 1
        queue.enricher._proc.kill()  # the child dies between batches
        queue.enricher._proc.wait()
        queue.put_many(clicks(30))
        assert queue.flush() == 30  # enriched in-process this time
        count = store._con.execute("SELECT count(*), count(DISTINCT click_id) FROM clicks").fetchone()
        assert count == (80, 80)
    finally:
        queue.stop()
        store.close()


def test_a_child_that_answers_garbage_is_replaced(monkeypatch):
    child = EnricherProcess(timeout=30)
    try:
        child.enrich(clicks(5), privacy)  # started and healthy
        monkeypatch.setattr(child, "_ensure", lambda: _GarbageProc())
        with pytest.raises(EnricherUnavailable):
            child.enrich(clicks(5), privacy)
    finally:
        child.stop()


def test_a_child_that_cannot_start_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr("siyu.clicks.enricher.sys.executable", str(tmp_path / "no-such-python"))
    child = EnricherProcess()
    with pytest.raises(EnricherUnavailable, match="cannot start"):
        child.enrich(clicks(1), privacy)
    start = time.monotonic()
    with pytest.raises(EnricherUnavailable, match="restarting"):  # no respawn storm: back off first
        child.enrich(clicks(1), privacy)
    assert time.monotonic() - start < 1


class _GarbageProc:
    """Stands in for a child whose replies are not frames of ours (e.g. a library printed to stdout)."""

    def __init__(self) -> None:
        import io
        import os

        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"\x00\x00\x00\x00\x00\x00\x00\x05hello")
        os.close(write_fd)
        self.stdout = open(read_fd, "rb")  # noqa: SIM115
        self.stdin = io.BytesIO()

    def poll(self) -> None:
        return None

    def kill(self) -> None:
        self.stdout.close()

    def wait(self, timeout: float | None = None) -> int:
        return 0
