"""Rule trees: the JSON that defines a segment (人群) or a rule tag (规则标签), validated into typed nodes.

    {"and": [node, ...]}  {"or": [node, ...]}  {"not": node}
    {"type": "trait", "field": "city", "op": "eq", "value": "上海"}
    {"type": "tag", "tag": "coffee_lover"}                  (holds the tag; "op"/"value" test its value)
    {"type": "identifier", "id_type": "phone"}
    {"type": "consent", "purpose": "marketing"}
    {"type": "event", "event": "Order Completed", "within_days": 90, "op": "gte", "value": 2}

The full schema is in docs/segments.md. Every problem is reported with the path of the node and the
key at fault (`rule.and[1].not.field: unknown trait 'foo'`), all of them at once. Names of traits,
tags, purposes, identifier types and links are checked against the workspace's `Vocabulary`; the
compiler (siyu.segments.compile) turns the nodes into SQL with parameters only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from siyu.errors import FieldError, InvalidInput
from siyu.events.store import CLICK_EVENT_NAME
from siyu.i18n import register

MAX_DEPTH = 10
MAX_NODES = 100
MAX_CHILDREN = 50
MAX_WINDOW_DAYS = 3650
MAX_LIST = 500
MAX_TEXT = 200
MAX_COUNT = 1_000_000
MAX_AMOUNT = 1e12
MAX_ERRORS = 20
ANY_EVENT = "*"

TRAIT_OPS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "starts_with",
    "exists",
    "not_exists",
)
TAG_OPS = ("has", "eq", "ne", "in")
COMPARE_OPS = ("gte", "gt", "eq", "lte", "lt")
MEASURES = ("count", "amount")
TYPES = ("trait", "tag", "identifier", "consent", "event")
_KEYS = {
    "trait": {"type", "field", "op", "value"},
    "tag": {"type", "tag", "op", "value"},
    "identifier": {"type", "id_type"},
    "consent": {"type", "purpose"},
    "event": {"type", "event", "within_days", "measure", "op", "value", "link", "link_tag"},
}

register(
    {
        "error.rule_shape": (
            '须为 {{"and": [...]}}、{{"or": [...]}}、{{"not": {{...}}}} 或带 "type" 的条件',
            'must be {{"and": [...]}}, {{"or": [...]}}, {{"not": {{...}}}} or a condition with "type"',
        ),
        "error.rule_depth": ("规则嵌套超过 {max} 层", "the rule is nested deeper than {max} levels"),
        "error.rule_size": ("规则超过 {max} 个节点", "the rule has more than {max} nodes"),
        "error.rule_children": ("须为 1 到 {max} 个条件的列表", "must be a list of 1 to {max} conditions"),
        "error.rule_trait_unknown": ("未知属性“{name}”", "unknown trait '{name}'"),
        "error.rule_tag_unknown": ("未知标签“{name}”", "unknown tag '{name}'"),
        "error.rule_purpose_unknown": ("未知授权用途“{name}”", "unknown consent purpose '{name}'"),
        "error.rule_id_type_unknown": ("未知身份标识类型“{name}”", "unknown identifier type '{name}'"),
        "error.rule_link_unknown": ("未知短链“{name}”", "unknown short link '{name}'"),
        "error.rule_link_tag_unknown": ("没有短链使用标签“{name}”", "no short link has the tag '{name}'"),
        "error.rule_link_event": (
            "只有短链点击事件（{event}）可以按短链筛选",
            "only short-link clicks ({event}) can be filtered by link",
        ),
        "error.rule_value": ("“{op}”须配 {expected}", "must be {expected} for '{op}'"),
        "error.rule_no_value": ("“{op}”不需要值", "takes no value with '{op}'"),
        "error.rule_window": (
            "须为 1 到 {max} 之间的整数（天）",
            "must be a whole number of days from 1 to {max}",
        ),
        "error.rule_name": ("须为 1 到 {max} 个字符的文本", "must be text of 1 to {max} characters"),
    }
)


# --- nodes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class All:  # and
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:  # or
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Trait:
    field: str
    op: str
    value: Any = None  # str | float | bool | tuple[str, ...] | tuple[float, float]


@dataclass(frozen=True)
class HasTag:
    tag_id: int
    code: str
    op: str = "has"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class HasIdentifier:
    id_type: str


@dataclass(frozen=True)
class Consented:
    purpose: str


@dataclass(frozen=True)
class Event:
    event: str | None  # None: any behaviour (tracks, pages, screens, short-link clicks)
    within_days: int | None
    measure: str  # count | amount
    op: str
    value: float
    link_ids: tuple[int, ...] | None = None  # clicks on these links only


Node = Union[All, Any_, Not, Trait, HasTag, HasIdentifier, Consented, Event]  # noqa: UP007


@dataclass(frozen=True)
class TagInfo:
    id: int
    kind: str
    values: tuple[str, ...] = ()  # a model tag's declared values (empty: any)


@dataclass(frozen=True)
class Vocabulary:
    """What names a rule of this workspace may use. `traits` None: any trait name (rules stored earlier
    are recomputed even when no profile has a trait any more)."""

    traits: frozenset[str] | None
    tags: Mapping[str, TagInfo] = field(default_factory=dict)
    purposes: frozenset[str] = frozenset()
    id_types: frozenset[str] = frozenset()
    links: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # slug -> link ids (one per domain)
    link_tags: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # link tag name -> link ids


# --- parsing ---------------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []
        self.nodes = 0

    def add(self, path: str, reason: str, code: str, **params: Any) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(FieldError(path, reason, code, params))


def parse(raw: object, vocab: Vocabulary, path: str = "rule") -> Node:
    """A validated rule tree, or InvalidInput listing every problem with its node path."""
    errors = _Errors()
    node = _node(raw, vocab, path, 1, errors)
    if errors.nodes > MAX_NODES:
        errors.items.insert(
            0, FieldError(path, f"the rule has more than {MAX_NODES} nodes", "rule_size", {"max": MAX_NODES})
        )
    if errors.items:
        raise InvalidInput(errors.items[:MAX_ERRORS])
    assert node is not None
    return node


def _node(raw: object, vocab: Vocabulary, path: str, depth: int, errors: _Errors) -> Node | None:
    errors.nodes += 1
    if errors.nodes > MAX_NODES:
        return None
    if depth > MAX_DEPTH:
        errors.add(path, f"the rule is nested deeper than {MAX_DEPTH} levels", "rule_depth", max=MAX_DEPTH)
        return None
    if not isinstance(raw, Mapping):
        errors.add(path, _SHAPE, "rule_shape")
        return None
    groups = [k for k in ("and", "or", "not") if k in raw]
    if groups:
        extra = [k for k in raw if k != groups[0]]
        for key in extra:
            errors.add(f"{path}.{_key(key)}", "unknown field", "field_unknown")
        if extra:
            return None
        return _group(groups[0], raw[groups[0]], vocab, f"{path}.{groups[0]}", depth, errors)
    kind = raw.get("type")
    if kind is None:
        errors.add(path, _SHAPE, "rule_shape")
        return None
    if kind not in TYPES:
        errors.add(f"{path}.type", f"must be one of {', '.join(TYPES)}", "one_of", choices=", ".join(TYPES))
        return None
    unknown = [k for k in raw if k not in _KEYS[kind]]
    for key in unknown:
        errors.add(f"{path}.{_key(key)}", "unknown field", "field_unknown")
    before = len(errors.items)
    node = _CONDITIONS[kind](raw, vocab, path, errors)
    return None if unknown or len(errors.items) > before else node


_SHAPE = 'must be {"and": [...]}, {"or": [...]}, {"not": {...}} or a condition with "type"'


def _key(key: object) -> str:
    return str(key)[:40]


def _group(kind: str, raw: object, vocab: Vocabulary, path: str, depth: int, errors: _Errors) -> Node | None:
    if kind == "not":
        child = _node(raw, vocab, path, depth + 1, errors)
        return None if child is None else Not(child)
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CHILDREN:
        errors.add(path, f"must be a list of 1 to {MAX_CHILDREN} conditions", "rule_children", max=MAX_CHILDREN)
        return None
    children = [_node(item, vocab, f"{path}[{i}]", depth + 1, errors) for i, item in enumerate(raw)]
    if any(c is None for c in children):
        return None
    return All(tuple(children)) if kind == "and" else Any_(tuple(children))  # type: ignore[arg-type]


def _name(raw: Mapping[str, Any], key: str, path: str, errors: _Errors) -> str | None:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or "\x00" in value:
        errors.add(f"{path}.{key}", f"must be text of 1 to {MAX_TEXT} characters", "rule_name", max=MAX_TEXT)
        return None
    return value.strip()


def _op(
    raw: Mapping[str, Any], path: str, choices: tuple[str, ...], default: str | None, errors: _Errors
) -> str | None:
    op = raw.get("op", default)
    if op not in choices:
        errors.add(f"{path}.op", f"must be one of {', '.join(choices)}", "one_of", choices=", ".join(choices))
        return None
    return op


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT and "\x00" not in value


def _bad_value(path: str, op: str, expected: str, errors: _Errors) -> None:
    errors.add(f"{path}.value", f"must be {expected} for '{op}'", "rule_value", op=op, expected=expected)


def scalar_text(value: object) -> str | None:
    """The text a scalar trait value is compared as (facts keep the same): '3' for 3 and 3.0, 'true'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def known_trait(name: str, traits: frozenset[str]) -> bool:
    """A trait some person has, or a member of one ('address.city' when people have an 'address')."""
    return name in traits or ("." in name and name.split(".", 1)[0] in traits)


