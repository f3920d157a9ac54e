"""Copying the operational database's per-person data into the facts (siyu.segments.facts), fast.

A million profiles mean millions of rows (persons, traits, identifiers, consent records, tags). They
are read with the driver's own cursor (a server-side cursor on PostgreSQL), handed to DuckDB as Arrow
columns as stored, and everything per row happens there, vectorised: trait JSON into text and
number (an object's members as 'address.city'), identifier types de-duplicated, and each person's
latest consent record per purpose, merged-away persons counted for their survivor (the rule of
siyu.consent.service.has_consent).

Between full copies, `changes` (and the listener) tell which persons changed, and `read`/`load`
replace just theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from siyu.consent.purposes import list_purposes

BATCH = 100_000
MAX_TEXT = 200
TABLES = ("facts_persons", "facts_traits", "facts_identifiers", "facts_consents", "facts_tags")

# The statements are constants; the workspace id is the only parameter (`:ws`).
_PERSONS = "SELECT id FROM identity_persons WHERE workspace_id = :ws AND merged_into IS NULL AND erased_at IS NULL"
_MERGED = "SELECT id, merged_into FROM identity_persons WHERE workspace_id = :ws AND merged_into IS NOT NULL"
_TRAITS = "SELECT person_id, key, CAST(value AS TEXT) FROM profile_traits WHERE workspace_id = :ws"
_IDENTIFIERS = "SELECT person_id, id_type FROM identity_identifiers WHERE workspace_id = :ws AND NOT quarantined"
_CONSENTS = (
    "SELECT super_id, purpose, CAST(recorded_at AS TEXT), id, status FROM consent_records WHERE workspace_id = :ws"
)
_TAGS = "SELECT super_id, tag_id, value FROM tag_assignments WHERE workspace_id = :ws"

RAW = {  # name -> (statement, Arrow schema, the column naming the person, for reading some persons only)
    "persons": (_PERSONS, pa.schema([("super_id", pa.int64())]), "id"),
    "merged": (_MERGED, pa.schema([("old", pa.int64()), ("new", pa.int64())]), None),
    "traits": (_TRAITS, pa.schema([("super_id", pa.int64()), ("key", pa.string()), ("v", pa.string())]), "person_id"),
    "identifiers": (_IDENTIFIERS, pa.schema([("super_id", pa.int64()), ("id_type", pa.string())]), "person_id"),
    "consents": (
        _CONSENTS,
        pa.schema(
            [
                ("super_id", pa.int64()),
                ("purpose", pa.string()),
                ("at", pa.string()),
                ("id", pa.int64()),
                ("status", pa.string()),
            ]
        ),
        "super_id",
    ),
    "tags": (_TAGS, pa.schema([("super_id", pa.int64()), ("tag_id", pa.int32()), ("value", pa.string())]), "super_id"),
}
# What changed since the last refresh, found by primary-key ranges (new rows since the marks; `+ 0` keeps
# SQLite from preferring the workspace index to the key range). Changes to existing rows — a trait's new
# value, an identifier moving in a merge, an erasure — reach the facts through the runtime's listener
# (siyu.tags.listener tells the worker who changed) and the merge log; a process that did not see them
# starts with a full copy.
_CHANGED = (
    "SELECT id FROM identity_persons WHERE id > :person AND workspace_id + 0 = :ws",
    "SELECT DISTINCT person_id FROM identity_identifiers WHERE id > :identifier AND workspace_id + 0 = :ws",
    "SELECT DISTINCT person_id FROM profile_traits WHERE id > :trait AND workspace_id + 0 = :ws",
    "SELECT DISTINCT super_id FROM consent_records WHERE id > :consent AND workspace_id + 0 = :ws",
    # tag changes this package wrote itself are in the facts already; a model's values and merges are not
    "SELECT DISTINCT super_id FROM tag_history WHERE id > :history AND workspace_id + 0 = :ws "
    "AND cause IN ('model', 'merge')",
    "SELECT DISTINCT i.person_id FROM identity_identifiers i JOIN identity_quarantine q "
    "ON q.workspace_id = i.workspace_id AND q.id_type = i.id_type AND q.value = i.value "
    "WHERE q.workspace_id = :ws AND q.created_at > :since",
)
_MARKS = (
    "SELECT (SELECT coalesce(max(id), 0) FROM identity_persons), "
    "(SELECT coalesce(max(id), 0) FROM identity_identifiers), (SELECT coalesce(max(id), 0) FROM profile_traits), "
    "(SELECT coalesce(max(id), 0) FROM consent_records), (SELECT coalesce(max(id), 0) FROM tag_history)"
)
MARK_NAMES = ("person", "identifier", "trait", "consent", "history")
CHUNK = 500


# DuckDB, over the registered raw_* tables. A scalar trait's text is what siyu.segments.rules.scalar_text
# gives the same value (3 and 3.0 → '3'); its number is the value, or a numeric text's value.
_DOUBLE_TEXT = (
    "CASE WHEN d = trunc(d) AND abs(d) < 9007199254740992 THEN CAST(CAST(d AS BIGINT) AS VARCHAR) "
    "ELSE CAST(d AS VARCHAR) END"
)
INSERT_TRAITS = f"""
INSERT INTO facts_traits
WITH j AS (SELECT super_id, key, v::JSON AS v FROM raw_traits WHERE v IS NOT NULL AND json_valid(v)),
flat AS (
    SELECT super_id, key, v FROM j WHERE json_type(v) <> 'OBJECT'
    UNION ALL
    SELECT super_id, key || '.' || k, v -> k FROM (
        SELECT super_id, key, v, unnest(json_keys(v)) AS k FROM j WHERE json_type(v) = 'OBJECT'
    )
),
typed AS (
    SELECT super_id, key, json_type(v) AS t, v ->> '$' AS s,
           CASE WHEN json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(v ->> '$' AS DOUBLE) END AS d
    FROM flat
),
valued AS (
    SELECT super_id, key,
           CASE t WHEN 'VARCHAR' THEN left(s, {MAX_TEXT}) WHEN 'BOOLEAN' THEN s WHEN 'BIGINT' THEN s
                  WHEN 'UBIGINT' THEN s WHEN 'DOUBLE' THEN {_DOUBLE_TEXT} END AS text,
           CASE WHEN d IS NOT NULL THEN d
                WHEN t = 'VARCHAR' AND length(s) <= 40 THEN TRY_CAST(trim(s) AS DOUBLE) END AS num
    FROM typed
)
SELECT ?, super_id, key, text, CASE WHEN isfinite(num) THEN num END FROM valued WHERE text IS NOT NULL
"""
INSERT_PERSONS = "INSERT INTO facts_persons SELECT ?, super_id FROM raw_persons"
INSERT_IDENTIFIERS = "INSERT INTO facts_identifiers SELECT DISTINCT ?, super_id, id_type FROM raw_identifiers"
INSERT_TAGS = "INSERT INTO facts_tags SELECT ?, super_id, tag_id, value FROM raw_tags"
INSERT_CONSENTS = """
INSERT INTO facts_consents
SELECT ?, root, purpose FROM (
    SELECT coalesce(m.new, c.super_id) AS root, c.purpose, c.status,
           row_number() OVER (PARTITION BY coalesce(m.new, c.super_id), c.purpose
                              ORDER BY TRY_CAST(c.at AS TIMESTAMP) DESC NULLS LAST, c.id DESC) AS n
    FROM raw_consents c LEFT JOIN raw_merged m ON m.old = c.super_id
    WHERE list_contains(?, c.purpose)
) WHERE n = 1 AND status = 'granted'
"""


def _run(session: Session, sql: str, params: dict[str, Any]) -> Iterator[list[tuple]]:
    """Rows of `sql` in batches, through the driver's own cursor inside the session's transaction
    (`:name` parameters; a server-side cursor on PostgreSQL, so rows arrive as they are read)."""
    conn = session.connection()
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cursor = raw.cursor(name="siyu_facts")
        sql = re.sub(r":(\w+)", r"%(\1)s", sql)
    else:
        cursor = raw.cursor()
        params = {k: _sqlite_value(v) for k, v in params.items()}
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        cursor.close()


def _sqlite_value(value: Any) -> Any:
    """A naive UTC datetime as SQLite's stored text (siyu.db.UTCDateTime), so text comparison orders it."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def read(session: Session, workspace_id: int, persons: Sequence[int] | None = None) -> dict[str, Any]:
    """The workspace's rows (or those of `persons` only) as Arrow tables as stored, and the codes of its
    enabled purposes. Consent records of persons merged into `persons` are read with them."""
    merged = _rooted(_collect(session, RAW["merged"][0], RAW["merged"][1], {"ws": workspace_id}))
    out: dict[str, Any] = {"merged": merged}
    wanted: list[int] | None = None
    if persons is not None:
        wanted = sorted(set(persons))
        roots = dict(zip(merged.column("old").to_pylist(), merged.column("new").to_pylist(), strict=True))
        family = wanted + [old for old, root in roots.items() if root in set(wanted)]
    for name, (sql, schema, column) in RAW.items():
        if name == "merged":
            continue
        if wanted is None:
            out[name] = _collect(session, sql, schema, {"ws": workspace_id})
            continue
        ids = family if name == "consents" else wanted
        parts = []
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            names = {f"p{j}": v for j, v in enumerate(chunk)}
            filtered = f"{sql} AND {column} IN ({', '.join(':' + k for k in names)})"
            parts.append(_collect(session, filtered, schema, {"ws": workspace_id, **names}))
        out[name] = pa.concat_tables(parts) if parts else schema.empty_table()
    out["purposes"] = [p.code for p in list_purposes(session, workspace_id) if p.enabled]
    return out


