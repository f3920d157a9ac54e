"""Click enrichment in a child process, so that it never holds the serving process's GIL.

Enrichment (user-agent parsing, offline geo lookup, IP privacy, referrer and UTM parsing) is
Python work. In the writer thread of the serving process it competes for the GIL with the
redirect's event loop: measured under wrk, the writer held the GIL for ~14 µs per click with the
benchmark's few repeated IPs, and a distinct IP per visitor — real traffic — costs ~45 µs per
click (geo + privacy), more than the whole redirect. Here the writer thread only marshals the raw
batch (~0.35 µs a click, in chunks, C code) and blocks on a pipe, which releases the GIL; the child
enriches and returns an Arrow IPC stream, which the parent reads without copying and appends to DuckDB (the
only writer of the store stays the serving process).

The child is `python -m siyu.clicks.enricher`, speaking length-prefixed frames over its stdin and
stdout. If it is missing, dies or stalls, the batch is enriched in-process instead (slower, but no
click is lost) and the child is restarted for the next batch.
"""

from __future__ import annotations

import logging
import marshal
import os
import pickle
import select
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import BinaryIO

import pyarrow as pa

from siyu.clicks.enrich import PrivacyLookup, enrich
from siyu.clicks.record import RawClick

log = logging.getLogger("siyu.clicks")
_HEADER = struct.Struct("!Q")
REPLY_TIMEOUT = 60.0  # seconds for one batch; a first batch also pays the child's cold caches
CHUNK_ROWS = 2_000  # raw clicks per marshal call (~0.7 ms of the parent's GIL each)
RESTART_BACKOFF = 5.0  # seconds without retrying a child that failed to start or crashed


class EnricherUnavailable(RuntimeError):
    """The child could not enrich this batch; the caller enriches in-process."""


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: BinaryIO) -> bytes:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return _read_exact(stream, size)


class EnricherProcess:
    """The parent's handle on the child: `enrich(batch, privacy)` or EnricherUnavailable."""

    def __init__(self, timeout: float = REPLY_TIMEOUT):
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._failed_at = 0.0
        self.batches = 0  # enriched by the child (for tests and /healthz-style introspection)

    def _ensure(self) -> subprocess.Popen:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        if proc is not None:
            log.warning("click enricher exited with %s; restarting", proc.returncode)
            self._proc = None
        if time.monotonic() - self._failed_at < RESTART_BACKOFF:
            raise EnricherUnavailable("enricher restarting")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "siyu.clicks.enricher"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            self._failed_at = time.monotonic()
            raise EnricherUnavailable(f"cannot start enricher: {exc}") from exc
        return self._proc

    def enrich(self, batch: Sequence[RawClick], privacy: PrivacyLookup) -> pa.Table:
        proc = self._ensure()
        workspaces = {click[2] for click in batch}  # RawClick.workspace_id
        chunks = range(0, len(batch), CHUNK_ROWS)
        header = pickle.dumps((len(chunks), {ws: privacy(ws) for ws in workspaces}), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            _write_frame(proc.stdin, header)
            for start in chunks:
                _write_frame(proc.stdin, _encode_rows(batch[start : start + CHUNK_ROWS]))
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"no reply within {self.timeout:.0f} s")
            reply = _read_frame(proc.stdout)
        except (OSError, EOFError, TimeoutError, struct.error) as exc:
            self._kill(f"enricher failed: {exc}")
            raise EnricherUnavailable(str(exc)) from exc
        if reply[:1] != b"T":
            self._kill("enricher error: " + reply[1:].decode("utf-8", "replace")[:500])
            raise EnricherUnavailable("enricher reported an error")
        self.batches += 1
        return pa.ipc.open_stream(pa.py_buffer(reply)[1:]).read_all()

    def _kill(self, why: str) -> None:
        log.error("%s; enriching in-process until it restarts", why)
        self._failed_at = time.monotonic()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()  # EOF: the child's loop ends
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)


def _encode_rows(rows: Sequence[RawClick]) -> bytes:
    """One chunk of raw clicks for the pipe. marshal, in chunks of CHUNK_ROWS: each call holds the
    parent's GIL, and one pickle of a whole backlog (~100 k clicks) stalled the event loop for
    50-65 ms; marshal is ~2x faster than pickle on these tuples of atoms and keeps them tuples."""
    try:
        return marshal.dumps(list(rows))
    except ValueError:  # RawClick instances (demo data, tests): marshal takes exact tuples only
        return marshal.dumps([tuple(row) for row in rows])


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The child's loop: a pickled (chunk count, privacy by workspace) and that many marshalled
    chunks of rows in; 'T' + Arrow IPC stream (or 'E' + error) out."""
    from siyu.geo import default_lookup

    default_lookup().warm()
    while True:
        try:
            header = _read_frame(stdin)
            count, privacy = pickle.loads(header)
            chunks = [_read_frame(stdin) for _ in range(count)]  # all of them: stay in step with the parent
        except EOFError:
            return
        try:
            rows: list = []
            for chunk in chunks:
                rows.extend(marshal.loads(chunk))
            table = enrich(rows, privacy.__getitem__)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            _write_frame(stdout, b"T" + sink.getvalue().to_pybytes())
        except Exception as exc:  # report, stay alive: the parent falls back for this batch
            _write_frame(stdout, b"E" + repr(exc).encode("utf-8", "replace"))


if __name__ == "__main__":
    # Frames go to a private copy of stdout; anything a library prints lands on stderr instead.
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, frames)
