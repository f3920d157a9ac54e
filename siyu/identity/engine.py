"""The merge rules, written once and run against two stores: SQL (streaming) and memory (rebuild).

One event's identifiers are linked in priority order. The highest-priority usable identifier
decides the event's person; every other identifier joins that person, or links the person it
already belongs to, unless a guard rail says no:

* unique types: a person holds at most one value (two phone numbers = two people),
* caps: at most `max_values` values of a type per person,
* kept apart: two persons split by hand are never merged again,
* weak links: a device or cookie never merges two persons who both hold a strong identifier.

A refusal is recorded as a conflict, never silently merged. (Weak-link refusals are the
exception: they are not recorded, because they are routine — every family tablet — and
often temporary, until a strong identifier links the two for real.) A value that keeps linking different
people (a family tablet, a shop's phone number typed in for every walk-in) is quarantined once it
has touched more than `max_people` people: it stays listed under its first owner and links no one.
When two persons merge, the older (smaller id) survives, so a super ID only ever changes by merging
into an older one.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from siyu.identity.rules import Rules

Key = tuple[str, Hashable]  # (type name, value): a value string in SQL, an integer code in a rebuild
Held = dict[str, set]


class GraphStore(Protocol):
    def lookup(self, keys: Sequence[Key]) -> dict[Key, tuple[int, bool]]:
        """Known keys → (current super id, quarantined)."""

    def holdings(self, person: int) -> Held:
        """Non-quarantined values per type held by a current super id (the caller only reads it)."""

    def kept_apart(self, a: int, b: int) -> bool: ...

    def create_person(self, event_ref: str | None) -> int: ...

    def attach(self, person: int, keys: list[Key], event_ref: str | None) -> None: ...

    def merge(self, survivor: int, absorbed: int, via: Key, event_ref: str | None) -> None: ...

    def conflict(self, c: Refusal, person: int, event_ref: str | None) -> bool:
        """Record a refusal once; True when it was new."""

    def people_touched(self, via: Key) -> int:
        """Distinct persons named on either side of the refusals this value caused."""

    def quarantine(self, via: Key, people: int, event_ref: str | None) -> None: ...


@dataclass(frozen=True)
class Refusal:
    kind: str  # 'unique' | 'cap' | 'kept_apart'
    via: Key
    other: int | None  # the person the identifier belongs to; None for a new identifier
    clash_type: str = ""


@dataclass
class Outcome:
    person: int | None
    merged: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def clash(rules: Rules, mine: Held, theirs: Held) -> tuple[str, str] | None:
    """(kind, type) of the first guard rail that merging `theirs` into `mine` would break, or None."""
    limit = rules.limit
    for id_type, values in theirs.items():
        ours = mine.get(id_type)
        if ours and values and len(ours | values) > limit[id_type]:
            return rules.clash_kind[id_type], id_type
    return None


def _identified(rules: Rules, held: Held) -> bool:
    weak = rules.weak
    return any(values and t not in weak for t, values in held.items())


def resolve_keys(store: GraphStore, rules: Rules, keys: Sequence[Key], event_ref: str | None = None) -> Outcome:
    """Link one event's identifiers (distinct, already in priority order). Idempotent."""
    known = store.lookup(keys)
    usable = [k for k in keys if k not in known or not known[k][1]]
    if not usable:
        return Outcome(None)
    limit, weak = rules.limit, rules.weak
    group: int | None = None
    held: Held = {}
    pending: list[Key] = []
    absorbed: dict[int, int] = {}
    out = Outcome(None)
    for key in usable:
        id_type, value = key
        if key not in known:
            values = held.get(id_type)
            if values is None:
                held[id_type] = {value}
                pending.append(key)
            elif value not in values and len(values) >= limit[id_type]:
                out.refused.append(Refusal(rules.clash_kind[id_type], key, None, id_type))
            else:
                values.add(value)
                pending.append(key)
            continue
        owner = known[key][0]
        while owner in absorbed:
            owner = absorbed[owner]
        if owner == group:
            continue
        theirs = store.holdings(owner)
        bad = clash(rules, held, theirs) if held else None
        if bad is None and id_type in weak and _identified(rules, held) and _identified(rules, theirs):
            continue
        if bad is None and group is not None and store.kept_apart(group, owner):
            bad = ("kept_apart", "")
        if bad is not None:
            out.refused.append(Refusal(bad[0], key, owner, bad[1]))
            continue
        if group is not None:
            survivor, gone = min(group, owner), max(group, owner)
            store.merge(survivor, gone, key, event_ref)
            absorbed[gone] = survivor
            out.merged.append(gone)
            owner = survivor
        group = owner
        for id_type_, values in theirs.items():
            if id_type_ in held:
                held[id_type_] |= values
            else:
                held[id_type_] = set(values)
    if group is None:
        group = store.create_person(event_ref)
    if pending:
        store.attach(group, pending, event_ref)
    for refusal in out.refused:
        if store.conflict(refusal, group, event_ref) and refusal.other is not None:
            people = store.people_touched(refusal.via)
            if people > rules[refusal.via[0]].max_people:
                store.quarantine(refusal.via, people, event_ref)
    out.person = group
    return out


