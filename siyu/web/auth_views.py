"""Sign-in, sign-out, password change and workspace switching."""

from __future__ import annotations

import anyio.to_thread
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from siyu.security import hash_password, verify_password
from siyu.throttle import FailureLimiter
from siyu.web import sessions
from siyu.web.context import LANG_COOKIE, Viewer, locale_of, page, render, runtime_of, set_session_cookie
from siyu.workspaces.models import Membership, User

sign_in_limiter = FailureLimiter(max_failures=5, lock_seconds=600)
_DUMMY_HASH = hash_password("timing-equaliser")


def _safe_next(value: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in would be a phishing tool."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


async def login(request: Request) -> Response:
    locale = locale_of(request)
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", next_url=next_url, error="", email="")
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()[:254]
    password = str(form.get("password", ""))[:1000]
    next_url = _safe_next(str(form.get("next", "")))
    ip = request.client.host if request.client else ""
    from siyu.i18n import t

    for key in (("ip", ip), ("email", email)):
        left = sign_in_limiter.locked_for(key)
        if left:
            error = t("login.throttled", locale, minutes=left // 60 + 1)
            return render(request, "login.html", status=429, next_url=next_url, error=error, email=email)
    user, ok = await anyio.to_thread.run_sync(_check, request, email, password)
    if not ok or user is None:
        for key in (("ip", ip), ("email", email)):
            sign_in_limiter.fail(key)
        return render(
            request, "login.html", status=401, next_url=next_url, error=t("login.failed", locale), email=email
        )
    for key in (("ip", ip), ("email", email)):
        sign_in_limiter.reset(key)
    with runtime_of(request).db.session() as db:
        workspace_id = db.scalar(
            select(Membership.workspace_id).where(Membership.user_id == user.id).order_by(Membership.workspace_id)
        )
    if workspace_id is None:
        return render(
            request, "login.html", status=403, next_url=next_url, error=t("login.no_workspace", locale), email=email
        )
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, request, sessions.new_session(user.id, workspace_id, user.password_hash))
    return response


def _check(request: Request, email: str, password: str) -> tuple[User | None, bool]:
    with runtime_of(request).db.session() as db:
        user = db.scalar(select(User).where(User.email == email))
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same cost either way: no user enumeration by timing
        return None, False
    return user, verify_password(user.password_hash, password)


@page()
async def logout(request: Request, viewer: Viewer) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@page()
async def account(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return render(request, "account.html", viewer, errors={}, done=False)
    form = await request.form()
    current, new, confirm = (str(form.get(k, ""))[:1000] for k in ("current", "new", "confirm"))
    errors: dict[str, str] = {}
    if not await anyio.to_thread.run_sync(verify_password, viewer.user.password_hash, current):
        errors["current"] = viewer.t("account.wrong_current")
    if len(new) < 8:
        errors["new"] = viewer.t("account.new")
    elif new != confirm:
        errors["confirm"] = viewer.t("account.mismatch")
    if errors:
        return render(request, "account.html", viewer, status=422, errors=errors, done=False)
    new_hash = await anyio.to_thread.run_sync(hash_password, new)
    with runtime_of(request).db.session() as db:
        db.get(User, viewer.user.id).password_hash = new_hash
    viewer.user.password_hash = new_hash
    response = render(request, "account.html", viewer, errors={}, done=True)
    set_session_cookie(response, request, sessions.new_session(viewer.user.id, viewer.workspace.id, new_hash))
    return response


@page()
async def switch_workspace(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    wanted = str(form.get("workspace_id", ""))
    target = next((ws for ws, _ in viewer.workspaces if str(ws.id) == wanted), None)
    response = RedirectResponse("/console/", status_code=303)
    if target is not None:
        session = viewer.session
        session.workspace_id = target.id
        set_session_cookie(response, request, session)
    return response


async def set_language(request: Request) -> Response:
    locale = request.path_params["locale"]
    back = _safe_next(request.query_params.get("next"))
    response = RedirectResponse(back, status_code=303)
    if locale in ("zh-CN", "en"):
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response
