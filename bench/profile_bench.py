"""Profile lookup at one million profiles: any identifier → the person with identifiers and traits.

    .venv/bin/python bench/profile_bench.py                      # 1 M profiles on SQLite
    .venv/bin/python bench/profile_bench.py --scale 0.1          # a tenth, for small machines
    .venv/bin/python bench/profile_bench.py --pg postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/profile_bench.py --write-docs         # replace the figures in docs/benchmarks.md

Builds `--profiles` persons with three identifiers each (member_id, phone, e-mail) through the
identity rebuild's bulk path, and four traits each (name, city, tier, points_earned) by bulk insert,
then times `siyu.profiles.service.find_by_identifier(..., computed=False)` one call at a time for
random existing identifiers, typed the way people type them (a phone as '138 0013 8000'): input
normalisation, the index probe, the person, its identifiers, merged IDs and traits. The computed
attributes and the timeline (DuckDB, at query time) are not part of this figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 5.0
CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京")
TIERS = ("bronze", "silver", "gold", "platinum")
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- profile_bench:begin -->", "<!-- profile_bench:end -->"


def phone(i: int) -> str:
    return f"{13000000000 + i * 7}"


def build(db, ws: int, profiles: int) -> tuple[float, float]:
    """Persons and identifiers by the identity rebuild's bulk write, traits by bulk insert."""
    from siyu.identity.bulk import bulk_insert, db_value
    from siyu.identity.rebuild import encode, rebuild_arrays, write_back
    from siyu.identity.rules import default_rules
    from siyu.profiles.models import ProfileTrait
    from siyu.profiles.traits import search_text

    rules = default_rules()
    records = [
        [("member_id", f"M{i:08d}"), ("phone", phone(i)), ("email", f"user{i}@example.com")] for i in range(profiles)
    ]
    t0 = time.perf_counter()
    enc = encode(rules, records)
    result = rebuild_arrays(enc, rules)
    with db.session() as s:
        person_ids = write_back(s, ws, enc, result, None)
    t_graph = time.perf_counter() - t0
    super_ids = person_ids[result.record_person].tolist()
    del records, enc, result

    t0 = time.perf_counter()
    table = ProfileTrait.__table__
    with db.session() as s:
        now = datetime.now(UTC)
        at = db_value(s, table, "observed_at", now)
        json_of = {v: db_value(s, table, "value", v) for v in (*CITIES, *TIERS)}

        def rows():
            for i, pid in enumerate(super_ids):
                name, city, tier = f"用户{i}", CITIES[i % len(CITIES)], TIERS[i % len(TIERS)]
                named = db_value(s, table, "value", name)
                yield (ws, pid, "name", named, "latest", 1, f"e{i}", at, at, search_text(name))
                yield (ws, pid, "city", json_of[city], "latest", 1, f"e{i}", at, at, search_text(city))
                yield (ws, pid, "tier", json_of[tier], "latest", 2, f"e{i}", at, at, tier)
                yield (ws, pid, "points_earned", str(i % 500), "sum", 2, f"e{i}", at, at, str(i % 500))

        columns = (
            "workspace_id",
            "person_id",
            "key",
            "value",
            "strategy",
            "source_id",
            "event_id",
            "observed_at",
            "updated_at",
            "search_text",
        )
        bulk_insert(s, table, columns, rows())
    return t_graph, time.perf_counter() - t0


