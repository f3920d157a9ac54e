"""Click capture: what each visit records, how visitor IPs are kept, and that no click is ever lost.

Clicks go from the redirect into an in-process queue; a writer thread enriches them (user agent,
geo, IP privacy, UTM) and appends them to the DuckDB event store.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_settings
from sqlalchemy import select

from siyu.clicks.enrich import enrich
from siyu.clicks.record import RawClick
from siyu.events.store import ClickFilter
from siyu.geo import hash_ip
from siyu.runtime import Runtime
from siyu.workspaces.models import Workspace

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CURL = "curl/8.5.0"
SHENZHEN_IP = "202.96.134.133"  # China Telecom, Shenzhen, Guangdong


def ua(agent: str, **extra: str) -> dict[str, str]:
    return {"User-Agent": agent, **extra}


def workspace_id(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(Workspace.id).where(Workspace.slug == "default"))


def stored_clicks(runtime) -> list[dict]:
    """Every click in the default workspace's store (bots included), oldest first, after a flush."""
    runtime.clicks.flush()
    rows = runtime.store.export(ClickFilter(workspace_id(runtime), include_bots=True))
    header = next(rows)
    return [dict(zip(header, row, strict=True)) for row in rows]


def store_count(runtime) -> int:
    return runtime.store.summary(ClickFilter(workspace_id(runtime), include_bots=True)).clicks


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def raw_click(n: int, ws: int = 1, ip: str = "", ua_text: str = DESKTOP_CHROME, query: str = "") -> RawClick:
    return RawClick(
        ts=time.time(),
        link_id=1,
        workspace_id=ws,
        hostname="sy.test",
        slug="coffee",
        visitor_id=f"visitor-{n:05d}",
        new_visitor=True,
        ip=ip,
        user_agent=ua_text,
        method="GET",
        referrer="",
        trigger="link",
        outcome="redirected",
        query=query,
        destination="https://example.com/coffee",
        variant=None,
        platform="none",
        person_ref=None,
    )


# --- what a click records -----------------------------------------------------------------------------


def test_a_visit_is_recorded_with_who_where_from_and_which_campaign(client, auth, runtime):
    before = datetime.now(UTC).replace(tzinfo=None)
    coffee = client.get("/api/v1/links", params={"search": "coffee"}, headers=auth).json()["links"][0]

    response = client.get(
        "/coffee?utm_source=newsletter&utm_campaign=spring&utm_content=hero",
        headers=ua(DESKTOP_CHROME, Referer="https://www.baidu.com/s?wd=coffee"),
    )
    assert response.status_code == 302
    visitor_id = re.match(r"sy_vid=([^;]+)", response.headers["set-cookie"]).group(1)

    [click] = stored_clicks(runtime)
    assert before - timedelta(seconds=1) <= click["ts"] <= datetime.now(UTC).replace(tzinfo=None)
    assert click["workspace_id"] == workspace_id(runtime)
    assert click["link_id"] == coffee["id"]
    assert (click["hostname"], click["slug"]) == ("sy.test", "coffee")
    assert click["visitor_id"] == visitor_id
    assert click["new_visitor"] is True
    assert click["trigger"] == "link"
    assert click["outcome"] == "redirected"
    assert click["destination"] == response.headers["location"]
    assert click["method"] == "GET"
    assert click["platform"] == "none"  # a plain browser, not an in-app one
    assert (click["os"], click["device_type"], click["browser"]) == ("Windows", "desktop", "Chrome")
    assert click["is_bot"] is False
    assert click["referrer"] == "https://www.baidu.com/s?wd=coffee"
    assert click["referrer_domain"] == "baidu.com"
    assert (click["utm_source"], click["utm_medium"], click["utm_campaign"], click["utm_content"]) == (
        "newsletter",
        None,
        "spring",
        "hero",
    )
    assert click["user_agent"] == DESKTOP_CHROME


