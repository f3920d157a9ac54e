"""One ID benchmarks: full rebuild at 10 M identifiers / 5 M records, and lookups at 1 M profiles.

    .venv/bin/python bench/identity_bench.py                  # both, full size
    .venv/bin/python bench/identity_bench.py --scale 0.1      # a tenth of everything (small machines)
    .venv/bin/python bench/identity_bench.py --only rebuild --shared 0.05
    .venv/bin/python bench/identity_bench.py --only lookup --pg postgresql://postgres@127.0.0.1:5432/test

Rebuild input: people with five identifiers each (member_id, phone, email, device_id, cookie) seen
in two or three records (events) each; `--shared` of them also use another person's device (a
family tablet) and a quarter as many got a recycled phone number, which makes their components
break a guard rail so they go through the record-by-record replay. The arrays are generated, saved
as .npy, and the rebuild runs in a fresh process so its peak RSS (getrusage) is the rebuild's own.

Lookup: `siyu.identity.service.lookup` (input normalisation + one indexed query) against a database
holding `--profiles` persons with three identifiers each, written by the rebuild's bulk write-back;
random existing identifiers, one session, timed one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

SLOTS = ("member_id", "phone", "email", "device_id", "visitor_cookie")
TARGET_REBUILD_S, TARGET_RSS_GB, TARGET_LOOKUP_MS = 15.0, 4.0, 5.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def vm_hwm_mb() -> float | None:
    """The kernel's high-water mark of this process's own memory (unlike ru_maxrss, reset by exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def make_arrays(identifiers: int, shared: float, seed: int = 1) -> dict[str, np.ndarray]:
    """Records and edges, in record order, codes ascending within a record and grouped by type."""
    rng = np.random.default_rng(seed)
    people = identifiers // len(SLOTS)
    n_codes = len(SLOTS) * people
    p = np.arange(people, dtype=np.int64)
    code = [s * people + p for s in range(len(SLOTS))]  # type-major codes, types in priority order
    third = np.flatnonzero(rng.random(people) < 0.5)  # half the people have a third record
    # record 0: member, phone, email; record 1: email, device, cookie; record 2: member, cookie
    blocks = [
        np.stack([code[0], code[1], code[2]], 1),
        np.stack([code[2], code[3], code[4]], 1),
        np.stack([code[0][third], code[4][third]], 1),
    ]
    n_records = sum(len(b) for b in blocks)
    order = rng.permutation(n_records)  # interleave people as time would
    rec_parts, code_parts, start = [], [], 0
    for block in blocks:
        rec_parts.append(np.repeat(order[start : start + len(block)], block.shape[1]))
        code_parts.append(block.ravel())
        start += len(block)
    # Family tablets: some people's second record also carries another person's device ...
    sharers = np.flatnonzero(rng.random(people) < shared)
    rec_parts.append(order[people + sharers])
    code_parts.append(code[3][rng.integers(0, people, len(sharers))])
    # ... and recycled phone numbers: someone's first record carries another person's phone.
    recycled = np.flatnonzero(rng.random(people) < shared / 4)
    rec_parts.append(order[recycled])
    code_parts.append(code[1][rng.integers(0, people, len(recycled))])
    edges = np.unique(np.concatenate(rec_parts) * n_codes + np.concatenate(code_parts))  # sort by (record, code)
    rec_id, codes = np.divmod(edges, n_codes)
    indptr = np.zeros(n_records + 1, np.int64)
    np.cumsum(np.bincount(rec_id, minlength=n_records), out=indptr[1:])
    ident_type = np.repeat(np.arange(len(SLOTS), dtype=np.int16), people)
    return {"indptr": indptr, "codes": codes.astype(np.int32), "ident_type": ident_type}


def run_rebuild_child(directory: str) -> None:
    """In a fresh process: load the arrays, rebuild, print timings and peak RSS as JSON."""
    from siyu.identity.rebuild import Encoded, rebuild_arrays
    from siyu.identity.rules import default_rules

    arrays = {k: np.load(Path(directory) / f"{k}.npy") for k in ("indptr", "codes", "ident_type")}
    rss_loaded = vm_hwm_mb()
    rules = default_rules()
    assert [rules.code[s] for s in SLOTS] == sorted(rules.code[s] for s in SLOTS)
    enc = Encoded(arrays["indptr"], arrays["codes"], _type_codes(arrays["ident_type"], rules))
    t0 = time.perf_counter()
    result = rebuild_arrays(enc, rules)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak_rss_mb()),
                "vm_hwm_mb": round(vm_hwm_mb() or 0),
                "rss_after_load_mb": round(rss_loaded or 0),
                "persons": result.n_persons,
                "anonymous_records": int((result.record_person < 0).sum()),
                **result.stats,
            }
        )
    )


def _type_codes(slot_types: np.ndarray, rules) -> np.ndarray:
    mapping = np.array([rules.code[s] for s in SLOTS], dtype=np.int16)
    return mapping[slot_types]


