"""Ingestion: a decoded Segment payload in, de-duplicated rows on the event queue out.

The delivery layer (siyu.api.tracking) reads the body, authenticates the write key and hands the
decoded JSON here with the sender and the request's time and address. Request-level problems (not
an object, `batch` not a list, a bad batch-level field) raise `MessageError` and nothing is kept.
Message-level problems refuse that message only: the valid messages of a batch are kept, and the
result lists each refused one by index. (A batch all-or-nothing would drop the good events of a
batch for one bad one, and SDKs do not retry a 400, so they would be lost for good.)

POST /v1/batch has a fast path: `prepare_batch` takes the request body as bytes and validates it
without building a dict per message (msgspec, see `siyu.events.messages.fast_message`); a message it
is unsure of goes through `parse_message`, and a body it is unsure of (anything orjson might refuse or
decode differently) goes back whole to the slow path (`ingest_batch` on the orjson-decoded payload),
so answers, errors and stored rows are the same either way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from siyu.errors import FieldError
from siyu.events.dedupe import MessageIdFilter
from siyu.events.messages import TOO_DEEP, Message, MessageError, fast_message, parse_message, parse_time
from siyu.events.store import EventStore
from siyu.events.writer import EventChunk, EventQueue


@dataclass(frozen=True)
class Sender:
    """Who sent the request, as settled from its write key."""

    workspace_id: int
    source_id: int
    device_side: bool = False  # a browser or mini program: the request's address is the visitor's


@dataclass
class PreparedBatch:
    """A /v1/batch body validated by `prepare_batch`: each message settled, or refused with its reason."""

    messages: list[Message]  # the valid ones, in order
    refused: list[MessageError]  # the others, in order
    sent_at_us: int | None
    context: dict | None
    context_json: str | None
    write_key: str | None


class _FastBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    batch: list[msgspec.Raw]
    sentAt: str | None = None
    context: dict | None = None
    writeKey: str | None = None


_decode_body = msgspec.json.Decoder(_FastBody).decode


def prepare_batch(body: bytes) -> PreparedBatch | None:
    """Validate a /v1/batch body as `Ingestor.ingest_batch(..., orjson.loads(body))` would; no side effects.

    Returns None when the slow path must decide: a body that is not a plain batch object (unknown or
    mistyped top-level fields, a bad sentAt), or any message orjson would refuse in this body, so the
    request gets the slow path's exact error (the position of a JSON error is the body's).
    """
    try:  # anything unexpected (invalid JSON or UTF-8, too deep, a bad sentAt, ...): the slow path decides
        decoded = _decode_body(body)
        sent_at_us = parse_time(decoded.sentAt, "sentAt")
        context = decoded.context
        context_json = orjson.dumps(context).decode() if context else None
    except Exception:
        return None
    raws = decoded.batch
    messages: list[Message | None] = [fast_message(raw) for raw in raws]
    refused: list[MessageError] = []
    if None in messages:  # some are for parse_message to settle
        settled: list[Message | None] = []
        for index, (raw, msg) in enumerate(zip(raws, messages, strict=True)):
            if msg is None:
                try:  # nested as deep as in the body: orjson's depth limit counts from the body's root
                    item = orjson.loads(b"[[" + bytes(raw) + b"]]")[0][0]
                except orjson.JSONDecodeError:
                    return None
                try:
                    msg = parse_message(item, None, f"batch[{index}].")
                except MessageError as exc:
                    refused.append(exc)
                    continue
            settled.append(msg)
        messages = settled
    return PreparedBatch(messages, refused, sent_at_us, context, context_json, decoded.writeKey)  # type: ignore[arg-type]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    refused: list[FieldError] = field(default_factory=list)


class Ingestor:
    def __init__(self, queue: EventQueue, dedupe: MessageIdFilter | None = None):
        self.queue = queue
        self.dedupe = dedupe or MessageIdFilter()

    def warm(self, store: EventStore) -> int:
        """Reload the de-duplication window from the store (call once at startup)."""
        since = time.time() - self.dedupe.window - self.dedupe.span
        return self.dedupe.warm(store.recent_message_ids(datetime.fromtimestamp(since, UTC)))

    def ingest_batch(
        self, sender: Sender, payload: Any, received_at: float | None = None, request_ip: str | None = None
    ) -> IngestResult:
        """`{"batch": [...], "sentAt"?, "context"?, "writeKey"?}` (POST /v1/batch, /v1/b, /v1/import)."""
        if type(payload) is not dict:
            raise MessageError("body", "must be a JSON object with a 'batch' list")
        batch = payload.get("batch")
        if type(batch) is not list:
            raise MessageError("batch", "is required: a list of messages" if batch is None else "must be a list")
        context = payload.get("context")
        if context is not None and type(context) is not dict:
            raise MessageError("context", "must be a JSON object")
        sent_at = parse_time(payload.get("sentAt"), "sentAt")
        try:
            context_json = orjson.dumps(context).decode() if context else None
        except TypeError:  # nested deeper than orjson encodes
            raise MessageError("context", TOO_DEEP) from None
        valid, refused = _parsed(batch, None, "batch[{}].")
        return self._ingest(sender, valid, refused, sent_at, context, context_json, received_at, request_ip)

    def ingest_prepared(
        self,
        sender: Sender,
        prepared: PreparedBatch,
        received_at: float | None = None,
        request_ip: str | None = None,
    ) -> IngestResult:
        """A body `prepare_batch` validated: the same result as `ingest_batch` on the decoded body."""
        return self._ingest(
            sender,
            prepared.messages,
            prepared.refused,
            prepared.sent_at_us,
            prepared.context,
            prepared.context_json,
            received_at,
            request_ip,
        )

    def ingest_one(
        self,
        sender: Sender,
        type_: str,
        payload: Any,
        received_at: float | None = None,
        request_ip: str | None = None,
    ) -> IngestResult:
        """One message (POST /v1/track, /v1/t, ...): its type comes from the path."""
        valid, refused = _parsed([payload], type_, "")
        return self._ingest(sender, valid, refused, None, None, None, received_at, request_ip)

    def _ingest(
        self,
        sender: Sender,
        messages: list[Message],
        refused: list[MessageError],
        batch_sent_at: int | None,
        batch_context: dict | None,
        context_json: str | None,
        received_at: float | None,
        request_ip: str | None,
    ) -> IngestResult:
        """Queue the valid messages as one chunk: de-duplicated, clock-corrected, with their IPs.

        Column by column (comprehensions and C-level zips) rather than message by message: this runs
        on the event loop for every event, where each Python statement a message counts."""
        result = IngestResult(refused=[exc.as_field_error() for exc in refused])
        if not messages:
            return result
        received_us = round((time.time() if received_at is None else received_at) * 1_000_000)
        received_s = received_us / 1_000_000
        batch_ip = batch_context.get("ip") if batch_context else None
        fallback_ip = batch_ip if type(batch_ip) is str else request_ip if sender.device_side else None
        workspace_id = sender.workspace_id
        types, ids, originals, sent_ats, ips, raws = zip(*messages, strict=True)
        duplicate: list[bool] = []
        if None in ids:  # ids are made for the messages that came without one
            seen = self.dedupe.seen
            duplicate = [False if mid is None else seen(workspace_id, mid, received_s) for mid in ids]
            ids = tuple(f"siyu-{uuid.uuid4()}" if message_id is None else message_id for message_id in ids)
        elif not self.dedupe.all_new(workspace_id, ids, received_s):  # the common case: all new, at once
            seen = self.dedupe.seen  # once an id, in order: a batch may repeat itself
            duplicate = [seen(workspace_id, message_id, received_s) for message_id in ids]
        if batch_sent_at is not None:
            sent_ats = tuple(batch_sent_at if sent is None else sent for sent in sent_ats)
        timestamps = [  # corrected_timestamp(), inline
            received_us if original is None else original if sent is None else original + (received_us - sent)
            for original, sent in zip(originals, sent_ats, strict=True)
        ]
        if fallback_ip is not None:
            ips = tuple(ip or fallback_ip for ip in ips)
        columns: list = [ids, types, timestamps, originals, sent_ats, ips, raws]
        if True in duplicate:
            result.duplicates = sum(duplicate)
            columns = [[value for value, dup in zip(column, duplicate, strict=True) if not dup] for column in columns]
        result.accepted = len(columns[0])
        if result.accepted:
            self.queue.put(EventChunk(workspace_id, sender.source_id, received_us, context_json, *columns))
        return result


def _parsed(messages: list, type_: str | None, prefix: str) -> tuple[list[Message], list[MessageError]]:
    """Each message validated by `parse_message`: the valid ones and the refused ones, each in order."""
    valid: list[Message] = []
    refused: list[MessageError] = []
    for index, item in enumerate(messages):
        try:
            valid.append(parse_message(item, type_, prefix.format(index)))
        except MessageError as exc:
            refused.append(exc)
    return valid, refused
