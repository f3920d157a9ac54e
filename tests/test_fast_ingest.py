"""POST /v1/batch's fast path (msgspec, `prepare_batch` / `fast_message`) against the slow path (orjson,
`ingest_batch` / `parse_message`): the same answers, the same errors, the same stored rows.

The slow path is the reference: it was there first and every Segment-spec test runs through it. Each
test here feeds both paths the same input and compares what comes out, on SDK-shaped messages, on
odd but valid ones (numbers as ids, nulls, escapes, big and small numbers, unknown fields) and on
broken ones (every refusal reason, invalid JSON of every kind orjson refuses).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pyarrow as pa
import pytest

from siyu.events import event_sql
from siyu.events.dedupe import MessageIdFilter
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.ingest import Ingestor, Sender, prepare_batch
from siyu.events.messages import (
    FAST_MAX_BYTES,
    MAX_EVENT_BYTES,
    MessageError,
    fast_message,
    parse_message,
)
from siyu.events.store import EventFilter
from siyu.events.writer import EventChunk, EventQueue, private_ip, private_ips

RECEIVED = datetime(2026, 11, 22, 8, 0, 5, tzinfo=UTC).timestamp()
NOW = "2026-11-22T08:00:01.000Z"


# --- inputs ---------------------------------------------------------------------------------------------


def sdk_message(n: int) -> dict:
    """What analytics-python / analytics.js send, all six types."""
    kind = ("identify", "track", "page", "screen", "group", "alias", "track", "track")[n % 8]
    msg: dict = {
        "type": kind,
        "messageId": str(uuid.UUID(int=n + 1)),
        "anonymousId": f"anon-{n}",
        "userId": f"user-{n % 17}",
        "timestamp": f"2026-11-22T08:00:00.{n % 1000:03d}Z",
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": f"10.{n % 200}.{n % 250}.{n % 199}",
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0.50",
            "page": {"url": f"https://shop.example.com/p/{n}", "path": f"/p/{n}", "title": "商品 详情"},
        },
        "integrations": {},
    }
    if kind == "identify":
        msg["traits"] = {"city": "杭州", "level": n % 7, "vip": n % 2 == 0, "score": n / 7}
    elif kind == "track":
        msg["event"] = "Order Completed"
        msg["properties"] = {"revenue": n + 0.5, "currency": "CNY", "items": [{"sku": f"SKU-{n}", "qty": 2}]}
    elif kind in ("page", "screen"):
        msg["name"] = "Product"
        msg["category"] = "Shop"
        msg["properties"] = {"url": f"https://shop.example.com/p/{n}", "path": f"/p/{n}", "referrer": None}
    elif kind == "group":
        msg["groupId"] = f"company-{n}"
        msg["traits"] = {"name": "Initech", "employees": 420}
    else:
        msg["previousId"] = f"anon-{n}"
        del msg["anonymousId"]
    if n % 3 == 0:
        msg["sentAt"] = "2026-11-22T08:00:02.500+08:00"
    if n % 5 == 0:
        msg["_metadata"] = {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": ["x1"]}
        msg["writeKey"] = "wk_in_the_message"
    return msg


def odd_but_valid() -> list[dict]:
    base = {"type": "track", "event": "E", "userId": "u"}
    return [
        {**base, "userId": 12345},
        {**base, "userId": 12.5, "anonymousId": 1e22},
        {**base, "userId": -0, "messageId": 10**18},
        {**base, "userId": 2**64 - 1, "messageId": -(2**63)},
        {**base, "userId": "", "anonymousId": "a"},
        {**base, "userId": None, "anonymousId": "a", "groupId": 7, "previousId": 1.5},
        {**base, "userId": "u" * 1024},
        {**base, "userId": "用" * 1024},
        {**base, "event": " padded "},
        {**base, "properties": None, "traits": None, "context": None, "integrations": None},
        {**base, "properties": {}, "context": {}},
        {**base, "properties": {"f": 1e-7, "g": 1e16, "h": 1.5e300, "i": -0.0, "j": 0.1, "k": 100000.0}},
        {**base, "properties": {"big": 2**64 - 1, "neg": -(2**63), "t": True, "n": None, "s": "\u2028\x7f\\/"}},
        {**base, "properties": {"nested": {"a": [1, [2, [3, {"b": None}]]]}}},
        {**base, "context": {"ip": "2001:db8::1"}},
        {**base, "context": {"ip": 42}},
        {**base, "context": {"ip": None}},
        {**base, "context": {"ip": "not an ip"}},
        {**base, "context": {"ip": " 1.2.3.4"}},
        {**base, "timestamp": "2024-05-01T10:00:00+08:00"},
        {**base, "timestamp": "2024-05-01T10:00:00"},
        {**base, "timestamp": "2024-05-01"},
        {**base, "timestamp": "2024-05-01T10:00:00.123456789Z"},
        {**base, "timestamp": "2024-05-01 10:00:00.5-05:30"},
        {**base, "timestamp": "9999-12-31T23:59:59.999999Z"},
        {**base, "timestamp": "0001-01-01T00:00:00Z"},
        {**base, "timestamp": None, "originalTimestamp": "2024-05-01T10:00:00Z"},
        {**base, "timestamp": "2024-05-01T10:00:00Z", "originalTimestamp": 5},
        {**base, "sentAt": "2024-05-01T10:00:30Z", "timestamp": "2024-05-01T10:00:00Z"},
        {**base, "channel": "server", "name": "n", "category": None},
        {**base, "version": 2, "options": {"x": 1}, "receivedAt": NOW},
        {**base, "receivedAt": NOW, "_metadata": {"bundled": []}, "writeKey": "wk"},
        {**base, "_metadata": {"bundled": [1, 2.5]}, "writeKey": 5},
        {**base, "unknownField": {"x": [1, 2]}},
        {**base, "event": 42, "type": "identify"},
        {**base, "type": "identify", "name": {"not": "a string"}, "groupId": {"odd": True}},
        {"type": "page", "anonymousId": "a", "name": None, "properties": {"url": "https://x", "title": 5}},
        {"type": "screen", "userId": "u", "category": "C"},
        {"type": "group", "userId": "u", "groupId": 99},
        {"type": "alias", "userId": 7, "previousId": 8},
        {"type": "alias", "userId": "u", "previousId": "p", "anonymousId": ""},
        {"type": "identify", "userId": "u", "traits": {"dup": 1, "dup": 2}},  # noqa: F601 (on purpose)
    ]


def invalid() -> list:
    base = {"type": "track", "event": "E", "userId": "u"}
    return [
        {"type": "track", "event": "E"},
        {"type": "track", "userId": "", "anonymousId": None, "event": "E"},
        {"type": "track", "userId": "u"},
        {"type": "track", "userId": "u", "event": 42},
        {"type": "track", "userId": "u", "event": "   "},
        {"type": "track", "userId": "u", "event": "\u3000\n\t"},
        {"type": "track", "userId": "u", "event": ""},
        {"type": "group", "userId": "u"},
        {"type": "group", "userId": "u", "groupId": ""},
        {"type": "group", "userId": "u", "groupId": "g" * 1025},
        {"type": "alias", "userId": "u"},
        {"type": "alias", "previousId": "a", "anonymousId": "a"},
        {"type": "alias", "userId": "", "previousId": "p"},
        {"type": "purchase", "userId": "u"},
        {"type": None, "userId": "u"},
        {"type": 5, "userId": "u"},
        {"userId": "u"},
        {**base, "userId": {"id": 1}},
        {**base, "userId": True},
        {**base, "userId": [1]},
        {**base, "userId": "u" * 1025},
        {**base, "anonymousId": "a" * 1025},
        {**base, "messageId": "m" * 1025},
        {**base, "messageId": False},
        {"type": "identify", "userId": "u", "traits": ["vip"]},
        {**base, "properties": "x"},
        {**base, "context": "web"},
        {**base, "integrations": []},
        {"type": "page", "userId": "u", "name": 7},
        {"type": "screen", "userId": "u", "category": ["c"]},
        {**base, "timestamp": "soon"},
        {**base, "timestamp": 1714557600},
        {**base, "timestamp": "2024-02-30T10:00:00Z"},
        {**base, "timestamp": "2024-05-01T10:00:60Z"},
        {**base, "timestamp": None, "originalTimestamp": "later"},
        {**base, "sentAt": "tomorrow"},
        {**base, "sentAt": 5},
        {**base, "properties": {"blob": "x" * 33_000}},
        {**base, "properties": {"floats": [1e15] * 2000}},  # ~10 KB sent, ~38 KB normalised: too large
        "just text",
        17,
        None,
        ["a", "list"],
    ]


def as_body(batch: list, *, sent_at: str | None = NOW, context: dict | None = None, style: int = 0) -> bytes:
    payload: dict = {"batch": batch}
    if sent_at is not None:
        payload["sentAt"] = sent_at
    if context is not None:
        payload["context"] = context
    if style == 1:  # analytics-python 2.3: json.dumps, spaces, non-ASCII escaped
        return json.dumps(payload).encode()
    if style == 2:  # pretty-printed, UTF-8
        return json.dumps(payload, ensure_ascii=False, indent=2).encode()
    return orjson.dumps(payload)


def bodies() -> list[bytes]:
    sdk = [sdk_message(n) for n in range(160)]
    out = [as_body(sdk[i : i + 40], style=i // 40 % 3) for i in range(0, 160, 40)]
    out.append(as_body(sdk[:20], context={"ip": "203.0.113.7", "locale": "zh-CN", "device": {"type": "phone"}}))
    out.append(as_body(sdk[20:30], context={"ip": None}, sent_at=None))
    out.append(as_body([*sdk[:5], *sdk[:5]]))  # duplicates within a batch
    out.append(as_body(odd_but_valid()))
    out.append(as_body(odd_but_valid(), style=1))
    out.append(as_body([*odd_but_valid(), *invalid()], style=2))
    out.append(as_body(invalid()))
    out.append(as_body([]))
    return out


BROKEN_BODIES = [  # each refused whole by the slow path (or accepted): the fast path must agree
    b"{not json",
    b'["a list"]',
    b'{"batch": {"type": "track"}}',
    b'{"sentAt": "yesterday", "batch": []}',
    b'{"context": "web", "batch": []}',
    b'{"batch": [], "sentAt": 5}',
    b'{"batch": [], "writeKey": 5}',
    b'{"batch": [], "extra": 1e400}',
    b'{"batch": [], "context": {"n": 123456789012345678901234567890}}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"x": 1e400}}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "extra": -1e400}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"x": 1' + b"0" * 400 + b"}}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"x": 123456789012345678901}}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "_metadata": {"bundled": [1' + b"0" * 400 + b"]}}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "receivedAt": 1' + b"0" * 400 + b"}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "writeKey": 1' + b"0" * 400 + b"}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "version": 1' + b"0" * 400 + b"}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "_metadata": {"n": [1e400]}}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "traits": {"big": -1' + b"0" * 400 + b"}}]}",
    b'{"batch": [{"type": "track", "event": "E", "userId": 123456789012345678901}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"x": "\xff"}}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "extra": "\xed\xa0\x80"}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u\xc0\xaf"}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "\\ud800"}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "x": NaN}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u",}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u"}]} trailing',
    b'\xef\xbb\xbf{"batch": []}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "userId": 5}]}',
    b'{"batch": [{"type": "track", "event": "E", "event": "", "userId": "u"}]}',
    b'{"batch": [{"type": "track", "type": "alias", "event": "E", "userId": "u"}]}',
    b'{"batch": [], "batch": [{"type": "track", "event": "E", "userId": "u"}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "context": {"ip": "1.2.3.4", "ip": null}}]}',
    b'{"batch": [{"type": "track", "event": "E", "userId": "u", "context": {"ip": null, "\\u0069p": "1.2.3.4"}}]}',
    b'  {"batch": [ ]}  \n',
    b"",
]


def deep(depth: int, where: str) -> bytes:
    nested = b"[" * depth + b"]" * depth
    if where == "properties":
        return b'{"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"a": ' + nested + b"}}]}"
    if where == "extra":
        return b'{"batch": [{"type": "track", "event": "E", "userId": "u", "extra": ' + nested + b"}]}"
    return b'{"batch": [], "context": {"a": ' + nested + b"}}"


DEEP_BODIES = [
    deep(d, w)
    for d in (250, 500, 990, 1000, 1018, 1019, 1020, 1021, 1022, 1030)
    for w in ("properties", "extra", "context")
]


# --- the two paths ----------------------------------------------------------------------------------------


class Captured:
    """A queue that keeps what the ingester puts, as one row an event."""

    def __init__(self):
        self.rows: list[tuple] = []

    def put(self, chunk: EventChunk):
        workspace, source, received, context = chunk[:4]
        for mid, type_, ts, original, sent, ip, raw in zip(*chunk[4:], strict=True):
            self.rows.append((mid, workspace, source, type_, ts, original, sent, received, ip, context, raw))


def numbered_uuids(monkeypatch, start: int = 1):
    counter = itertools.count(start)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter)))


def slow(ingestor: Ingestor, body: bytes, sender: Sender, ip: str | None = "198.51.100.4"):
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return ("invalid_json", exc.pos)
    try:
        result = ingestor.ingest_batch(sender, payload, RECEIVED, ip)
    except MessageError as exc:
        return ("refused", exc.field, exc.reason)
    return ("ok", result.accepted, result.duplicates, [(f.field, f.reason) for f in result.refused])


def fast(ingestor: Ingestor, body: bytes, sender: Sender, ip: str | None = "198.51.100.4"):
    prepared = prepare_batch(body)
    if prepared is None:
        return None
    result = ingestor.ingest_prepared(sender, prepared, RECEIVED, ip)
    return ("ok", result.accepted, result.duplicates, [(f.field, f.reason) for f in result.refused])


def stored_rows(store: DuckDBEventStore) -> list[tuple]:
    return store.query("SELECT * FROM events ORDER BY rowid")


def modes(workspace_id: int) -> tuple[str, bytes]:
    return ({1: "truncated", 2: "full", 3: "hashed"}.get(workspace_id, "none"), b"salt")


# --- tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_side", [False, True])
def test_the_fast_path_answers_and_stores_exactly_as_the_slow_path(monkeypatch, device_side):
    stores = [DuckDBEventStore(":memory:"), DuckDBEventStore(":memory:")]
    queues = [EventQueue(store, modes) for store in stores]
    ingestors = [Ingestor(queue, MessageIdFilter()) for queue in queues]
    for workspace_id in (1, 2, 3, 4):  # truncated, full, hashed and no IPs
        sender = Sender(workspace_id, 10 + workspace_id, device_side)
        for index, body in enumerate(bodies()):
            assert prepare_batch(body) is not None, body[:200]  # none of these needs the slow path as a whole
            numbered_uuids(monkeypatch, start=index * 1000)  # both paths make the same ids for id-less messages
            expected = slow(ingestors[0], body, sender)
            numbered_uuids(monkeypatch, start=index * 1000)
            assert fast(ingestors[1], body, sender) == expected, body[:300]
    for queue in queues:
        queue.flush()
    slow_rows, fast_rows = stored_rows(stores[0]), stored_rows(stores[1])
    assert len(slow_rows) > 1000
    assert fast_rows == slow_rows


def test_most_sdk_messages_take_the_fast_path_and_odd_ones_fall_back():
    sdk = [orjson.dumps(sdk_message(n)) for n in range(200)]
    assert all(fast_message(raw) is not None for raw in sdk)
    odd = [orjson.dumps(m) for m in odd_but_valid()]
    assert 0 < sum(fast_message(raw) is not None for raw in odd) < len(odd)
    assert all(fast_message(orjson.dumps(m)) is None for m in invalid())


def test_the_same_answers_for_broken_bodies_and_nothing_kept_from_a_refused_one(monkeypatch):
    for body in [*BROKEN_BODIES, *DEEP_BODIES]:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            assert prepare_batch(body) is None, body[:120]  # orjson refuses: so does the fast path
            continue
        queues = [Captured(), Captured()]
        ingestors = [Ingestor(queue, MessageIdFilter()) for queue in queues]
        numbered_uuids(monkeypatch)
        expected = slow(ingestors[0], body, Sender(1, 1))
        numbered_uuids(monkeypatch)
        got = fast(ingestors[1], body, Sender(1, 1))
        if got is None:  # left to the slow path: fine, it is the reference
            continue
        assert got == expected, body[:200]
        assert same_rows(queues[0].rows, queues[1].rows), body[:200]


def same_rows(slow_rows: list[tuple], fast_rows: list[tuple]) -> bool:
    """Rows of the queue are the same once stored: equal ids and times, and raw JSON that the store
    reads (json_transform with the store's shape) as the same columns."""
    if [r[:10] for r in slow_rows] != [r[:10] for r in fast_rows]:
        return False
    return all(transformed(a[10]) == transformed(b[10]) for a, b in zip(slow_rows, fast_rows, strict=True))


_con = duckdb.connect()


def transformed(raw: str) -> tuple:
    return _con.execute(f"SELECT json_transform(?, '{event_sql._SHAPE}')", [raw]).fetchall()[0]


def test_fast_message_agrees_with_parse_message_on_random_messages():
    rng = random.Random(20261122)
    values = [
        None, "", " ", "u", "用户", "x" * 1024, "x" * 1025, 0, -1, 7, 2**63, 2**64 - 1, 1.5, 1e16, True, False,
        [], {}, {"k": "v"}, "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123+08:00", "2024-13-01", "\u3000",
    ]  # fmt: skip
    objects = [None, {}, {"a": 1}, {"ip": "1.2.3.4"}, {"ip": 5}, {"page": {"url": "u", "title": None}}, [], "s", 3]
    fields = ["type", "messageId", "userId", "anonymousId", "groupId", "previousId", "event", "name", "category",
              "channel", "timestamp", "originalTimestamp", "sentAt", "writeKey", "_metadata", "extra"]  # fmt: skip
    checked = fast_count = 0
    pairs = []
    for n in range(6000):
        msg = sdk_message(n)  # a valid message, then up to four random changes
        for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
            if rng.random() < 0.3:
                msg[rng.choice(["context", "properties", "traits", "integrations"])] = rng.choice(objects)
            elif rng.random() < 0.1:
                msg.pop(rng.choice(list(msg)))
            else:
                msg[rng.choice(fields)] = rng.choice(values)
        raw = json.dumps(msg, ensure_ascii=rng.random() < 0.5).encode()
        try:
            expected = parse_message(orjson.loads(raw), None, "batch[0].")
        except MessageError:
            expected = None
        got = fast_message(raw)
        checked += 1
        if got is None:
            continue
        fast_count += 1
        assert expected is not None, raw  # the fast path never accepts what the slow path refuses
        assert got[:5] == expected[:5], raw
        pairs.append((expected.raw, got.raw))
    assert checked == 6000 and fast_count > 1500
    con = duckdb.connect()
    con.register("pairs", pa.table({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}))
    differing = con.execute(
        f"SELECT count(*) FROM pairs WHERE json_transform(a, '{event_sql._SHAPE}') "
        f"IS DISTINCT FROM json_transform(b, '{event_sql._SHAPE}')"
    ).fetchone()[0]
    assert differing == 0


def test_messages_near_the_size_limit_are_measured_exactly():
    head = b'{"type":"track","event":"E","userId":"u","properties":{'
    sizes = (FAST_MAX_BYTES - 200, FAST_MAX_BYTES - 30, FAST_MAX_BYTES, FAST_MAX_BYTES + 1, 20_000, 32_700, 32_800)
    for size in sizes:
        room = size - len(head) - 10
        for filler in (b"x", "用".encode(), b"\\u00e9", b"1e15,"):
            if filler == b"1e15,":  # grows the most when normalised: 1000000000000000.0
                raw = head + b'"f":[' + b",".join([b"1e15"] * (room // 5)) + b"]}}"
            else:
                raw = head + b'"s":"' + filler * (room // len(filler)) + b'"}}'
            try:
                expected = parse_message(orjson.loads(raw), None, "batch[0].")
            except MessageError as exc:
                assert "a message may be at most 32 KB" in exc.reason
                expected = None
            got = fast_message(raw)
            if len(raw) > FAST_MAX_BYTES:
                assert got is None  # measured by the slow path
            else:
                assert expected is not None and got is not None and got[:5] == expected[:5], (size, filler)
    assert FAST_MAX_BYTES * 5 + 256 <= MAX_EVENT_BYTES


def test_http_answers_are_the_same_either_way(client, runtime, first_run, monkeypatch):
    from siyu.api import tracking
    from siyu.sources import service as sources
    from siyu.workspaces import service as workspaces

    def key_for(name: str) -> str:
        with runtime.db.session() as session:
            ws = workspaces.create_workspace(session, name).id
            return sources.create_source(session, ws, name, "server").write_key

    keys = {"fast": key_for("Fast"), "slow": key_for("Slow")}
    answers: dict[str, list] = {"fast": [], "slow": []}
    used: list[bool] = []
    real = tracking.prepare_batch

    def spy(body):
        prepared = real(body)
        used.append(prepared is not None)
        return prepared

    for way in ("fast", "slow"):
        monkeypatch.setattr(tracking, "prepare_batch", spy if way == "fast" else lambda body: None)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{keys[way]}:".encode()).decode()}
        for body in [*bodies(), *BROKEN_BODIES]:
            response = client.post("/v1/batch", content=body, headers={**auth, "Content-Type": "application/json"})
            answers[way].append((response.status_code, response.json()))
        # writeKey in the body instead of the header, as analytics-python 2.3 sends it
        for body in (as_body([sdk_message(1)]), as_body(invalid())):
            payload = orjson.loads(body)
            payload["writeKey"] = keys[way]
            response = client.post("/v1/batch", content=orjson.dumps(payload))
            answers[way].append((response.status_code, response.json()))
        response = client.post("/v1/batch", content=b'{"batch": [], "writeKey": "wk_nobody"}')
        answers[way].append((response.status_code, response.json()))
    assert answers["fast"] == answers["slow"]
    assert sum(used) >= len(bodies())  # the fast path did answer the well-formed bodies


def test_vectorised_private_ips_keep_exactly_what_private_ip_keeps():
    from ipaddress import IPv4Address, IPv6Address

    rng = random.Random(7)
    tricky = ["1.2.3.4", "01.2.3.4", "1.2.3.256", " 1.2.3.4", "1.2.3.4\n", "1.2.3", "1.2.3.4.5", "::ffff:1.2.3.4",
              "2001:db8::1", "0.0.0.0", "255.255.255.255", "1.2.3.+1", "１.2.3.4", "10.0.0.09", "abc", "", None]  # fmt: skip
    ips = tricky + [str(IPv4Address(rng.getrandbits(32))) for _ in range(400)]
    ips += [str(IPv6Address(rng.getrandbits(128))) for _ in range(40)] + [None] * 20
    rng.shuffle(ips)
    all_modes = ["full", "truncated", "hashed", "none"]
    combos = [[m] for m in all_modes] + [["full", "truncated"], ["truncated", "hashed"], all_modes]
    for combo in combos:
        workspace_modes = {i + 1: (mode, f"salt-{i}".encode()) for i, mode in enumerate(combo)}
        workspaces = [rng.choice(list(workspace_modes)) for _ in ips]
        got = private_ips(pa.array(workspaces, pa.int32()), pa.array(ips, pa.string()), workspace_modes)
        want = [
            None if ip is None else private_ip(ip, *workspace_modes[w]) for w, ip in zip(workspaces, ips, strict=True)
        ]
        assert got.to_pylist() == want, combo


def test_spilled_rows_of_a_previous_version_are_still_written(tmp_path):
    store = DuckDBEventStore(":memory:")
    spill = tmp_path / "events-unwritten.jsonl"
    raw = orjson.dumps({"type": "track", "event": "Old", "userId": "u", "context": {"ip": "1.2.3.4"}}).decode()
    ts = int((datetime(2026, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    spill.write_text(orjson.dumps(["m-1", 1, 2, "track", ts, ts, None, ts, "1.2.3.4", None, raw]).decode() + "\n")
    queue = EventQueue(store, modes, spill_path=spill)
    queue.start()
    queue.stop()
    [row] = store.list_events(EventFilter(1), limit=10)
    assert (row["message_id"], row["event"], row["ip"]) == ("m-1", "Old", "1.2.3.0")


# The insert as it was before the context's columns were read with one multi-path extraction: the
# reference the current one must match row for row.
REFERENCE_INSERT = f"""
INSERT INTO events
SELECT message_id, workspace_id, source_id, type, j.event, j.name, j.userId, j.anonymousId, j.groupId,
       j.previousId, "timestamp", original_timestamp, sent_at, received_at, ctx, j.properties, j.traits,
       j.integrations,
       coalesce(ctx->>'$.page.url', CASE WHEN type = 'page' THEN j.properties->>'$.url' END),
       coalesce(ctx->>'$.page.path', CASE WHEN type = 'page' THEN j.properties->>'$.path' END),
       coalesce(ctx->>'$.page.referrer', CASE WHEN type = 'page' THEN j.properties->>'$.referrer' END),
       coalesce(ctx->>'$.page.title', CASE WHEN type = 'page' THEN j.properties->>'$.title' END),
       ip, ctx->>'$.userAgent', j.channel, ctx->>'$.library.name', ctx->>'$.library.version'
FROM (
    SELECT *, CASE WHEN merged->>'$.ip' IS NULL THEN merged
                   ELSE json_merge_patch(merged, json_object('ip', ip)) END AS ctx
    FROM (
        SELECT *, CASE WHEN batch_context IS NULL THEN j.context
                       ELSE json_merge_patch(batch_context, coalesce(j.context, '{{}}')) END AS merged
        FROM (SELECT *, json_transform(raw, '{event_sql._SHAPE}') AS j FROM incoming_events)
    )
)
"""


def test_the_insert_reads_contexts_and_pages_as_the_reference_insert_did():
    from siyu.events.store import EVENT_INPUT_SCHEMA

    contexts = [
        None, {}, {"ip": "1.2.3.4"}, {"ip": None}, {"ip": 5},
        {"page": {"url": "https://a/x", "path": "/x", "referrer": "https://r", "title": "标题"}, "userAgent": "UA",
         "library": {"name": "analytics.js", "version": "5.2"}},
        {"page": "not an object", "userAgent": 7, "library": ["x"]},
        {"page": {"url": {"nested": True}, "title": 1.5e300}, "library": {"name": None}},
        {"page": {"title": None}, "userAgent": "", "ip": "::1"},
    ]  # fmt: skip
    properties = [None, {}, {"url": "https://p/u", "path": "/u", "referrer": None, "title": 3}, {"url": ["a"]}]
    batch_contexts = [None, '{"ip":"9.9.9.9","page":{"url":"https://batch"}}', '{"userAgent":"batch UA","ip":null}']
    rows = []
    for n, (ctx, props, batch_ctx, type_) in enumerate(
        itertools.product(contexts, properties, batch_contexts, ["page", "track", "screen"])
    ):
        raw = orjson.dumps({"event": "E", "userId": "u", "context": ctx, "properties": props}).decode()
        rows.append((f"m{n}", 1, 2, type_, 1, 1, None, 1, "10.0.0.0" if n % 2 else None, batch_ctx, raw))
    table = pa.Table.from_pylist(
        [dict(zip(EVENT_INPUT_SCHEMA.names, r, strict=True)) for r in rows], EVENT_INPUT_SCHEMA
    )
    results = []
    for sql in (REFERENCE_INSERT, event_sql.INSERT_EVENTS):
        con = duckdb.connect()
        con.execute(event_sql.CREATE_EVENTS)
        con.register("incoming_events", table)
        con.execute(sql)
        results.append(con.execute("SELECT * FROM events ORDER BY message_id").fetchall())
    assert len(results[0]) == len(rows)
    assert results[1] == results[0]


def test_deduplicating_a_batch_at_once_is_the_same_as_id_by_id():
    rng = random.Random(11)
    clock = [1_795_000_000.0]
    one_by_one = MessageIdFilter(max_ids=300, clock=lambda: clock[0])
    batched = MessageIdFilter(max_ids=300, clock=lambda: clock[0])
    for _ in range(400):
        clock[0] += rng.choice([0, 1, 600, 3 * 3600])  # buckets turn over, ids expire
        workspace = rng.choice([1, 2])
        ids = [f"m{rng.randrange(500)}" for _ in range(rng.choice([1, 3, 10]))]
        expected = [one_by_one.seen(workspace, mid) for mid in ids]
        got = [False] * len(ids) if batched.all_new(workspace, ids) else [batched.seen(workspace, m) for m in ids]
        assert got == expected
        assert len(batched) == len(one_by_one) and batched.duplicates == one_by_one.duplicates
        assert sorted(map(sorted, batched._buckets.values())) == sorted(map(sorted, one_by_one._buckets.values()))
