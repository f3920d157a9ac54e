"""Profiles over the real pipeline: SDK calls and short-link visits in, stitched to persons by the
runtime's stitcher, read back through the REST API, the console and the CLI.

Nothing here stands in for the stitcher: events go through POST /v1/batch (Segment's API), clicks
through the redirect, `runtime.stitch_now()` resolves them like the background worker does.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from siyu.sources import service as sources
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

NOW = datetime.now(UTC).replace(microsecond=0)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Still argon2, with the cheapest parameters: every fresh installation hashes the admin password."""
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def ws(runtime, first_run) -> int:
    with runtime.db.session() as s:
        return s.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))


def write_key(runtime, ws: int, kind: str, name: str) -> dict[str, str]:
    with runtime.db.session() as s:
        key = sources.create_source(s, ws, name, kind).write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def iso(minutes: float) -> str:
    return (NOW - timedelta(hours=2) + timedelta(minutes=minutes)).isoformat()


def send(client, key: dict[str, str], *messages: dict) -> None:
    response = client.post("/v1/batch", json={"batch": list(messages)}, headers=key)
    assert response.status_code == 200, response.text


@pytest.fixture
def li(client, runtime, ws, auth) -> dict:
    """李雷: clicks a short link in WeChat, browses the website, signs in, orders; the store's POS knows
    his phone. The redirect's visitor cookie is on the landing page's events (context.externalIds)."""
    visit = client.get("/coffee", headers={"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.44"})
    cookie = visit.cookies.get("sy_vid")
    assert cookie
    website = write_key(runtime, ws, "website", "官网")
    store = write_key(runtime, ws, "store", "静安门店")
    landing = {"externalIds": [{"type": "visitor_cookie", "id": cookie, "collection": "users", "encoding": "none"}]}
    send(
        client,
        website,
        {"type": "page", "anonymousId": "web-1", "name": "秋季菜单", "timestamp": iso(1), "context": landing},
        {
            "type": "identify",
            "anonymousId": "web-1",
            "userId": "M1001",
            "traits": {"name": "李雷", "phone": "13800138001", "city": "上海", "points_earned": 10},
            "timestamp": iso(5),
        },
        {
            "type": "track",
            "userId": "M1001",
            "event": "Order Completed",
            "properties": {"order_id": "A1", "revenue": 128, "currency": "CNY"},
            "timestamp": iso(10),
        },
    )
    # The store uploads an older visit late: its city must not overwrite the newer one.
    send(
        client,
        store,
        {
            "type": "identify",
            "anonymousId": "pos-77",
            "traits": {"phone": "138 0013 8001", "city": "北京", "tier": "gold", "points_earned": 5},
            "timestamp": iso(0),
        },
    )
    runtime.stitch_now()
    found = client.get("/api/v1/profiles/lookup", params={"type": "phone", "value": "13800138001"}, headers=auth)
    assert found.status_code == 200, found.text
    return found.json()


# --- REST -----------------------------------------------------------------------------------------------


def test_a_profile_gathers_every_touchpoint_of_a_person(li, client, auth):
    assert li["name"] == "李雷"
    assert {(i["type"], i["value"]) for i in li["identifiers"]} >= {("member_id", "M1001"), ("phone", "+8613800138001")}
    traits = {t["key"]: t for t in li["traits"]}
    assert traits["city"]["value"] == "上海"  # the later event wins, though the store's arrived last
    assert traits["tier"]["value"] == "gold"
    assert traits["points_earned"]["value"] == 15 and traits["points_earned"]["strategy"] == "sum"
    c = li["computed"]
    assert (c["event_count"], c["click_count"], c["order_count"], c["revenue"]) == (4, 1, 1, 128.0)
    assert {s["kind"] for s in c["sources"]} == {"website", "store", "short_links"}
    assert c["platforms"] == [{"name": "wechat", "count": 1}]
    assert isinstance(li["consents"], list)

    again = client.get(f"/api/v1/profiles/{li['super_id']}", headers=auth).json()
    assert again["traits"] == li["traits"] and again["computed"]["first_seen"] == c["first_seen"]


