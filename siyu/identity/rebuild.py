"""Full rebuild of a workspace's identity graph from history, for backfills and re-computation.

Records (events, CRM rows) link the identifiers they carry; one
`scipy.sparse.csgraph.connected_components` pass over the identifiers (each record joins its first
identifier to its others) finds every candidate person at once. A component that breaks no guard
rail — no type over its limit (one value for unique types), and, with weak types configured, its
strong identifiers connected without them — is exactly what streaming would build from the same
records: no merge in it could ever be refused, and only refusals lead to quarantine. The few
components that do break a rule (shared family tablets, recycled phone numbers, typos) are
replayed record by record, in input order, through the same `engine.resolve_keys` that streaming
runs, which splits them deterministically: the lower-priority link that causes a conflict is the
one refused. So rebuild == streaming on the same input order, and the cost stays vectorised.

Differences from streaming, by design: no merge log is rebuilt (absorbed persons never existed),
and hand-made unmerges ('kept apart') are not replayed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.identity.bulk import bulk_insert, db_value, reserve_ids
from siyu.identity.engine import MemoryGraph, resolve_keys
from siyu.identity.models import (
    IdentityConflict,
    IdentityErased,
    IdentityIdentifier,
    IdentityMerge,
    IdentityPerson,
    IdentityQuarantine,
)
from siyu.identity.normalize import Key, check_ref, check_workspace, normalize_key
from siyu.identity.rules import Rules, get_rules
from siyu.identity.store import lock_workspace

MAX_INVALID_REPORTED = 100


@dataclass
class Encoded:
    """Records as arrays. Identifier codes follow (priority, type, value) order, so a record's
    sorted codes are the order resolve() links them in, and each type is one contiguous code range."""

    indptr: np.ndarray  # int64[n_records + 1]: record r's identifiers are codes[indptr[r]:indptr[r + 1]]
    codes: np.ndarray  # int32/int64, ascending within each record, no duplicates within a record
    ident_type: np.ndarray  # type index (into rules' priority order) of every code, non-decreasing
    keys: list[Key] | None = None  # code → (type, value); None for purely synthetic arrays
    invalid: list[tuple[int, FieldError]] = field(default_factory=list)
    invalid_count: int = 0

    @property
    def n_records(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_idents(self) -> int:
        return len(self.ident_type)


@dataclass
class Rebuilt:
    """The answer, in dense person numbers 0..n_persons-1 ordered by each person's first record."""

    record_person: np.ndarray  # int64 per record, -1 = no usable identifier (stays anonymous)
    ident_person: np.ndarray  # int64 per identifier code, -1 = never attached (refused)
    ident_quarantined: np.ndarray  # bool per code
    person_first_record: np.ndarray  # int64 per person
    conflicts: list[tuple[str, int, int | None, int, str]]  # (kind, person, other, via code, clash type)
    quarantine_people: dict[int, int]  # code → people touched
    stats: dict[str, Any]

    @property
    def n_persons(self) -> int:
        return len(self.person_first_record)


def encode(
    rules: Rules,
    records: Iterable[Sequence[Any]],
    erased: set[str] | None = None,
    workspace_id: int = 0,
    secret: bytes = b"",
) -> Encoded:
    """Validate and normalise every record's identifiers into `Encoded` arrays.

    A backfill must not die on one bad row: invalid identifiers are skipped and counted (the first
    few are reported with their field), blocked and erased ones dropped, as resolve() would.
    """
    with _gc_paused():
        return _encode(rules, records, erased, workspace_id, secret)


