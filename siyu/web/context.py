"""Per-request console context: who is signed in, in which workspace and role, in which language.

`page()` wraps a view: it loads the viewer, sends anonymous visitors to sign-in, checks the role's
permission and, for every POST, the CSRF token. Views receive (request, viewer).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

import siyu.web.messages  # noqa: F401  (registers console texts)
from siyu.i18n import pick_locale, t
from siyu.runtime import Runtime
from siyu.web import formatting, sessions
from siyu.workspaces.models import Membership, User, Workspace
from siyu.workspaces.roles import can

LANG_COOKIE = "sy_lang"
_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
_env.globals.update(
    fmt_datetime=formatting.fmt_datetime, fmt_date=formatting.fmt_date, fmt_number=formatting.fmt_number, can=can
)


@dataclass
class Viewer:
    user: User
    workspace: Workspace
    role: str
    workspaces: list[tuple[Workspace, str]]
    session: sessions.ConsoleSession
    locale: str

    def can(self, action: str) -> bool:
        return can(self.role, action)

    def t(self, key: str, **kwargs: Any) -> str:
        return t(key, self.locale, **kwargs)


class Forbidden(Exception):
    pass


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def locale_of(request: Request) -> str:
    return pick_locale(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


def load_viewer(request: Request) -> Viewer | None:
    rt = runtime_of(request)
    session = sessions.decode(rt.settings.secret_key, request.cookies.get(sessions.COOKIE))
    if session is None:
        return None
    with rt.db.session() as db:
        user = db.get(User, session.user_id)
        if user is None or sessions.password_fingerprint(user.password_hash) != session.password_fingerprint:
            return None
        rows = db.execute(
            select(Workspace, Membership.role)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(Membership.user_id == user.id)
            .order_by(Workspace.id)
        ).all()
        memberships = [(ws, role) for ws, role in rows]
    if not memberships:
        return None
    current = next(((ws, r) for ws, r in memberships if ws.id == session.workspace_id), memberships[0])
    return Viewer(user, current[0], current[1], memberships, session, locale_of(request))


def render(
    request: Request, template: str, viewer: Viewer | None = None, status: int = 200, **context: Any
) -> HTMLResponse:
    locale = viewer.locale if viewer else locale_of(request)

    def tr(key: str, **kwargs: Any) -> str:
        return t(key, locale, **kwargs)

    html = _env.get_template(template).render(
        request=request,
        viewer=viewer,
        locale=locale,
        t=tr,
        csrf=viewer.session.csrf if viewer else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={"cache-control": "no-store", "x-frame-options": "DENY", "x-content-type-options": "nosniff"},
    )


View = Callable[[Request, Viewer], Awaitable[Response]]


def page(action: str | None = None) -> Callable[[View], Callable[[Request], Awaitable[Response]]]:
    def decorate(view: View) -> Callable[[Request], Awaitable[Response]]:
        @wraps(view)
        async def endpoint(request: Request) -> Response:
            viewer = await anyio.to_thread.run_sync(load_viewer, request)
            if viewer is None:
                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"/console/login?next={target}", status_code=303)
            if request.method == "POST":
                form = await request.form()
                token = str(form.get("csrf", "")) or request.headers.get("x-csrf-token", "")
                if not hmac.compare_digest(token, viewer.session.csrf):
                    return render(request, "error.html", viewer, 403, message=viewer.t("error.csrf"))
            if action is not None and not viewer.can(action):
                return render(request, "error.html", viewer, 403, message=viewer.t("error.forbidden"))
            try:
                return await view(request, viewer)
            except Forbidden:
                return render(request, "error.html", viewer, 403, message=viewer.t("error.forbidden"))

        return endpoint

    return decorate


def set_session_cookie(response: Response, request: Request, session: sessions.ConsoleSession) -> None:
    rt = runtime_of(request)
    response.set_cookie(
        sessions.COOKIE,
        sessions.encode(rt.settings.secret_key, session),
        max_age=sessions.MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=rt.scheme == "https",
        path="/",
    )