def _trait(raw: Mapping[str, Any], vocab: Vocabulary, path: str, errors: _Errors) -> Node | None:
    name = _name(raw, "field", path, errors)
    op = _op(raw, path, TRAIT_OPS, None, errors)
    if name is not None and vocab.traits is not None and not known_trait(name, vocab.traits):
        errors.add(f"{path}.field", f"unknown trait '{name[:40]}'", "rule_trait_unknown", name=name[:40])
    if op is None or name is None:
        return None
    value = raw.get("value")
    if op in ("exists", "not_exists"):
        if value is not None:
            errors.add(f"{path}.value", f"takes no value with '{op}'", "rule_no_value", op=op)
        return Trait(name, op)
    if op in ("eq", "ne"):
        text = scalar_text(value) if (_is_number(value) or isinstance(value, bool) or _is_text(value)) else None
        if text is None:
            return _bad_value(path, op, "text, a number or true/false", errors)
        return Trait(name, op, text)
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and 0 < len(value) <= MAX_LIST and all(_is_text(v) or _is_number(v) for v in value)
        if not ok:
            return _bad_value(path, op, f"a list of 1 to {MAX_LIST} texts or numbers", errors)
        return Trait(name, op, tuple(dict.fromkeys(scalar_text(v) for v in value)))
    if op in ("gt", "gte", "lt", "lte"):
        if not _is_number(value):
            return _bad_value(path, op, "a number", errors)
        return Trait(name, op, float(value))
    if op == "between":
        if not (
            isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value) and value[0] <= value[1]
        ):
            return _bad_value(path, op, "two numbers [low, high], low ≤ high", errors)
        return Trait(name, op, (float(value[0]), float(value[1])))
    if not _is_text(value):  # contains, starts_with
        return _bad_value(path, op, f"text of 1 to {MAX_TEXT} characters", errors)
    return Trait(name, op, value)


