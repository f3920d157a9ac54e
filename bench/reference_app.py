"""The reference for bench/redirect_bench.py: the cheapest possible 302, in RSGI (what `siyu serve`
runs) and raw ASGI.

It is served through `siyu serve` itself (only the Granian target is swapped), so the ratio
siyu / reference isolates the cost of our Python code from that of granian, the event loop, the
kernel and wrk on this (noisy, shared) machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

_START = {
    "type": "http.response.start",
    "status": 302,
    "headers": [
        (b"location", b"https://example.com/landing?utm_source=bench"),
        (b"cache-control", b"private, no-cache, no-store, max-age=0"),
        (b"content-length", b"0"),
        (b"x-robots-tag", b"noindex"),
        (b"referrer-policy", b"no-referrer-when-downgrade"),
    ],
}
_BODY = {"type": "http.response.body", "body": b""}


async def _app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(_START)
    await send(_BODY)


_RSGI_HEADERS = [(k.decode(), v.decode()) for k, v in _START["headers"] if k != b"content-length"]


class _Reference:
    async def __call__(self, scope, receive, send) -> None:
        await _app(scope, receive, send)

    async def __rsgi__(self, scope, proto) -> None:
        proto.response_empty(302, _RSGI_HEADERS)


def create() -> _Reference:
    """Factory, like `siyu.app:app_from_env`, so the same `factory=True` Granian settings apply."""
    return _Reference()
