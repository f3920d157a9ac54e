"""End-to-end: the real console and redirects in headless Chromium, as an operator would use them."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    """Screenshots land in docs/screenshots only when asked (SIYU_UPDATE_SCREENSHOTS=1), so a plain
    test run leaves the work tree clean."""
    folder = (
        SCREENSHOTS if os.environ.get("SIYU_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "siyu-shots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


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
    redirects: list[tuple[int, str]] = []

    def capture_redirect(route):
        # Playwright routes only a navigation's first hop, and this machine cannot reach example.com:
        # let the browser's request reach the server, record the redirect, and stand in for the destination.
        response = route.fetch(max_redirects=0)
        redirects.append((response.status, response.headers.get("location", "")))
        route.fulfill(status=200, content_type="text/html", body="<h1>landed</h1>")

    desktop.route(re.compile(r"/coffee$"), capture_redirect)
    desktop.goto(f"{live_server.url}/coffee")
    assert desktop.locator("h1").inner_text() == "landed"
    status, location = redirects[0]
    assert status == 302
    assert location.startswith("https://example.com/coffee?from=poster&utm_source=poster")


def test_operator_journey_create_link_with_anti_block_see_clicks_and_reissue_a_qr(browser, live_server, tmp_path):
    """The issue's walk-through: create a 防红 link in the console, visit it from WeChat and a desktop,
    see both clicks in its charts, then turn an uploaded QR image into a tracked link."""
    from siyu.qr import decode_image, render_png

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sign_in(page, live_server)

    page.goto(f"{live_server.url}/console/links")
    assert page.locator("table").count() >= 1
    shot(page, "links")

    page.goto(f"{live_server.url}/console/links/new")
    page.fill("input[name=destination_url]", "https://shop.example.com/autumn")
    page.fill("input[name=slug]", "autumn")
    page.fill("input[name=title]", "秋季新品 <b>限时</b>")
    page.check("input[name=anti_block_platforms][value=wechat]")
    page.wait_for_timeout(600)  # let the live preview refresh
    shot(page, "link-form")
    page.click("form button[type=submit].primary")
    page.wait_for_url(re.compile(r"/console/links/\d+$"))
    link_url = page.url
    assert "秋季新品 <b>限时</b>" in page.locator("h1").inner_text()  # escaped, shown as text

    wechat = browser.new_page(user_agent=WECHAT_IOS, locale="zh-CN")
    wechat.goto(f"{live_server.url}/autumn")
    assert wechat.locator("h1").inner_text() == "请在浏览器中打开"

    desktop = browser.new_page(user_agent=DESKTOP_CHROME)
    seen: list[int] = []

    def capture(route):
        seen.append(route.fetch(max_redirects=0).status)
        route.fulfill(status=200, content_type="text/html", body="<h1>landed</h1>")

    desktop.route(re.compile(r"/autumn$"), capture)
    desktop.goto(f"{live_server.url}/autumn")
    assert seen == [302]

    live_server.runtime.clicks.flush()
    page.goto(link_url)
    assert page.locator("[data-stat=clicks]").inner_text() == "2"
    assert "微信" in page.content()
    shot(page, "link-detail")

    poster = tmp_path / "poster.png"
    poster.write_bytes(render_png("https://example.org/offline-poster"))
    page.goto(f"{live_server.url}/console/qr")
    page.set_input_files("input[name=image] >> nth=0", str(poster))
    page.click("#qr-form button[type=submit]")
    page.wait_for_selector("text=https://example.org/offline-poster")
    page.click("form[action='/console/qr/create'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    shot(page, "qr-tools")
    new_qr = page.locator("img[src*='/qr.png']").first.get_attribute("src")
    png = page.request.get(f"{live_server.url}{new_qr}").body()
    decoded = decode_image(png)[0].text
    assert decoded.startswith(f"{live_server.url}/") and decoded.endswith("/q")

    page.goto(f"{live_server.url}/console/settings")
    shot(page, "settings")


def test_analyst_can_read_but_not_edit(browser, live_server):
    from siyu.workspaces import service

    with live_server.runtime.db.session() as session:
        user = service.create_user(session, "analyst@example.com", "analyst-pass-1", "分析师小王")
        service.add_member(session, 1, user.id, "analyst")
    page = browser.new_page(locale="zh-CN")
    sign_in(page, live_server, "analyst@example.com", "analyst-pass-1")
    page.goto(f"{live_server.url}/console/links")
    assert page.locator("text=coffee").count() >= 1
    response = page.goto(f"{live_server.url}/console/links/new")
    assert response.status == 403
    response = page.goto(f"{live_server.url}/console/links/1/edit")
    assert response.status == 403
    page.goto(f"{live_server.url}/console/links/1")
    assert page.locator("a[href$='/edit']").count() == 0
