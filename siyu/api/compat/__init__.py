"""Compatibility APIs (Bitly v4, YOURLS, Shlink v3) so existing clients work unchanged against Siyu.

Each speaks its original's paths, field names, status codes and error shapes, authenticates with
Siyu API keys and enforces their scopes and workspace, and delegates to the link service.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from siyu.api.compat.bitly import BitlyApi
from siyu.api.compat.shlink import ShlinkApi
from siyu.api.compat.yourls import YourlsApi
from siyu.runtime import Runtime


def compat_routes(runtime: Runtime) -> list[BaseRoute]:
    return [*BitlyApi(runtime).routes(), *YourlsApi(runtime).routes(), *ShlinkApi(runtime).routes()]
