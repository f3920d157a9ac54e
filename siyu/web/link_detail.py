"""Console pages: link_detail (routes are added by `routes()`)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
