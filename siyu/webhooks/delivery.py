"""Delivery: a background thread posts due outbox rows, HMAC-signed, retrying with back-off.

Each request carries `X-Siyu-Event`, `X-Siyu-Delivery`, `X-Siyu-Timestamp` and
`X-Siyu-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the webhook secret>`.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pyarrow as pa
from sqlalchemy import select

from siyu.db import Database, utcnow
from siyu.links.models import ShortLink
from siyu.links.service import link_as_dict
from siyu.security import sign
from siyu.threads import start_thread
from siyu.webhooks import service
from siyu.webhooks.models import Webhook, WebhookDelivery

log = logging.getLogger("siyu.webhooks")
CLICK_FIELDS = (
    "click_id",
    "ts",
    "link_id",
    "hostname",
    "slug",
    "visitor_id",
    "trigger",
    "outcome",
    "platform",
    "os",
    "device_type",
    "browser",
    "country",
    "province",
    "city",
    "referrer_domain",
    "is_bot",
)


def on_link_change(session, event: str, link: ShortLink) -> None:
    """In-transaction listener: the delivery row commits (or not) with the change itself."""
    service.enqueue(session, link.workspace_id, event, link_as_dict(link))


class ClickWebhooks:
    """Click-queue listener: one `link.clicked` delivery per non-bot click, for subscribed workspaces."""

    def __init__(self, db: Database, refresh_seconds: float = 5.0):
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._workspaces: set[int] = set()
        self._checked = 0.0

    def _subscribed(self) -> set[int]:
        if time.monotonic() - self._checked > self.refresh_seconds:
            with self.db.session() as session:
                self._workspaces = {
                    h.workspace_id
                    for h in session.scalars(select(Webhook).where(Webhook.active))
                    if "link.clicked" in (h.events or [])
                }
            self._checked = time.monotonic()
        return self._workspaces

    def __call__(self, table: pa.Table) -> None:
        wanted = self._subscribed()
        if not wanted:
            return
        rows = table.select(["workspace_id", *CLICK_FIELDS]).to_pylist()
        with self.db.session() as session:
            for row in rows:
                if row["workspace_id"] in wanted and not row["is_bot"]:
                    row["ts"] = row["ts"].isoformat() + "Z"
                    service.enqueue(session, row.pop("workspace_id"), "link.clicked", row)


class DeliveryWorker:
    def __init__(self, db: Database, poll_seconds: float = 1.0, timeout: float = 10.0):
        self.db = db
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = start_thread(self._run, "siyu-webhooks")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.deliver_due(client)
                except Exception:
                    log.exception("webhook delivery round failed")

    def deliver_due(self, client: httpx.Client, limit: int = 100) -> int:
        with self.db.session() as session:
            due = list(
                session.execute(
                    select(WebhookDelivery, Webhook)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
                    .order_by(WebhookDelivery.id)
                    .limit(limit)
                )
            )
            for delivery, hook in due:
                self._attempt(client, delivery, hook)
            return len(due)

    def _attempt(self, client: httpx.Client, delivery: WebhookDelivery, hook: Webhook) -> None:
        if not hook.active:  # unsubscribed since this was queued: never post to it again
            delivery.status = "cancelled"
            delivery.last_error = "webhook deactivated"
            return
        body = delivery.payload.encode()
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "user-agent": "Siyu-Webhooks/1",
            "x-siyu-event": delivery.event,
            "x-siyu-delivery": str(delivery.id),
            "x-siyu-timestamp": stamp,
            "x-siyu-signature": "sha256=" + sign(hook.secret, stamp.encode() + b"." + body),
        }
        delivery.attempts += 1
        try:
            response = client.post(hook.url, content=body, headers=headers)
            ok = 200 <= response.status_code < 300
            error = "" if ok else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
        if ok:
            delivery.status = "delivered"
            delivery.delivered_at = utcnow()
        elif delivery.attempts >= service.MAX_ATTEMPTS:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = utcnow() + service.next_delay(delivery.attempts)
        delivery.last_error = error
