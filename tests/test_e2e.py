"""End-to-end: the real console and redirects in headless Chromium, as an operator would use them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser import ARGS, CHROMIUM, DESKTOP_CHROME, SCREENSHOTS, WECHAT_IOS
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def sign_in(page: Page, live_server, email: str | None = None, password: str | None = None) -> None:
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=email]", email or live_server.first_run.email)
    page.fill("input[name=password]", password or live_server.first_run.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_sign_in_and_dashboard(browser, live_server):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.goto(f"{live_server.url}/console/")
    assert page.url.startswith(f"{live_server.url}/console/login")
    shot(page, "login")
    page.fill("input[name=email]", live_server.first_run.email)
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "邮箱或密码不正确"
    sign_in(page, live_server)
    assert page.locator("h1").first.inner_text().startswith("仪表盘")
    shot(page, "dashboard")


def test_anti_block_guidance_in_wechat_and_redirect_on_desktop(browser, live_server):
    wechat = browser.new_page(user_agent=WECHAT_IOS, viewport={"width": 390, "height": 844}, locale="zh-CN")
    wechat.goto(f"{live_server.url}/coffee")
    assert wechat.locator("h1").inner_text() == "请在浏览器中打开"
    assert "Safari" in wechat.locator("li").inner_text()
    shot(wechat, "guidance-wechat-ios")

    desktop = browser.new_page(user_agent=DESKTOP_CHROME)
    landed: list[str] = []

    def fulfil(route):
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>landed</h1>")

    desktop.route(re.compile(r"^https://example\.com/"), fulfil)
    desktop.goto(f"{live_server.url}/coffee")
    assert desktop.locator("h1").inner_text() == "landed"
    assert landed and landed[0].startswith("https://example.com/coffee?from=poster&utm_source=poster")
