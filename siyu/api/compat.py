"""Compatibility APIs (Bitly v4, YOURLS, Shlink v3) so existing clients work unchanged."""

from __future__ import annotations

from starlette.routing import BaseRoute

from siyu.runtime import Runtime


def compat_routes(runtime: Runtime) -> list[BaseRoute]:
    return []