def _encode(
    rules: Rules, records: Iterable[Sequence[Any]], erased: set[str] | None, workspace_id: int, secret: bytes
) -> Encoded:
    from siyu.identity.service import digest

    ids: dict[Key, int] = {}
    rec_ids: list[list[int]] = []
    invalid: list[tuple[int, FieldError]] = []
    invalid_count = 0
    seen: dict[Any, int | None] = {}  # raw pair → id: the same cookie or phone recurs in many records
    for r, identifiers in enumerate(records):
        mine: list[int] = []
        if not isinstance(identifiers, list | tuple):
            identifiers = [identifiers]
        for j, item in enumerate(identifiers):
            raw = _plain_pair(item)
            code = seen.get(raw, -1) if raw is not None else -1
            if code == -1:
                try:
                    key = _key(rules, item)
                except InvalidInput as exc:
                    invalid_count += 1
                    if len(invalid) < MAX_INVALID_REPORTED:
                        invalid.append((r, FieldError(f"records[{r}][{j}]", exc.errors[0].reason)))
                    continue
                if key is None or (erased and digest(secret, workspace_id, key) in erased):
                    code = None
                else:
                    code = ids.setdefault(key, len(ids))
                if raw is not None:
                    seen[raw] = code
            if code is not None:
                mine.append(code)
        rec_ids.append(mine)
    keys = sorted(ids, key=rules.sort_key)
    remap = np.empty(len(keys), dtype=np.int64)
    remap[[ids[k] for k in keys]] = np.arange(len(keys))
    counts = np.fromiter((len(set(m)) for m in rec_ids), dtype=np.int64, count=len(rec_ids))
    indptr = np.zeros(len(rec_ids) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    codes = np.fromiter(
        (c for m in rec_ids for c in sorted({int(remap[i]) for i in m})), dtype=np.int64, count=int(indptr[-1])
    )
    ident_type = np.array([rules.code[k[0]] for k in keys], dtype=np.int16)
    return Encoded(indptr, codes, ident_type, keys, invalid, invalid_count)


@contextmanager
def _gc_paused():
    """The replay creates millions of small containers and frees none: the cyclic GC would rescan
    them over and over (it doubled the replay time at 10 M identifiers) for nothing to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rebuild_arrays(enc: Encoded, rules: Rules) -> Rebuilt:
    """Connected components, guard-rail check per component, replay of the components that fail it."""
    with _gc_paused():
        return _rebuild_arrays(enc, rules)


def _rebuild_arrays(enc: Encoded, rules: Rules) -> Rebuilt:
    t0 = time.perf_counter()
    n_rec, n_id = enc.n_records, enc.n_idents
    type_names = list(rules.types)
    n_comp, lab_i = _components(n_id, enc.indptr, enc.codes)
    with_ids = np.flatnonzero(np.diff(enc.indptr) > 0)
    lab_r = np.full(n_rec, -1, dtype=np.int64)  # -1: a record without usable identifiers
    lab_r[with_ids] = lab_i[enc.codes[enc.indptr[with_ids]]]
    t_cc = time.perf_counter()

    # A component is "bad" if any type holds more distinct values than a person may: each type is
    # one contiguous code range, so this is one bincount per type, no sort.
    bounds = np.searchsorted(enc.ident_type, np.arange(len(type_names) + 1))
    bad = np.zeros(n_comp, dtype=bool)
    for t, name in enumerate(type_names):
        lo, hi = bounds[t], bounds[t + 1]
        if hi - lo > rules.limit[name]:  # fewer values than the limit in all: nothing to count
            bad |= np.bincount(lab_i[lo:hi], minlength=n_comp) > rules.limit[name]
    # ... or if its strong identifiers fall apart into several groups held together only by weak
    # ones (devices, cookies): streaming keeps those apart (a family sharing a tablet).
    weak_type = np.array([rules[n].weak for n in type_names], dtype=bool)
    if weak_type.any() and not weak_type.all():
        bad |= _strong_groups(n_id, enc, ~weak_type[enc.ident_type], lab_i, n_comp) > 1
    t_weak = time.perf_counter()

    first = np.full(n_comp, n_rec, dtype=np.int64)
    np.minimum.at(first, lab_r[with_ids], with_ids)
    good = ~bad & (first < n_rec)  # identifiers that no record carries make no person
    t_check = time.perf_counter()

    # Replay the bad components' records, in input order, through the streaming rules.
    graph_mem = MemoryGraph()
    bad_records = with_ids[bad[lab_r[with_ids]]]
    local = np.full(len(bad_records), -1, dtype=np.int64)
    codes, ptr = enc.codes, enc.indptr
    type_of = enc.ident_type.tolist()
    owner, quarantined = graph_mem.owner, graph_mem.quarantined
    for n, r in enumerate(bad_records.tolist()):
        keys = [(type_names[type_of[c]], c) for c in codes[ptr[r] : ptr[r + 1]].tolist()]
        # Most events repeat what is known: all their identifiers held, unquarantined, by one person.
        # resolve_keys would change nothing and answer that person, so skip it.
        person = owner.get(keys[0])
        if person is None or any(owner.get(k) != person or k in quarantined for k in keys):
            graph_mem.record = r
            person = resolve_keys(graph_mem, rules, keys).person
        if person is not None:
            local[n] = person
    t_replay = time.perf_counter()

    # Number persons by first record, as streaming's creation order would.
    root = _roots(graph_mem)
    survivors = np.array(sorted(graph_mem.members), dtype=np.int64)
    good_comps = np.flatnonzero(good)
    creators = np.concatenate(
        [first[good_comps], np.array([graph_mem.created_at[p] for p in survivors.tolist()], dtype=np.int64)]
    )
    order = np.argsort(creators, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    comp_person = np.full(n_comp + 1, -1, dtype=np.int64)  # the extra last slot answers label -1
    comp_person[good_comps] = rank[: len(good_comps)]
    local_rank = dict(zip(survivors.tolist(), rank[len(good_comps) :].tolist(), strict=True))

    record_person = comp_person[lab_r]
    if len(bad_records):
        record_person[bad_records] = [local_rank[root(p)] if p >= 0 else -1 for p in local.tolist()]
    ident_person = comp_person[lab_i]
    ident_quarantined = np.zeros(n_id, dtype=bool)
    for key, person in graph_mem.owner.items():
        ident_person[key[1]] = local_rank[person]
    for key in graph_mem.quarantined:
        ident_quarantined[key[1]] = True
    conflicts = [
        (kind, local_rank[root(p)], None if o is None else local_rank[root(o)], via[1], clash)
        for (kind, p, o, via), clash in graph_mem.conflicts.items()
    ]
    t_end = time.perf_counter()
    return Rebuilt(
        record_person,
        ident_person,
        ident_quarantined,
        np.sort(creators),
        conflicts,
        {k[1]: len(graph_mem.touched.get(k, ())) for k in graph_mem.quarantined},
        {
            "records": n_rec,
            "identifiers": n_id,
            "edges": len(enc.codes),
            "components": int(n_comp),
            "conflicting_components": int(bad.sum()),
            "replayed_records": len(bad_records),
            "persons": len(order),
            "seconds_components": round(t_cc - t0, 3),
            "seconds_guard_rails": round(t_weak - t_cc, 3),
            "seconds_first_records": round(t_check - t_weak, 3),
            "seconds_replay": round(t_replay - t_check, 3),
            "seconds_assemble": round(t_end - t_replay, 3),
            "seconds_total": round(t_end - t0, 3),
        },
    )


def _components(n_id: int, rec_ptr: np.ndarray, codes: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the identifiers, two identifiers being linked when a record holds both.

    Each record joins its first identifier to its others: a star per record carries the same
    connectivity as the (record ↔ identifier) graph, with a third fewer edges and no record nodes,
    which makes scipy's pass several times faster.
    """
    counts = np.diff(rec_ptr)
    nonempty = counts > 0
    starts = rec_ptr[:-1][nonempty]
    rows = np.repeat(codes[starts], counts[nonempty])
    keep = np.ones(len(codes), dtype=bool)
    keep[starts] = False
    n_edges = int(keep.sum())
    graph = csr_matrix((np.ones(n_edges), (rows[keep], codes[keep])), shape=(n_id, n_id))
    return connected_components(graph, directed=False)


def _strong_groups(n_id: int, enc: Encoded, strong: np.ndarray, lab_i: np.ndarray, n_comp: int) -> np.ndarray:
    """Per component, how many groups its strong identifiers form without the weak ones."""
    keep = strong[enc.codes]
    ptr = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))[enc.indptr]
    _, labels = _components(n_id, ptr, enc.codes[keep])
    strong_label = labels[strong]
    group_comp = np.zeros(int(labels.max(initial=-1)) + 1, dtype=np.int64)
    group_comp[strong_label] = lab_i[strong]
    present = np.zeros(len(group_comp), dtype=bool)
    present[strong_label] = True
    return np.bincount(group_comp[present], minlength=n_comp)


