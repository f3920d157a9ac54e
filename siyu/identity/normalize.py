"""Input checking and normalisation of identifiers: one spelling per real-world value.

Junk that SDKs and forms send for "no value" ('null', 'undefined', '0', an all-zero IDFA, the
13800138000 every Chinese tutorial uses) is *blocked*: silently dropped, never linked, because one
such value shared by thousands of events would merge them all into one person. Malformed input
(unknown type, overlong value, not text) is an error naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from siyu.errors import FieldError, InvalidInput
from siyu.identity.rules import Rules, TypeRule

Key = tuple[str, str]
MAX_VALUE_LENGTH = 255
MAX_IDENTIFIERS = 50

BLOCKED_ANY = frozenset(
    {
        "",
        "null",
        "(null)",
        "nil",
        "none",
        "undefined",
        "nan",
        "0",
        "-1",
        "unknown",
        "n/a",
        "na",
        "test",
        "true",
        "false",
        "[object object]",
        "00000000-0000-0000-0000-000000000000",  # iOS IDFA when tracking is limited
    }
)
BLOCKED_PHONES = frozenset({"13800138000", "12345678901", "13012345678", "18888888888", "13888888888"})
_SEPARATORS = re.compile(r"[\s\-_.:()/]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]+")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_degenerate(value: str) -> bool:
    """All one repeated character once separators are removed ('11111111111', '0000-0000', 'aaaaa').

    Five characters at least: small member numbers such as '11' or '999' are real in old CRMs."""
    if len(value) < 5 or len(set(value)) > 9:  # fast exit: one character plus at most 8 separators
        return False
    core = _SEPARATORS.sub("", value)
    return len(core) >= 5 and len(set(core)) == 1


def phone_e164(raw: str) -> tuple[str, str]:
    """(E.164, national digits) of a phone number; China is the default country.

    '138 0013 8000', '+86 138-0013-8000', '008613800138000' → '+8613800138000'. Landlines keep their
    area code without the trunk 0: '010-8888 6666' → '+861088886666'.
    """
    s = _PHONE_SEPARATORS.sub("", raw)
    if s.startswith("00"):
        s = "+" + s[2:]
    if s.startswith("+"):
        digits = s[1:]
        if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
            raise ValueError("not an international phone number")
        if digits.startswith("86"):
            national = digits[2:]
            if national.startswith("1") and not _CN_MOBILE.match(national):
                raise ValueError("not a mainland China mobile number")
            return "+" + digits, national
        return "+" + digits, digits
    if not s.isdigit():
        raise ValueError("not a phone number")
    if len(s) == 13 and s.startswith("86") and _CN_MOBILE.match(s[2:]):
        s = s[2:]
    if _CN_MOBILE.match(s):
        return "+86" + s, s
    if s.startswith("0") and 10 <= len(s) <= 12:
        return "+86" + s[1:], s
    raise ValueError("not a phone number (mainland mobile numbers have 11 digits starting with 1)")


def normalize_value(rule: TypeRule, raw: str) -> str | None:
    """The stored form of `raw`, or None when it is blocked. Raises ValueError when malformed."""
    value = raw.strip()
    low = value.lower()
    if low in BLOCKED_ANY or low in rule.blocked or is_degenerate(value):
        return None
    if rule.name == "phone":
        bare = _PHONE_SEPARATORS.sub("", value).removeprefix("+").removeprefix("00")
        bare = bare[2:] if len(bare) == 13 and bare.startswith("86") else bare
        if bare in BLOCKED_PHONES:  # before the format check: 12345678901 is junk, not a typo
            return None
        e164, national = phone_e164(value)
        if national in BLOCKED_PHONES or {national, e164, e164.lower()} & rule.blocked or is_degenerate(national):
            return None
        return e164
    if rule.name == "email":
        if not _EMAIL.match(low):
            raise ValueError("not an e-mail address")
        return None if low in rule.blocked else low
    if rule.name == "openid":
        appid, sep, openid = value.partition(":")
        if not sep or not appid.strip() or not openid.strip() or len(appid) > 64:
            raise ValueError("must be 'appid:openid' (an openid is only unique within its app)")
        openid = openid.strip()
        if openid.lower() in BLOCKED_ANY or is_degenerate(openid):
            return None
        return f"{appid.strip()}:{openid}"
    if rule.name == "device_id":
        return low  # IDFA/OAID/Android ids arrive in both cases from different SDKs
    return value


def parse_identifiers(rules: Rules, raw: object, field: str = "identifiers") -> list[Key]:
    """Validate and normalise `[(type, value), ...]` (or `{"type", "value"}` mappings).

    Returns distinct keys in priority order (the order resolve() links them in); blocked values are
    dropped. Every malformed entry is reported, each naming its field.
    """
    if not isinstance(raw, list | tuple):
        raise InvalidInput(field, "must be a list of (type, value) pairs")
    if len(raw) > MAX_IDENTIFIERS:
        raise InvalidInput(field, f"at most {MAX_IDENTIFIERS} identifiers per call")
    errors: list[FieldError] = []
    keys: set[Key] = set()
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        pair = _pair(item)
        if pair is None:
            errors.append(FieldError(where, "must be a (type, value) pair"))
            continue
        id_type, value = pair
        if not isinstance(id_type, str):
            errors.append(FieldError(f"{where}.type", "must be text"))
            continue
        if id_type not in rules:
            errors.append(FieldError(f"{where}.type", f"unknown identifier type '{id_type[:40]}'"))
            continue
        try:
            key = normalize_key(rules[id_type], value)
        except InvalidInput as exc:
            errors.extend(FieldError(f"{where}.value", e.reason) for e in exc.errors)
            continue
        if key is not None:
            keys.add(key)
    if errors:
        raise InvalidInput(errors)
    return sorted(keys, key=rules.sort_key)


def normalize_key(rule: TypeRule, value: object) -> Key | None:
    if not isinstance(value, str):
        raise InvalidInput("value", "must be text")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidInput("value", f"at most {MAX_VALUE_LENGTH} characters")
    if "\x00" in value:
        raise InvalidInput("value", "must not contain NUL characters")
    try:
        normalized = normalize_value(rule, value)
    except ValueError as exc:
        raise InvalidInput("value", str(exc)) from exc
    return None if normalized is None else (rule.name, normalized)


def _pair(item: Any) -> tuple[Any, Any] | None:
    if isinstance(item, dict):
        if set(item) != {"type", "value"}:
            return None
        return item["type"], item["value"]
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], item[1]
    return None


def check_ref(value: object, field: str) -> str | None:
    """Event references are opaque to us; they only have to fit the log columns."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200 or "\x00" in value:
        raise InvalidInput(field, "must be text of 1 to 200 characters, without NUL")
    return value


def check_workspace(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("workspace_id", "must be a positive whole number")
    return value
