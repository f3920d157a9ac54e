"""Serve an ASGI app from Granian's RSGI interface.

`siyu serve` runs Granian in RSGI mode because the redirect hot path answers through RSGI directly
(see `siyu.redirect.app.RedirectApp.rsgi`): measured under wrk, ASGI's header list and message
sends were a quarter of the event loop's time per redirect. Everything else (REST API, console,
tracking API) is Starlette/FastAPI, i.e. ASGI; this bridge gives it a standard ASGI 3 HTTP scope,
`receive` and `send`. Websockets are not used by Siyu and are refused.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("siyu")
AsgiApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def _address(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def asgi_scope(scope: Any) -> dict[str, Any]:
    path = scope.path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": unquote(path),
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": scope.query_string.encode("latin-1", "replace"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": {},
    }


async def serve_asgi(app: AsgiApp, scope: Any, proto: Any) -> None:
    """Run one HTTP request of `app` over an RSGI protocol object."""
    if scope.proto != "http":
        proto.close(1008)
        return
    body_chunks = proto.__aiter__()
    body_done = False
    finished = asyncio.Event()
    status = 500
    headers: list[tuple[str, str]] = []
    stream = None
    started = False

    async def receive() -> dict:
        nonlocal body_done
        if not body_done:
            try:
                chunk = await body_chunks.__anext__()
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}
        await finished.wait()  # like a server: "disconnect" only once the response is over
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status, headers, stream, started
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
            started = True
        elif kind == "http.response.body":
            if not started or finished.is_set():
                raise RuntimeError("response body sent before its start, or after the end")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if stream is None and not more:
                proto.response_bytes(status, headers, bytes(body))
                finished.set()
                return
            if stream is None:
                stream = proto.response_stream(status, headers)
            if body:
                await stream.send_bytes(bytes(body))
            if not more:
                finished.set()

    try:
        await app(asgi_scope(scope), receive, send)
    finally:
        if not finished.is_set():
            if not started and stream is None:  # the app failed before answering
                proto.response_str(500, [("content-type", "text/plain; charset=utf-8")], "Internal Server Error")
            finished.set()


def install_fast_path(answer_now: Callable[[Any, Any], bool]) -> bool:
    """Let Granian's own thread answer what needs no waiting, before the event loop is involved.

    Granian hands each RSGI request to the event loop: from its I/O thread, holding the GIL, it
    schedules a callback on the loop (`call_soon_threadsafe`, which wakes the loop through a pipe),
    the loop creates an asyncio Task, runs our coroutine, and the Task is torn down. For a cached
    redirect, which never waits, that hand-over cost more than the redirect itself (measured under
    wrk: the loop thread spent ~25 µs per redirect, ~7.5 µs of it ours). Here Granian's thread first
    calls `answer_now(scope, proto)`; when it returns True the response was sent and the request is
    done; when False (not a link path, a cache miss, a password post…) the request goes to the
    event loop exactly as before.

    This wraps Granian's internal scheduler factory (`granian._futures._cbsched_aioschedule`, the
    default asyncio task implementation). If a Granian version lacks it, nothing is changed and
    everything is served through the loop. Returns whether the fast path was installed.
    """
    try:
        from granian import _futures
    except ImportError:
        return False
    original = getattr(_futures, "_cbsched_aioschedule", None)
    try:
        shape = list(inspect.signature(original).parameters) if original is not None else None
    except (TypeError, ValueError):
        shape = None
    if shape != ["loop", "ctx", "cb"]:
        log.warning("Granian's _cbsched_aioschedule is not as expected: redirects are served through the event loop")
        return False
    if hasattr(original, "siyu_answer_now"):  # installed before (another app in this process): re-point it
        original.siyu_answer_now = answer_now
        return True

    def schedule_factory(loop: Any, ctx: Any, cb: Any) -> Callable[[Any], None]:
        schedule = original(loop, ctx, cb)

        def schedule_or_answer(watcher: Any) -> None:
            try:
                answered = schedule_factory.siyu_answer_now(watcher.scope, watcher.proto)
            except Exception as exc:  # like an exception in the app: Granian answers 500 and logs
                watcher.err(exc)
                return
            if answered:
                watcher.done()
            else:
                schedule(watcher)

        return schedule_or_answer

    schedule_factory.siyu_answer_now = answer_now  # type: ignore[attr-defined]
    _futures._cbsched_aioschedule = schedule_factory
    return True
