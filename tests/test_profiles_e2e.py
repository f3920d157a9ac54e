"""End-to-end: the profile 360 page and the data map in headless Chromium, as an operator uses them.

A customer clicks a 防红 short link in WeChat, the website's SDK identifies them, the store sends an
order; the real server stitches it all to one person, and the operator finds them by phone number.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
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


def write_key(live_server, kind: str, name: str) -> dict[str, str]:
    with live_server.runtime.db.session() as s:
        key = sources.create_source(s, 1, name, kind).write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_operator_finds_a_customer_by_phone_and_reads_their_profile_360(browser, live_server):
    wechat = browser.new_page(user_agent=WECHAT_IOS, locale="zh-CN")
    wechat.goto(f"{live_server.url}/coffee")  # the 防红 guidance page; the click and its cookie are recorded
    cookie = next(c["value"] for c in wechat.context.cookies() if c["name"] == "sy_vid")

    then = datetime.now(UTC) - timedelta(hours=1)
    at = [(then + timedelta(minutes=m)).isoformat() for m in range(5)]
    website = write_key(live_server, "website", "官网")
    store = write_key(live_server, "store", "静安门店")
    landing = {"externalIds": [{"type": "visitor_cookie", "id": cookie, "collection": "users", "encoding": "none"}]}
    batch = [
        {"type": "page", "anonymousId": "web-1", "name": "秋季菜单", "timestamp": at[0], "context": landing},
        {
            "type": "identify",
            "anonymousId": "web-1",
            "userId": "M1001",
            "traits": {"name": "李雷", "phone": "13800138001", "city": "上海"},
            "timestamp": at[1],
        },
    ]
    order = {
        "type": "track",
        "userId": "M1001",
        "event": "Order Completed",
        "properties": {"order_id": "A1", "revenue": 128},
        "timestamp": at[2],
    }
    with httpx.Client(base_url=live_server.url) as http:
        assert http.post("/v1/batch", json={"batch": batch}, headers=website).status_code == 200
        assert http.post("/v1/track", json=order, headers=store).status_code == 200
    live_server.runtime.stitch_now()

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sign_in(page, live_server)
    page.click("nav >> text=用户")
    page.fill("input[name=q]", "138 0013 8001")
    page.click("form[role=search] button[type=submit]")
    page.click("table >> text=李雷")
    page.wait_for_url(re.compile(r"/console/profiles/\d+$"))

    assert page.locator("h1").inner_text() == "李雷"
    assert page.locator("#identities tr[data-id-type=phone]").inner_text().startswith("手机号")
    assert page.locator("#traits tr[data-trait=city]").inner_text().split("\t")[1] == "上海"
    assert page.locator("[data-stat=orders]").inner_text() == "1"
    assert page.locator("[data-stat=revenue]").inner_text() == "¥128.00"
    summaries = page.locator("#timeline .pf-summary").all_inner_texts()
    assert summaries == [
        "点击短链 /coffee（微信），显示防红引导页",
        "完成订单 A1，¥128.00",
        "更新资料：city、name、phone",
        "浏览页面 秋季菜单",
    ]
    kinds = [page.locator("#timeline li").nth(i).get_attribute("data-source-kind") for i in range(4)]
    assert kinds == ["short_links", "store", "website", "website"]
    assert page.locator("#consent").count() == 1
    shot(page, "profile-360")

    page.goto(f"{live_server.url}/console/data-map")
    page.wait_for_selector("#dm-daily canvas")  # ECharts drew the events-per-day chart
    assert page.locator("[data-stat=profiles]").inner_text() == "1"
    assert "静安门店" in page.locator("#sources").inner_text()
    shot(page, "data-map")

    phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    sign_in(phone, live_server)
    phone.goto(page.url.replace("/data-map", "/profiles"))
    assert phone.locator("table").count() == 1  # the list works on a phone too
