"""Ingestion: a decoded Segment payload in, de-duplicated rows on the event queue out.

The delivery layer (siyu.api.tracking) reads the body, authenticates the write key and hands the
decoded JSON here with the sender and the request's time and address. Request-level problems (not
an object, `batch` not a list, a bad batch-level field) raise `MessageError` and nothing is kept.
Message-level problems refuse that message only: the valid messages of a batch are kept, and the
result lists each refused one by index. (A batch all-or-nothing would drop the good events of a
batch for one bad one, and SDKs do not retry a 400, so they would be lost for good.)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from siyu.errors import FieldError
from siyu.events.dedupe import MessageIdFilter
from siyu.events.messages import MessageError, parse_message, parse_time
from siyu.events.store import EventStore
from siyu.events.writer import EventQueue


@dataclass(frozen=True)
class Sender:
    """Who sent the request, as settled from its write key."""

    workspace_id: int
    source_id: int
    device_side: bool = False  # a browser or mini program: the request's address is the visitor's


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
        return self._ingest(sender, batch, None, "batch[{}].", sent_at, context, received_at, request_ip)

    def ingest_one(
        self,
        sender: Sender,
        type_: str,
        payload: Any,
        received_at: float | None = None,
        request_ip: str | None = None,
    ) -> IngestResult:
        """One message (POST /v1/track, /v1/t, ...): its type comes from the path."""
        return self._ingest(sender, [payload], type_, "", None, None, received_at, request_ip)

    def _ingest(
        self,
        sender: Sender,
        messages: list,
        type_: str | None,
        prefix: str,
        batch_sent_at: int | None,
        batch_context: dict | None,
        received_at: float | None,
        request_ip: str | None,
    ) -> IngestResult:
        received_us = round((time.time() if received_at is None else received_at) * 1_000_000)
        received_s = received_us / 1_000_000
        context_json = orjson.dumps(batch_context).decode() if batch_context else None
        batch_ip = batch_context.get("ip") if batch_context else None
        fallback_ip = batch_ip if type(batch_ip) is str else request_ip if sender.device_side else None
        workspace_id, source_id = sender.workspace_id, sender.source_id
        seen = self.dedupe.seen
        result = IngestResult()
        rows = []
        for index, item in enumerate(messages):
            try:
                msg = parse_message(item, type_, prefix.format(index))
            except MessageError as exc:
                result.refused.append(exc.as_field_error())
                continue
            message_id = msg.message_id
            if message_id is None:
                message_id = f"siyu-{uuid.uuid4()}"
            elif seen(workspace_id, message_id, received_s):
                result.duplicates += 1
                continue
            sent_us = msg.sent_at_us if msg.sent_at_us is not None else batch_sent_at
            original_us = msg.timestamp_us
            if original_us is None:  # corrected_timestamp(), inline: this loop runs for every message
                timestamp_us = received_us
            elif sent_us is None:
                timestamp_us = original_us
            else:
                timestamp_us = original_us + (received_us - sent_us)
            rows.append(
                (
                    message_id,
                    workspace_id,
                    source_id,
                    msg.type,
                    timestamp_us,
                    original_us,
                    sent_us,
                    received_us,
                    msg.context_ip or fallback_ip,
                    context_json,
                    msg.raw,
                )
            )
        self.queue.put_many(rows)
        result.accepted = len(rows)
        return result