def test_every_outcome_is_recorded(client, auth, runtime):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for fields in (
        {"slug": "locked", "destination_url": "https://example.com/a", "password": "open-sesame"},
        {"slug": "gone", "destination_url": "https://example.com/b", "expires_at": past},
        {"slug": "retired", "destination_url": "https://example.com/c", "archived": True},
    ):
        assert client.post("/api/v1/links", json=fields, headers=auth).status_code == 201

    visits = [
        ("/coffee", DESKTOP_CHROME, 302),
        ("/coffee", WECHAT_IOS, 200),
        ("/wx-only", IOS_SAFARI, 403),
        ("/locked", DESKTOP_CHROME, 200),
        ("/gone", DESKTOP_CHROME, 410),
        ("/retired", DESKTOP_CHROME, 404),
    ]
    for path, agent, status in visits:
        assert client.get(path, headers=ua(agent)).status_code == status, path

    clicks = stored_clicks(runtime)
    assert [(c["slug"], c["outcome"]) for c in clicks] == [
        ("coffee", "redirected"),
        ("coffee", "guidance"),
        ("wx-only", "not_allowed"),
        ("locked", "password"),
        ("gone", "expired"),
        ("retired", "not_found"),
    ]
    wechat = clicks[1]
    assert (wechat["platform"], wechat["os"], wechat["device_type"]) == ("wechat", "iOS", "mobile")
    assert wechat["browser"] == "WeChat Browser"
    assert clicks[1]["destination"].startswith("https://example.com/coffee?")  # what the guidance page showed


def test_bots_are_recorded_but_left_out_of_stats_unless_asked_for(client, auth, runtime):
    client.get("/coffee", headers=ua(DESKTOP_CHROME))
    client.get("/coffee", headers=ua(GOOGLEBOT))
    client.get("/coffee", headers=ua(CURL))
    client.head("/coffee", headers=ua(DESKTOP_CHROME))  # link checkers probe with HEAD

    clicks = stored_clicks(runtime)
    assert [c["is_bot"] for c in clicks] == [False, True, True, True]
    assert clicks[1]["device_type"] == "bot"

    people = client.get("/api/v1/analytics", headers=auth).json()
    assert (people["clicks"], people["bot_clicks"], people["include_bots"]) == (1, 3, False)
    assert people["breakdowns"]["browser"] == [{"value": "Chrome", "clicks": 1, "unique_visitors": 1}]

    everyone = client.get("/api/v1/analytics", params={"include_bots": "true"}, headers=auth).json()
    assert (everyone["clicks"], everyone["bot_clicks"], everyone["include_bots"]) == (4, 3, True)


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(client, runtime):
    client.get("/coffee", headers=ua(DESKTOP_CHROME, **{"X-Forwarded-For": SHENZHEN_IP}))

    [click] = stored_clicks(runtime)
    assert click["ip"] is None  # the test client's address ("testclient") is not an IP, so nothing is kept
    assert click["province"] == ""


def test_enrich_locates_a_chinese_ip_and_applies_the_privacy_mode():
    click = raw_click(1, ip=SHENZHEN_IP, query="utm_source=wx&utm_medium=social&other=1")
    salt = bytes.fromhex("00" * 16)

    def stored(mode: str) -> dict:
        return enrich([click], lambda _ws: (mode, salt)).to_pylist()[0]

    full = stored("full")
    assert (full["country"], full["country_code"], full["province"], full["city"]) == ("中国", "CN", "广东省", "深圳市")
    assert full["isp"] == "电信"
    assert (full["utm_source"], full["utm_medium"], full["utm_campaign"]) == ("wx", "social", None)
    assert full["ip"] == SHENZHEN_IP
    assert stored("truncated")["ip"] == "202.96.134.0"
    assert stored("hashed")["ip"] == hash_ip(SHENZHEN_IP, salt)
    assert re.fullmatch(r"[0-9a-f]{32}", stored("hashed")["ip"])
    assert stored("none")["ip"] is None
    assert stored("none")["province"] == "广东省"  # geo is resolved from the full address before it is dropped