def _tag(raw: Mapping[str, Any], vocab: Vocabulary, path: str, errors: _Errors) -> Node | None:
    code = _name(raw, "tag", path, errors)
    op = _op(raw, path, TAG_OPS, "has", errors)
    info = vocab.tags.get(code) if code is not None else None
    if code is not None and info is None:
        errors.add(f"{path}.tag", f"unknown tag '{code[:40]}'", "rule_tag_unknown", name=code[:40])
    if op is None or info is None or code is None:
        return None
    value = raw.get("value")
    if op == "has":
        if value is not None:
            errors.add(f"{path}.value", f"takes no value with '{op}'", "rule_no_value", op=op)
            return None
        return HasTag(info.id, code)
    if op in ("eq", "ne"):
        if not _is_text(value):
            return _bad_value(path, op, f"text of 1 to {MAX_TEXT} characters", errors)
        return HasTag(info.id, code, op, (value,))
    if not (isinstance(value, list) and 0 < len(value) <= MAX_LIST and all(_is_text(v) for v in value)):
        return _bad_value(path, op, f"a list of 1 to {MAX_LIST} texts", errors)
    return HasTag(info.id, code, op, tuple(dict.fromkeys(value)))


def _identifier(raw: Mapping[str, Any], vocab: Vocabulary, path: str, errors: _Errors) -> Node | None:
    name = _name(raw, "id_type", path, errors)
    if name is None:
        return None
    if name not in vocab.id_types:
        errors.add(f"{path}.id_type", f"unknown identifier type '{name[:40]}'", "rule_id_type_unknown", name=name[:40])
        return None
    return HasIdentifier(name)