def test_the_timeline_reads_across_touchpoints_newest_first(li, client, auth):
    response = client.get(f"/api/v1/profiles/{li['super_id']}/timeline", params={"locale": "zh-CN"}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 5
    assert [(i["source_kind"], i["summary"]) for i in body["items"]] == [
        ("short_links", "点击短链 /coffee（微信），显示防红引导页"),  # the click is now; the events two hours ago
        ("website", "完成订单 A1，¥128.00"),
        ("website", "更新资料：city、name、phone、points_earned"),
        ("website", "浏览页面 秋季菜单"),
        ("store", "更新资料：city、phone、points_earned、tier"),
    ]
    assert body["items"][1]["source_name"] == "官网"
    page = client.get(f"/api/v1/profiles/{li['super_id']}/timeline", params={"limit": 2, "offset": 4}, headers=auth)
    assert len(page.json()["items"]) == 1


def test_search_and_trait_strategies_over_rest(li, client, auth):
    found = client.get("/api/v1/profiles", params={"q": "李"}, headers=auth).json()
    assert [p["super_id"] for p in found["items"]] == [li["super_id"]]
    assert client.get("/api/v1/profiles", params={"q": "+86 138 0013 8001"}, headers=auth).json()["total"] == 1

    put = client.put(
        "/api/v1/profiles/trait-strategies",
        json={"strategies": {"first_store": "first", "tier": "first"}},
        headers=auth,
    )
    assert put.status_code == 200
    listed = {r["key"]: r for r in client.get("/api/v1/profiles/trait-strategies", headers=auth).json()["strategies"]}
    assert listed["tier"]["strategy"] == "first" and listed["tier"]["configured"]
    assert listed["created_at"] == {"key": "created_at", "strategy": "first", "default": "first", "configured": False}


def test_bad_requests_name_what_is_wrong(li, client, auth):
    missing = client.get("/api/v1/profiles/999999", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "person 999999"
    assert client.get("/api/v1/profiles/abc", headers=auth).status_code == 422
    assert client.get("/api/v1/profiles/999999/timeline", headers=auth).status_code == 404

    unknown_type = client.get("/api/v1/profiles/lookup", params={"type": "passport", "value": "E1"}, headers=auth)
    assert unknown_type.status_code == 422
    assert unknown_type.json()["error"]["fields"] == [{"field": "type", "reason": "unknown identifier type 'passport'"}]
    nobody = client.get("/api/v1/profiles/lookup", params={"type": "phone", "value": "13900000000"}, headers=auth)
    assert nobody.status_code == 404 and "phone '13900000000'" in nobody.json()["error"]["message"]

    bad = client.put("/api/v1/profiles/trait-strategies", json={"strategies": {"tier": "newest"}}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "strategies.tier"
    assert client.get("/api/v1/profiles", params={"q": "x" * 256}, headers=auth).status_code == 422
    assert client.get("/api/v1/profiles", params={"limit": 0}, headers=auth).status_code == 422
    assert (
        client.get(f"/api/v1/profiles/{li['super_id']}/timeline", params={"locale": "fr"}, headers=auth).status_code
        == 422
    )


def test_profiles_need_their_scope_and_stay_in_their_workspace(li, client, runtime, ws):
    with runtime.db.session() as s:
        links_only = workspaces.create_api_key(s, ws, "links", ["links:read"]).secret
        other = workspaces.create_workspace(s, "Tea Co", slug="tea")
        other_key = workspaces.create_api_key(s, other.id, "tea").secret
    denied = client.get(f"/api/v1/profiles/{li['super_id']}", headers={"Authorization": f"Bearer {links_only}"})
    assert denied.status_code == 403
    elsewhere = {"Authorization": f"Bearer {other_key}"}
    assert client.get(f"/api/v1/profiles/{li['super_id']}", headers=elsewhere).status_code == 404
    assert client.get("/api/v1/profiles", params={"q": "李"}, headers=elsewhere).json()["total"] == 0


def test_an_unmerge_splits_the_traits_again(client, runtime, ws, auth):
    """Two people on one shop tablet: the tablet merged them; undoing it gives each their own traits back."""
    website = write_key(runtime, ws, "website", "官网")
    send(
        client,
        website,
        {"type": "identify", "userId": "M1", "traits": {"name": "李雷", "city": "上海"}, "timestamp": iso(1)},
        {
            "type": "identify",
            "anonymousId": "guest-9",
            "traits": {"email": "han@example.com", "name": "韩梅梅"},
            "timestamp": iso(2),
        },
    )
    runtime.stitch_now()
    lookup = {"type": "email", "value": "han@example.com"}
    han = client.get("/api/v1/profiles/lookup", params=lookup, headers=auth).json()["super_id"]
    # M1 later identifies with han's e-mail (a shared family account): One ID merges them.
    send(
        client,
        website,
        {"type": "identify", "userId": "M1", "traits": {"email": "han@example.com"}, "timestamp": iso(3)},
    )
    runtime.stitch_now()
    merged = client.get("/api/v1/profiles/lookup", params=lookup, headers=auth).json()
    assert merged["name"] == "韩梅梅" and {t["key"] for t in merged["traits"]} >= {"city", "email"}

    absorbed = han if merged["super_id"] != han else merged["merged_ids"][0]
    runtime.stitcher.unmerge(ws, absorbed, actor="test")

    mine = client.get(f"/api/v1/profiles/{merged['super_id']}", headers=auth).json()
    theirs = client.get(f"/api/v1/profiles/{absorbed}", headers=auth).json()
    assert mine["super_id"] != theirs["super_id"]
    names = {p["name"]: {t["key"]: t["value"] for t in p["traits"]} for p in (mine, theirs)}
    assert names["韩梅梅"] == {"email": "han@example.com", "name": "韩梅梅"}
    assert names["李雷"]["city"] == "上海"


def test_a_graph_rebuild_replays_traits_once_under_the_new_super_ids(li, client, runtime, ws, auth):
    runtime.stitcher.rebuild(ws, actor="test")
    found = client.get("/api/v1/profiles/lookup", params={"type": "member_id", "value": "M1001"}, headers=auth).json()
    # the old traits went with the old persons; replayed once, `sum` traits are not doubled
    assert {t["key"]: t["value"] for t in found["traits"]} == {t["key"]: t["value"] for t in li["traits"]}
    assert {t["key"]: t["value"] for t in found["traits"]}["points_earned"] == 15
    assert found["computed"]["event_count"] == li["computed"]["event_count"]


def test_the_data_map_over_rest(li, client, auth):
    body = client.get("/api/v1/data-map", headers=auth).json()
    assert body["totals"]["profiles"] >= 1 and len(body["days"]) == 30
    by_kind = {s["kind"]: s for s in body["sources"]}
    assert by_kind["website"]["profiles"] == 1 and by_kind["store"]["profiles"] == 1
    assert {t["type"] for t in by_kind["store"]["identifier_types"]} == {"phone", "visitor_cookie"}


# --- console --------------------------------------------------------------------------------------------


@pytest.fixture
def console(client, first_run):
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303
    return client


def test_the_console_lists_searches_and_shows_the_profile_360(li, console):
    listed = console.get("/console/profiles", params={"q": "138 0013 8001"})
    assert listed.status_code == 200
    assert f'data-super-id="{li["super_id"]}"' in listed.text and "李雷" in listed.text

    page = console.get(f"/console/profiles/{li['super_id']}")
    assert page.status_code == 200
    html = page.text
    assert "用户360" in html and "李雷" in html
    assert 'data-id-type="phone"' in html and "手机号" in html  # identities with type labels
    assert 'data-trait="city"' in html and "上海" in html and "最新值" in html
    assert "完成订单 A1，¥128.00" in html  # the timeline
    assert 'data-source-kind="store"' in html and 'data-kind="click"' in html
    assert 'id="consent"' in html and "/console/identity" in html
    assert '<a href="/console/profiles" class="on">' in html  # the nav entry

    console.cookies.set("sy_lang", "en")
    english = console.get(f"/console/profiles/{li['super_id']}")
    assert "Profile 360" in english.text and "Order A1 completed: ¥128.00" in english.text


def test_the_console_refuses_bad_input_without_a_stack_trace(li, console):
    assert console.get("/console/profiles/999999").status_code == 404
    too_long = console.get("/console/profiles", params={"q": "x" * 300})
    assert too_long.status_code == 422 and 'data-error="q"' in too_long.text
    assert console.get("/console/profiles", params={"page": "-3"}).status_code == 200  # shows the first page


def test_the_console_edits_trait_strategies(li, console):
    csrf = CSRF_RE.search(console.get("/console/profiles/strategies").text).group(1)
    saved = console.post(
        "/console/profiles/strategies", data={"csrf": csrf, "new_key": "first_store", "new_strategy": "first"}
    )
    assert saved.status_code == 303
    page = console.get("/console/profiles/strategies?saved=1").text
    assert 'data-key="first_store"' in page
    bad = console.post("/console/profiles/strategies", data={"csrf": csrf, "new_key": "tier", "new_strategy": "newest"})
    assert bad.status_code == 422 and "tier" in bad.text


def test_the_console_data_map(li, console):
    page = console.get("/console/data-map")
    assert page.status_code == 200
    assert "数据地图" in page.text and 'data-stat="profiles"' in page.text and "静安门店" in page.text


# --- CLI ------------------------------------------------------------------------------------------------


def test_the_cli_shows_looks_up_and_lists_the_timeline(li, runtime, monkeypatch, tmp_path):
    from siyu.cli import common
    from siyu.cli.main import app

    runtime.stop()
    runtime.store.close()  # the CLI opens the event store itself, as it would with the server stopped
    monkeypatch.setenv("SIYU_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("SIYU_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("SIYU_EVENTS_PATH", runtime.settings.events_path)
    monkeypatch.setattr(common, "_db", None)
    cli = CliRunner()

    shown = cli.invoke(app, ["profiles", "show", str(li["super_id"])])
    assert shown.exit_code == 0, shown.output
    assert "李雷" in shown.output and "+8613800138001" in shown.output and "city" in shown.output
    found = cli.invoke(app, ["profiles", "lookup", "phone", "138 0013 8001", "--json"])
    assert found.exit_code == 0 and f'"super_id": {li["super_id"]}' in found.output
    timeline = cli.invoke(app, ["profiles", "timeline", str(li["super_id"]), "--limit", "2"])
    assert timeline.exit_code == 0 and "完成订单 A1" in timeline.output and "1-2 of 5" in timeline.output
    missing = cli.invoke(app, ["profiles", "show", "999999"])
    assert missing.exit_code == 1 and "person 999999" in missing.output
    bad_type = cli.invoke(app, ["profiles", "lookup", "passport", "E1"])
    assert bad_type.exit_code == 1 and "type: unknown identifier type" in bad_type.output
