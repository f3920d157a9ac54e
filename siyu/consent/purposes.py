"""Purposes a workspace asks consent for: four defaults, renamed, disabled or extended per workspace.

Codes are what SDKs send (`context.consent.categoryPreferences`), so a code never changes once
created; names and descriptions are for people. A disabled purpose takes no new records and
`has_consent` answers False for it: nothing may be done under a purpose the brand no longer offers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.consent.models import ConsentPurpose
from siyu.db import utcnow
from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.workspaces.models import Workspace

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
CODE_RULE = "2 to 32 characters: a lower-case letter, then lower-case letters, digits or '_'"
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_PURPOSES = 50


@dataclass(frozen=True)
class Purpose:
    code: str
    name: str  # Chinese display name
    name_en: str
    description: str = ""
    enabled: bool = True
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "name_en": self.name_en,
            "description": self.description,
            "enabled": self.enabled,
            "builtin": self.builtin,
        }

    def label(self, locale: str) -> str:
        return self.name if locale.startswith("zh") else self.name_en


DEFAULT_PURPOSES: dict[str, Purpose] = {
    p.code: p
    for p in (
        Purpose("basic", "基础信息", "Basic information", "账户、订单与客服所必需的信息。", builtin=True),
        Purpose("personalization", "个性化推荐", "Personalisation", "根据浏览与购买记录推荐内容与商品。", builtin=True),
        Purpose("marketing", "营销触达", "Marketing", "通过短信、公众号、企业微信等发送营销信息。", builtin=True),
        Purpose("data_sharing", "数据共享", "Data sharing", "与合作方共享个人信息（须单独同意）。", builtin=True),
    )
}


def list_purposes(session: Session, workspace_id: int) -> list[Purpose]:
    """The workspace's purposes: the defaults first (as overridden), then its own in creation order."""
    rows = list(
        session.scalars(
            select(ConsentPurpose).where(ConsentPurpose.workspace_id == workspace_id).order_by(ConsentPurpose.id)
        )
    )
    overrides = {r.code: r for r in rows}
    out = [_from_row(overrides[c], True) if c in overrides else p for c, p in DEFAULT_PURPOSES.items()]
    out += [_from_row(r, False) for r in rows if r.code not in DEFAULT_PURPOSES]
    return out


def purposes_by_code(session: Session, workspace_id: int) -> dict[str, Purpose]:
    return {p.code: p for p in list_purposes(session, workspace_id)}


def get_purpose(session: Session, workspace_id: int, code: object, field_name: str = "purpose") -> Purpose:
    """A known purpose (enabled or not); an unknown code is the caller's input error, naming the known ones."""
    known = purposes_by_code(session, workspace_id)
    if not isinstance(code, str) or code not in known:
        shown = str(code)[:40] if code is not None else ""
        raise InvalidInput(
            field_name,
            f"unknown purpose '{shown}'; known purposes: {', '.join(known)}",
            code="consent_purpose_unknown",
            params={"code": shown, "known": ", ".join(known)},
        )
    return known[code]


def add_purpose(session: Session, workspace_id: int, raw: Mapping[str, Any]) -> Purpose:
    """Create a custom purpose from {code, name, name_en?, description?}."""
    _workspace(session, workspace_id)
    errors = _unknown_fields(raw, {"code", "name", "name_en", "description", "enabled"})
    code = raw.get("code")
    if not isinstance(code, str) or not CODE_RE.match(code):
        errors.append(FieldError("code", CODE_RULE, "consent_purpose_code"))
    values, more = _checked(raw, required_name=True)
    errors += more
    if errors:
        raise InvalidInput(errors)
    assert isinstance(code, str)
    known = purposes_by_code(session, workspace_id)
    if code in known:
        raise Conflict(
            "code", f"the purpose '{code}' already exists", code="consent_purpose_exists", params={"code": code}
        )
    if len(known) >= MAX_PURPOSES:
        raise InvalidInput("code", f"a workspace may have at most {MAX_PURPOSES} purposes")
    now = utcnow()
    row = ConsentPurpose(
        workspace_id=workspace_id,
        code=code,
        name=values["name"],
        name_en=values.get("name_en") or values["name"],
        description=values.get("description", ""),
        enabled=values.get("enabled", True),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _from_row(row, False)


def update_purpose(session: Session, workspace_id: int, code: object, raw: Mapping[str, Any]) -> Purpose:
    """Rename, describe, disable or re-enable a purpose (a default one gets an override row)."""
    _workspace(session, workspace_id)
    known = purposes_by_code(session, workspace_id)
    if not isinstance(code, str) or code not in known:
        raise NotFound(f"purpose {str(code)[:40]}")
    errors = _unknown_fields(raw, {"name", "name_en", "description", "enabled"})
    values, more = _checked(raw, required_name=False)
    errors += more
    if errors:
        raise InvalidInput(errors)
    row = session.scalar(
        select(ConsentPurpose).where(ConsentPurpose.workspace_id == workspace_id, ConsentPurpose.code == code)
    )
    if row is None:  # a default purpose, changed for the first time
        base = known[code]
        row = ConsentPurpose(
            workspace_id=workspace_id,
            code=code,
            name=base.name,
            name_en=base.name_en,
            description=base.description,
            enabled=base.enabled,
            created_at=utcnow(),
        )
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    session.flush()
    return _from_row(row, code in DEFAULT_PURPOSES)


def _workspace(session: Session, workspace_id: int) -> None:
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"workspace {workspace_id}")


def _unknown_fields(raw: Mapping[str, Any], allowed: set[str]) -> list[FieldError]:
    return [FieldError(str(k)[:40], "unknown field", "field_unknown") for k in raw if k not in allowed]


def _checked(raw: Mapping[str, Any], required_name: bool) -> tuple[dict[str, Any], list[FieldError]]:
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
            continue
        value = value.strip()
        if key == "name" and not value:
            errors.append(FieldError(key, "must not be empty", "consent_name_required"))
            continue
        values[key] = value
    if required_name and "name" not in raw:
        errors.append(FieldError("name", "must not be empty", "consent_name_required"))
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            errors.append(FieldError("enabled", "must be true or false", "not_bool"))
        else:
            values["enabled"] = raw["enabled"]
    return values, errors


def _from_row(row: ConsentPurpose, builtin: bool) -> Purpose:
    return Purpose(row.code, row.name, row.name_en, row.description, row.enabled, builtin)
