"""The identity graph in the operational database: the streaming side of `engine.resolve_keys`.

Core statements rather than ORM objects: a resolve touches a handful of rows and must not leave
stale objects in the session when a merge re-points identifiers in bulk.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, insert, select, text, update
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.identity.engine import Held, Key, Refusal
from siyu.identity.models import (
    IdentityConflict,
    IdentityIdentifier,
    IdentityMerge,
    IdentityPerson,
    IdentityQuarantine,
)

# Core tables and columns: the hot path skips the ORM layer.
IDENTIFIERS, PERSONS = IdentityIdentifier.__table__, IdentityPerson.__table__
MERGES, CONFLICTS, QUARANTINE = IdentityMerge.__table__, IdentityConflict.__table__, IdentityQuarantine.__table__
I, C, Q = IDENTIFIERS.c, CONFLICTS.c, QUARANTINE.c  # noqa: E741
REFUSALS = ("unique", "cap", "kept_apart")
LOCKS = "siyu.identity.locks"


def lock_workspace(session: Session, workspace_id: int) -> None:
    """Serialise graph writes of one workspace, until the transaction ends.

    Two events of one new person arriving together would otherwise both create a person. SQLite
    has one writer at a time anyway (a second one gets "database is locked" and retries its unit of
    work); PostgreSQL takes a transaction-level advisory lock, once per transaction.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    txn = session.get_transaction()
    held = session.info.get(LOCKS)
    if held is not None and held[0] is txn and workspace_id in held[1]:
        return
    session.execute(text("SELECT pg_advisory_xact_lock(7431, :ws)"), {"ws": workspace_id})
    if held is None or held[0] is not txn:
        held = session.info[LOCKS] = (txn, set())
    held[1].add(workspace_id)


def root_of(session: Session, person_id: int) -> int:
    """Follow `merged_into` to the current super ID (chains are short: each merge adds one step)."""
    seen = 0
    while True:
        parent = session.scalar(select(IdentityPerson.merged_into).where(IdentityPerson.id == person_id))
        if parent is None or seen > 10_000:
            return person_id
        person_id, seen = parent, seen + 1


def key_filter(keys: Sequence[Key]):
    """A superset of `keys` that SQLite and PostgreSQL answer from the (workspace, type, value) index.

    Row-value IN and OR-of-pairs both make SQLite scan the workspace; the cross product of two IN
    lists does not. Callers keep only the exact pairs.
    """
    if len(keys) == 1:
        return and_(I.id_type == keys[0][0], I.value == keys[0][1])
    return and_(I.id_type.in_(sorted({k[0] for k in keys})), I.value.in_(sorted({k[1] for k in keys})))


class SqlGraph:
    def __init__(self, session: Session, workspace_id: int):
        self.s = session
        self.conn = session.connection()
        self.ws = workspace_id
        self._splits: list[tuple[int, int]] | None = None

    def lookup(self, keys: Sequence[Key]) -> dict[Key, tuple[int, bool]]:
        if not keys:
            return {}
        rows = self.conn.execute(
            select(I.id_type, I.value, I.person_id, I.quarantined).where(I.workspace_id == self.ws, key_filter(keys))
        )
        wanted = set(keys)
        return {(t, v): (p, bool(q)) for t, v, p, q in rows if (t, v) in wanted}

    def holdings(self, person: int) -> Held:
        held: Held = {}
        rows = self.conn.execute(select(I.id_type, I.value).where(I.person_id == person, I.quarantined.is_(False)))
        for t, v in rows:
            held.setdefault(t, set()).add(v)
        return held

    def kept_apart(self, a: int, b: int) -> bool:
        if self._splits is None:
            rows = self.conn.execute(
                select(C.person_id, C.other_person_id).where(C.workspace_id == self.ws, C.kind == "split")
            )
            self._splits = [(x, y) for x, y in rows if y is not None]
        pair = {a, b}
        return any({root_of(self.s, x), root_of(self.s, y)} == pair for x, y in self._splits)

    def create_person(self, event_ref: str | None) -> int:
        now = utcnow()
        return self.conn.scalar(
            insert(PERSONS)
            .values(workspace_id=self.ws, first_event=event_ref, created_at=now, updated_at=now)
            .returning(PERSONS.c.id)
        )

    def attach(self, person: int, keys: list[Key], event_ref: str | None) -> None:
        now = utcnow()
        self.conn.execute(
            insert(IDENTIFIERS),
            [
                {
                    "workspace_id": self.ws,
                    "id_type": t,
                    "value": v,
                    "person_id": person,
                    "origin_person_id": person,
                    "quarantined": False,
                    "first_event": event_ref,
                    "created_at": now,
                }
                for t, v in keys
            ],
        )

    def merge(self, survivor: int, absorbed: int, via: Key, event_ref: str | None) -> None:
        now = utcnow()
        self.conn.execute(
            update(IDENTIFIERS).where(I.workspace_id == self.ws, I.person_id == absorbed).values(person_id=survivor)
        )
        self.conn.execute(update(PERSONS).where(PERSONS.c.id == absorbed).values(merged_into=survivor, updated_at=now))
        self.conn.execute(
            insert(MERGES).values(
                workspace_id=self.ws,
                action="merge",
                survivor_id=survivor,
                merged_id=absorbed,
                via_type=via[0],
                via_value=via[1],
                event_ref=event_ref,
                actor="",
                created_at=now,
            )
        )

    def conflict(self, c: Refusal, person: int, event_ref: str | None) -> bool:
        other = C.other_person_id.is_(None) if c.other is None else C.other_person_id == c.other
        seen = self.conn.scalar(
            select(C.id)
            .where(
                C.workspace_id == self.ws,
                C.via_type == c.via[0],
                C.via_value == c.via[1],
                C.kind == c.kind,
                C.person_id == person,
                other,
            )
            .limit(1)
        )
        if seen is not None:
            return False
        self.conn.execute(
            insert(CONFLICTS).values(
                workspace_id=self.ws,
                kind=c.kind,
                person_id=person,
                other_person_id=c.other,
                via_type=c.via[0],
                via_value=c.via[1],
                clash_type=c.clash_type,
                event_ref=event_ref,
                created_at=utcnow(),
            )
        )
        return True

    def people_touched(self, via: Key) -> int:
        rows = self.conn.execute(
            select(C.person_id, C.other_person_id).where(
                C.workspace_id == self.ws,
                C.via_type == via[0],
                C.via_value == via[1],
                C.other_person_id.is_not(None),
                C.kind.in_(REFUSALS),
            )
        )
        return len({p for row in rows for p in row})

    def quarantine(self, via: Key, people: int, event_ref: str | None) -> None:
        self.conn.execute(
            update(IDENTIFIERS)
            .where(I.workspace_id == self.ws, I.id_type == via[0], I.value == via[1])
            .values(quarantined=True)
        )
        found = self.conn.scalar(select(Q.id).where(Q.workspace_id == self.ws, Q.id_type == via[0], Q.value == via[1]))
        if found is None:
            self.conn.execute(
                insert(QUARANTINE).values(
                    workspace_id=self.ws,
                    id_type=via[0],
                    value=via[1],
                    people=people,
                    event_ref=event_ref,
                    created_at=utcnow(),
                )
            )
        else:
            self.conn.execute(update(QUARANTINE).where(Q.id == found).values(people=people))
