"""Trait merge strategies: how a new value, or another person's value, combines with the one kept.

`latest` (the default) keeps the value of the most recent *event timestamp*, so a late-arriving
old event (an offline POS upload, an SDK retry) never overwrites newer data. `first` keeps the
earliest (sign-up date, first channel). `sum` adds numbers (points earned, a store's purchase count):
each identify adds its value, and a merge adds the two persons' totals.
Workspaces choose per trait key; common keys have sensible defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.profiles.models import ProfileTraitStrategy

STRATEGIES = ("latest", "first", "sum")
DEFAULT_STRATEGY = "latest"
# Keys whose meaning fixes the strategy unless a workspace says otherwise (Segment spelling first).
DEFAULT_STRATEGIES: dict[str, str] = {
    "createdAt": "first",
    "created_at": "first",
    "signed_up_at": "first",
    "first_seen_at": "first",
    "first_source": "first",
    "first_channel": "first",
    "initial_referrer": "first",
    "acquisition_channel": "first",
    "points_earned": "sum",
    "points_added": "sum",
}
MAX_KEY_LENGTH = 128
MAX_CONFIGURED = 500
_KEY_RE = re.compile(r"^[^\x00-\x1f]{1,128}$")


@dataclass(frozen=True)
class TraitValue:
    """A value with its provenance: which event (at which time, from which source) gave it."""

    value: Any
    observed_at: datetime
    source_id: int | None = None
    event_id: str | None = None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def combine(strategy: str, kept: TraitValue, incoming: TraitValue) -> TraitValue:
    """The value to keep when `incoming` meets `kept` (a new event's value, or a merged person's).

    Ties on time go to `incoming`: for events with the same timestamp, the one stitched last wins.
    """
    if strategy == "first":
        return incoming if incoming.observed_at < kept.observed_at else kept
    if strategy == "sum":
        if not is_number(incoming.value):
            return kept
        if not is_number(kept.value):
            return incoming
        total = kept.value + incoming.value
        if isinstance(total, float):
            total = round(total, 9)  # 0.1 + 0.2 shows as 0.3
        later = incoming if incoming.observed_at >= kept.observed_at else kept
        return TraitValue(total, later.observed_at, later.source_id, later.event_id)
    return incoming if incoming.observed_at >= kept.observed_at else kept


def start(strategy: str, incoming: TraitValue) -> TraitValue | None:
    """A first value for a trait the person has not got yet (None: nothing to keep)."""
    if strategy == "sum" and not is_number(incoming.value):
        return None
    return incoming


# --- per-workspace configuration ----------------------------------------------------------------


class Strategies:
    """The effective strategy of every key for one workspace."""

    def __init__(self, configured: Mapping[str, str]):
        self.configured = dict(configured)

    def __getitem__(self, key: str) -> str:
        return self.configured.get(key) or DEFAULT_STRATEGIES.get(key, DEFAULT_STRATEGY)


def strategies_for(session: Session, workspace_id: int) -> Strategies:
    rows = session.execute(
        select(ProfileTraitStrategy.key, ProfileTraitStrategy.strategy).where(
            ProfileTraitStrategy.workspace_id == workspace_id
        )
    )
    return Strategies({k: s for k, s in rows})


def list_strategies(session: Session, workspace_id: int) -> list[dict[str, Any]]:
    """Configured keys and the built-in defaults, each marked with where it comes from."""
    configured = strategies_for(session, workspace_id).configured
    keys = sorted(set(configured) | set(DEFAULT_STRATEGIES))
    return [
        {
            "key": k,
            "strategy": configured.get(k) or DEFAULT_STRATEGIES[k],
            "default": DEFAULT_STRATEGIES.get(k, DEFAULT_STRATEGY),
            "configured": k in configured,
        }
        for k in keys
    ]


def check_key(raw: Any, field: str = "key") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(field, "must be a trait name (text)")
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH or not _KEY_RE.match(key):
        raise InvalidInput(field, f"must be at most {MAX_KEY_LENGTH} characters, without control characters")
    return key


def check_strategy(raw: Any, field: str = "strategy") -> str:
    if raw not in STRATEGIES:
        shown = ", ".join(STRATEGIES)
        raise InvalidInput(field, f"must be one of {shown}", code="one_of", params={"choices": shown})
    return raw


def set_strategies(
    session: Session, workspace_id: int, strategies: Any, actor: str = "", replace: bool = False
) -> list[dict[str, Any]]:
    """Configure strategies from `{key: strategy}`; a key set to its default (or None) drops its row.

    With `replace`, keys not named go back to their defaults. Values already stored stay as they
    are: a strategy applies to the events and merges that come after the change.
    """
    if not isinstance(strategies, Mapping):
        raise InvalidInput("strategies", "must be an object of trait name → strategy")
    if len(strategies) > MAX_CONFIGURED:
        raise InvalidInput("strategies", f"at most {MAX_CONFIGURED} keys")
    wanted: dict[str, str | None] = {}
    errors: list[FieldError] = []
    for raw_key, raw_strategy in strategies.items():
        try:
            key = check_key(raw_key, "strategies")
            wanted[key] = None if raw_strategy is None else check_strategy(raw_strategy, f"strategies.{key}")
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors)
    rows = {
        r.key: r
        for r in session.scalars(select(ProfileTraitStrategy).where(ProfileTraitStrategy.workspace_id == workspace_id))
    }
    if replace:
        for key in set(rows) - set(wanted):
            session.delete(rows.pop(key))
    now = utcnow()
    for key, strategy in wanted.items():
        row = rows.get(key)
        if strategy is None or strategy == DEFAULT_STRATEGIES.get(key, DEFAULT_STRATEGY):
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                ProfileTraitStrategy(
                    workspace_id=workspace_id, key=key, strategy=strategy, updated_by=actor[:200], updated_at=now
                )
            )
        elif row.strategy != strategy:
            row.strategy, row.updated_by, row.updated_at = strategy, actor[:200], now
    session.flush()
    return list_strategies(session, workspace_id)
