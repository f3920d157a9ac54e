"""The console: server-rendered pages under /console, static files under /console/static."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from siyu.runtime import Runtime
from siyu.web import auth_views, dashboard, link_detail, link_form, links_list, qr_tools, settings
from siyu.web import data_map as data_map_page
from siyu.web import identity as identity_page
from siyu.web import imports as import_page
from siyu.web import privacy as privacy_pages
from siyu.web import profiles as profile_pages
from siyu.web import segments as segment_pages
from siyu.web import tags as tag_pages
from siyu.web import value as value_pages
from siyu.web.context import render

STATIC = Path(__file__).parent / "static"


async def not_found(request: Request, exc: Exception) -> Response:
    from siyu.web.context import load_viewer

    viewer = load_viewer(request)
    return render(request, "error.html", viewer, 404, message=(viewer.t("error.not_found") if viewer else "404"))


def console_routes() -> list[BaseRoute]:
    """Each page module adds its routes here."""
    return [
        Route("/", dashboard.dashboard, methods=["GET"]),
        Route("/login", auth_views.login, methods=["GET", "POST"]),
        Route("/logout", auth_views.logout, methods=["POST"]),
        Route("/account", auth_views.account, methods=["GET", "POST"]),
        Route("/workspace", auth_views.switch_workspace, methods=["POST"]),
        Route("/lang/{locale}", auth_views.set_language, methods=["GET"]),
        *links_list.routes(),
        *link_form.routes(),
        *link_detail.routes(),
        *qr_tools.routes(),
        *settings.routes(),
        *identity_page.routes(),
        *profile_pages.routes(),
        *data_map_page.routes(),
        *import_page.routes(),
        *privacy_pages.routes(),
        *tag_pages.routes(),
        *segment_pages.routes(),
        *value_pages.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


def build_console(runtime: Runtime) -> Starlette:
    console = Starlette(routes=console_routes(), exception_handlers={404: not_found})
    console.state.runtime = runtime
    return console
