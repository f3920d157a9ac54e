"""Tag definitions (标签定义): the three kinds, validated, versioned.

    fact   事实标签  a trait's value, as it is:   {"trait": "city"}            → 城市=上海
    rule   规则标签  a rule tree holds:           {"rule": {...}}              → 精品咖啡爱好者
    model  模型标签  values a model writes:       {"values": [{"code": "high", "name": "高", "name_en": "High"}, ...]}

Fact and rule tags are computed (siyu.tags.compute) on the schedule and on demand; a model tag's
values are written by `siyu.tags.compute.set_model_tag_values` (the customer-value models call it).
Every change of a definition is a new version (`tag_versions`); what a person gained under which
version is in their tag history. A rule tag that is a single event count with "at least" (see
`streaming_rule`) is also kept current as events arrive.

Every function takes the caller's session and never commits.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.db import after_commit, utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.i18n import register
from siyu.segments import rules
from siyu.segments.models import Segment
from siyu.segments.vocabulary import vocabulary
from siyu.tags.models import TagDefinition, TagVersion
from siyu.workspaces.models import Workspace

KINDS = ("fact", "rule", "model")
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
CODE_RULE = "2 to 64 characters: a lower-case letter, then lower-case letters, digits or '_'"
VALUE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_VALUES = 50
MAX_TAGS = 500
FIELDS = {"code", "name", "name_en", "description", "kind", "enabled", "trait", "rule", "values"}
SPEC_FIELD = {"fact": "trait", "rule": "rule", "model": "values"}

_changes = itertools.count(1)
generation = 0  # bumped after every committed change: the streaming listener re-reads its tags

register(
    {
        "error.tag_code": (
            "2 到 64 个字符：小写字母开头，之后为小写字母、数字或“_”",
            "2 to 64 characters: a lower-case letter, then lower-case letters, digits or '_'",
        ),
        "error.tag_exists": ("标签“{code}”已存在", "the tag '{code}' already exists"),
        "error.tag_in_use": ("标签“{code}”正被使用：{users}", "the tag '{code}' is used by {users}"),
        "error.tag_cycle": ("标签“{code}”依赖本标签，不能循环引用", "the tag '{code}' depends on this tag"),
        "error.tag_self": ("规则标签不能引用自己", "a rule tag cannot refer to itself"),
        "error.tag_spec_missing": ("{kind} 标签须填写“{field}”", "a {kind} tag needs '{field}'"),
        "error.tag_spec_other": ("{kind} 标签不使用“{field}”", "a {kind} tag does not take '{field}'"),
        "error.tag_values": (
            "须为 1 到 {max} 个 {{code, name, name_en}}，code 为字母、数字、_ 或 -（最多 32 个字符）且不重复",
            "must be 1 to {max} distinct {{code, name, name_en}}: codes of letters, digits, _ or - (at most 32)",
        ),
        "error.tag_limit": ("每个工作区最多 {max} 个标签", "a workspace may have at most {max} tags"),
    }
)


def _changed(session: Session) -> None:
    def bump() -> None:
        global generation
        generation = next(_changes)

    after_commit(session, bump)


def get_tag(session: Session, workspace_id: int, code: object) -> TagDefinition:
    if not isinstance(code, str):
        raise NotFound("tag")
    tag = session.scalar(
        select(TagDefinition).where(TagDefinition.workspace_id == workspace_id, TagDefinition.code == code)
    )
    if tag is None:
        raise NotFound(f"tag {code[:64]}")
    return tag


def list_tags(session: Session, workspace_id: int) -> list[TagDefinition]:
    return list(
        session.scalars(
            select(TagDefinition).where(TagDefinition.workspace_id == workspace_id).order_by(TagDefinition.id)
        )
    )


def versions(session: Session, tag: TagDefinition) -> list[dict[str, Any]]:
    rows = session.scalars(select(TagVersion).where(TagVersion.tag_id == tag.id).order_by(TagVersion.version.desc()))
    return [
        {
            "version": v.version,
            "name": v.name,
            "spec": v.spec,
            "enabled": v.enabled,
            "created_by": v.created_by,
            "created_at": v.created_at,
        }
        for v in rows
    ]


def tag_dict(tag: TagDefinition, persons: int | None = None) -> dict[str, Any]:
    """The definition as callers see it; `coverage` is the share of live persons holding the tag."""
    coverage = round(tag.member_count / persons, 4) if persons else None
    return {
        "code": tag.code,
        "name": tag.name,
        "name_en": tag.name_en,
        "description": tag.description,
        "kind": tag.kind,
        **{SPEC_FIELD[tag.kind]: tag.spec.get(SPEC_FIELD[tag.kind])},
        "enabled": tag.enabled,
        "streaming": tag.streaming,
        "version": tag.version,
        "member_count": tag.member_count,
        "coverage": coverage,
        "computed_at": tag.computed_at,
        "created_by": tag.created_by,
        "created_at": tag.created_at,
        "updated_at": tag.updated_at,
    }


def streaming_rule(node: rules.Node) -> rules.Event | None:
    """The event condition of a rule that is one 'at least N events (in D days)' count, else None.

    Only such a rule can be decided from a person's own new events: nothing else about them, or
    about anyone else, can change its answer (except time passing, which the schedule handles)."""
    if isinstance(node, rules.Event) and node.measure == "count" and node.op in ("gte", "gt"):
        return node
    return None


# --- validation ----------------------------------------------------------------------------------------------


def _text_errors(raw: Mapping[str, Any], required_name: bool) -> tuple[dict[str, Any], list[FieldError]]:
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for key, limit in (("name", MAX_NAME), ("name_en", MAX_NAME), ("description", MAX_DESCRIPTION)):
        if key not in raw or (raw[key] is None and key != "name"):
            continue
        value = raw[key]
        if not isinstance(value, str) or "\x00" in value or len(value.strip()) > limit:
            errors.append(
                FieldError(key, f"must be text of at most {limit} characters", "text_max_length", {"max": limit})
            )
        elif key == "name" and not value.strip():
            errors.append(FieldError(key, "must not be empty", "consent_name_required"))
        else:
            values[key] = value.strip()
    if required_name and "name" not in raw:
        errors.append(FieldError("name", "must not be empty", "consent_name_required"))
    if "enabled" in raw and raw["enabled"] is not None:
        if not isinstance(raw["enabled"], bool):
            errors.append(FieldError("enabled", "must be true or false", "not_bool"))
        else:
            values["enabled"] = raw["enabled"]
    return values, errors


def _model_values(raw: object) -> list[dict[str, str]] | None:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VALUES:
        return None
    out, seen = [], set()
    for item in raw:
        if not isinstance(item, Mapping) or set(item) - {"code", "name", "name_en"}:
            return None
        code, name = item.get("code"), item.get("name", item.get("code"))
        name_en = item.get("name_en", name)
        if not isinstance(code, str) or not VALUE_RE.match(code) or code in seen:
            return None
        if not all(isinstance(v, str) and 0 < len(v.strip()) <= MAX_NAME for v in (name, name_en)):
            return None
        seen.add(code)
        out.append({"code": code, "name": name.strip(), "name_en": name_en.strip()})
    return out


def _spec(
    session: Session, workspace_id: int, kind: str, raw: Mapping[str, Any], code: str
) -> tuple[dict[str, Any], bool, list[FieldError]]:
    """(spec, streaming, errors) of a definition of `kind` from the request's fields."""
    errors = [
        FieldError(other, f"a {kind} tag does not take '{other}'", "tag_spec_other", {"kind": kind, "field": other})
        for k, other in SPEC_FIELD.items()
        if k != kind and raw.get(other) is not None
    ]
    field = SPEC_FIELD[kind]
    value = raw.get(field)
    if value is None and kind != "model":
        errors.append(
            FieldError(field, f"a {kind} tag needs '{field}'", "tag_spec_missing", {"kind": kind, "field": field})
        )
        return {}, False, errors
    if kind == "fact":
        vocab = vocabulary(session, workspace_id)
        if not isinstance(value, str) or not value.strip() or len(value) > rules.MAX_TEXT:
            errors.append(
                FieldError(
                    "trait", f"must be text of 1 to {rules.MAX_TEXT} characters", "rule_name", {"max": rules.MAX_TEXT}
                )
            )
        elif vocab.traits is not None and not rules.known_trait(value.strip(), vocab.traits):
            errors.append(
                FieldError("trait", f"unknown trait '{value[:40]}'", "rule_trait_unknown", {"name": value[:40]})
            )
        return {"trait": value.strip() if isinstance(value, str) else value}, False, errors
    if kind == "model":
        if value is None:
            return {"values": []}, False, errors
        values = _model_values(value)
        if values is None:
            errors.append(
                FieldError(
                    "values",
                    f"must be 1 to {MAX_VALUES} distinct {{code, name, name_en}}: codes of letters, digits, _ or - "
                    "(at most 32)",
                    "tag_values",
                    {"max": MAX_VALUES},
                )
            )
        return {"values": values or []}, False, errors
    try:
        node = rules.parse(value, vocabulary(session, workspace_id))
    except InvalidInput as exc:
        return {}, False, errors + exc.errors
    errors += _cycle_errors(session, workspace_id, code, value)
    return {"rule": value}, streaming_rule(node) is not None, errors


