"""Webhook subscriptions and the outbox that delivery drains.

Deliveries are rows written in the same transaction as the change they report (an outbox), so a
crash never reports a change that did not happen, nor loses one that did.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput, NotFound
from siyu.links.urls import validate_url
from siyu.webhooks.models import WEBHOOK_EVENTS, Webhook, WebhookDelivery

MAX_ATTEMPTS = 8
BASE_DELAY_SECONDS = 10
MAX_DELAY_SECONDS = 3600


def create_webhook(session: Session, workspace_id: int, url: str, events: list[str]) -> Webhook:
    errors: list[FieldError] = []
    try:
        url = validate_url(url, "url")
    except InvalidInput as exc:
        errors.extend(exc.errors)
    bad = [e for e in events or [] if e not in WEBHOOK_EVENTS]
    if not events or bad:
        known = ", ".join(WEBHOOK_EVENTS)
        errors.append(FieldError("events", f"choose from {known}", code="events_choose", params={"known": known}))
    if errors:
        raise InvalidInput(errors)
    hook = Webhook(
        workspace_id=workspace_id,
        url=url,
        events=list(dict.fromkeys(events)),
        secret="whsec_" + secrets.token_urlsafe(24),
    )
    session.add(hook)
    session.flush()
    return hook


def list_webhooks(session: Session, workspace_id: int) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.workspace_id == workspace_id).order_by(Webhook.id)))


def deactivate(session: Session, workspace_id: int, webhook_id: int) -> None:
    hook = session.get(Webhook, webhook_id) if 0 < webhook_id < 2**62 else None
    if hook is None or hook.workspace_id != workspace_id:
        raise NotFound(f"webhook {webhook_id} not found")
    hook.active = False


def as_dict(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "active": hook.active,
        "created_at": hook.created_at.isoformat(),
    }


def subscribers(session: Session, workspace_id: int, event: str) -> list[Webhook]:
    return [
        h
        for h in session.scalars(select(Webhook).where(Webhook.workspace_id == workspace_id, Webhook.active))
        if event in (h.events or [])
    ]


def enqueue(session: Session, workspace_id: int, event: str, data: dict[str, Any]) -> int:
    hooks = subscribers(session, workspace_id, event)
    for hook in hooks:
        payload = orjson.dumps(
            {"event": event, "workspace_id": workspace_id, "data": data, "created_at": utcnow().isoformat()}
        ).decode()
        session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=payload))
    return len(hooks)


def next_delay(attempts: int) -> timedelta:
    """Exponential back-off: 10 s, 20 s, 40 s … capped at an hour."""
    return timedelta(seconds=min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** max(0, attempts - 1)))