class TestBehindATrustedProxy:
    """With `trust_proxy`, the first X-Forwarded-For address is the visitor's."""

    @pytest.fixture
    def settings(self, tmp_path):
        return make_settings(tmp_path, extra={"trust_proxy": "1"})

    @pytest.mark.parametrize("mode", ["full", "truncated", "hashed", "none"])
    def test_ip_is_stored_as_the_workspace_privacy_mode_says(self, client, auth, runtime, mode):
        patched = client.patch("/api/v1/workspace", json={"ip_mode": mode}, headers=auth)
        assert patched.status_code == 200
        assert patched.json()["ip_mode"] == mode

        client.get("/coffee", headers=ua(DESKTOP_CHROME, **{"X-Forwarded-For": f"{SHENZHEN_IP}, 10.0.0.1"}))

        [click] = stored_clicks(runtime)
        with runtime.db.session() as session:
            salt = bytes.fromhex(session.scalar(select(Workspace.ip_salt).where(Workspace.slug == "default")))
        expected = {
            "full": SHENZHEN_IP,
            "truncated": "202.96.134.0",
            "hashed": hash_ip(SHENZHEN_IP, salt),
            "none": None,
        }[mode]
        assert click["ip"] == expected
        assert (click["country_code"], click["province"], click["city"]) == ("CN", "广东省", "深圳市")

    def test_province_breakdown_in_analytics(self, client, auth, runtime):
        client.get("/coffee", headers=ua(DESKTOP_CHROME, **{"X-Forwarded-For": SHENZHEN_IP}))
        runtime.clicks.flush()

        report = client.get("/api/v1/analytics", headers=auth).json()
        assert report["breakdowns"]["province"] == [{"value": "广东省", "clicks": 1, "unique_visitors": 1}]
        assert report["breakdowns"]["city"] == [{"value": "深圳市", "clicks": 1, "unique_visitors": 1}]


def test_invalid_ip_mode_is_refused(client, auth):
    response = client.patch("/api/v1/workspace", json={"ip_mode": "everything"}, headers=auth)

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "ip_mode"


# --- never lose a click --------------------------------------------------------------------------------


class TestGracefulStop:
    @pytest.fixture
    def settings(self, tmp_path):
        # The writer would wait an hour between flushes: only stop() can get these clicks written.
        return dataclasses.replace(make_settings(tmp_path), click_flush_seconds=3600)

    def test_stop_drains_the_queue(self, runtime, first_run):
        runtime.start()
        for n in range(250):
            runtime.clicks.put(raw_click(n))
        assert len(runtime.clicks) == 250
        assert store_count(runtime) == 0

        runtime.stop()

        assert len(runtime.clicks) == 0
        assert store_count(runtime) == 250
        assert not (runtime.settings.data_dir / "clicks-unwritten.jsonl").exists()


def test_a_failing_store_write_is_retried_without_losing_clicks(runtime, first_run, monkeypatch):
    real_append = runtime.store.append_clicks
    calls = []

    def flaky_append(table):
        calls.append(table.num_rows)
        if len(calls) == 1:
            raise OSError("disk full")
        real_append(table)

    monkeypatch.setattr(runtime.store, "append_clicks", flaky_append)
    for n in range(20):
        runtime.clicks.put(raw_click(n))

    runtime.start()
    assert wait_for(lambda: store_count(runtime) == 20)
    assert calls[:2] == [20, 20]  # the same batch, again
    assert runtime.clicks.failed_batches == 1
    assert runtime.clicks.written == 20
    runtime.stop()
    assert store_count(runtime) == 20


def test_clicks_are_kept_on_disk_when_the_store_is_down_at_shutdown_and_recovered_next_start(
    runtime, first_run, monkeypatch
):
    spill = runtime.settings.data_dir / "clicks-unwritten.jsonl"

    def broken(table):
        raise OSError("event store unavailable")

    monkeypatch.setattr(runtime.store, "append_clicks", broken)
    runtime.start()
    for n in range(30):
        runtime.clicks.put(raw_click(n, query="utm_source=kept"))
    runtime.stop()

    lines = spill.read_text().splitlines()
    assert len(lines) == 30
    assert json.loads(lines[0])["visitor_id"] == "visitor-00000"
    monkeypatch.undo()
    runtime.store.close()

    # The next start (a new process) finds the file and writes its clicks.
    restarted = Runtime.create(runtime.settings)
    try:
        restarted.start()
        assert wait_for(lambda: store_count(restarted) == 30)
        assert not spill.exists()
        assert not spill.with_suffix(".recovering").exists()
        clicks = stored_clicks(restarted)
        assert sorted(c["visitor_id"] for c in clicks) == [f"visitor-{n:05d}" for n in range(30)]
        assert {c["utm_source"] for c in clicks} == {"kept"}
    finally:
        restarted.close()
