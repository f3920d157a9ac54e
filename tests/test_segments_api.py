"""Segments (人群) and audience exports (人群包) from every door: the REST API, the console and the CLI.

The people are tag_data's coffee brand (sent through the tracking API and the redirect, stitched);
M1 张三 consents to data sharing, M2 李四 refuses it, M3 王五 never said.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import select
from tag_data import REPEAT, ago, build_shop, define, quiet_settings, send, workspace_of, write_key
from typer.testing import CliRunner

from siyu.cli import common
from siyu.cli.main import app as cli
from siyu.segments.models import AudienceExport
from siyu.workspaces import service as workspaces

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
SHANGHAI = {"type": "trait", "field": "city", "op": "eq", "value": "上海"}


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def settings(tmp_path):
    return quiet_settings(tmp_path)


@pytest.fixture
def ws(runtime, first_run) -> int:
    return workspace_of(runtime, first_run)


@pytest.fixture
def shop(client, runtime, ws) -> dict[str, int]:
    people = build_shop(client, runtime, ws)
    consent = [
        {"type": "identify", "userId": user, "timestamp": ago(minutes=1),
         "context": {"consent": {"categoryPreferences": {"data_sharing": granted}}}}
        for user, granted in (("M1", True), ("M2", False))
    ]  # fmt: skip
    send(client, write_key(runtime, ws), *consent)
    runtime.stitch_now()
    define(runtime, ws, code="repeat_buyer", name="复购客户", name_en="Repeat buyer", kind="rule", rule=REPEAT)
    runtime.tags.recompute(ws)
    return people


@pytest.fixture
def console(client, first_run):
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303
    return client


def csrf_of(console, path: str) -> str:
    return CSRF_RE.search(console.get(path).text).group(1)


# --- REST ------------------------------------------------------------------------------------------------------


def test_define_count_and_follow_a_segment_over_rest(client, auth, shop):
    m1, m2 = shop["M1"], shop["M2"]
    created = client.post("/api/v1/segments", json={"name": "上海会员", "rule": SHANGHAI}, headers=auth)
    assert created.status_code == 201, created.text
    seg = created.json()
    assert (seg["member_count"], seg["version"], seg["coverage"]) == (2, 1, None)
    listed = client.get("/api/v1/segments", headers=auth).json()
    assert listed["persons"] == 3 and [s["name"] for s in listed["segments"]] == ["上海会员"]
    assert listed["segments"][0]["coverage"] == round(2 / 3, 4)

    narrower = {"and": [SHANGHAI, {"type": "tag", "tag": "repeat_buyer"}]}
    updated = client.put(f"/api/v1/segments/{seg['id']}", json={"rule": narrower}, headers=auth)
    assert (updated.json()["version"], updated.json()["member_count"]) == (2, 1)
    history = client.get(f"/api/v1/segments/{seg['id']}/history", headers=auth).json()["items"]
    assert [(h["super_id"], h["change"], h["version"]) for h in history][:1] == [(m2, "left", 2)]
    assert {(h["super_id"], h["change"]) for h in history} == {(m1, "joined"), (m2, "joined"), (m2, "left")}
    detail = client.get(f"/api/v1/segments/{seg['id']}", headers=auth).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1] and detail["versions"][1]["rule"] == SHANGHAI

    schema = client.get("/api/v1/segments/schema", headers=auth).json()
    assert {"city", "level", "name"} <= set(schema["traits"])
    assert [t["code"] for t in schema["tags"]] == ["repeat_buyer"]
    assert "data_sharing" in [p["code"] for p in schema["purposes"]] and "coffee" in schema["links"]
    assert {"Order Completed", "Short Link Clicked", "page"} <= set(schema["events"])

    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=auth).status_code == 404


def test_bad_rules_get_a_422_naming_the_node(client, auth, shop):
    rule = {"and": [SHANGHAI, {"not": {"type": "trait", "field": "foo", "op": "eq", "value": 1}}]}
    for response in (
        client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth),
        client.post("/api/v1/segments", json={"name": "x", "rule": rule}, headers=auth),
    ):
        assert response.status_code == 422
        assert response.json()["error"]["fields"] == [
            {"field": "rule.and[1].not.field", "reason": "unknown trait 'foo'", "code": "rule_trait_unknown"}
        ]
    window = {"type": "event", "event": "Order Completed", "within_days": 0}
    bad = client.post("/api/v1/segments/preview", json={"rule": window}, headers=auth).json()["error"]["fields"]
    assert bad == [
        {"field": "rule.within_days", "reason": "must be a whole number of days from 1 to 3650", "code": "rule_window"}
    ]
    assert client.post("/api/v1/segments", json={"name": "", "rule": SHANGHAI}, headers=auth).status_code == 422
    client.post("/api/v1/segments", json={"name": "上海", "rule": SHANGHAI}, headers=auth)
    twice = client.post("/api/v1/segments", json={"name": "上海", "rule": SHANGHAI}, headers=auth)
    assert twice.status_code == 409
    assert client.post("/api/v1/segments/preview", json={}, headers=auth).status_code == 422
    assert client.get("/api/v1/segments/abc", headers=auth).status_code == 422


def test_audience_export_leaves_out_people_without_data_sharing_consent(client, auth, shop, runtime, ws):
    seg = client.post("/api/v1/segments", json={"name": "上海会员", "rule": SHANGHAI}, headers=auth).json()
    export = client.post(
        f"/api/v1/segments/{seg['id']}/export", json={"id_type": "phone", "hash": "sha256"}, headers=auth
    )
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    # 张三 (13800138001) agreed; 李四 refused: he is counted, never written
    assert export.text == hashlib.sha256(b"13800138001").hexdigest() + "\n"
    assert (export.headers["x-siyu-members"], export.headers["x-siyu-refused"], export.headers["x-siyu-exported"]) == (
        "2",
        "1",
        "1",
    )
    md5 = client.post(f"/api/v1/segments/{seg['id']}/export", json={"hash": "md5"}, headers=auth)
    assert md5.text.strip() == hashlib.md5(b"13800138001").hexdigest()

    snap = client.post(f"/api/v1/segments/{seg['id']}/snapshots", json={"name": "双十一投放"}, headers=auth)
    assert snap.status_code == 201 and snap.json()["member_count"] == 2
    # 张三 withdraws his consent: the snapshot stays, but he is no longer exported from it
    send(client, write_key(runtime, ws), {"type": "identify", "userId": "M1", "timestamp": ago(),
                                          "context": {"consent": {"categoryPreferences": {"data_sharing": False}}}})  # fmt: skip
    runtime.stitch_now()
    later = client.post(f"/api/v1/segments/snapshots/{snap.json()['id']}/export", json={}, headers=auth)
    assert later.status_code == 200 and later.text == "" and later.headers["x-siyu-refused"] == "2"

    log = client.get("/api/v1/segments/exports", headers=auth).json()["exports"]
    assert [(e["hash"], e["members"], e["refused"], e["exported"], e["snapshot_id"]) for e in log] == [
        ("md5", 2, 2, 0, snap.json()["id"]),
        ("md5", 2, 1, 1, None),
        ("sha256", 2, 1, 1, None),
    ]
    assert {e["actor"] for e in log} == {"key:first key"}
    bad = client.post(f"/api/v1/segments/{seg['id']}/export", json={"id_type": "email"}, headers=auth)
    assert bad.status_code == 422


def test_exports_need_their_own_scope_and_segments_stay_in_their_workspace(client, auth, shop, runtime, ws):
    seg = client.post("/api/v1/segments", json={"name": "上海会员", "rule": SHANGHAI}, headers=auth).json()
    with runtime.db.session() as s:
        reader = workspaces.create_api_key(s, ws, "bi", ["analytics:read", "segments:write"]).secret
        tea = workspaces.create_workspace(s, "Tea Co", slug="tea")
        tea_key = workspaces.create_api_key(s, tea.id, "tea").secret
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert client.post(f"/api/v1/segments/{seg['id']}/export", json={}, headers=as_reader).status_code == 403
    assert client.get(f"/api/v1/segments/{seg['id']}/members", headers=as_reader).status_code == 403
    assert client.post("/api/v1/segments/preview", json={"rule": SHANGHAI}, headers=as_reader).status_code == 200
    with runtime.db.session() as s:
        assert s.scalar(select(AudienceExport.id)) is None  # a refused request is not an export
    as_tea = {"Authorization": f"Bearer {tea_key}"}
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=as_tea).status_code == 404
    assert client.post(f"/api/v1/segments/{seg['id']}/export", json={}, headers=as_tea).status_code == 404
    assert client.get("/api/v1/segments", headers=as_tea).json()["segments"] == []
    # Tea Co has no people: the same rule names a trait it has never seen
    assert client.post("/api/v1/segments/preview", json={"rule": SHANGHAI}, headers=as_tea).status_code == 422


# --- console -------------------------------------------------------------------------------------------------------


def test_the_console_builds_counts_saves_and_exports_a_segment(console, shop):
    page = console.get("/console/segments/new")
    assert page.status_code == 200 and 'id="segment-builder"' in page.text and "预计人数" in page.text
    schema = json.loads(re.search(r'<script type="application/json" id="sb-data">(.*?)</script>', page.text).group(1))
    assert schema["labels"]["all"] == "满足全部条件" and "repeat_buyer" in [t["code"] for t in schema["schema"]["tags"]]
    csrf = CSRF_RE.search(page.text).group(1)

    live = console.post("/console/segments/preview", data={"csrf": csrf, "rule": json.dumps(SHANGHAI)})
    assert live.status_code == 200 and live.json()["count"] == 2 and live.json()["persons"] == 3
    wrong = {"and": [SHANGHAI, {"not": {"type": "trait", "field": "foo", "op": "exists"}}]}
    problems = console.post("/console/segments/preview", data={"csrf": csrf, "rule": json.dumps(wrong)})
    assert problems.status_code == 422
    assert problems.json()["errors"] == [{"field": "rule.and[1].not.field", "message": "未知属性“foo”"}]
    no_csrf = console.post("/console/segments/preview", data={"rule": json.dumps(SHANGHAI)})
    assert no_csrf.status_code == 403

    saved = console.post(
        "/console/segments/new",
        data={"csrf": csrf, "name": "上海会员", "description": "", "rule": json.dumps(SHANGHAI)},
    )
    assert saved.status_code == 303
    detail = console.get(saved.headers["location"])
    assert detail.status_code == 200
    assert 'id="member-count">2<' in detail.text and "city 等于 上海" in detail.text and "张三" in detail.text

    refused = console.post("/console/segments/new", data={"csrf": csrf, "name": "x", "rule": json.dumps(wrong)})
    assert refused.status_code == 422 and "未知属性“foo”" in refused.text and "rule.and[1].not.field" in refused.text
    broken = console.post("/console/segments/new", data={"csrf": csrf, "name": "x", "rule": "{not json"})
    assert broken.status_code == 422 and "JSON" in broken.text

    seg_path = saved.headers["location"]
    csv = console.post(f"{seg_path}/export", data={"csrf": csrf, "id_type": "phone", "hash": "md5"})
    assert csv.status_code == 200 and csv.text == hashlib.md5(b"13800138001").hexdigest() + "\n"
    assert "attachment" in csv.headers["content-disposition"]
    snapshot = console.post(f"{seg_path}/snapshot", data={"csrf": csrf})
    assert snapshot.status_code == 303 and "已保存快照：2 人" in console.get(snapshot.headers["location"]).text
    log = console.get("/console/segments/exports")
    assert log.status_code == 200 and "上海会员" in log.text and "admin@siyu.local" in log.text

    listing = console.get("/console/segments")
    assert "上海会员" in listing.text and "city 等于 上海" in listing.text
    console.get("/console/lang/en")
    english = console.get("/console/segments")
    assert "city is 上海" in english.text and "Segments" in english.text


def test_the_console_lists_defines_and_explains_tags(console, shop):
    listing = console.get("/console/tags")
    assert listing.status_code == 200 and 'data-tag="repeat_buyer"' in listing.text and "规则标签" in listing.text
    assert "近 90 天 Order Completed 至少 2 次" in listing.text and "实时" in listing.text
    csrf = CSRF_RE.search(console.get("/console/tags/new").text).group(1)
    made = console.post(
        "/console/tags/new",
        data={"csrf": csrf, "kind": "fact", "code": "city", "name": "城市", "trait": "city", "enabled": "1"},
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/tags/city"
    bad = console.post(
        "/console/tags/new", data={"csrf": csrf, "kind": "fact", "code": "Bad", "name": "", "trait": "x"}
    )
    assert bad.status_code == 422
    assert "code：2 到 64 个字符" in bad.text and "name：不能为空" in bad.text and "trait：未知属性“x”" in bad.text
    model = console.post(
        "/console/tags/new",
        data={
            "csrf": csrf,
            "kind": "model",
            "code": "churn_risk",
            "name": "流失风险",
            "values": "high,高,High\nlow,低,Low",
        },
    )
    assert model.status_code == 303

    refresh = console.post("/console/segments/refresh", data={"csrf": csrf, "next": "/console/tags"})
    assert refresh.status_code == 303 and refresh.headers["location"].startswith("/console/tags?refreshed=3:")
    detail = console.get("/console/tags/city")
    assert detail.status_code == 200 and "上海" in detail.text and 'id="member-count">3<' in detail.text
    person = console.get(f"/console/tags/persons/{shop['M1']}")
    assert person.status_code == 200 and 'data-tag="repeat_buyer"' in person.text and "获得" in person.text
    assert console.get("/console/tags/nope").status_code == 404
    assert console.get("/console/tags/persons/999999").status_code == 404


def test_analysts_read_but_neither_define_nor_export(client, runtime, ws, shop, auth):
    seg = client.post("/api/v1/segments", json={"name": "上海会员", "rule": SHANGHAI}, headers=auth).json()
    with runtime.db.session() as s:
        user = workspaces.create_user(s, "analyst@example.com", "password-123", "A")
        workspaces.add_member(s, ws, user.id, "analyst")
    client.post("/console/login", data={"email": "analyst@example.com", "password": "password-123"})
    page = client.get(f"/console/segments/{seg['id']}")
    assert page.status_code == 200 and 'id="export-form"' not in page.text and 'id="recompute"' not in page.text
    csrf = CSRF_RE.search(page.text).group(1)
    assert client.get("/console/segments/new").status_code == 403
    assert client.post(f"/console/segments/{seg['id']}/export", data={"csrf": csrf}).status_code == 403
    assert client.post("/console/tags/new", data={"csrf": csrf, "kind": "fact"}).status_code == 403


# --- CLI -------------------------------------------------------------------------------------------------------------


def test_the_cli_defines_counts_recomputes_and_exports(tmp_path, monkeypatch, runtime, ws):
    from siyu.events.ingest import Sender
    from siyu.sources import service as sources

    with runtime.db.session() as s:
        source = sources.create_source(s, ws, "CRM", "crm").source.id
    people = [("M1", "上海", "13800138001", True), ("M2", "上海", "13800138002", False), ("M3", "北京", None, True)]
    batch = [
        {"type": "identify", "userId": m, "traits": {"city": city, **({"phone": phone} if phone else {})},
         "timestamp": ago(days=1), "context": {"consent": {"categoryPreferences": {"data_sharing": sharing}}}}
        for m, city, phone, sharing in people
    ]  # fmt: skip
    runtime.ingestor.ingest_batch(Sender(ws, source), {"batch": batch})
    runtime.stitch_now()
    runtime.close()  # no server: the CLI takes the event store
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_EVENTS_PATH", str(tmp_path / "events.duckdb"))
    monkeypatch.setenv("SIYU_DATABASE_URL", f"sqlite:///{tmp_path / 'siyu.db'}")
    monkeypatch.setattr(common, "_db", None)
    runner = CliRunner()

    def siyu(*args, code=0):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    assert "created fact tag city" in siyu(
        "tags", "create", "city", "--name", "城市", "--kind", "fact", "--trait", "city"
    )
    out = siyu(
        "tags", "create", "x", "--name", "X", "--kind", "rule", "--rule", '{"type": "trait", "field": "foo"}', code=1
    )
    assert "error: rule.field: unknown trait 'foo'" in out and "error: rule.op: must be one of" in out
    assert "not valid JSON" in siyu("segments", "count", "--rule", "{oops", code=1)
    assert siyu("segments", "count", "--rule", json.dumps(SHANGHAI)).strip() == "2 of 3 people"
    assert "created segment 1: 上海会员" in siyu("segments", "create", "上海会员", "--rule", json.dumps(SHANGHAI))
    report = siyu("segments", "recompute")
    assert re.search(r"tag city\s+3 \(\+3 -0 ~0\)", report) and re.search(r"上海会员\s+2 \(\+2 -0\)", report)
    assert re.search(r"上海\s+2", siyu("tags", "show", "city")) and re.search(r"北京\s+1", siyu("tags", "show", "city"))
    out_file = tmp_path / "audience.csv"
    said = siyu("segments", "export", 1, "--out", out_file, "--hash", "sha256")
    assert "1 line(s) for 1 people" in said and "1 of 2 left out" in said
    assert out_file.read_text() == hashlib.sha256(b"13800138001").hexdigest() + "\n"
    assert "sha256" in siyu("segments", "exports")
    assert "error: segment 999" in siyu("segments", "export", 999, "--out", out_file, code=1)
    assert "snapshot 1: 上海会员" in siyu("segments", "snapshot", 1)
