"""Webhooks end to end: a real HTTP receiver on a loopback port gets signed deliveries, with retries.

Each delivery carries X-Siyu-Event, X-Siyu-Delivery, X-Siyu-Timestamp and
X-Siyu-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the webhook's secret>.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from siyu.webhooks import service
from siyu.webhooks.models import WebhookDelivery

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


class Receiver:
    """A tiny webhook endpoint: records every POST and answers with the queued statuses, then `status`."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.replies: list[int] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    status = receiver.replies.pop(0) if receiver.replies else receiver.status
                    receiver.received.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/siyu"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        with self._lock:
            return [r["headers"]["x-siyu-event"] for r in self.received]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(monkeypatch):
    """Retry on the worker's next poll instead of after 10 s, 20 s, 40 s …"""
    monkeypatch.setattr(service, "BASE_DELAY_SECONDS", 0)


def subscribe(client, auth, url: str, events: list[str] | None = None) -> dict:
    body = {"url": url} if events is None else {"url": url, "events": events}
    response = client.post("/api/v1/webhooks", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def signature_is_valid(secret: str, request: dict) -> bool:
    stamp = request["headers"]["x-siyu-timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["x-siyu-signature"], f"sha256={expected}")


def deliveries(runtime) -> list[WebhookDelivery]:
    with runtime.db.session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_subscribing_returns_the_secret_once(client, auth, receiver):
    hook = subscribe(client, auth, receiver.url)

    assert hook["url"] == receiver.url
    assert hook["events"] == ["link.created", "link.updated", "link.clicked"]
    assert hook["active"] is True
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30

    listed = client.get("/api/v1/webhooks", headers=auth).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]


def test_link_changes_and_clicks_are_delivered_signed(client, auth, receiver, runtime):
    hook = subscribe(client, auth, receiver.url)
    link = client.post(
        "/api/v1/links", json={"slug": "menu", "destination_url": "https://example.com/menu"}, headers=auth
    ).json()
    client.patch(f"/api/v1/links/{link['id']}", json={"title": "Lunch menu"}, headers=auth)
    client.get("/menu", headers={"User-Agent": "curl/8.5.0"})  # a bot: no link.clicked for it
    assert client.get("/menu", headers={"User-Agent": DESKTOP_CHROME}).status_code == 302

    assert receiver.wait_for(lambda r: "link.clicked" in r.events())
    time.sleep(0.3)  # anything else queued would have arrived by now
    assert receiver.events() == ["link.created", "link.updated", "link.clicked"]

    for request in receiver.received:
        headers = request["headers"]
        assert request["path"] == "/hooks/siyu"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "Siyu-Webhooks/1"
        assert signature_is_valid(hook["secret"], request)
        assert abs(int(headers["x-siyu-timestamp"]) - time.time()) < 30
        payload = json.loads(request["body"])
        assert payload["event"] == headers["x-siyu-event"]
        assert payload["workspace_id"] == 1

    created, updated, clicked = (json.loads(r["body"])["data"] for r in receiver.received)
    assert (created["slug"], created["title"], created["destination_url"]) == ("menu", "", "https://example.com/menu")
    assert updated["title"] == "Lunch menu"
    assert clicked["link_id"] == link["id"]
    assert (clicked["slug"], clicked["outcome"], clicked["trigger"], clicked["browser"]) == (
        "menu",
        "redirected",
        "link",
        "Chrome",
    )
    assert clicked["is_bot"] is False
    assert clicked["ts"].endswith("Z")

    assert [d.status for d in deliveries(runtime)] == ["delivered"] * 3


def test_a_tampered_body_fails_the_signature_check(client, auth, receiver):
    hook = subscribe(client, auth, receiver.url, events=["link.created"])
    client.post("/api/v1/links", json={"destination_url": "https://example.com/"}, headers=auth)
    assert receiver.wait_for(lambda r: len(r.received) == 1)

    request = dict(receiver.received[0])
    assert signature_is_valid(hook["secret"], request)
    assert not signature_is_valid("whsec_someone-else", request)
    request["body"] = request["body"].replace(b"example.com", b"evil.example")
    assert not signature_is_valid(hook["secret"], request)


def test_only_subscribed_events_are_sent(client, auth, receiver):
    subscribe(client, auth, receiver.url, events=["link.clicked"])

    client.post("/api/v1/links", json={"slug": "menu", "destination_url": "https://example.com/menu"}, headers=auth)
    client.get("/menu", headers={"User-Agent": DESKTOP_CHROME})

    assert receiver.wait_for(lambda r: len(r.received) >= 1)
    time.sleep(0.3)
    assert receiver.events() == ["link.clicked"]


def test_a_failed_delivery_is_retried_with_the_same_id(client, auth, receiver, runtime, fast_retries):
    receiver.replies = [500, 503]
    hook = subscribe(client, auth, receiver.url, events=["link.created"])

    client.post("/api/v1/links", json={"destination_url": "https://example.com/"}, headers=auth)

    assert receiver.wait_for(lambda r: len(r.received) == 3)
    assert len({r["headers"]["x-siyu-delivery"] for r in receiver.received}) == 1
    assert len({r["body"] for r in receiver.received}) == 1
    assert all(signature_is_valid(hook["secret"], r) for r in receiver.received)  # re-signed each time
    # the worker records the outcome after the receiver has answered: wait for that commit
    assert receiver.wait_for(lambda r: deliveries(runtime)[0].status == "delivered", timeout=5)
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 3, "")
    assert delivery.delivered_at is not None


