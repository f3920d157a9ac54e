"""Segment-spec messages: validation, limits and clock-skew correction (no HTTP here).

Follows the HTTP Tracking API as the real SDKs use it (analytics-python, analytics.js, mobile):

* six types: identify, track, page, screen, group, alias;
* `userId` or `anonymousId` on every message except alias, which needs `userId` and `previousId`;
  group needs `groupId`, track needs `event`; ids may be strings or numbers (stored as text);
* `null` is the same as absent for every optional field (analytics-python sends `"userId": null`);
* at most 32 KB per message and 500 KB per batch request (Segment answers 400 past either);
* `timestamp` is the client's clock: the stored timestamp is corrected by the client's offset
  measured at send time, `timestamp + (receivedAt - sentAt)`, as Segment does.

Each problem names the field, with the batch index for batch items (`batch[3].event`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from siyu.errors import FieldError

TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_CHARS = 1024
_TYPE_SET = frozenset(TYPES)
_OTHER_OBJECTS = ("properties", "traits", "integrations")


class MessageError(ValueError):
    """One message (or one request-level field) is refused; `field` names it."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def as_field_error(self) -> FieldError:
        return FieldError(self.field, self.reason)


class Message(NamedTuple):
    """A valid message: what the ingester needs besides the JSON itself."""

    type: str
    message_id: str | None
    timestamp_us: int | None  # the client's clock
    sent_at_us: int | None
    context_ip: str | None
    raw: bytes  # the message as JSON, normalised (ids as text, writeKey removed)


def to_us(value: datetime) -> int:
    return round(value.timestamp() * 1_000_000)


def parse_time(value: Any, field: str) -> int | None:
    """ISO 8601 text (naive means UTC) -> epoch microseconds; None/absent -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return to_us(dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC))
    raise MessageError(field, "must be an ISO 8601 date-time such as 2024-05-01T10:00:00.000Z")


def corrected_timestamp(timestamp_us: int | None, sent_at_us: int | None, received_at_us: int) -> int:
    """The event time on the server's clock: the client's offset (sentAt vs receivedAt) removed."""
    if timestamp_us is None:
        return received_at_us
    if sent_at_us is None:
        return timestamp_us
    return timestamp_us + (received_at_us - sent_at_us)


def _id(msg: dict, key: str, prefix: str) -> str | None:
    value = msg.get(key)
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS:  # the common case, first
        return value
    if value is None or value == "":
        return None
    if type(value) is str:
        raise MessageError(prefix + key, f"must be at most {MAX_ID_CHARS} characters")
    if type(value) in (int, float):  # numbers are ids too (SDKs stringify them); store the text
        text = str(value)
        msg[key] = text
        return text
    raise MessageError(prefix + key, "must be a string")


def parse_message(msg: Any, type_: str | None, prefix: str = "") -> Message:
    """Validate one message; `type_` is forced by single-call paths (/v1/track), else read from it.

    Runs on the event loop for every message, so the common cases come first and stay inline.
    """
    if type(msg) is not dict:
        raise MessageError(prefix.rstrip(".") or "body", "must be a JSON object")
    get = msg.get
    if type_ is None:
        type_ = get("type")
        if type_ not in _TYPE_SET:
            reason = "is required" if type_ is None else "is not a message type"
            raise MessageError(prefix + "type", f"{reason}: one of {', '.join(TYPES)}")
    else:
        msg["type"] = type_
    if "writeKey" in msg:
        del msg["writeKey"]  # authentication, not data: never stored

    user_id = _id(msg, "userId", prefix)
    if type_ == "alias":
        if user_id is None:
            raise MessageError(prefix + "userId", "is required for alias")
        if _id(msg, "previousId", prefix) is None:
            raise MessageError(prefix + "previousId", "is required for alias")
        _id(msg, "anonymousId", prefix)
    elif _id(msg, "anonymousId", prefix) is None and user_id is None:
        raise MessageError(prefix + "userId", "userId or anonymousId is required")
    if type_ == "track":
        event = get("event")
        if type(event) is not str or not event.strip():
            raise MessageError(prefix + "event", "is required for track: the event name, a non-empty string")
    elif type_ == "group":
        if _id(msg, "groupId", prefix) is None:
            raise MessageError(prefix + "groupId", "is required for group")
    elif type_ in ("page", "screen"):
        for key in ("name", "category"):
            value = get(key)
            if value is not None and type(value) is not str:
                raise MessageError(prefix + key, "must be a string")
    context = get("context")
    if context is not None and type(context) is not dict:
        raise MessageError(prefix + "context", "must be a JSON object")
    for key in _OTHER_OBJECTS:
        value = get(key)
        if value is not None and type(value) is not dict:
            raise MessageError(prefix + key, "must be a JSON object")
    message_id = _id(msg, "messageId", prefix)
    timestamp = get("timestamp")
    if timestamp is None:
        timestamp = get("originalTimestamp")
    timestamp_us = None if timestamp is None else parse_time(timestamp, prefix + "timestamp")
    sent_at = get("sentAt")
    sent_at_us = None if sent_at is None else parse_time(sent_at, prefix + "sentAt")
    ip = context.get("ip") if context else None

    raw = orjson.dumps(msg)
    if len(raw) > MAX_EVENT_BYTES:
        raise MessageError(
            prefix.rstrip(".") or "body",
            f"is {len(raw) / 1024:.1f} KB; a message may be at most {MAX_EVENT_BYTES // 1024} KB",
        )
    return Message(type_, message_id, timestamp_us, sent_at_us, ip if type(ip) is str else None, raw)
