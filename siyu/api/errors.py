"""One JSON error shape for every API: {"error": {"code", "message", "fields": [{field, reason, code}]}}.

A field's `reason` is English; its `code` (when the domain gave one) is stable for programs to match on
(the console translates by it, see siyu.errors_i18n). Request-shape errors carry pydantic's error type."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from siyu.events.duckdb_store import StoreLocked


def error_response(status: int, code: str, message: str, fields: list[FieldError] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": [f.as_dict() for f in fields or []]}}
    return JSONResponse(body, status_code=status)


def _loc(error: dict) -> str:
    """('body', 'rules', 0, 'url') -> 'rules[0].url', as the domain names fields; bad JSON is the body's fault."""
    if error.get("type") == "json_invalid":
        return "body"
    field = ""
    for part in error.get("loc", ()):
        if part in ("body", "query", "path", "header", "cookie"):
            continue
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    return field or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc), exc.errors)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [FieldError(_loc(e), e.get("msg", "invalid"), code=e.get("type")) for e in exc.errors()]
        return error_response(422, "invalid_input", "; ".join(f"{f.field}: {f.reason}" for f in fields), fields)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc), [exc.field_error()])

    @app.exception_handler(PermissionDenied)
    async def forbidden(_: Request, exc: PermissionDenied) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(StoreLocked)
    async def locked(_: Request, exc: StoreLocked) -> JSONResponse:
        return error_response(503, "store_unavailable", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return error_response(exc.status_code, code, str(exc.detail), None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        import logging

        logging.getLogger("siyu.api").exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side; it has been logged")