def _collect(session: Session, sql: str, schema: pa.Schema, params: dict[str, Any]) -> pa.Table:
    columns: list[list[Any]] = [[] for _ in schema]
    for rows in _run(session, sql, params):
        for i, column in enumerate(zip(*rows, strict=True)):
            columns[i].extend(column)
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


def marks(session: Session) -> dict[str, int]:
    """The highest ids of the tables `changes` reads now: where the next refresh looks from."""
    rows = [row for batch in _run(session, _MARKS, {}) for row in batch]  # consumed: the cursor closes
    return {name: int(v) for name, v in zip(MARK_NAMES, rows[0], strict=True)}


def changes(session: Session, workspace_id: int, since: datetime, after: dict[str, int]) -> set[int]:
    """Persons with rows added since the id marks `after` (or whose identifier was quarantined since
    `since`, naive UTC): their facts are read again."""
    params = {"ws": workspace_id, "since": since, **{k: after.get(k, 0) for k in MARK_NAMES}}
    touched: set[int] = set()
    for sql in _CHANGED:
        for rows in _run(session, sql, {k: v for k, v in params.items() if f":{k}" in sql}):
            touched.update(r[0] for r in rows)
    return touched


def _rooted(merged: pa.Table) -> pa.Table:
    """(old, new) pairs with `new` followed to the current super ID (a chain of merges)."""
    parent = dict(zip(merged.column("old").to_pylist(), merged.column("new").to_pylist(), strict=True))
    roots = []
    for start in parent:
        node, seen = start, 0
        while node in parent and seen < 10_000:
            node, seen = parent[node], seen + 1
        roots.append(node)
    return pa.table({"old": pa.array(list(parent), pa.int64()), "new": pa.array(roots, pa.int64())})


def load(cur: Any, workspace_id: int, raw: dict[str, Any], persons: Sequence[int] | None = None) -> None:
    """Inside `store.writing()`: replace the workspace's SQL-derived facts, or only those of `persons`."""
    if persons is None:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table} WHERE workspace_id = ?", [workspace_id])
    else:
        cur.register("changed_persons", pa.table({"super_id": pa.array(sorted(set(persons)), pa.int64())}))
        for table in TABLES:
            cur.execute(
                f"DELETE FROM {table} WHERE workspace_id = ? AND super_id IN (SELECT super_id FROM changed_persons)",
                [workspace_id],
            )
        cur.unregister("changed_persons")
    for name in RAW:
        cur.register(f"raw_{name}", raw[name])
    try:
        for sql in (INSERT_PERSONS, INSERT_TRAITS, INSERT_IDENTIFIERS, INSERT_TAGS):
            cur.execute(sql, [workspace_id])
        cur.execute(INSERT_CONSENTS, [workspace_id, raw["purposes"]])
    finally:
        for name in RAW:
            cur.unregister(f"raw_{name}")