def bench(profiles: int, url: str | None, samples: int) -> dict:
    import siyu.models  # noqa: F401
    from siyu.db import Database
    from siyu.events.duckdb_store import DuckDBEventStore
    from siyu.profiles import service
    from siyu.workspaces import service as workspaces

    tmp = tempfile.TemporaryDirectory(prefix="siyu-profile-bench-")
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
    store = DuckDBEventStore(":memory:")  # not read: computed=False
    try:
        db.migrate()
        with db.session() as s:
            ws = workspaces.create_workspace(s, "Bench", slug="bench").id
        t_graph, t_traits = build(db, ws, profiles)
        rng = random.Random(7)
        picks = []
        for _ in range(samples):
            i = rng.randrange(profiles)
            kind = rng.randrange(3)
            p = phone(i)
            typed = [
                ("member_id", f"M{i:08d}"),
                ("phone", f"{p[:3]} {p[3:7]} {p[7:]}"),  # as people type it
                ("email", f"User{i}@Example.com"),
            ]
            picks.append((i, *typed[kind]))
        timings: list[float] = []
        cpu: list[float] = []  # this thread's CPU time: the work, without waiting for a core or the disk
        with db.session() as s:
            service.find_by_identifier(s, store, ws, "member_id", "M00000000", computed=False)  # warm caches
            for i, id_type, value in picks:
                t, c = time.perf_counter(), time.thread_time()
                found = service.find_by_identifier(s, store, ws, id_type, value, computed=False)
                timings.append((time.perf_counter() - t) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
                assert found is not None and found["name"] == f"用户{i}" and len(found["traits"]) == 4
        timings.sort()
        cpu.sort()
        return {
            "backend": "postgresql" if url else "sqlite",
            "profiles": profiles,
            "identifiers": profiles * 3,
            "traits": profiles * 4,
            "graph_build_seconds": round(t_graph, 1),
            "traits_insert_seconds": round(t_traits, 1),
            "lookups": samples,
            "median_ms": round(statistics.median(timings), 3),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 3),
            "max_ms": round(timings[-1], 3),
            "cpu_median_ms": round(statistics.median(cpu), 3),
            "cpu_p99_ms": round(cpu[int(len(cpu) * 0.99) - 1], 3),
        }
    finally:
        store.close()
        db.dispose()
        tmp.cleanup()
        if pg_name:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def met(r: dict) -> bool:
    return r["median_ms"] < TARGET_MS and r["p99_ms"] < TARGET_MS


def markdown(results: list[dict], command: str) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        BEGIN,
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average before: {load}. "
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| database | profiles | identifiers | traits | build (graph + traits) | lookups | median | p99 | max "
        "| CPU median | CPU p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['profiles']:,} | {r['identifiers']:,} | {r['traits']:,} | "
            f"{r['graph_build_seconds']} s + {r['traits_insert_seconds']} s | {r['lookups']:,} | "
            f"**{r['median_ms']:.2f} ms** | **{r['p99_ms']:.2f} ms** | {r['max_ms']:.1f} ms | "
            f"{r['cpu_median_ms']:.2f} ms | {r['cpu_p99_ms']:.2f} ms |"
        )
    verdicts = ", ".join(f"{r['backend']} **{'met' if met(r) else 'NOT met'}**" for r in results)
    lines += ["", f"Target (< 5 ms median and p99, by any identifier, at 1 M profiles): {verdicts}.", END]
    return "\n".join(lines)


def write_docs(block: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end == -1:
        raise SystemExit(f"{DOCS} has no {BEGIN} … {END} block to replace")
    DOCS.write_text(text[:start] + block + text[end + len(END) :], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the size (e.g. 0.1 on a small machine)")
    parser.add_argument("--samples", type=int, default=10_000, help="lookups to time")
    parser.add_argument("--pg", help="also run on this PostgreSQL admin URL (in a temporary database)")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL (with --pg)")
    parser.add_argument("--write-docs", action="store_true", help="replace the figures in docs/benchmarks.md")
    args = parser.parse_args()
    profiles = int(1_000_000 * args.scale)
    results = []
    if not args.no_sqlite:
        results.append(bench(profiles, None, args.samples))
        print(json.dumps(results[-1]), flush=True)
    if args.pg:
        results.append(bench(profiles, args.pg, args.samples))
        print(json.dumps(results[-1]), flush=True)
    block = markdown(results, "python bench/profile_bench.py " + " ".join(sys.argv[1:]))
    print(block)
    if args.write_docs:
        write_docs(block)


if __name__ == "__main__":
    main()
