"""Rule trees to DuckDB SQL over the per-person facts (siyu.segments.facts), with `?` parameters only.

Every table, column and operator in the SQL comes from the constants here, chosen by the validated
node's type; every name and value from the rule is a parameter. A condition is a test of the
person row `p` of `facts_persons`:

    p.super_id IN (SELECT super_id FROM facts_traits WHERE workspace_id = ? AND key = ? AND text = ?)

AND / OR / NOT combine those tests as written. An event condition that zero events would satisfy
("fewer than 2 orders in 90 days") is written as NOT IN the people who fail it, so people without any
event count too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from siyu.segments.rules import All, Any_, Consented, Event, HasIdentifier, HasTag, Node, Not, Trait

# Operators as SQL: the only spellings that ever reach the query text.
_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_TRAIT_TEXT = {
    "eq": "text = ?",
    "ne": "text <> ?",
    "contains": "contains(text, ?)",
    "starts_with": "starts_with(text, ?)",
}
_TRAIT_NUMBER = {"gt": "num > ?", "gte": "num >= ?", "lt": "num < ?", "lte": "num <= ?"}
_IN = "p.super_id IN (SELECT super_id FROM {table} WHERE workspace_id = ? AND {where})"
_NOT_IN = "p.super_id NOT IN (SELECT super_id FROM {table} WHERE workspace_id = ? AND {where})"
COUNT_SQL = "SELECT count(*) FROM facts_persons p WHERE p.workspace_id = ? AND ({predicate})"
MEMBERS_SQL = "SELECT p.super_id FROM facts_persons p WHERE p.workspace_id = ? AND ({predicate})"


@dataclass(frozen=True)
class Compiled:
    predicate: str  # over `facts_persons p`
    params: list[Any]


def compile_rule(node: Node, workspace_id: int, now: datetime) -> Compiled:
    """The rule as a predicate over `facts_persons p`; `now` (naive UTC) anchors the time windows."""
    params: list[Any] = []
    sql = _sql(node, workspace_id, now, params)
    return Compiled(sql, params)


def count_query(compiled: Compiled, workspace_id: int) -> tuple[str, list[Any]]:
    return COUNT_SQL.format(predicate=compiled.predicate), [workspace_id, *compiled.params]


def members_query(compiled: Compiled, workspace_id: int) -> tuple[str, list[Any]]:
    return MEMBERS_SQL.format(predicate=compiled.predicate), [workspace_id, *compiled.params]


def _sql(node: Node, ws: int, now: datetime, params: list[Any]) -> str:
    if isinstance(node, All | Any_):
        joiner = " AND " if isinstance(node, All) else " OR "
        return "(" + joiner.join(_sql(c, ws, now, params) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(NOT {_sql(node.child, ws, now, params)})"
    if isinstance(node, Trait):
        return _trait(node, ws, params)
    if isinstance(node, HasTag):
        return _tag(node, ws, params)
    if isinstance(node, HasIdentifier):
        params += [ws, node.id_type]
        return _IN.format(table="facts_identifiers", where="id_type = ?")
    if isinstance(node, Consented):
        params += [ws, node.purpose]
        return _IN.format(table="facts_consents", where="purpose = ?")
    if isinstance(node, Event):
        return _event(node, ws, now, params)
    raise TypeError(f"not a rule node: {node!r}")  # unreachable for parsed trees


def _trait(node: Trait, ws: int, params: list[Any]) -> str:
    op = node.op
    if op == "not_exists":
        params += [ws, node.field]
        return _NOT_IN.format(table="facts_traits", where="key = ?")
    params += [ws, node.field]
    if op == "exists":
        where = "true"
    elif op in _TRAIT_TEXT:
        where = _TRAIT_TEXT[op]
        params.append(node.value)
    elif op in _TRAIT_NUMBER:
        where = _TRAIT_NUMBER[op]
        params.append(node.value)
    elif op == "between":
        where = "num BETWEEN ? AND ?"
        params += list(node.value)
    else:  # in, not_in
        where = "list_contains(?, text)" if op == "in" else "NOT list_contains(?, text)"
        params.append(list(node.value))
    return _IN.format(table="facts_traits", where=f"key = ? AND {where}")


def _tag(node: HasTag, ws: int, params: list[Any]) -> str:
    params += [ws, node.tag_id]
    if node.op == "has":
        return _IN.format(table="facts_tags", where="tag_id = ?")
    if node.op == "in":
        params.append(list(node.values))
        return _IN.format(table="facts_tags", where="tag_id = ? AND list_contains(?, value)")
    params.append(node.values[0])
    return _IN.format(table="facts_tags", where=f"tag_id = ? AND value {_COMPARE[node.op]} ?")


def _satisfied_by_zero(op: str, value: float) -> bool:
    """Whether a person without any matching event passes `count/amount <op> value`."""
    return {"gte": value <= 0, "gt": value < 0, "eq": value == 0, "lte": value >= 0, "lt": value > 0}[op]


def _event(node: Event, ws: int, now: datetime, params: list[Any]) -> str:
    where = ["workspace_id = ?"]
    params.append(ws)
    if node.event is not None:
        where.append("event = ?")
        params.append(node.event)
    if node.within_days is not None:
        where.append("ts >= ?")
        params.append(now - timedelta(days=node.within_days))
    if node.link_ids is not None:
        where.append("list_contains(?, link_id)")
        params.append(list(node.link_ids))
    if node.measure == "count" and (node.op, node.value) in (("gte", 1), ("gt", 0)):  # "did it at all"
        return f"p.super_id IN (SELECT DISTINCT super_id FROM facts_events WHERE {' AND '.join(where)})"
    measure = "count(*)" if node.measure == "count" else "coalesce(sum(amount), 0)"
    test = f"{measure} {_COMPARE[node.op]} ?"
    params.append(node.value)
    inner = f"SELECT super_id FROM facts_events WHERE {' AND '.join(where)} GROUP BY super_id"
    if _satisfied_by_zero(node.op, node.value):
        return f"p.super_id NOT IN ({inner} HAVING NOT ({test}))"
    return f"p.super_id IN ({inner} HAVING {test})"
