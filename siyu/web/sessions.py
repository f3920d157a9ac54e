"""Signed-cookie sessions for the console, with a CSRF token per session.

The cookie holds {uid, ws, csrf, pwf, iat} signed with HMAC-SHA256 of the installation secret.
`pwf` is a fingerprint of the user's password hash, so changing the password signs out every
other session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

COOKIE = "sy_session"
MAX_AGE = 14 * 24 * 3600


@dataclass
class ConsoleSession:
    user_id: int
    workspace_id: int | None
    csrf: str
    password_fingerprint: str
    issued_at: int


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _sign(secret: str, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode().rstrip("=")


def encode(secret: str, session: ConsoleSession) -> str:
    payload = orjson.dumps(
        {
            "uid": session.user_id,
            "ws": session.workspace_id,
            "csrf": session.csrf,
            "pwf": session.password_fingerprint,
            "iat": session.issued_at,
        }
    )
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(secret, payload)}"


def decode(secret: str, value: str | None) -> ConsoleSession | None:
    if not value or "." not in value or len(value) > 4096:
        return None
    body, signature = value.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(_sign(secret, payload), signature):
        return None
    try:
        data = orjson.loads(payload)
        session = ConsoleSession(
            int(data["uid"]), data.get("ws"), str(data["csrf"]), str(data["pwf"]), int(data["iat"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if session.issued_at + MAX_AGE < time.time():
        return None
    return session


def new_session(user_id: int, workspace_id: int | None, password_hash: str) -> ConsoleSession:
    return ConsoleSession(
        user_id, workspace_id, secrets.token_urlsafe(24), password_fingerprint(password_hash), int(time.time())
    )