def run_generate_child(directory: str, identifiers: int, shared: float) -> None:
    arrays = make_arrays(identifiers, shared)
    for k, v in arrays.items():
        np.save(Path(directory) / f"{k}.npy", v)


def bench_rebuild(identifiers: int, shared: float) -> dict:
    """Generate and rebuild in two child processes, so this one stays small: Linux carries a
    parent's ru_maxrss over into a child it forks, which would inflate the rebuild's figure."""
    with tempfile.TemporaryDirectory(prefix="siyu-id-bench-") as d:
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--child-generate", d, str(identifiers), str(shared)]
        subprocess.run(cmd, check=True)
        gen = time.perf_counter() - t0
        out = subprocess.run(
            [sys.executable, __file__, "--child-rebuild", d], capture_output=True, text=True, check=True
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["generate_seconds"] = round(gen, 1)
    return result


def bench_lookup(profiles: int, url: str | None, samples: int) -> dict:
    import siyu.models  # noqa: F401
    from siyu.db import Database
    from siyu.identity import service
    from siyu.identity.rebuild import encode, rebuild_arrays, write_back
    from siyu.identity.rules import default_rules
    from siyu.workspaces import service as workspaces

    tmp = tempfile.TemporaryDirectory(prefix="siyu-id-lookup-")
    pg_name = None
    if url:
        import psycopg

        pg_name = f"siyu_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        db_url = url.rsplit("/", 1)[0] + "/" + pg_name
    else:
        db_url = f"sqlite:///{tmp.name}/bench.db"
    db = Database(db_url)
    try:
        db.migrate()
        with db.session() as s:
            ws = workspaces.create_workspace(s, "Bench", slug="bench").id
        rules = default_rules()
        records = [
            [("member_id", f"M{i:08d}"), ("phone", f"+86{13000000000 + i * 7}"), ("visitor_cookie", f"c{i:015d}")]
            for i in range(profiles)
        ]
        t0 = time.perf_counter()
        enc = encode(rules, records)
        result = rebuild_arrays(enc, rules)
        t_rebuild = time.perf_counter() - t0
        t0 = time.perf_counter()
        with db.session() as s:
            write_back(s, ws, enc, result, None)
        t_write = time.perf_counter() - t0
        rng = random.Random(3)
        picks = [records[rng.randrange(profiles)][rng.randrange(3)] for _ in range(samples)]
        timings = []
        with db.session() as s:
            service.lookup(s, ws, *picks[0])  # warm the session's rules cache
            for id_type, value in picks:
                t = time.perf_counter()
                found = service.lookup(s, ws, id_type, value)
                timings.append((time.perf_counter() - t) * 1000)
                assert found is not None
        timings.sort()
        return {
            "backend": "postgresql" if url else "sqlite",
            "profiles": profiles,
            "identifiers": int(enc.n_idents),
            "encode_and_rebuild_seconds": round(t_rebuild, 1),
            "bulk_write_seconds": round(t_write, 1),
            "lookups": samples,
            "median_ms": round(statistics.median(timings), 3),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 3),
        }
    finally:
        db.dispose()
        tmp.cleanup()
        if pg_name:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (e.g. 0.1 on a small machine)")
    parser.add_argument("--shared", type=float, default=0.02, help="share of people using another's device")
    parser.add_argument("--only", choices=("rebuild", "lookup"))
    parser.add_argument("--pg", help="also run the lookup on this PostgreSQL admin URL (a temp database)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--child-rebuild", help=argparse.SUPPRESS)
    parser.add_argument("--child-generate", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rebuild:
        run_rebuild_child(args.child_rebuild)
        return
    if args.child_generate:
        run_generate_child(args.child_generate[0], int(args.child_generate[1]), float(args.child_generate[2]))
        return
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy {np.__version__}")
    if args.only in (None, "rebuild"):
        r = bench_rebuild(int(10_000_000 * args.scale), args.shared)
        ok = r["seconds"] < TARGET_REBUILD_S and r["peak_rss_mb"] < TARGET_RSS_GB * 1024
        print(f"rebuild: {json.dumps(r)}")
        print(f"  → {r['seconds']} s, peak RSS {r['peak_rss_mb']} MB: {'within' if ok else 'MISSES'} target")
    if args.only in (None, "lookup"):
        for url in (None, args.pg) if args.pg else (None,):
            r = bench_lookup(int(1_000_000 * args.scale), url, args.samples)
            ok = r["median_ms"] < TARGET_LOOKUP_MS and r["p99_ms"] < TARGET_LOOKUP_MS
            print(f"lookup: {json.dumps(r)}")
            print(f"  → median {r['median_ms']} ms, p99 {r['p99_ms']} ms: {'within' if ok else 'MISSES'} target")


if __name__ == "__main__":
    main()
