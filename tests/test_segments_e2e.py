"""End-to-end: an operator builds a segment in the console's builder, in headless Chromium, watching the
live count change as the rule changes, then saves it and finds its members."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from browser import ARGS, CHROMIUM
from playwright.sync_api import Browser, expect, sync_playwright
from test_e2e import shot, sign_in

from siyu.events.ingest import Sender
from siyu.sources import service as sources
from siyu.tags import definitions

PEOPLE = [  # member, city, orders this month
    ("M1", "上海", 3),
    ("M2", "上海", 0),
    ("M3", "北京", 2),
    ("M4", "杭州", 0),
    ("M5", "上海", 1),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def shop(live_server) -> None:
    rt = live_server.runtime
    now = datetime.now(UTC)
    with rt.db.session() as s:
        source = sources.create_source(s, 1, "官网", "website").source.id
    batch = []
    for member, city, orders in PEOPLE:
        batch.append({"type": "identify", "userId": member, "traits": {"city": city}, "timestamp": now.isoformat()})
        batch += [
            {
                "type": "track",
                "userId": member,
                "event": "Order Completed",
                "timestamp": (now - timedelta(days=k + 1)).isoformat(),
            }
            for k in range(orders)
        ]
    rt.ingestor.ingest_batch(Sender(1, source), {"batch": batch})
    rt.stitch_now()
    rule = {"type": "event", "event": "Order Completed", "within_days": 30, "op": "gte", "value": 2}
    with rt.db.session() as s:
        definitions.create_tag(s, 1, {"code": "repeat_buyer", "name": "复购客户", "kind": "rule", "rule": rule})
    rt.tags.recompute(1)


def test_build_a_segment_with_the_live_count(browser, live_server, shop):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/console/segments")
    page.click("#new-segment")
    page.wait_for_url("**/console/segments/new")
    count = page.locator("#sb-count")
    expect(count).to_have_text("3")  # the default rule, any behaviour in 30 days: M1, M3, M5 ordered

    page.fill("input[name=name]", "上海复购客户")
    row = page.locator(".sb-cond").first
    row.locator("select[aria-label=type]").select_option("trait")
    row = page.locator(".sb-cond").first
    row.locator("input.sb-field").fill("city")
    row.locator("input[aria-label=value]").fill("上海")
    expect(count).to_have_text("3")
    expect(page.locator("#sb-share")).to_contain_text("占全部 5 人的 60.0%")

    page.click("text=+ 条件")
    second = page.locator(".sb-cond").nth(1)
    second.locator("select[aria-label=type]").select_option("tag")
    expect(count).to_have_text("1")  # 上海 and 复购客户: only M1

    page.locator(".sb-cond").nth(1).locator(".sb-not input").check()  # 上海 but NOT a repeat buyer: M2, M5
    expect(count).to_have_text("2")
    page.locator(".sb-cond").first.locator("input.sb-field").fill("shoe_size")
    expect(page.locator("#sb-errors")).to_contain_text("未知属性“shoe_size”")
    page.locator(".sb-cond").first.locator("input.sb-field").fill("city")
    expect(page.locator("#sb-errors")).to_be_empty()
    shot(page, "segment-builder")

    page.click("#save-segment")
    page.wait_for_url("**/console/segments/*")
    expect(page.locator("#member-count")).to_have_text("2")
    expect(page.locator("#rule-sentence")).to_have_text("city 等于 上海 且 非（有标签「复购客户」）")
    expect(page.locator("#members")).to_contain_text("#")
    shot(page, "segment-detail")
