"""The tracking API speaks Segment's HTTP Tracking API, so existing SDKs send events to Siyu unchanged.

Real clients where we can: the real `segment-analytics-python` 2.4 against a real server (Basic auth
with the write key). analytics-python 2.3 cannot be installed beside 2.4 (same package), so its
request is replicated byte for byte from its `request.post` (writeKey in the body, no Authorization
header); analytics.js's requests (short paths, JSON as text/plain, CORS) likewise from its dispatchers.
Every test reads what landed in the event store.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from segment.analytics import VERSION as SDK_VERSION
from segment.analytics import Client
from sqlalchemy import select

from siyu.events.store import EventFilter
from siyu.runtime import Runtime
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def first_workspace(rt: Runtime) -> int:
    with rt.db.session() as session:
        return session.scalar(select(Workspace.id).order_by(Workspace.id))


def new_source(rt: Runtime, kind: str = "server", name: str | None = None, workspace_id: int | None = None) -> str:
    with rt.db.session() as session:
        ws = workspace_id or first_workspace(rt)
        return sources.create_source(session, ws, name or f"{kind}-{uuid.uuid4().hex[:6]}", kind).write_key


def stored(rt: Runtime, workspace_id: int | None = None, **filters) -> list[dict]:
    """What the store holds once the writer thread has written everything queued."""
    rt.events.flush()
    return rt.store.list_events(EventFilter(workspace_id or first_workspace(rt), **filters), limit=10_000)


def basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds")


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Still argon2, with the cheapest parameters: every fresh installation hashes the admin password."""
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def write_key(runtime, first_run) -> str:
    return new_source(runtime, "server")


# --- real SDKs ------------------------------------------------------------------------------------------


def test_the_real_python_sdk_sends_all_six_calls_and_they_land_with_their_fields(live_server):
    rt = live_server.runtime
    analytics = Client(new_source(rt, "server"), host=live_server.url, sync_mode=True)

    _, identify = analytics.identify("u-1001", {"email": "li.lei@example.com", "plan": "gold"})
    _, track = analytics.track(
        "u-1001", "Order Completed", {"revenue": 128.5, "currency": "CNY"}, context={"ip": "203.0.113.9"}
    )
    _, page = analytics.page(
        "u-1001",
        "Shop",
        "Coffee",
        {"url": "https://shop.example.com/coffee?x=1", "path": "/coffee", "referrer": "https://weixin.qq.com/"},
    )
    _, screen = analytics.screen(anonymous_id="anon-7", category="App", name="Home", properties={"tab": "feed"})
    _, group = analytics.group("u-1001", "company-42", {"name": "Initech", "employees": 420})
    _, alias = analytics.alias("anon-7", "u-1001")

    events = {e["type"]: e for e in stored(rt)}
    assert set(events) == {"identify", "track", "page", "screen", "group", "alias"}
    assert events["identify"]["traits"] == {"email": "li.lei@example.com", "plan": "gold"}
    assert events["identify"]["message_id"] == identify["messageId"]
    assert events["track"]["event"] == "Order Completed"
    assert events["track"]["properties"] == {"revenue": 128.5, "currency": "CNY"}
    assert events["track"]["ip"] == "203.0.113.0"  # context.ip under the workspace's default 'truncated' mode
    assert events["track"]["context"]["ip"] == "203.0.113.0"  # the JSON keeps no more than the column
    assert events["track"]["message_id"] == track["messageId"]
    assert events["page"]["name"] == "Coffee"
    assert (events["page"]["page_url"], events["page"]["page_path"], events["page"]["page_referrer"]) == (
        "https://shop.example.com/coffee?x=1",
        "/coffee",
        "https://weixin.qq.com/",
    )
    assert events["page"]["message_id"] == page["messageId"]
    assert (events["screen"]["user_id"], events["screen"]["anonymous_id"]) == (None, "anon-7")
    assert events["screen"]["name"] == "Home" and events["screen"]["message_id"] == screen["messageId"]
    assert events["group"]["group_id"] == "company-42" and events["group"]["traits"]["employees"] == 420
    assert events["group"]["message_id"] == group["messageId"]
    assert (events["alias"]["previous_id"], events["alias"]["user_id"]) == ("anon-7", "u-1001")
    assert events["alias"]["message_id"] == alias["messageId"]
    for e in events.values():
        assert e["library_name"] == "analytics-python" and e["library_version"] == SDK_VERSION
        assert e["source_id"] is not None and e["received_at"] is not None
        assert abs(e["timestamp"] - e["received_at"]) < timedelta(seconds=5)
    assert events["track"]["ip"] is not None and events["identify"]["ip"] is None  # a server source: no request IP


