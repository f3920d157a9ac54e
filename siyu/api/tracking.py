"""The tracking API: Segment's HTTP Tracking API on `/v1/...`, so existing SDKs work unchanged.

    POST /v1/batch  (alias /v1/import)                {"batch": [...], "sentAt"?, "context"?, "writeKey"?}
    POST /v1/identify|track|page|screen|group|alias   one message
    POST /v1/b, /v1/i, /v1/t, /v1/p, /v1/s, /v1/g, /v1/a   analytics.js's short paths (JSON sent as text/plain)

Authentication, as the SDKs send it: `Authorization: Basic base64(writeKey + ":")` (analytics-python
2.4+, most server SDKs) or `writeKey` in the body (analytics-python 2.3, analytics.js). The header
wins when both are present. Unknown, malformed or disabled keys get 401.

Answers, like Segment's: `200 {"success": true}`; problems `400` (401, 404, 405) with
`{"success": false, "code", "message", "fields": [{"field", "reason"}]}`; the SDKs read `code` and
`message`. In a batch the valid messages are kept even when others are refused (see
siyu.events.ingest): the 400 then says how many were accepted and names each refused one by index.
Bodies may be gzip- or deflate-encoded; the limits (32 KB a message, 500 KB a batch) apply to the
decoded JSON. Browsers post cross-origin, so every answer carries CORS headers and OPTIONS is
answered for preflights. When the writer falls behind (more than `events_max_queued` events
waiting, 200,000 by default: about 130 MB), requests get `429` with `Retry-After: 1`, which the
SDKs retry, instead of the queue growing without bound.

A raw ASGI app (mounted at /v1): no framework request/response objects on a path that takes
hundreds of batches a second. A batch body is validated by `siyu.events.ingest.prepare_batch`
(msgspec, no dict per message) when it is sure of it, else decoded with orjson and validated message
by message: the same answers either way (tests/test_fast_ingest.py).
"""

from __future__ import annotations

import base64
import binascii
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import orjson

from siyu.errors import FieldError
from siyu.events.ingest import Ingestor, IngestResult, Sender, prepare_batch
from siyu.events.messages import MAX_BATCH_BYTES, MAX_EVENT_BYTES, TYPES, MessageError
from siyu.runtime import Runtime
from siyu.sources.keys import MISS, SourceRef, WriteKeyResolver

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

BATCH = "batch"
# Path (after /v1/) -> message type, or BATCH.
ROUTES: dict[str, str] = {"batch": BATCH, "import": BATCH, "b": BATCH}
ROUTES.update({t: t for t in TYPES})
ROUTES.update({t[0]: t for t in TYPES})  # analytics.js: /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a

_SUCCESS = b'{"success":true}'
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"content-type"),
]
_PREFLIGHT = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-max-age", b"86400"),
]
_DEFAULT_ALLOWED_HEADERS = b"content-type, authorization, content-encoding"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_COMPRESSED_SLACK = 16 * 1024  # incompressible data grows a little when gzipped