def _cycle_errors(session: Session, workspace_id: int, code: str, rule: object) -> list[FieldError]:
    """A rule tag may read other tags, but never (through them) itself."""
    if code in rules.tag_codes(rule):
        return [FieldError("rule", "a rule tag cannot refer to itself", "tag_self")]
    deps = {
        t.code: rules.tag_codes(t.spec.get("rule"))
        for t in list_tags(session, workspace_id)
        if t.kind == "rule" and t.code != code
    }
    for start in sorted(rules.tag_codes(rule)):
        stack, seen = [start], set()
        while stack:
            current = stack.pop()
            if current == code:
                return [FieldError("rule", f"the tag '{start}' depends on this tag", "tag_cycle", {"code": start})]
            if current not in seen:
                seen.add(current)
                stack.extend(deps.get(current, ()))
    return []


def _unknown(raw: Mapping[str, Any]) -> list[FieldError]:
    return [FieldError(str(k)[:40], "unknown field", "field_unknown") for k in raw if k not in FIELDS]


# --- changes -----------------------------------------------------------------------------------------------------


def create_tag(session: Session, workspace_id: int, raw: Mapping[str, Any], actor: str = "") -> TagDefinition:
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"workspace {workspace_id}")
    errors = _unknown(raw)
    code = raw.get("code")
    if not isinstance(code, str) or not CODE_RE.match(code):
        errors.append(FieldError("code", CODE_RULE, "tag_code"))
        code = ""
    kind = raw.get("kind")
    if kind not in KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(KINDS)}", "one_of", {"choices": ", ".join(KINDS)}))
    values, more = _text_errors(raw, required_name=True)
    errors += more
    spec, streaming = {}, False
    if kind in KINDS:
        spec, streaming, more = _spec(session, workspace_id, kind, raw, code)
        errors += more
    if errors:
        raise InvalidInput(errors)
    if session.scalar(
        select(TagDefinition.id).where(TagDefinition.workspace_id == workspace_id, TagDefinition.code == code)
    ):
        raise Conflict("code", f"the tag '{code}' already exists", code="tag_exists", params={"code": code})
    count = session.scalar(select(func.count()).where(TagDefinition.workspace_id == workspace_id)) or 0
    if count >= MAX_TAGS:
        raise InvalidInput(
            "code", f"a workspace may have at most {MAX_TAGS} tags", code="tag_limit", params={"max": MAX_TAGS}
        )
    now = utcnow()
    tag = TagDefinition(
        workspace_id=workspace_id,
        code=code,
        name=values["name"],
        name_en=values.get("name_en") or values["name"],
        description=values.get("description", ""),
        kind=kind,
        spec=spec,
        version=1,
        enabled=values.get("enabled", True),
        streaming=streaming,
        member_count=0,
        created_by=actor[:200],
        created_at=now,
        updated_at=now,
    )
    session.add(tag)
    session.flush()
    _record_version(session, tag, actor)
    _changed(session)
    return tag