def test_the_sdk_batches_in_the_background_and_gzips_its_batches(live_server):
    rt = live_server.runtime
    analytics = Client(new_source(rt), host=live_server.url, gzip=True, upload_size=50, upload_interval=0.05)

    for n in range(120):
        analytics.track(f"user-{n % 7}", "Coupon Redeemed", {"n": n})
    analytics.flush()
    analytics.shutdown()

    events = stored(rt, type="track")
    assert sorted(e["properties"]["n"] for e in events) == list(range(120))


def test_python_sdk_2_3_requests_carry_the_write_key_in_the_body_and_no_auth_header(client, runtime, write_key):
    # segment-analytics-python 2.3.x `request.post`, replicated: json.dumps of the batch with sentAt and
    # writeKey added to the body, Content-Type application/json, its User-Agent, no Authorization.
    now = datetime.now(UTC)
    body = {
        "batch": [
            {
                "integrations": {},
                "anonymousId": None,
                "timestamp": iso(now),
                "context": {"library": {"name": "analytics-python", "version": "2.3.6"}},
                "userId": "u-23",
                "type": "track",
                "event": "Signed Up",
                "properties": {},
                "messageId": str(uuid.uuid4()),
            }
        ],
        "sentAt": now.isoformat(),
        "writeKey": write_key,
    }
    response = client.post(
        "/v1/batch",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "User-Agent": "analytics-python/2.3.6"},
    )

    assert response.status_code == 200 and response.json() == {"success": True}
    [event] = stored(runtime)
    assert (event["user_id"], event["event"], event["library_version"]) == ("u-23", "Signed Up", "2.3.6")


def test_basic_auth_alone_is_enough_and_wins_over_a_body_write_key(client, runtime, write_key):
    message = {"type": "identify", "userId": "u-basic"}

    alone = client.post("/v1/batch", json={"batch": [message]}, headers=basic(write_key))
    both = client.post(
        "/v1/batch", json={"batch": [{**message, "userId": "u-both"}], "writeKey": "wk_wrong"}, headers=basic(write_key)
    )
    no_colon = client.post(  # "encoding the write key without a colon might work": it does here
        "/v1/identify",
        json={"userId": "u-nocolon"},
        headers={"Authorization": "Basic " + base64.b64encode(write_key.encode()).decode()},
    )

    assert [alone.status_code, both.status_code, no_colon.status_code] == [200, 200, 200]
    assert sorted(e["user_id"] for e in stored(runtime)) == ["u-basic", "u-both", "u-nocolon"]


# --- analytics.js -----------------------------------------------------------------------------------------


