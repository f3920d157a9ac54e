"""Routing rules, A/B variants, 防红 (anti-block) and allowed-platform settings: validation.

A rule is `{"when": {...conditions...}, "url": "..."}`; rules are evaluated in order and the first
whose conditions all match picks the destination. Conditions (each a list, any value matches):
`os`, `device`, `platform`, `country` (ISO code), `province`.
"""

from __future__ import annotations

from typing import Any

from siyu.errors import FieldError, InvalidInput
from siyu.links.urls import validate_url
from siyu.useragent.platforms import PLATFORMS

OS_FAMILIES = ("ios", "android", "harmonyos", "windows", "macos", "linux", "other")
DEVICE_CLASSES = ("mobile", "tablet", "desktop")
# Words usable in allowed/blocked platform lists besides the platform codes.
ACCESS_GROUPS = ("mobile", "tablet", "desktop", "ios", "android", "harmonyos", "in_app", "browser")
RULE_KEYS = ("os", "device", "platform", "country", "province")
MAX_RULES = 50
MAX_VARIANTS = 10


_PROVINCE_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")


def province_key(name: str) -> str:
    """'广东省', '广东' and 'guangdong'-style input compare equal once suffixes are dropped."""
    name = name.strip()
    for suffix in _PROVINCE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name.lower()


def platform_codes() -> list[str]:
    return [code for code in PLATFORMS if code != "none"]


def validate_platform_list(raw: object, field: str, allow_groups: bool) -> list[str]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list | tuple):
        raise InvalidInput(field, "must be a list of platform codes", code="platforms_not_list")
    allowed = set(platform_codes()) | (set(ACCESS_GROUPS) if allow_groups else set())
    out: list[str] = []
    for i, item in enumerate(raw):
        code = str(item).strip().lower() if isinstance(item, str) else None
        if code not in allowed:
            hint = ", ".join(sorted(allowed))
            raise InvalidInput(
                f"{field}[{i}]",
                f"unknown platform {item!r}; known: {hint}",
                code="platform_unknown",
                params={"value": item, "known": hint},
            )
        if code not in out:
            out.append(code)
    return out


def validate_rules(raw: object, own_hosts: set[str], field: str = "rules") -> list[dict[str, Any]]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise InvalidInput(field, "must be a list of {when, url} objects", code="rules_not_list")
    if len(raw) > MAX_RULES:
        raise InvalidInput(field, f"at most {MAX_RULES} rules", code="rules_too_many", params={"max": MAX_RULES})
    errors: list[FieldError] = []
    out: list[dict[str, Any]] = []
    for i, rule in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(rule, dict):
            errors.append(FieldError(where, "must be an object with 'when' and 'url'", code="rule_not_object"))
            continue
        found = len(errors)
        try:
            url = validate_url(rule.get("url"), f"{where}.url", own_hosts)
        except InvalidInput as exc:
            errors.extend(exc.errors)
        try:
            when = _validate_when(rule.get("when"), f"{where}.when")
        except InvalidInput as exc:
            errors.extend(exc.errors)
        if len(errors) == found:
            out.append({"when": when, "url": url})
    if errors:
        raise InvalidInput(errors)
    return out


def _validate_when(raw: object, field: str) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or not raw:
        keys = ", ".join(RULE_KEYS)
        raise InvalidInput(
            field, f"must be a non-empty object with any of {keys}", code="rule_when_empty", params={"keys": keys}
        )
    when: dict[str, list[str]] = {}
    for key, values in raw.items():
        if key not in RULE_KEYS:
            keys = ", ".join(RULE_KEYS)
            raise InvalidInput(
                f"{field}.{key}", f"unknown condition; use {keys}", code="rule_condition_unknown", params={"keys": keys}
            )
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise InvalidInput(f"{field}.{key}", "must be a non-empty list of strings", code="rule_values_empty")
        if key == "os":
            _check_members(values, OS_FAMILIES, f"{field}.os")
        elif key == "device":
            _check_members(values, DEVICE_CLASSES, f"{field}.device")
        elif key == "platform":
            values = validate_platform_list(values + [], f"{field}.platform", allow_groups=False)
        elif key == "country":
            values = [v.upper() for v in values]
            if any(len(v) != 2 or not v.isalpha() for v in values):
                raise InvalidInput(
                    f"{field}.country", "use two-letter ISO country codes such as CN", code="rule_country"
                )
        elif key == "province":
            values = [province_key(v) for v in values]
        when[key] = [v.lower() if key in ("os", "device") else v for v in values]
    return when


def _check_members(values: list[str], allowed: tuple[str, ...], field: str) -> None:
    bad = [v for v in values if v.lower() not in allowed]
    if bad:
        shown, known = ", ".join(bad), ", ".join(allowed)
        raise InvalidInput(
            field,
            f"unknown value(s) {shown}; use {known}",
            code="rule_values_unknown",
            params={"values": shown, "known": known},
        )


def validate_variants(raw: object, own_hosts: set[str], field: str = "variants") -> list[dict[str, Any]]:
    """Weighted A/B destinations; an empty list means no test."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise InvalidInput(field, "must be a list of {url, weight} objects", code="variants_not_list")
    if len(raw) == 1 or len(raw) > MAX_VARIANTS:
        raise InvalidInput(
            field,
            f"an A/B test needs 2 to {MAX_VARIANTS} destinations",
            code="variants_count",
            params={"min": 2, "max": MAX_VARIANTS},
        )
    errors: list[FieldError] = []
    out = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "must be an object with 'url' and 'weight'", code="variant_not_object"))
            continue
        found = len(errors)
        try:
            url = validate_url(item.get("url"), f"{where}.url", own_hosts)
        except InvalidInput as exc:
            errors.extend(exc.errors)
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
            errors.append(
                FieldError(
                    f"{where}.weight",
                    "must be a whole number from 1 to 1000",
                    code="int_range",
                    params={"min": 1, "max": 1000},
                )
            )
        if len(errors) == found:
            out.append({"url": url, "weight": weight})
    if errors:
        raise InvalidInput(errors)
    return out