class MemoryGraph:
    """The same graph in dictionaries: the rebuild replays conflicting components through it."""

    def __init__(self) -> None:
        self.owner: dict[Key, int] = {}
        self.held: dict[int, Held] = {}
        self.members: dict[int, list[Key]] = {}
        self.quarantined: set[Key] = set()
        self.created_at: dict[int, object] = {}  # person → the record that created it
        self.merges: list[tuple[int, int, Key, str | None]] = []
        self.conflicts: dict[tuple, str] = {}  # (kind, person, other, via) → clash type
        self.touched: dict[Key, set[int]] = {}
        self.record: object = None  # the record being replayed (set by the caller)
        self._next = 0

    def lookup(self, keys: Sequence[Key]) -> dict[Key, tuple[int, bool]]:
        owner, quarantined = self.owner, self.quarantined
        return {k: (owner[k], k in quarantined) for k in keys if k in owner}

    def holdings(self, person: int) -> Held:
        return self.held[person]  # read-only for the engine, so no copy

    def kept_apart(self, a: int, b: int) -> bool:
        return False

    def create_person(self, event_ref: str | None) -> int:
        self._next += 1
        self.held[self._next] = {}
        self.members[self._next] = []
        self.created_at[self._next] = self.record
        return self._next

    def attach(self, person: int, keys: list[Key], event_ref: str | None) -> None:
        held = self.held[person]
        for key in keys:
            self.owner[key] = person
            held.setdefault(key[0], set()).add(key[1])
        self.members[person].extend(keys)

    def merge(self, survivor: int, absorbed: int, via: Key, event_ref: str | None) -> None:
        held = self.held[survivor]
        for key in self.members[absorbed]:
            self.owner[key] = survivor
            if key not in self.quarantined:
                held.setdefault(key[0], set()).add(key[1])
        self.members[survivor].extend(self.members.pop(absorbed))
        del self.held[absorbed]
        self.merges.append((survivor, absorbed, via, event_ref))

    def conflict(self, c: Refusal, person: int, event_ref: str | None) -> bool:
        ident = (c.kind, person, c.other, c.via)
        if ident in self.conflicts:
            return False
        self.conflicts[ident] = c.clash_type
        if c.other is not None:
            self.touched.setdefault(c.via, set()).update((c.other, person))
        return True

    def people_touched(self, via: Key) -> int:
        return len(self.touched.get(via, ()))

    def quarantine(self, via: Key, people: int, event_ref: str | None) -> None:
        if via not in self.quarantined:
            self.quarantined.add(via)
            owner = self.owner[via]
            self.held[owner][via[0]].discard(via[1])