def update_tag(
    session: Session, workspace_id: int, code: object, raw: Mapping[str, Any], actor: str = ""
) -> TagDefinition:
    """Rename, describe, enable/disable or redefine a tag: a new version when anything changes.
    The code and the kind never change (a different kind is a different tag)."""
    tag = get_tag(session, workspace_id, code)
    errors = _unknown(raw)
    errors += [
        FieldError(k, "cannot be changed after creation", "field_create_only")
        for k in ("code", "kind")
        if k in raw and raw[k] is not None and raw[k] != getattr(tag, k)
    ]
    values, more = _text_errors(raw, required_name=False)
    errors += more
    spec, streaming = tag.spec, tag.streaming
    if any(raw.get(f) is not None for f in SPEC_FIELD.values()):
        spec, streaming, more = _spec(session, workspace_id, tag.kind, raw, tag.code)
        errors += more
    if errors:
        raise InvalidInput(errors)
    changed = spec != tag.spec or any(getattr(tag, k) != v for k, v in values.items())
    if not changed:
        return tag
    for key, value in values.items():
        setattr(tag, key, value)
    tag.spec, tag.streaming = spec, streaming
    tag.version += 1
    tag.updated_at = utcnow()
    session.flush()
    _record_version(session, tag, actor)
    _changed(session)
    return tag


def delete_tag(session: Session, workspace_id: int, code: object) -> None:
    """Delete a tag with its assignments and history; refused while a segment or rule tag reads it."""
    tag = get_tag(session, workspace_id, code)
    users = [
        f"segment '{s.name}'"
        for s in session.scalars(select(Segment).where(Segment.workspace_id == workspace_id))
        if tag.code in rules.tag_codes(s.rule)
    ]
    users += [
        f"tag '{t.code}'"
        for t in list_tags(session, workspace_id)
        if t.kind == "rule" and t.id != tag.id and tag.code in rules.tag_codes(t.spec.get("rule"))
    ]
    if users:
        shown = ", ".join(users[:5])
        raise Conflict(
            "code",
            f"the tag '{tag.code}' is used by {shown}",
            code="tag_in_use",
            params={"code": tag.code, "users": shown},
        )
    session.delete(tag)
    session.flush()
    _changed(session)


def _record_version(session: Session, tag: TagDefinition, actor: str) -> None:
    session.add(
        TagVersion(
            tag_id=tag.id,
            version=tag.version,
            name=tag.name,
            spec=tag.spec,
            enabled=tag.enabled,
            created_by=actor[:200],
            created_at=utcnow(),
        )
    )
    session.flush()