@dataclass
class RebuildReport:
    super_ids: list[int | None]  # per input record: re-assign events with these
    persons: int
    identifiers: int
    conflicts: int
    quarantined: int
    invalid: list[tuple[int, FieldError]]
    invalid_count: int
    stats: dict[str, Any]


def rebuild(
    session: Session,
    workspace_id: int,
    records: Sequence[Sequence[Any]],
    event_refs: Sequence[str] | None = None,
    actor: str = "",
) -> RebuildReport:
    """Replace a workspace's identity graph with one computed from `records` (in time order).

    Super IDs are new afterwards; the returned `super_ids` says where each record's event belongs.
    The merge log keeps its history and gets one 'rebuild' entry.
    """
    ws = check_workspace(workspace_id)
    if event_refs is not None and len(event_refs) != len(records):
        raise InvalidInput("event_refs", "must have one reference per record")
    refs = [check_ref(r, f"event_refs[{i}]") for i, r in enumerate(event_refs)] if event_refs else None
    rules = get_rules(session, ws)
    erased = set(session.scalars(select(IdentityErased.digest).where(IdentityErased.workspace_id == ws)))
    from siyu.identity.service import erased_secret

    enc = encode(rules, records, erased, ws, erased_secret(session, ws) or b"")
    result = rebuild_arrays(enc, rules)
    lock_workspace(session, ws)
    t0 = time.perf_counter()
    person_ids = write_back(session, ws, enc, result, refs, actor)
    result.stats["seconds_write"] = round(time.perf_counter() - t0, 3)
    super_ids = [int(person_ids[p]) if p >= 0 else None for p in result.record_person.tolist()]
    return RebuildReport(
        super_ids,
        result.n_persons,
        int((result.ident_person >= 0).sum()),
        len(result.conflicts),
        len(result.quarantine_people),
        enc.invalid,
        enc.invalid_count,
        result.stats,
    )


