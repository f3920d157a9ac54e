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

Two validators give the same answers. `parse_message` takes a decoded message (a dict) and finds
every problem with its reason. `fast_message` takes one message of a batch as JSON text: msgspec
decodes it straight into typed fields (in C, no dict for the message itself) and a few Python
checks settle the rules that span fields. It accepts only what `parse_message` would accept and
produces the same `Message`; anything it is not sure of (any problem, an id sent as a number, an
unknown field, an integer beyond 64 bits, a message that might be near the size limit) it leaves
to `parse_message` by returning None. tests/test_fast_ingest.py checks both agree on varied and
broken inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, NamedTuple

import msgspec
import orjson

from siyu.errors import FieldError

TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_CHARS = 1024
MAX_DEPTH = 254  # levels of objects and arrays in a message, itself included (orjson encodes no deeper)
TOO_DEEP = f"is nested too deeply: at most {MAX_DEPTH} levels of objects and arrays"
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
    # The message as JSON, normalised (ids as text, writeKey removed). Text, not orjson's bytes: those
    # sit in a buffer of their own with a page to themselves, and a few thousand of them waiting in
    # the queue cost a page fault each (measured ~2.5 µs an event); a str copy is packed.
    raw: str


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
        if type(type_) is not str or type_ not in _TYPE_SET:  # {"type": {}} is unhashable: not a 500
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

    try:
        raw = orjson.dumps(msg)
    except TypeError:  # orjson decodes 1,000 levels of nesting but encodes fewer: never a 500
        raise MessageError(prefix.rstrip(".") or "body", TOO_DEEP) from None
    if len(raw) > MAX_EVENT_BYTES:
        raise MessageError(
            prefix.rstrip(".") or "body",
            f"is {len(raw) / 1024:.1f} KB; a message may be at most {MAX_EVENT_BYTES // 1024} KB",
        )
    return Message(type_, message_id, timestamp_us, sent_at_us, ip if type(ip) is str else None, raw.decode())


# -- the fast path ------------------------------------------------------------------------------------------

# The largest message (JSON as sent) whose normalised form (`orjson.dumps` of the decoded message, the
# form the 32 KB limit is measured on) is certainly within the limit: re-encoding never grows a message
# by more than 5 times (the worst is a float written short, `1e15`, printed `1000000000000000.0`).
# Larger messages are measured exactly by `parse_message`.
FAST_MAX_BYTES = (MAX_EVENT_BYTES - 256) // 5

_Text = str | None  # ids as numbers, and anything else unusual, go the slow way
_IdText = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)] | None
_RequiredId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]


class _Fast(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False, tag_field="type"):
    """The fields of a message this service reads, typed as `parse_message` accepts them, or stricter
    (a number for `event` in an identify, an id sent as a number: those messages go the slow way).
    Unknown fields go the slow way too, so every byte of a fast message is decoded and checked, as
    orjson does in the slow path. One subclass per type carries that type's required fields."""

    messageId: _IdText = None
    userId: _IdText = None
    anonymousId: _IdText = None
    groupId: _Text = None
    previousId: _Text = None
    event: _Text = None
    name: _Text = None
    category: _Text = None
    channel: _Text = None
    timestamp: _Text = None
    originalTimestamp: _Text = None
    sentAt: _Text = None
    context: dict | None = None
    properties: dict | None = None
    traits: dict | None = None
    integrations: dict | None = None
    # Sent by the SDKs and never stored: decoded and dropped. Typed narrowly (no integers, which msgspec
    # decodes to any size where orjson refuses some), so anything else goes the slow way.
    writeKey: _Text = None
    metadata: dict[str, list[str]] | None = msgspec.field(default=None, name="_metadata")  # analytics.js
    receivedAt: _Text = None
    kind: ClassVar[str]  # the message type (the tag)


class _Identify(_Fast, tag="identify"):
    kind: ClassVar[str] = "identify"


class _Track(_Fast, tag="track"):
    kind: ClassVar[str] = "track"
    event: str  # and not blank: checked in fast_message


class _Page(_Fast, tag="page"):
    kind: ClassVar[str] = "page"


class _Screen(_Fast, tag="screen"):
    kind: ClassVar[str] = "screen"


class _Group(_Fast, tag="group"):
    kind: ClassVar[str] = "group"
    groupId: _RequiredId


class _Alias(_Fast, tag="alias"):
    kind: ClassVar[str] = "alias"
    userId: _RequiredId
    previousId: _RequiredId


_new_tuple = tuple.__new__
_from_iso = datetime.fromisoformat

_decode_message = msgspec.json.Decoder(_Identify | _Track | _Page | _Screen | _Group | _Alias).decode


def fast_message(raw: bytes | msgspec.Raw) -> Message | None:
    """`parse_message(orjson.loads(raw), None, ...)` for a well-formed batch message, or None.

    None means "not sure": the message may be invalid, or valid in a way this path does not handle;
    the caller then runs `parse_message`, which gives the exact answer and reason.
    """
    if len(raw) > FAST_MAX_BYTES:
        return None
    try:
        m = _decode_message(raw)
    except Exception:  # invalid, unexpected, invalid UTF-8, nested too deep...: parse_message decides
        return None
    user = m.userId
    anon = m.anonymousId
    type_ = m.kind
    if not (user or anon) or type_ == "track" and not m.event.strip():  # type: ignore[union-attr]
        return None
    try:
        timestamp = m.timestamp
        if timestamp is None:
            timestamp = m.originalTimestamp
        if timestamp is None:  # parse_time(), inline: this runs for every message
            timestamp_us = None
        else:
            dt = _from_iso(timestamp)
            timestamp_us = round((dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp() * 1_000_000)
        sent_at = m.sentAt
        if sent_at is None:
            sent_at_us = None
        else:
            dt = _from_iso(sent_at)
            sent_at_us = round((dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp() * 1_000_000)
        context = m.context
        # What the store reads of a message (siyu.events.event_sql._SHAPE), encoded as the slow path
        # encodes the whole message: the same values give the same JSON. orjson refuses integers beyond
        # 64 bits, which the slow path would have decoded as floats: those messages go the slow way.
        raw_json = orjson.dumps(
            {
                "userId": user,
                "anonymousId": anon,
                "groupId": m.groupId,
                "previousId": m.previousId,
                "event": m.event,
                "name": m.name,
                "channel": m.channel,
                "context": context,
                "properties": m.properties,
                "traits": m.traits,
                "integrations": m.integrations,
            }
        ).decode()
    except (ValueError, OverflowError, TypeError):  # a bad time; orjson: integer beyond 64 bits, too deep
        return None
    ip = context.get("ip") if context else None
    # Message(...) without NamedTuple's __new__ (a Python function: 0.3 µs of a message's ~3).
    return _new_tuple(
        Message, (type_, m.messageId or None, timestamp_us, sent_at_us, ip if type(ip) is str else None, raw_json)
    )