def _consent(raw: Mapping[str, Any], vocab: Vocabulary, path: str, errors: _Errors) -> Node | None:
    name = _name(raw, "purpose", path, errors)
    if name is None:
        return None
    if name not in vocab.purposes:
        errors.add(f"{path}.purpose", f"unknown consent purpose '{name[:40]}'", "rule_purpose_unknown", name=name[:40])
        return None
    return Consented(name)


def _event(raw: Mapping[str, Any], vocab: Vocabulary, path: str, errors: _Errors) -> Node | None:
    before = len(errors.items)
    name = _name(raw, "event", path, errors)
    days = raw.get("within_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS):
        errors.add(
            f"{path}.within_days",
            f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}",
            "rule_window",
            max=MAX_WINDOW_DAYS,
        )
    measure = raw.get("measure", "count")
    if measure not in MEASURES:
        errors.add(f"{path}.measure", f"must be one of {', '.join(MEASURES)}", "one_of", choices=", ".join(MEASURES))
    op = _op(raw, path, COMPARE_OPS, "gte", errors)
    value = raw.get("value", 1 if measure == "count" else None)
    if op is not None and measure == "count":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            _bad_value(path, op, f"a whole number from 0 to {MAX_COUNT}", errors)
    elif op is not None and measure == "amount" and (not _is_number(value) or not 0 <= value <= MAX_AMOUNT):
        _bad_value(path, op, f"an amount from 0 to {MAX_AMOUNT:.0e}", errors)
    link_ids = _links(raw, vocab, path, name, errors)
    if len(errors.items) > before or name is None or op is None:
        return None
    event = None if name == ANY_EVENT else name
    return Event(event, days, measure, op, float(value), link_ids)


def _links(
    raw: Mapping[str, Any], vocab: Vocabulary, path: str, event: str | None, errors: _Errors
) -> tuple[int, ...] | None:
    if "link" not in raw and "link_tag" not in raw:
        return None
    if event is not None and event not in (CLICK_EVENT_NAME, ANY_EVENT):
        key = "link" if "link" in raw else "link_tag"
        errors.add(
            f"{path}.{key}",
            f"only short-link clicks ({CLICK_EVENT_NAME}) can be filtered by link",
            "rule_link_event",
            event=CLICK_EVENT_NAME,
        )
        return None
    ids: set[int] | None = None
    if "link" in raw:
        slug = _name(raw, "link", path, errors)
        if slug is not None and slug not in vocab.links:
            errors.add(f"{path}.link", f"unknown short link '{slug[:40]}'", "rule_link_unknown", name=slug[:40])
        elif slug is not None:
            ids = set(vocab.links[slug])
    if "link_tag" in raw:
        tag = _name(raw, "link_tag", path, errors)
        if tag is not None and tag not in vocab.link_tags:
            errors.add(
                f"{path}.link_tag", f"no short link has the tag '{tag[:40]}'", "rule_link_tag_unknown", name=tag[:40]
            )
        elif tag is not None:
            tagged = set(vocab.link_tags[tag])
            ids = tagged if ids is None else ids & tagged
    return tuple(sorted(ids)) if ids is not None else None


_CONDITIONS = {"trait": _trait, "tag": _tag, "identifier": _identifier, "consent": _consent, "event": _event}


# --- reading a tree --------------------------------------------------------------------------------------


def walk(node: Node):
    """Every node of the tree, parents first."""
    yield node
    if isinstance(node, All | Any_):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)


def tag_ids(node: Node) -> set[int]:
    """The tags a tree reads (a rule tag is computed after them)."""
    return {n.tag_id for n in walk(node) if isinstance(n, HasTag)}


def tag_codes(raw: object) -> set[str]:
    """The tag codes a stored rule (JSON, unvalidated) names: what deleting a tag would break."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if item.get("type") == "tag" and isinstance(item.get("tag"), str):
                found.add(item["tag"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
