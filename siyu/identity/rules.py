"""Identifier types and their guard rails, with per-workspace overrides.

Priority decides who wins when an event's identifiers disagree: account ids issued by the brand
(member_id) and WeChat's unionid outrank phone numbers, because Chinese carriers recycle numbers;
device and cookie ids come last because families and shop tablets share them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.identity.models import IdentityTypeConfig

TYPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_BLOCKED_VALUES = 1000


@dataclass(frozen=True)
class TypeRule:
    """One identifier type: `unique` means a person holds at most one value and two different values
    mean two different people; `max_people` is how many people a value may touch before quarantine.
    A `weak` type (device, cookie) may attach anonymous activity to a person, but never merges two
    persons who are both identified by a strong type: a family tablet must not join the family."""

    name: str
    priority: int
    unique: bool = False
    max_values: int = 5
    max_people: int = 5
    blocked: frozenset[str] = field(default_factory=frozenset)
    weak: bool = False

    @property
    def limit(self) -> int:
        return 1 if self.unique else self.max_values

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "priority": self.priority,
            "unique": self.unique,
            "max_values": self.limit,
            "max_people": self.max_people,
            "weak": self.weak,
            "blocked_values": sorted(self.blocked),
        }


DEFAULT_TYPES: dict[str, TypeRule] = {
    r.name: r
    for r in (
        TypeRule("member_id", 10, unique=True, max_values=1, max_people=3),
        TypeRule("unionid", 20, unique=True, max_values=1, max_people=3),
        TypeRule("phone", 30, unique=True, max_values=1, max_people=3),
        TypeRule("email", 40, max_values=3, max_people=3),
        TypeRule("openid", 50, max_values=10, max_people=3),
        TypeRule("device_id", 70, max_values=10, max_people=3),
        TypeRule("visitor_cookie", 80, max_values=50, max_people=3),
    )
}
CUSTOM_DEFAULTS = {"priority": 60, "unique": False, "max_values": 5, "max_people": 5, "weak": False}


class Rules:
    """The effective identifier types of one workspace (defaults plus its own configuration)."""

    def __init__(self, types: Iterable[TypeRule]):
        ordered = sorted(types, key=lambda r: (r.priority, r.name))
        self.types: dict[str, TypeRule] = {r.name: r for r in ordered}
        # Codes follow priority order, so sorting identifiers by code sorts them by priority.
        self.code = {name: i for i, name in enumerate(self.types)}
        # Flat lookups for the merge engine's inner loop.
        self.limit = {r.name: r.limit for r in ordered}
        self.clash_kind = {r.name: "unique" if r.unique else "cap" for r in ordered}
        self.weak = frozenset(r.name for r in ordered if r.weak)

    def __getitem__(self, name: str) -> TypeRule:
        return self.types[name]

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def sort_key(self, key: tuple[str, str]) -> tuple[int, str, str]:
        rule = self.types[key[0]]
        return rule.priority, rule.name, key[1]

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.types.values()]


def default_rules() -> Rules:
    return Rules(DEFAULT_TYPES.values())


def get_rules(session: Session, workspace_id: int) -> Rules:
    rows = session.scalars(select(IdentityTypeConfig).where(IdentityTypeConfig.workspace_id == workspace_id))
    types = dict(DEFAULT_TYPES)
    types.update((row.name, _from_row(row)) for row in rows)
    return Rules(types.values())


def _from_row(row: IdentityTypeConfig) -> TypeRule:
    return TypeRule(
        row.name,
        row.priority,
        row.is_unique,
        row.max_values,
        row.max_people,
        frozenset(row.blocked_values),
        row.is_weak,
    )


def configure_type(session: Session, workspace_id: int, name: object, raw: Mapping[str, Any]) -> TypeRule:
    """Create or change one identifier type of a workspace (a custom type such as 'crm_id', or a default)."""
    if not isinstance(name, str) or not TYPE_NAME_RE.match(name):
        raise InvalidInput("name", "2 to 32 characters: a lower-case letter, then letters, digits or '_'")
    row = session.scalar(
        select(IdentityTypeConfig).where(
            IdentityTypeConfig.workspace_id == workspace_id, IdentityTypeConfig.name == name
        )
    )
    base = _from_row(row) if row else DEFAULT_TYPES.get(name, TypeRule(name, **CUSTOM_DEFAULTS))
    rule = _validated(base, raw)
    if row is None:
        row = IdentityTypeConfig(workspace_id=workspace_id, name=name)
        session.add(row)
    row.priority, row.is_unique, row.max_values = rule.priority, rule.unique, rule.limit
    row.max_people, row.blocked_values, row.is_weak = rule.max_people, sorted(rule.blocked), rule.weak
    row.updated_at = utcnow()
    session.flush()
    session.info.get("siyu.identity.context", {}).pop(workspace_id, None)
    return rule


def _validated(base: TypeRule, raw: Mapping[str, Any]) -> TypeRule:
    errors = [FieldError(k, "unknown field") for k in raw if k not in _CHECKS]
    changes: dict[str, Any] = {}
    for key, (attr, check) in _CHECKS.items():
        if key in raw:
            try:
                changes[attr] = check(raw[key], key)
            except InvalidInput as exc:
                errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors)
    rule = replace(base, **changes)
    return replace(rule, max_values=1) if rule.unique else rule


def _int(low: int, high: int):
    def check(value: object, field_name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(field_name, f"must be a whole number from {low} to {high}")
        return value

    return check


def _flag(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field_name, "must be true or false")
    return value


def _blocked(value: object, field_name: str) -> frozenset[str]:
    if not isinstance(value, list | tuple) or len(value) > MAX_BLOCKED_VALUES:
        raise InvalidInput(field_name, f"must be a list of at most {MAX_BLOCKED_VALUES} values")
    out = set()
    for i, v in enumerate(value):
        if not isinstance(v, str) or len(v) > 255 or "\x00" in v:
            raise InvalidInput(f"{field_name}[{i}]", "must be text of at most 255 characters, without NUL")
        out.add(v.strip().lower())
    return frozenset(out)


_CHECKS = {
    "priority": ("priority", _int(0, 1000)),
    "unique": ("unique", _flag),
    "max_values": ("max_values", _int(1, 1000)),
    "max_people": ("max_people", _int(1, 1_000_000)),
    "weak": ("weak", _flag),
    "blocked_values": ("blocked", _blocked),
}
