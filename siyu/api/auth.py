"""API-key authentication and scope checks for the REST and compatibility APIs."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.exceptions import HTTPException

from siyu.errors import PermissionDenied
from siyu.runtime import Runtime
from siyu.workspaces.service import authenticate_api_key


@dataclass(frozen=True)
class Caller:
    workspace_id: int
    key_id: int
    key_name: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"this API key lacks the '{scope}' scope")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def key_from_request(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def caller_for_key(runtime: Runtime, secret: str) -> Caller | None:
    with runtime.db.session() as session:
        key = authenticate_api_key(session, secret)
        if key is None:
            return None
        return Caller(key.workspace_id, key.id, key.name, frozenset(key.scopes or []))


def require_caller(request: Request) -> Caller:
    secret = key_from_request(request)
    if not secret:
        raise HTTPException(401, "send an API key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'")
    caller = caller_for_key(runtime_of(request), secret)
    if caller is None:
        raise HTTPException(401, "the API key is unknown or revoked")
    return caller
