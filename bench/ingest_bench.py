"""Events/s through POST /v1/batch into the embedded store, with the load generator on the same machine.

    .venv/bin/python bench/ingest_bench.py                       # 3 runs × 15 s, batches of 100
    .venv/bin/python bench/ingest_bench.py --runs 1 --seconds 10 --write-docs

Per run, in a fresh temp data dir: `siyu init --no-demo`, `siyu sources create bench --kind server`,
then the real `siyu serve` (Granian, one worker). wrk (Debian package) posts analytics-python-shaped
batches with Basic auth and unique messageIds (`ingest_batch.lua`), for a bounded time, on
loopback only. For the last `--drain` seconds it sends only OPTIONS preflights, so no batch is in
flight when it stops. Then SIGINT: the worker's lifespan drains the event queue into DuckDB. The
`events` table is opened read-only after the server exited and must hold exactly the events of
the batches answered 200.

Two rates are reported: *accepted* (events answered 200 per second of sending) and *stored*
(events in the store per second of sending plus the time the server took to drain its queue and
exit), which is the honest end-to-end figure when the writer lags behind the API. Its stop time also
holds everything else the server does on the way out (the One ID stitcher's final catch-up, up to
2 s, and the other workers). When `/healthz` reports `queued_events`, a third rate is given:
*written*, events per second of sending plus the time from the end of sending until the event queue
was empty (polled every 20 ms through the drain phase and after): the rate at which events reached
the store, shutdown aside. The issue's target (events/s into the store) is judged on it.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from redirect_bench import (  # noqa: E402
    _cpu_seconds,
    _env,
    _free_port,
    _get,
    _siyu_cmd,
    _start_profiler,
    _stop,
    _wait_healthy,
    profile_summary,
)

LUA = BENCH_DIR / "ingest_batch.lua"
DOCS = BENCH_DIR.parent / "docs" / "benchmarks.md"
TARGET_EVENTS_PER_S = 50_000


@dataclass
class Run:
    index: int
    seconds: float  # sending phase (duration - drain)
    batches: int
    shed: int
    errors: int
    expected: int
    stored: int
    stop_seconds: float
    server_cpu: float
    wrk_cpu: float
    p50_ms: float
    p99_ms: float
    loadavg_before: float
    written_wait: float | None = None  # from the end of sending until the server's event queue was empty
    drain: float = 0.0  # the drain phase: OPTIONS only, after sending

    @property
    def written_per_s(self) -> float | None:
        if self.written_wait is None:
            return None
        return self.stored / (self.seconds + self.written_wait)

    @property
    def accepted_per_s(self) -> float:
        return self.expected / self.seconds

    @property
    def stored_per_s(self) -> float:
        return self.stored / (self.seconds + self.stop_seconds)

    @property
    def exact(self) -> bool:
        return self.stored == self.expected and self.errors == 0


def _siyu(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*_siyu_cmd(), *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"siyu {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _latency_ms(out: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    return float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]] if m else float("nan")


def _queued_events(port: int) -> int | None:
    try:
        return json.loads(_get(port, "/healthz")[1]).get("queued_events")
    except (OSError, ValueError):
        return None


class QueueWatch(threading.Thread):
    """When did the server's event queue last hold events, counted from the end of sending?

    Polls /healthz every 20 ms from the end of the sending phase (the drain phase, OPTIONS only, and
    after wrk ends) until the queue is empty with wrk done. `finish()` returns the seconds from the
    end of sending until the last poll that still saw queued events (plus one poll interval), 0 when
    the writer had kept up, or None when /healthz does not report `queued_events`."""

    POLL = 0.02

    def __init__(self, port: int, sending_ends: float, timeout: float = 60.0):
        super().__init__(daemon=True)
        self.port, self.sending_ends, self.timeout = port, sending_ends, timeout
        self.wrk_done = threading.Event()
        self.last_busy: float | None = None
        self.supported = True
        self.error: str | None = None

    def run(self) -> None:
        time.sleep(max(0.0, self.sending_ends - time.monotonic()))
        deadline = self.sending_ends + self.timeout
        while time.monotonic() < deadline:
            polled = time.monotonic()
            queued = _queued_events(self.port)
            if queued is None:
                self.supported = False
                return
            if queued:
                self.last_busy = polled
            elif self.wrk_done.is_set():
                return
            time.sleep(self.POLL)
        self.error = f"the event queue did not empty within {self.timeout:.0f} s"

    def finish(self) -> float | None:
        self.wrk_done.set()
        self.join(self.timeout + 5)
        if self.error:
            raise RuntimeError(self.error)
        if not self.supported:
            return None
        return 0.0 if self.last_busy is None else self.last_busy + self.POLL - self.sending_ends


def count_events(path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        con.close()


def one_run(index: int, args: argparse.Namespace, profile: Path | None = None) -> Run:
    with tempfile.TemporaryDirectory(prefix="siyu-ingest-") as tmp:
        data_dir = Path(tmp)
        port = _free_port()
        env = _env(data_dir, port)
        _siyu(["init", "--no-demo"], env)
        key = json.loads(_siyu(["sources", "create", "bench", "--kind", "server", "--json"], env))["write_key"]
        basic = base64.b64encode(f"{key}:".encode()).decode()
        log = (data_dir / "server.log").open("w")
        cmd = [*_siyu_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-demo"]
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(port, proc, any_status=False)
            load = os.getloadavg()[0]
            cpu_before = _cpu_seconds(proc.pid)
            wrk = [
                "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}",
                "--", basic, str(args.batch), str(args.seconds), str(args.drain),
            ]  # fmt: skip
            spy = _start_profiler(proc.pid, args.seconds, profile) if profile else None
            before = os.times()
            sending_ends = time.monotonic() + args.seconds - args.drain
            watch = QueueWatch(port, sending_ends)
            watch.start()
            out = subprocess.run(wrk, capture_output=True, text=True, timeout=args.seconds + 60, check=True).stdout
            after = os.times()
            written_wait = watch.finish()
            if spy is not None:
                spy.wait(30)
            server_cpu = _cpu_seconds(proc.pid) - cpu_before
            stop_seconds = _stop(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            log.close()
        m = re.search(r"SIYU_INGEST batches_sent=(\d+) drain_sent=(\d+) shed=(\d+) errors=(\d+)", out)
        if not m:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        # wrk calls request() once more, on thread 1, to check the script; that batch is never sent.
        batches, shed, errors = int(m[1]) - 1, int(m[3]), int(m[4])
        expected = (batches - shed) * args.batch
        return Run(
            index=index,
            seconds=args.seconds - args.drain,
            batches=batches,
            shed=shed,
            errors=errors,
            expected=expected,
            stored=count_events(data_dir / "events.duckdb"),
            stop_seconds=stop_seconds,
            server_cpu=server_cpu,
            wrk_cpu=(after.children_user - before.children_user) + (after.children_system - before.children_system),
            p50_ms=_latency_ms(out, "50"),
            p99_ms=_latency_ms(out, "99"),
            loadavg_before=load,
            written_wait=written_wait,
            drain=args.drain,
        )


def report(runs: list[Run], args: argparse.Namespace) -> str:
    lines = [
        "| run | accepted events/s | stored events/s | written events/s | batches (429) | stored = accepted "
        "| p50 / p99 ms | server CPU s | wrk CPU s | stop s | load before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        written = "n/a" if r.written_per_s is None else f"{r.written_per_s:,.0f}"
        lines.append(
            f"| {r.index} | {r.accepted_per_s:,.0f} | {r.stored_per_s:,.0f} | {written} | {r.batches:,} ({r.shed}) "
            f"| {'yes' if r.exact else f'NO ({r.stored:,} vs {r.expected:,})'} | {r.p50_ms:.1f} / {r.p99_ms:.1f} "
            f"| {r.server_cpu:.1f} | {r.wrk_cpu:.1f} | {r.stop_seconds:.1f} | {r.loadavg_before:.2f} |"
        )
    accepted = statistics.median(r.accepted_per_s for r in runs)
    stored = statistics.median(r.stored_per_s for r in runs)
    written_runs = [r.written_per_s for r in runs if r.written_per_s is not None]
    written = statistics.median(written_runs) if len(written_runs) == len(runs) else None
    # Ingestion into the store is judged by *written* (events in DuckDB by the time the queue was
    # empty) when the server reports it; *stored* also holds the shutdown (stitcher catch-up etc.).
    judged, judged_name = (written, "written") if written is not None else (stored, "stored")
    lines.append("")
    lines.append(
        f"Median: **{accepted:,.0f} accepted events/s, "
        + (f"{written:,.0f} written events/s, " if written is not None else "")
        + f"{stored:,.0f} stored events/s** "
        f"(target {TARGET_EVENTS_PER_S:,} events/s into the store, judged on {judged_name}: "
        f"{'met' if judged >= TARGET_EVENTS_PER_S else 'not met'}); "
        f"batches of {args.batch}, wrk -t{args.threads} -c{args.connections}, {args.seconds} s per run."
    )
    return "\n".join(lines)


def write_docs(table: str, args: argparse.Namespace) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    section = (
        f"\n\n## Event ingestion: POST /v1/batch into the embedded store ({dt.date.today().isoformat()})\n\n"
        f"`bench/ingest_bench.py --runs {args.runs} --seconds {args.seconds} --batch {args.batch}` on {machine}; "
        "the server (`siyu serve`, one Granian worker) and wrk share the machine's cores. "
        "*Accepted*: events answered 200 per second of sending. *Stored*: events in DuckDB per second of sending "
        "plus the time the server needed to drain its queue and exit after SIGINT. *Written* (when /healthz "
        "reports queued_events): events in DuckDB per second of sending plus the time from the end of sending until "
        "the queue was empty, "
        "shutdown aside. Every run checks that the "
        "store holds exactly the events of the batches answered 200.\n\n" + table + "\n"
    )
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    with DOCS.open("a", encoding="utf-8") as fh:
        if DOCS.stat().st_size == 0:
            fh.write("# Benchmarks")
        fh.write(section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--drain", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=100, help="messages per request")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--write-docs", action="store_true", help=f"append the figures to {DOCS}")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the server's GIL holder with py-spy (50 Hz) in every run; raw stacks and summaries go to DIR",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(1, args.runs + 1):
        raw = args.profile / f"py-spy-raw-{i}.txt" if args.profile else None
        run = one_run(i, args, raw)
        if raw is not None:
            summary = profile_summary(raw, top=40)
            (args.profile / f"summary-{i}.txt").write_text(summary + "\n")
            print("\n".join(summary.splitlines()[:45]))
        written = "" if run.written_per_s is None else f", {run.written_per_s:,.0f} written/s"
        rates = f"{run.accepted_per_s:,.0f} accepted/s, {run.stored_per_s:,.0f} stored/s{written}"
        print(f"run {i}: {rates}, exact={run.exact}")
        runs.append(run)
        time.sleep(1)
    table = report(runs, args)
    print(table)
    if args.write_docs:
        write_docs(table, args)


if __name__ == "__main__":
    main()