def test_delivery_gives_up_after_max_attempts(client, auth, receiver, runtime, fast_retries):
    receiver.status = 500
    subscribe(client, auth, receiver.url, events=["link.created"])

    client.post("/api/v1/links", json={"destination_url": "https://example.com/"}, headers=auth)

    assert receiver.wait_for(lambda r: len(r.received) == service.MAX_ATTEMPTS)
    assert receiver.wait_for(lambda r: deliveries(runtime)[0].status == "failed", timeout=2)
    time.sleep(0.3)
    assert len(receiver.received) == service.MAX_ATTEMPTS == 8  # and no more
    [delivery] = deliveries(runtime)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 8, "HTTP 500")


def test_an_unreachable_receiver_is_retried_later_with_back_off(client, auth, receiver, runtime):
    receiver.close()  # nobody listens on that port any more
    subscribe(client, auth, receiver.url, events=["link.created"])

    client.post("/api/v1/links", json={"destination_url": "https://example.com/"}, headers=auth)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and deliveries(runtime)[0].attempts == 0:
        time.sleep(0.02)
    [delivery] = deliveries(runtime)
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("ConnectError")
    wait = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    assert 9 <= wait <= 12  # first retry after ~10 s
    assert [service.next_delay(n).total_seconds() for n in (1, 2, 3, 12, 20)] == [10, 20, 40, 3600, 3600]


def test_unsubscribing_cancels_pending_retries(client, auth, receiver, runtime):
    receiver.status = 500
    hook = subscribe(client, auth, receiver.url, events=["link.created", "link.updated"])
    link = client.post("/api/v1/links", json={"destination_url": "https://example.com/"}, headers=auth).json()
    assert receiver.wait_for(lambda r: len(r.received) == 1)

    removed = client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth)
    assert removed.status_code == 200
    assert removed.json() == {"id": hook["id"], "active": False}
    client.patch(f"/api/v1/links/{link['id']}", json={"title": "after"}, headers=auth)  # no longer subscribed
    [pending] = deliveries(runtime)
    assert pending.status == "pending"
    with runtime.db.session() as session:  # make the retry due now rather than in 10 s
        session.get(WebhookDelivery, pending.id).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)

    assert receiver.wait_for(lambda r: deliveries(runtime)[0].status == "cancelled", timeout=5)
    assert len(receiver.received) == 1
    assert len(deliveries(runtime)) == 1
    assert client.get("/api/v1/webhooks", headers=auth).json()["webhooks"][0]["active"] is False


def test_deleting_an_unknown_or_foreign_webhook_is_404(client, auth):
    for webhook_id in (999, 2**62):
        response = client.delete(f"/api/v1/webhooks/{webhook_id}", headers=auth)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert client.delete("/api/v1/webhooks/0", headers=auth).status_code == 422


def test_bad_webhook_urls_and_events_are_refused(client, auth):
    for body, fields in [
        ({"url": "not a url"}, ["url"]),
        ({"url": "ftp://files.example.com/in"}, ["url"]),
        ({"url": "https://"}, ["url"]),
        ({"url": "https://hooks.example.com/", "events": ["link.deleted"]}, ["events"]),
        ({"url": "https://hooks.example.com/", "events": []}, ["events"]),
        ({"url": "javascript:alert(1)", "events": ["nope"]}, ["url", "events"]),
        ({"events": ["link.created"]}, ["url"]),
        ({"url": "https://hooks.example.com/", "secret": "mine"}, ["secret"]),
        ({"url": "https://hooks.example.com/", "events": "link.created"}, ["events"]),
    ]:
        response = client.post("/api/v1/webhooks", json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert [f["field"] for f in response.json()["error"]["fields"]] == fields, body
    assert client.get("/api/v1/webhooks", headers=auth).json() == {"webhooks": []}