class Refused(Exception):
    """The whole request is refused: status, code, message and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, fields: list[FieldError] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        super().__init__(message)


class _ClientGone(Exception):
    """The client disconnected before sending its whole body: nobody is left to answer."""


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


DEFAULT_MAX_QUEUED = 200_000


class TrackingApp:
    def __init__(self, runtime: Runtime):
        self.ingestor: Ingestor = runtime.ingestor
        self.queue = runtime.events
        self.max_queued = int(runtime.settings.extra.get("events_max_queued", DEFAULT_MAX_QUEUED))
        self.keys = WriteKeyResolver(runtime.db)
        self.trust_proxy = runtime.settings.extra.get("trust_proxy") == "1"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        route = ROUTES.get(path[4:].rstrip("/")) if path.startswith("/v1/") else None
        headers = dict(scope["headers"])
        try:
            if route is None:
                raise Refused(404, "not_found", f"no tracking endpoint at {path}")
            method = scope["method"]
            if method == "OPTIONS":
                await _preflight(send, headers)
                return
            if method != "POST":
                raise Refused(405, "method_not_allowed", "tracking endpoints take POST")
            if len(self.queue) >= self.max_queued:
                raise Refused(429, "busy", "the event writer is behind; retry in a second")
            result = await self._handle(scope, receive, headers, route)
        except Refused as exc:
            await _error(send, exc.status, exc.code, exc.message, exc.fields)
            return
        except _ClientGone:
            return
        if result.refused:
            n = len(result.refused)
            message = f"{n} message(s) refused, {result.accepted} accepted: " + "; ".join(
                f"{f.field}: {f.reason}" for f in result.refused[:5]
            )
            await _error(send, 400, "invalid_request", message, result.refused, accepted=result.accepted)
            return
        await _respond(send, 200, _SUCCESS)

    async def _handle(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], route: str) -> IngestResult:
        received_at = time.time()
        header_key = _basic_key(headers.get(b"authorization", b""))
        source = await self._source(header_key) if header_key is not None else None
        limit = MAX_BATCH_BYTES if route == BATCH else MAX_EVENT_BYTES
        body = await _read_body(receive, headers, limit, route == BATCH)
        # A batch goes the fast way when prepare_batch is sure of it; anything else the slow way.
        prepared = prepare_batch(body) if route == BATCH else None
        payload = _parse(body) if prepared is None else None
        if source is None:
            if prepared is not None:
                body_key: Any = prepared.write_key
            else:
                body_key = payload.get("writeKey") if type(payload) is dict else None
            if not isinstance(body_key, str) or not body_key:
                raise Refused(
                    401,
                    "unauthorized",
                    "no write key: send 'Authorization: Basic base64(<write key>:)' or \"writeKey\" in the body",
                )
            source = await self._source(body_key)
        sender = Sender(source.workspace_id, source.id, source.device_side)
        ip = _client_ip(scope, headers, self.trust_proxy)
        try:
            if prepared is not None:
                return self.ingestor.ingest_prepared(sender, prepared, received_at, ip)
            if route == BATCH:
                return self.ingestor.ingest_batch(sender, payload, received_at, ip)
            return self.ingestor.ingest_one(sender, route, payload, received_at, ip)
        except MessageError as exc:
            raise Refused(400, "invalid_request", str(exc), [exc.as_field_error()]) from None

    async def _source(self, write_key: str) -> SourceRef:
        ref = self.keys.cached(write_key)
        if ref is MISS:
            ref = await anyio.to_thread.run_sync(self.keys.load, write_key)
        if ref is None:
            raise Refused(401, "unauthorized", "unknown write key")
        assert isinstance(ref, SourceRef)
        if not ref.enabled:
            raise Refused(401, "unauthorized", "this write key's source is disabled")
        return ref


def _basic_key(header: bytes) -> str | None:
    """The write key of `Basic base64(key:)` (a key without the colon is accepted too); None if no Basic."""
    if header[:6].lower() != b"basic ":
        return None  # none, or a Bearer token (Segment's OAuth): the body's writeKey decides
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "unauthorized", "malformed Basic authorization header") from None
    key = decoded.split(":", 1)[0]
    if not key:
        raise Refused(401, "unauthorized", "the Basic authorization header carries no write key")
    return key


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int, batch: bool) -> bytes:
    encoding = headers.get(b"content-encoding", b"identity").strip().lower()
    if encoding not in (b"identity", b"gzip", b"deflate", b""):
        raise Refused(400, "unsupported_encoding", "Content-Encoding must be gzip, deflate or none")
    cap = limit if encoding in (b"identity", b"") else limit + _COMPRESSED_SLACK
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(int(declared), limit, batch)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _too_large(None, limit, batch)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if encoding in (b"gzip", b"deflate"):
        body = _decompress(body, encoding, limit, batch)
    if len(body) > limit:
        raise _too_large(len(body), limit, batch)
    return body


def _decompress(body: bytes, encoding: bytes, limit: int, batch: bool) -> bytes:
    """Inflate at most `limit + 1` bytes: a small bomb cannot make us hold more than the limit."""
    for wbits in (_GZIP_WBITS,) if encoding == b"gzip" else (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        try:
            inflater = zlib.decompressobj(wbits)
            data = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit:
            raise _too_large(None, limit, batch)
        return data
    reason = f"not valid {encoding.decode()} data"
    raise Refused(400, "invalid_body", f"body: {reason}", [FieldError("body", reason)])


def _too_large(size: int | None, limit: int, batch: bool) -> Refused:
    what = "a batch request" if batch else "a message"
    shown = f"is {_kb(size)}" if size is not None else f"is larger than {limit // 1024} KB"
    reason = f"{shown}; {what} may be at most {limit // 1024} KB"
    return Refused(400, "too_large", f"body: {reason}", [FieldError("body", reason)])


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = f"not valid JSON ({exc.msg} at character {exc.pos})"
        raise Refused(400, "invalid_json", f"body: {reason}", [FieldError("body", reason)]) from None


def _client_ip(scope: Scope, headers: dict[bytes, bytes], trust_proxy: bool) -> str | None:
    forwarded = headers.get(b"x-forwarded-for", b"")
    if trust_proxy and forwarded:
        return forwarded.split(b",")[0].strip().decode("latin-1")
    client = scope.get("client")
    return client[0] if client else None


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *_CORS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(
    send: Send, status: int, code: str, message: str, fields: list[FieldError], accepted: int | None = None
) -> None:
    body: dict[str, Any] = {"success": False, "code": code, "message": message, "fields": [f.as_dict() for f in fields]}
    if accepted is not None:
        body["accepted"] = accepted
    extra = {405: [(b"allow", b"POST, OPTIONS")], 429: [(b"retry-after", b"1"), (b"x-ratelimit-reset", b"1")]}
    await _respond(send, status, orjson.dumps(body), extra.get(status))


async def _preflight(send: Send, headers: dict[bytes, bytes]) -> None:
    asked = headers.get(b"access-control-request-headers") or _DEFAULT_ALLOWED_HEADERS
    await _respond(send, 200, b"", [*_PREFLIGHT, (b"access-control-allow-headers", asked)])
