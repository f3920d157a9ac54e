"""Refuse request bodies over a limit before anything buffers them (uploads, JSON, forms).

A declared Content-Length over the limit is answered 413 at once; a chunked body is counted as it
streams and cut off when it passes the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

MAX_BODY_BYTES = 12 * 1024 * 1024  # the largest upload (a 10 MB QR image) plus multipart overhead

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._too_large(send)
                    return
                break
        seen = 0
        started = refused = False

        async def limited_receive() -> dict:
            # Past the limit we answer 413 ourselves and tell the app the client went away, so
            # frameworks that catch body errors cannot turn this into a different response.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _too_large(self, send) -> None:
        body = orjson.dumps({"error": {"code": "too_large", "message": f"the request body is larger than "
                                       f"{self.max_bytes // (1024 * 1024)} MB", "fields": [{"field": "body",
                                       "reason": "too large"}]}})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