def write_back(
    session: Session, ws: int, enc: Encoded, result: Rebuilt, refs: Sequence[str | None] | None, actor: str = ""
) -> np.ndarray:
    """Swap the workspace's graph for `result` in bulk; returns the super ID of each dense person."""
    assert enc.keys is not None, "write_back needs the identifiers' values"
    for model in (IdentityConflict, IdentityQuarantine, IdentityIdentifier):
        session.execute(delete(model).where(model.workspace_id == ws))
    session.execute(delete(IdentityPerson).where(IdentityPerson.workspace_id == ws))
    now = utcnow()
    persons, identifiers = IdentityPerson.__table__, IdentityIdentifier.__table__
    at = db_value(session, persons, "created_at", now)
    person_ids = reserve_ids(session, persons, result.n_persons)
    firsts = result.person_first_record.tolist()
    bulk_insert(
        session,
        persons,
        ("id", "workspace_id", "merged_into", "first_event", "created_at", "updated_at", "erased_at"),
        (
            (pid, ws, None, refs[r] if refs else None, at, at, None)
            for pid, r in zip(person_ids.tolist(), firsts, strict=True)
        ),
    )
    attached = np.flatnonzero(result.ident_person >= 0)
    owners = person_ids[result.ident_person[attached]].tolist()
    quarantined = result.ident_quarantined[attached].tolist()
    keys = enc.keys
    bulk_insert(
        session,
        identifiers,
        (
            "workspace_id",
            "id_type",
            "value",
            "person_id",
            "origin_person_id",
            "quarantined",
            "first_event",
            "created_at",
        ),
        (
            (ws, keys[c][0], keys[c][1], p, p, q, None, at)
            for c, p, q in zip(attached.tolist(), owners, quarantined, strict=True)
        ),
    )
    if result.conflicts:
        session.execute(
            insert(IdentityConflict),
            [
                {
                    "workspace_id": ws,
                    "kind": kind,
                    "person_id": int(person_ids[p]),
                    "other_person_id": None if o is None else int(person_ids[o]),
                    "via_type": keys[c][0],
                    "via_value": keys[c][1],
                    "clash_type": clash,
                    "event_ref": None,
                    "created_at": now,
                }
                for kind, p, o, c, clash in result.conflicts
            ],
        )
    if result.quarantine_people:
        session.execute(
            insert(IdentityQuarantine),
            [
                {"workspace_id": ws, "id_type": keys[c][0], "value": keys[c][1], "people": n, "created_at": now}
                for c, n in sorted(result.quarantine_people.items())
            ],
        )
    session.add(
        IdentityMerge(workspace_id=ws, action="rebuild", survivor_id=0, merged_id=0, actor=actor, created_at=now)
    )
    session.flush()
    return person_ids


def _key(rules: Rules, item: Any) -> Key | None:
    if isinstance(item, dict) and set(item) == {"type", "value"}:
        item = (item["type"], item["value"])
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise InvalidInput("identifier", "must be a (type, value) pair")
    id_type, value = item
    if not isinstance(id_type, str) or id_type not in rules:
        raise InvalidInput("type", f"unknown identifier type '{str(id_type)[:40]}'")
    return normalize_key(rules[id_type], value)


def _plain_pair(item: Any) -> tuple[str, str] | None:
    if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], str):
        return item[0], item[1]
    return None


def _roots(graph: MemoryGraph):
    """Where each replayed person ended up, with path compression (merge chains can be long)."""
    parent = {absorbed: survivor for survivor, absorbed, _, _ in graph.merges}

    def root(p: int) -> int:
        top = p
        while top in parent:
            top = parent[top]
        while p in parent and parent[p] != top:
            parent[p], p = top, parent[p]
        return top

    return root