def test_analytics_js_short_paths_take_json_sent_as_text_plain(client, runtime, first_run):
    key = new_source(runtime, "website")
    context = {
        "userAgent": CHROME,
        "library": {"name": "analytics.js", "version": "next-1.70.0"},
        "page": {
            "url": "https://shop.example.com/p/7?utm_source=wx",
            "path": "/p/7",
            "referrer": "https://weixin.qq.com/",
            "title": "Latte",
            "search": "?utm_source=wx",
        },
        "campaign": {"source": "wx"},
    }
    common = {"anonymousId": "ajs-anon-1", "context": context, "writeKey": key, "sentAt": iso(datetime.now(UTC))}
    calls = {
        "/v1/p": {"type": "page", "name": "Latte", "properties": {"title": "Latte"}},
        "/v1/t": {"type": "track", "event": "Added to Cart", "properties": {"sku": "LT-1"}},
        "/v1/i": {"type": "identify", "userId": "u-js", "traits": {"phone": "13800000000"}},
        "/v1/g": {"type": "group", "userId": "u-js", "groupId": "store-12"},
        "/v1/s": {"type": "screen", "name": "Mini"},
        "/v1/a": {"type": "alias", "userId": "u-js", "previousId": "ajs-anon-1"},
    }
    for path, message in calls.items():
        response = client.post(path, content=json.dumps({**message, **common}), headers={"Content-Type": "text/plain"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["access-control-allow-origin"] == "*"
    batched = client.post(  # the batching dispatcher: POST /b with writeKey, batch and one sentAt
        "/v1/b",
        content=json.dumps(
            {
                "writeKey": key,
                "sentAt": iso(datetime.now(UTC)),
                "batch": [
                    {
                        "type": "track",
                        "event": "Checkout Started",
                        "anonymousId": "ajs-anon-1",
                        "context": context,
                        "writeKey": key,
                    }
                ],
            }
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert batched.status_code == 200

    events = stored(runtime)
    assert sorted(e["type"] for e in events) == ["alias", "group", "identify", "page", "screen", "track", "track"]
    page = next(e for e in events if e["type"] == "page")
    assert (page["page_url"], page["page_path"], page["page_title"]) == (context["page"]["url"], "/p/7", "Latte")
    assert page["user_agent"] == CHROME and page["library_name"] == "analytics.js"
    assert page["ip"] is None  # TestClient's address is not an IP; see the next test for a real one
    assert all("writeKey" not in json.dumps(e, default=str) for e in events)  # the key is never stored


def test_browser_sources_fall_back_to_the_request_address_server_sources_do_not(live_server):
    import httpx

    rt = live_server.runtime
    web, server = new_source(rt, "website"), new_source(rt, "server")
    for key in (web, server):
        response = httpx.post(
            f"{live_server.url}/v1/t",
            content=json.dumps({"event": "Viewed", "anonymousId": key[-6:], "writeKey": key}),
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 200
    by_anon = {e["anonymous_id"]: e["ip"] for e in stored(rt)}
    assert by_anon == {web[-6:]: "127.0.0.0", server[-6:]: None}  # the visitor's address, truncated


def test_browsers_get_cors_preflight_answers(client):
    response = client.options(
        "/v1/t",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "content-type"


# --- encoding, de-duplication, clocks -------------------------------------------------------------------


def test_a_gzip_encoded_batch_is_inflated(client, runtime, write_key):
    body = gzip.compress(
        json.dumps({"batch": [{"type": "track", "event": "Zipped", "userId": f"u{n}"} for n in range(200)]}).encode()
    )

    response = client.post("/v1/batch", content=body, headers={**basic(write_key), "Content-Encoding": "gzip"})

    assert response.status_code == 200
    assert len(stored(runtime, type="track")) == 200


def test_a_retried_message_id_is_kept_once(client, runtime, write_key):
    message = {"type": "track", "event": "Paid", "userId": "u-1", "messageId": "retry-me"}

    first = client.post("/v1/batch", json={"batch": [message, message]}, headers=basic(write_key))
    again = client.post("/v1/track", json=message, headers=basic(write_key))

    assert first.json() == again.json() == {"success": True}  # duplicates are not errors, as at Segment
    assert [e["message_id"] for e in stored(runtime)] == ["retry-me"]


def test_de_duplication_survives_a_restart(settings, first_run):
    rt = Runtime.create(settings)
    rt.start()
    key = new_source(rt)
    rt.ingestor.ingest_batch(_sender(rt, key), {"batch": [{"type": "identify", "userId": "u", "messageId": "m-1"}]})
    rt.close()

    restarted = Runtime.create(settings)
    try:
        restarted.start()  # reloads the ids of the last 24 h from the store
        result = restarted.ingestor.ingest_batch(
            _sender(restarted, key), {"batch": [{"type": "identify", "userId": "u", "messageId": "m-1"}]}
        )
        assert (result.accepted, result.duplicates) == (0, 1)
        assert len(stored(restarted)) == 1
    finally:
        restarted.close()


def _sender(rt: Runtime, key: str):
    from siyu.events.ingest import Sender
    from siyu.sources.keys import WriteKeyResolver

    ref = WriteKeyResolver(rt.db).load(key)
    return Sender(ref.workspace_id, ref.id)


def test_the_client_clock_is_corrected_with_sent_at(client, runtime, write_key):
    # The phone's clock runs 2 hours fast: it stamps an event, and sends it 30 s later.
    skew = timedelta(hours=2)
    phone_now = datetime.now(UTC) + skew
    late = {
        "type": "track",
        "event": "Offline Purchase",
        "userId": "u",
        "timestamp": iso(phone_now - timedelta(seconds=30)),
    }
    historical = {"type": "track", "event": "Imported", "userId": "u", "timestamp": "2024-05-01T10:00:00+08:00"}
    unstamped = {"type": "track", "event": "Now", "userId": "u"}

    client.post("/v1/batch", json={"batch": [late], "sentAt": iso(phone_now)}, headers=basic(write_key))
    client.post("/v1/track", json=historical, headers=basic(write_key))  # no sentAt: taken as is
    client.post("/v1/track", json=unstamped, headers=basic(write_key))  # no timestamp: received_at

    events = {e["event"]: e for e in stored(runtime)}
    corrected = events["Offline Purchase"]
    assert abs(corrected["timestamp"] - (corrected["received_at"] - timedelta(seconds=30))) < timedelta(seconds=1)
    assert corrected["original_timestamp"] - corrected["timestamp"] > timedelta(hours=1, minutes=59)
    assert events["Imported"]["timestamp"] == datetime(2024, 5, 1, 2, 0)  # UTC, stored naive like clicks
    assert events["Now"]["timestamp"] == events["Now"]["received_at"]


# --- limits and validation --------------------------------------------------------------------------------


def test_a_message_over_32_kb_is_refused_by_index_and_the_rest_of_the_batch_kept(client, runtime, write_key):
    big = {"type": "track", "event": "Big", "userId": "u", "properties": {"blob": "x" * 33_000}}
    small = {"type": "track", "event": "Small", "userId": "u"}

    response = client.post("/v1/batch", json={"batch": [small, small, big]}, headers=basic(write_key))

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["code"] == "invalid_request" and body["accepted"] == 2
    assert body["fields"][0]["field"] == "batch[2]"
    assert re.match(r"is 32\.\d KB; a message may be at most 32 KB", body["fields"][0]["reason"])
    assert [e["event"] for e in stored(runtime)] == ["Small", "Small"]


def test_a_single_call_over_32_kb_and_a_batch_over_500_kb_are_refused_whole(client, runtime, write_key):
    one = client.post(
        "/v1/track", json={"event": "Big", "userId": "u", "properties": {"b": "x" * 40_000}}, headers=basic(write_key)
    )
    batch = [{"type": "track", "event": "E", "userId": "u", "properties": {"b": "x" * 30_000}}] * 20

    many = client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))

    assert one.status_code == 400 and one.json()["code"] == "too_large"
    assert one.json()["fields"] == [{"field": "body", "reason": "is 39.1 KB; a message may be at most 32 KB"}]
    assert many.status_code == 400 and many.json()["code"] == "too_large"
    assert "a batch request may be at most 500 KB" in many.json()["message"]
    assert stored(runtime) == []


def test_a_gzip_bomb_is_cut_off_at_the_batch_limit(client, runtime, write_key):
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")  # 5 MB of blanks, ~5 KB on the wire

    response = client.post("/v1/batch", content=bomb, headers={**basic(write_key), "Content-Encoding": "gzip"})

    assert response.status_code == 400 and response.json()["code"] == "too_large"


MALFORMED_REQUESTS = [  # (body, field, reason): the whole request is refused, nothing kept
    (b"{not json", "body", "not valid JSON"),
    (b'["a list"]', "body", "must be a JSON object"),
    (b'{"batch": {"type": "track"}}', "batch", "must be a list"),
    (b'{"sentAt": "yesterday", "batch": []}', "sentAt", "ISO 8601"),
    (b'{"context": "web", "batch": []}', "context", "must be a JSON object"),
]


def test_a_malformed_request_is_refused_whole_naming_the_field(client, write_key):
    for body, field, reason in MALFORMED_REQUESTS:
        response = client.post("/v1/batch", content=body, headers=basic(write_key))

        assert response.status_code == 400, body
        [problem] = response.json()["fields"]
        assert problem["field"] == field and reason in problem["reason"], (body, problem)


INVALID_MESSAGES = [  # (message, field, reason): this message is refused, the rest of the batch kept
    ({"type": "track", "event": "E"}, "userId", "userId or anonymousId is required"),
    ({"type": "track", "userId": "", "anonymousId": None, "event": "E"}, "userId", "userId or anonymousId"),
    ({"type": "track", "userId": "u"}, "event", "is required for track"),
    ({"type": "track", "userId": "u", "event": 42}, "event", "non-empty string"),
    ({"type": "group", "userId": "u"}, "groupId", "is required for group"),
    ({"type": "alias", "userId": "u"}, "previousId", "is required for alias"),
    ({"type": "alias", "previousId": "a", "anonymousId": "a"}, "userId", "is required for alias"),
    ({"type": "purchase", "userId": "u"}, "type", "is not a message type"),
    ({"userId": "u"}, "type", "is required"),
    ({"type": "identify", "userId": {"id": 1}}, "userId", "must be a string"),
    ({"type": "identify", "userId": True}, "userId", "must be a string"),
    ({"type": "identify", "userId": "u", "traits": ["vip"]}, "traits", "must be a JSON object"),
    ({"type": "track", "userId": "u", "event": "E", "properties": "x"}, "properties", "must be a JSON object"),
    ({"type": "page", "userId": "u", "name": 7}, "name", "must be a string"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "soon"}, "timestamp", "ISO 8601"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": 1714557600}, "timestamp", "ISO 8601"),
    ("just text", "", "must be a JSON object"),
]


def test_each_invalid_message_is_refused_by_index_and_field_and_the_valid_ones_kept(client, runtime, write_key):
    valid = {"type": "track", "event": "Fine", "userId": "u"}
    batch = [valid, *(message for message, _, _ in INVALID_MESSAGES), valid]

    response = client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))

    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2 and body["message"].startswith(
        f"{len(INVALID_MESSAGES)} message(s) refused, 2 accepted"
    )
    problems = body["fields"]
    assert len(problems) == len(INVALID_MESSAGES)
    for index, ((_, field, reason), problem) in enumerate(zip(INVALID_MESSAGES, problems, strict=True), start=1):
        assert problem["field"] == f"batch[{index}]" + (f".{field}" if field else ""), problem
        assert reason in problem["reason"], problem
    assert [e["event"] for e in stored(runtime)] == ["Fine", "Fine"]


def test_null_fields_are_the_same_as_absent_and_numeric_ids_are_kept_as_text(client, runtime, write_key):
    message = {
        "type": "track",
        "event": "Nulls",
        "userId": None,
        "anonymousId": 12345,
        "properties": None,
        "context": None,
        "integrations": None,
        "timestamp": None,
        "messageId": None,
        "sentAt": None,
    }

    response = client.post(
        "/v1/batch", json={"batch": [message], "sentAt": None, "context": None}, headers=basic(write_key)
    )

    assert response.status_code == 200
    [event] = stored(runtime)
    assert (event["user_id"], event["anonymous_id"], event["properties"]) == (None, "12345", None)
    assert event["message_id"].startswith("siyu-")  # one is made when the client sent none


def test_batch_context_is_merged_under_each_message_context(client, runtime, write_key):
    batch = {
        "context": {"device": {"type": "phone"}, "locale": "zh-CN"},
        "batch": [{"type": "identify", "userId": "u", "context": {"locale": "en-US", "app": {"name": "mini"}}}],
    }

    client.post("/v1/batch", json=batch, headers=basic(write_key))

    [event] = stored(runtime)
    assert event["context"] == {"device": {"type": "phone"}, "locale": "en-US", "app": {"name": "mini"}}


# --- authentication and isolation -----------------------------------------------------------------------


def test_unknown_missing_malformed_and_disabled_write_keys_get_401(client, runtime, write_key):
    message = {"userId": "u", "event": "E"}
    with runtime.db.session() as session:
        source = sources.authenticate_write_key(session, write_key)
        sources.update_source(session, source.workspace_id, source.id, {"enabled": False})

    answers = [
        client.post("/v1/track", json={**message, "writeKey": "wk_unknown"}),
        client.post("/v1/track", json=message),
        client.post("/v1/track", json=message, headers={"Authorization": "Basic %%%"}),
        client.post("/v1/track", json=message, headers=basic(write_key)),  # disabled: refused at once
    ]

    assert [r.status_code for r in answers] == [401, 401, 401, 401]
    assert [r.json()["message"] for r in answers] == [
        "unknown write key",
        "no write key: send 'Authorization: Basic base64(<write key>:)' or \"writeKey\" in the body",
        "malformed Basic authorization header",
        "this write key's source is disabled",
    ]
    assert all(r.json()["code"] == "unauthorized" for r in answers)
    assert stored(runtime) == []


def test_workspaces_are_isolated_even_when_message_ids_collide(client, runtime, write_key):
    with runtime.db.session() as session:
        other_ws = workspaces.create_workspace(session, "Other brand").id
    other_key = new_source(runtime, workspace_id=other_ws)
    message = {"type": "track", "event": "Shared Id", "userId": "u", "messageId": "same-id"}

    client.post("/v1/batch", json={"batch": [message]}, headers=basic(write_key))
    client.post("/v1/batch", json={"batch": [{**message, "userId": "v"}]}, headers=basic(other_key))

    assert [e["user_id"] for e in stored(runtime)] == ["u"]
    assert [e["user_id"] for e in stored(runtime, workspace_id=other_ws)] == ["v"]


def test_wrong_paths_and_methods(client, write_key):
    assert client.post("/v1/purchase", json={}, headers=basic(write_key)).status_code == 404
    get = client.get("/v1/batch")
    assert get.status_code == 405 and get.headers["allow"] == "POST, OPTIONS"


# --- clicks are events too ------------------------------------------------------------------------------


def test_short_link_clicks_read_as_events_next_to_tracked_ones(client, runtime, write_key):
    click = client.get("/coffee", headers={"User-Agent": CHROME, "Referer": "https://weibo.com/"})
    visitor_id = re.match(r"sy_vid=([^;]+)", click.headers["set-cookie"]).group(1)
    client.post("/v1/track", json={"event": "Signed Up", "anonymousId": visitor_id}, headers=basic(write_key))
    runtime.clicks.flush()

    events = [e for e in stored(runtime, include_clicks=True) if e["anonymous_id"] == visitor_id]

    assert [(e["type"], e["event"]) for e in events] == [("track", "Short Link Clicked"), ("track", "Signed Up")]
    clicked = events[0]
    assert clicked["properties"]["slug"] == "coffee" and clicked["properties"]["outcome"] == "redirected"
    assert (clicked["page_path"], clicked["page_referrer"], clicked["user_agent"]) == (
        "/coffee",
        "https://weibo.com/",
        CHROME,
    )
    assert clicked["library_name"] == "siyu-redirect"
    assert stored(runtime, type="track") == [events[1]]  # without include_clicks: tracked events only


def test_a_writer_that_falls_behind_sheds_load_with_a_retryable_429(client, runtime, write_key, monkeypatch):
    from siyu.events.writer import EventQueue

    monkeypatch.setattr(EventQueue, "__len__", lambda self: 10**6)  # a million events waiting to be written

    response = client.post("/v1/track", json={"event": "E", "userId": "u"}, headers=basic(write_key))

    assert response.status_code == 429 and response.json()["code"] == "busy"
    assert response.headers["retry-after"] == "1"  # analytics-python and analytics.js retry a 429


def test_event_ips_are_kept_exactly_as_the_privacy_modes_keep_click_ips():
    # The event writer's fast path for plain IPv4 must agree with siyu.geo.privacy.store_ip everywhere.
    import random
    from ipaddress import IPv4Address

    from siyu.events.writer import private_ip
    from siyu.geo.privacy import store_ip

    tricky = ["1.2.3.4", "01.2.3.4", "1.2.3.256", " 1.2.3.4", "1.2.3", "1.2.3.4.5", "::ffff:1.2.3.4", "2001:db8::1",
              "0.0.0.0", "1.2.3.+1", "１.2.3.4", "abc", ""]  # fmt: skip
    rng = random.Random(7)
    for ip in tricky + [str(IPv4Address(rng.getrandbits(32))) for _ in range(2000)]:
        for mode in ("full", "truncated", "hashed", "none"):
            assert private_ip(ip, mode, b"salt") == store_ip(ip, mode, b"salt"), (ip, mode)


def test_events_are_kept_on_disk_when_the_store_is_down_at_shutdown_and_written_next_start(settings, first_run):
    rt = Runtime.create(settings)
    key = new_source(rt)

    def broken(table):
        raise OSError("event store unavailable")

    rt.store.append_events = broken
    rt.start()
    result = rt.ingestor.ingest_batch(
        _sender(rt, key), {"batch": [{"type": "track", "event": f"Kept {n}", "userId": "u"} for n in range(3)]}
    )
    assert result.accepted == 3
    rt.close()
    spill = settings.data_dir / "events-unwritten.jsonl"
    assert len(spill.read_text().splitlines()) == 3

    restarted = Runtime.create(settings)
    try:
        restarted.start()
        assert sorted(e["event"] for e in stored(restarted)) == ["Kept 0", "Kept 1", "Kept 2"]
        assert not spill.exists()
    finally:
        restarted.close()


def test_odd_json_gets_a_400_naming_the_message_never_a_500(client, runtime, write_key):
    # Each of these used to raise inside the validator: an unhashable type, and nesting that orjson
    # decodes (1,000 levels) but cannot encode again (254).
    deep = {"a": 1}
    for _ in range(300):
        deep = {"a": deep}
    batch = [
        {"type": {"not": "a string"}, "userId": "u"},
        {"type": ["track"], "userId": "u"},
        {"type": "track", "event": "Deep", "userId": "u", "properties": deep},
        {"type": "track", "event": "Fine", "userId": "u"},
    ]

    response = client.post("/v1/batch", content=json.dumps({"batch": batch}), headers=basic(write_key))
    deep_context = client.post(
        "/v1/batch", content=json.dumps({"batch": [], "context": deep}), headers=basic(write_key)
    )

    assert response.status_code == 400
    assert [(f["field"], f["reason"]) for f in response.json()["fields"]] == [
        ("batch[0].type", "is not a message type: one of identify, track, page, screen, group, alias"),
        ("batch[1].type", "is not a message type: one of identify, track, page, screen, group, alias"),
        ("batch[2]", "is nested too deeply: at most 254 levels of objects and arrays"),
    ]
    assert deep_context.status_code == 400 and deep_context.json()["fields"][0]["field"] == "context"
    assert [e["event"] for e in stored(runtime)] == ["Fine"]


def test_the_queue_counts_events_not_requests(client, runtime, write_key):
    runtime.events.stop()  # no writer thread: what is queued stays queued
    batch = [{"type": "track", "event": f"E{n}", "userId": "u"} for n in range(7)]

    client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
    client.post("/v1/track", json={"event": "One", "userId": "u"}, headers=basic(write_key))

    assert len(runtime.events) == 8  # what the 429 threshold (events_max_queued) compares
    assert runtime.events.flush() == 8 and len(runtime.events) == 0
