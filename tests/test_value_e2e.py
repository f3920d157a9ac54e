"""End-to-end in headless Chromium: an operator reads customer value, hands a customer a share link from
their profile, a friend arrives through it in WeChat and identifies, and the next run shows the referral
as a fission tree drawn on the social page.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import value_data
from browser import ARGS, CHROMIUM, WECHAT_IOS
from playwright.sync_api import Browser, sync_playwright
from test_e2e import shot, sign_in

from siyu.sources import service as sources


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_value_pages_share_link_and_fission_tree(browser, live_server):
    with live_server.runtime.db.session() as s:
        key = sources.create_source(s, 1, "商城", "website").write_key
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    auth = {"Authorization": f"Bearer {live_server.api_key}"}
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        for chunk in value_data.chunks(value_data.shop(loyal=10, occasional=10, one_time=10)):
            assert http.post("/v1/batch", json={"batch": chunk}, headers=basic).status_code == 200
        live_server.runtime.stitch_now()
        assert http.put("/api/v1/value/settings", json={"share_url": "https://shop.example/invite"}, headers=auth)
        assert http.post("/api/v1/value/run", json={"wait": True}, headers=auth).json()["status"] == "succeeded"
        sharer = http.get("/api/v1/profiles/lookup", params={"type": "member_id", "value": "L01"}, headers=auth)
        sharer = sharer.json()["super_id"]

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sign_in(page, live_server)
    page.click("nav >> text=客户价值")
    page.wait_for_selector("#chart-pyramid canvas")  # ECharts drew the pyramid
    assert page.locator("a.vl-cell").count() == 8
    page.click("a.vl-cell[data-segment=important_value]")
    assert page.locator("#value-people tbody tr").count() > 0
    segments = page.locator("#value-people tbody tr td:nth-child(2)").all_inner_texts()
    assert set(segments) == {"重要价值客户"}
    shot(page, "value-overview")

    # the profile 360 page loads the value card, whose button creates the share link
    page.goto(f"{live_server.url}/console/profiles/{sharer}")
    page.wait_for_selector("[data-value-card] [data-value=segment]")
    assert page.locator("[data-value=segment]").inner_text() == "重要价值客户"
    page.click("#share-link-get")
    page.wait_for_selector("[data-share-link]")
    short_url = page.locator("[data-share-link]").inner_text()

    friend = browser.new_page(user_agent=WECHAT_IOS, locale="zh-CN")
    visit = friend.request.get(short_url, max_redirects=0)  # the landing page is on the internet: stop at the 302
    assert visit.status == 302 and visit.headers["location"].startswith("https://shop.example/invite")
    cookie = next(c["value"] for c in friend.context.cookies() if c["name"] == "sy_vid")
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    landing = {"externalIds": [{"type": "visitor_cookie", "id": cookie, "collection": "users", "encoding": "none"}]}
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        identify = {"type": "identify", "userId": "FRIEND", "traits": {"name": "新朋友"}, "context": landing}
        assert (
            http.post("/v1/batch", json={"batch": [{**identify, "timestamp": later}]}, headers=basic).status_code == 200
        )
        live_server.runtime.stitch_now()
        assert http.post("/api/v1/value/run", json={"wait": True}, headers=auth).json()["status"] == "succeeded"

    page.goto(f"{live_server.url}/console/value/social?root={sharer}")
    page.wait_for_selector("#chart-tree canvas")
    assert page.locator("#chart-tree").get_attribute("data-tree-size") == "2"
    assert page.locator(f"#kocs tr[data-super-id='{sharer}']").count() == 1
    shot(page, "value-social")
