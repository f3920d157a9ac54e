"""One cell of an import file in, one clean value out: times, amounts, phones, flags as operators type them.

Every parser takes the cell's text (already stripped; JSON scalars arrive as text too) and returns the
value or raises `CellError` with an English reason and a code the console translates. Times without
an offset are China time (UTC+8; China has kept no daylight saving since 1991).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from siyu.identity.normalize import normalize_value
from siyu.identity.rules import DEFAULT_TYPES

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_TEXT = 500
MAX_ID = 200
EARLIEST_YEAR = 1970
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones: "tomorrow" by a few hours is still a typo we allow


class CellError(ValueError):
    def __init__(self, reason: str, code: str, params: Mapping[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.params = dict(params or {})


class Placeholder(Exception):
    """A value that means "none" ('13800138000', 'null'): not an error, but it links nobody (a warning)."""

    def __init__(self, value: str):
        super().__init__(value)
        self.value = value


def text(value: str, limit: int = MAX_TEXT) -> str:
    if len(value) > limit:
        raise CellError(f"must be text of at most {limit} characters", "text_max_length", {"max": limit})
    if "\x00" in value:
        raise CellError("must not contain NUL characters", "text_nul")
    return value


def ident(value: str) -> str:
    return text(value, MAX_ID)


# -- numbers -----------------------------------------------------------------------------------------
_AMOUNT = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,6})?$")
_CURRENCY_SIGNS = ("¥", "￥", "元")


def amount(value: str) -> float:
    """'12.30', '1,234.50', '¥99', '99元' → a number; '12,3x' or '12,3' (a decimal comma?) is refused."""
    core = value.replace(" ", "")
    for sign in _CURRENCY_SIGNS:
        core = core.removeprefix(sign).removesuffix(sign)
    if not _AMOUNT.match(core):
        raise CellError("must be an amount such as 12.30", "import_amount")
    number = float(Decimal(core.replace(",", "")))
    if number < 0:
        raise CellError("must be 0 or more", "not_negative")
    return number


def whole(value: str, minimum: int | None = None) -> int:
    core = value.replace(",", "") if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", value) else value
    if core.endswith(".0"):  # spreadsheets turn 3 into 3.0
        core = core[:-2]
    if not re.fullmatch(r"[+-]?\d{1,15}", core):
        raise CellError("must be a whole number", "whole_number")
    number = int(core)
    if minimum is not None and number < minimum:
        raise CellError(f"must be a whole number of at least {minimum}", "int_min", {"min": minimum})
    return number


def minutes(value: str) -> float:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CellError("must be a number of minutes such as 45 or 12.5", "import_minutes") from None
    if not number.is_finite() or number < 0 or number > 100_000:
        raise CellError("must be a number of minutes such as 45 or 12.5", "import_minutes")
    return float(number)


# -- times -------------------------------------------------------------------------------------------
_DATETIME = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_CJK_DATE = str.maketrans({"年": "-", "月": "-", "日": " ", "时": ":", "分": ":", "秒": " "})
TIME_HELP = "use 2024-05-01 14:30:00, 2024/05/01 14:30 or ISO 8601; China time unless an offset is given"


def moment(value: str, now: datetime | None = None) -> datetime:
    """A point in time, timezone-aware UTC.

    Accepts ISO 8601 ('2024-05-01T14:30:00+08:00', '...Z'), '2024-05-01 14:30:00', '2024/5/1 14:30',
    '2024年5月1日 14:30', a bare date (midnight), and Unix epoch seconds or milliseconds (WeChat's
    subscribe_time). Without an offset the time is China time.
    """
    raw = value.translate(_CJK_DATE).strip().rstrip(":")
    parsed: datetime | None = None
    if raw.isdigit() and len(raw) in (10, 13):
        parsed = datetime.fromtimestamp(int(raw) / (1000 if len(raw) == 13 else 1), UTC)
    elif m := _DATETIME.match(raw):
        year, month, day, hour, minute, second, fraction, offset = m.groups()
        try:
            parsed = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "0").ljust(6, "0")),
                tzinfo=_zone(offset),
            )
        except ValueError:
            parsed = None
    if parsed is None:
        raise CellError(f"not a date-time: {TIME_HELP}", "import_time")
    return _in_range(parsed.astimezone(UTC), now)


def _zone(offset: str | None) -> timezone:
    if offset is None:
        return CHINA
    if offset.upper() == "Z":
        return UTC
    digits = offset[1:].replace(":", "")
    hours, mins = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or mins > 59:
        raise ValueError("offset out of range")
    delta = timedelta(hours=hours, minutes=mins)
    return timezone(-delta if offset[0] == "-" else delta)


def _in_range(value: datetime, now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if value.year < EARLIEST_YEAR:
        raise CellError(
            f"must be between the years {EARLIEST_YEAR} and {now.year}",
            "year_range",
            {"min": EARLIEST_YEAR, "max": now.year},
        )
    if value > now + FUTURE_SLACK:
        raise CellError("is in the future", "import_future")
    return value


def day(value: str, now: datetime | None = None) -> str:
    """A calendar date (a birthday): '1990-05-01', '1990/5/1', '19900501', '1990年5月1日' → '1990-05-01'."""
    raw = value.translate(_CJK_DATE).strip()
    if re.fullmatch(r"\d{8}", raw):
        raw = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", raw)
    try:
        parsed = date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise CellError("not a date: use 1990-05-01", "import_date")
    today = (now or datetime.now(UTC)).astimezone(CHINA).date()
    if parsed.year < 1900 or parsed > today:
        raise CellError(
            f"must be between the years 1900 and {today.year}", "year_range", {"min": 1900, "max": today.year}
        )
    return parsed.isoformat()


def iso(value: datetime) -> str:
    """Segment's time format: UTC with milliseconds and 'Z'."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


