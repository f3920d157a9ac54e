"""The one ASGI app: link paths go straight to the raw redirect handler, everything else to Starlette.

/<slug>, /<slug>/q   redirect hot path (siyu.redirect)
/api/v1/...          REST API with OpenAPI docs at /api/v1/docs (siyu.api)
/v4, /rest, /yourls-api.php   compatibility APIs (Bitly, Shlink, YOURLS)
/healthz             liveness
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route

from siyu import __version__
from siyu.api import errors as api_errors
from siyu.api.consent import router as consent_router
from siyu.api.identity import router as identity_router
from siyu.api.imports import router as imports_router
from siyu.api.privacy import router as privacy_router
from siyu.api.profiles import router as profiles_router
from siyu.api.segments import router as segments_router
from siyu.api.sources import router as sources_router
from siyu.api.tags import router as tags_router
from siyu.api.tracking import TrackingApp
from siyu.api.v1 import router as v1_router
from siyu.api.value import router as value_router
from siyu.bodylimit import BodySizeLimit
from siyu.config import Settings
from siyu.links import service as link_service
from siyu.redirect.app import RedirectApp, link_path
from siyu.rsgi import install_fast_path, serve_asgi
from siyu.runtime import Runtime
from siyu.web.app import build_console
from siyu.webhooks.delivery import ClickWebhooks, DeliveryWorker, on_link_change


def build_api(runtime: Runtime) -> FastAPI:
    api = FastAPI(
        title="Siyu API",
        version=__version__,
        description="Short links, QR codes, 防红 (anti-block) and click analytics. "
        "Authenticate with `Authorization: Bearer <API key>`.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    api.state.runtime = runtime
    api_errors.install(api)
    api.include_router(v1_router)
    api.include_router(sources_router)
    api.include_router(identity_router)
    api.include_router(imports_router)
    api.include_router(consent_router)
    api.include_router(privacy_router)
    api.include_router(profiles_router)
    api.include_router(value_router)
    api.include_router(tags_router)
    api.include_router(segments_router)
    return api


class SiyuApp:
    """Dispatch: a path that looks like a short link never touches Starlette's router."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.redirect = RedirectApp(
            runtime.links,
            runtime.clicks,
            scheme=runtime.scheme,
            trust_proxy=runtime.settings.extra.get("trust_proxy") == "1",
        )
        self.fast_path = False  # Granian's thread answers cached redirects (see __rsgi_init__)
        self.web = BodySizeLimit(self._build_web())

    def _build_web(self) -> Starlette:
        runtime = self.runtime

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            runtime.start()
            try:
                yield
            finally:
                runtime.stop()

        async def healthz(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "status": "ok",
                    "version": __version__,
                    "queued_clicks": len(runtime.clicks),
                    "queued_events": len(runtime.events),
                    "redirect_fast_path": self.fast_path,
                }
            )

        async def home(_: Request) -> RedirectResponse:
            return RedirectResponse("/console/", status_code=302)

        routes = [
            Route("/", home),
            Route("/healthz", healthz),
            Mount("/api/v1", app=build_api(runtime)),
            Mount("/v1", app=TrackingApp(runtime)),  # Segment's HTTP Tracking API (SDKs post to <host>/v1/...)
            Mount("/console", app=build_console(runtime)),
        ]
        from siyu.api.compat import compat_routes

        routes[2:2] = compat_routes(runtime)
        return Starlette(routes=routes, lifespan=lifespan)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and link_path(scope["path"]) is not None:
            await self.redirect(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    # -- Granian RSGI (`siyu serve`): redirects answered natively, the rest through the ASGI bridge --
    def __rsgi_init__(self, loop) -> None:
        self.runtime.start()
        if os.environ.get("SIYU_REDIRECT_FAST_PATH", "1") != "0":  # "0": everything through the event loop
            self.fast_path = install_fast_path(self.answer_now)

    def answer_now(self, scope, proto) -> bool:
        """Granian's thread asks: can this request be answered without waiting? (see install_fast_path)"""
        return scope.proto == "http" and self.redirect.rsgi_now(scope, proto)

    def __rsgi_del__(self, loop) -> None:
        self.runtime.stop()

    async def __rsgi__(self, scope, proto) -> None:
        if scope.proto == "http" and link_path(scope.path) is not None:
            await self.redirect.rsgi(scope, proto)
        else:
            await serve_asgi(self.web, scope, proto)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> SiyuApp:
    runtime = runtime or Runtime.create(settings or Settings.from_env())
    if on_link_change not in link_service.in_transaction_listeners:
        link_service.in_transaction_listeners.append(on_link_change)
    runtime.clicks.listeners.append(ClickWebhooks(runtime.db))
    runtime.background.append(DeliveryWorker(runtime.db, runtime.settings.webhook_poll_seconds))
    return SiyuApp(runtime)


def app_from_env() -> SiyuApp:
    """Entry point: `granian --interface rsgi --factory siyu.app:app_from_env` (what `siyu serve` runs),
    or any ASGI server (`--interface asgi`, uvicorn)."""
    return create_app()