# -- identifiers ---------------------------------------------------------------------------------------
def phone(value: str) -> str:
    """E.164 through the identity normaliser ('138 1234 5678' → '+8613812345678'); placeholders raise Placeholder."""
    try:
        normalized = normalize_value(DEFAULT_TYPES["phone"], text(value, 40))
    except ValueError as exc:
        raise CellError(str(exc), "import_phone", {"detail": str(exc)}) from None
    if normalized is None:
        raise Placeholder(value)
    return normalized


def email(value: str) -> str:
    try:
        normalized = normalize_value(DEFAULT_TYPES["email"], text(value, 254))
    except ValueError:
        raise CellError("not a valid e-mail address", "email_invalid") from None
    if normalized is None:
        raise Placeholder(value)
    return normalized


def identifier(value: str) -> str:
    """A member id, unionid or openid: junk such as 'null' or '0' is a placeholder, not an id."""
    checked = ident(value)
    if normalize_value(DEFAULT_TYPES["member_id"], checked) is None:
        raise Placeholder(value)
    return checked


# -- words -------------------------------------------------------------------------------------------
def choice(value: str, words: Mapping[str, Any], reason: str, code: str) -> Any:
    try:
        return words[value.strip().lower()]
    except KeyError:
        raise CellError(reason, code) from None


CONSENT_WORDS = {
    **dict.fromkeys(("granted", "grant", "yes", "y", "true", "1", "是", "同意", "已同意", "agree", "opt-in"), True),
    **dict.fromkeys(("denied", "deny", "no", "n", "false", "0", "否", "不同意", "拒绝", "已拒绝", "withdrawn"), False),
    **dict.fromkeys(("opt-out", "撤回", "已撤回"), False),
}
GENDER_WORDS = {
    **dict.fromkeys(("male", "m", "男", "1", "先生"), "male"),
    **dict.fromkeys(("female", "f", "女", "2", "女士"), "female"),
    **dict.fromkeys(("unknown", "0", "未知", "保密", "other", "其他"), None),
}


def consent(value: str) -> bool:
    return choice(value, CONSENT_WORDS, "must be granted or denied (also 1/0, 是/否, true/false)", "import_consent")


def gender(value: str) -> str | None:
    return choice(value, GENDER_WORDS, "must be male or female (also 男/女, 1/2)", "import_gender")


CURRENCY_WORDS = {"rmb": "CNY", "人民币": "CNY", "元": "CNY", "¥": "CNY", "￥": "CNY"}


def currency(value: str) -> str:
    word = CURRENCY_WORDS.get(value.strip().lower())
    if word:
        return word
    if not re.fullmatch(r"[A-Za-z]{3}", value):
        raise CellError("must be a 3-letter currency code such as CNY", "import_currency")
    return value.upper()
