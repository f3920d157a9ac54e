"""The console's link detail page over the full app: rules in words, QR styling, per-link analytics, CSV,
roles, workspace isolation, escaping and English.

Clicks come from real visits to the demo links through the redirect, so the numbers asserted here are the
ones the ingester actually wrote.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from siyu.events.store import ClickFilter
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.qr import decode_image
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- helpers ----------------------------------------------------------------------------------------


def workspace_id(runtime) -> int:
    with runtime.db.session() as db:
        return db.scalar(select(Workspace.id).where(Workspace.slug == "default"))


def link_id(runtime, slug: str) -> int:
    with runtime.db.session() as db:
        return db.scalar(select(ShortLink.id).where(ShortLink.slug == slug))


def get_link(runtime, lid: int) -> ShortLink:
    with runtime.db.session() as db:
        return db.get(ShortLink, lid)


def sign_in(client, email: str, password: str) -> None:
    client.cookies.clear()
    response = client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def rules_of(html: str) -> list[str]:
    block = re.search(r'<ul class="rules">(.*?)</ul>', html, re.S).group(1)
    return [unescape(li) for li in re.findall(r"<li>(.*?)</li>", block, re.S)]


def chart_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="detail-data">(.*?)</script>', html, re.S)[1])


def stat(html: str, name: str) -> str:
    return re.search(rf'data-stat="{name}">([^<]*)<', html).group(1)


def visit(client, path: str, ua: str, visitor: str) -> int:
    return client.get(path, headers={"User-Agent": ua, "Cookie": f"sy_vid={visitor}"}).status_code


def wait_for_clicks(runtime, lid: int, expected: int) -> None:
    """The click writer batches in a background thread; flush and poll until all visits are stored."""
    f = ClickFilter(workspace_id(runtime), lid, include_bots=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        runtime.clicks.flush()
        summary = runtime.store.summary(f)
        if summary.clicks >= expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"only {runtime.store.summary(f)} stored, expected {expected}")


@pytest.fixture
def owner(client, first_run):
    sign_in(client, first_run.email, first_run.password)
    return client


@pytest.fixture
def coffee_clicks(client, runtime):
    """Three human visits to /coffee (WeChat guidance, desktop link, desktop QR scan) and one crawler."""
    assert visit(client, "/coffee", WECHAT_IOS, "visitor-0001-abcd") == 200  # 防红 guidance page
    assert visit(client, "/coffee", DESKTOP_CHROME, "visitor-0002-abcd") == 302
    assert visit(client, "/coffee/q", DESKTOP_CHROME, "visitor-0003-abcd") == 302
    visit(client, "/coffee", GOOGLEBOT, "visitor-0004-abcd")
    lid = link_id(runtime, "coffee")
    wait_for_clicks(runtime, lid, 4)
    return lid


def png_logo() -> bytes:
    img = Image.new("RGB", (120, 80), (220, 30, 30))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# --- the link and its rules -------------------------------------------------------------------------


def test_detail_page_shows_the_link_and_its_rules_in_words(owner, runtime):
    lid = link_id(runtime, "coffee")
    response = owner.get(f"/console/links/{lid}")
    assert response.status_code == 200
    html = response.text
    assert 'data-copy="http://sy.test/coffee"' in html
    assert 'data-copy="http://sy.test/coffee/q"' in html
    assert "https://example.com/coffee?from=poster" in html
    assert "精品咖啡新品 · Coffee launch" in html
    assert 'class="tag"' in html and "咖啡" in html
    assert 'data-status="active">生效中<' in html
    assert f'href="/console/links/{lid}/edit"' in html
    assert f'action="/console/links/{lid}/archive"' in html
    rules = rules_of(html)
    assert "在微信、QQ、微博、钉钉、抖音中显示防红引导页（提示在浏览器中打开）" in rules
    assert "附加 UTM 参数：utm_source=poster、utm_medium=offline、utm_campaign=coffee-launch" in rules
    assert "全部访问 → https://example.com/coffee?from=poster" in rules
    assert "跳转状态码 302（临时跳转）" in rules


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("wx-only", ["仅允许：微信、企业微信", "全部访问 → https://example.com/member-day"]),
        (
            "get-app",
            [
                "禁止访问：QQ",
                "iOS → https://apps.apple.com/app/id000000",
                "Android、鸿蒙 → https://example.com/download/app.apk",
                "其他访问 → https://example.com/download",
            ],
        ),
        ("ab-test", ["A/B：50% → https://example.com/landing-a，50% → https://example.com/landing-b"]),
    ],
)
def test_demo_links_rules_in_words(owner, runtime, slug, expected):
    rules = rules_of(owner.get(f"/console/links/{link_id(runtime, slug)}").text)
    for sentence in expected:
        assert sentence in rules
    if slug == "get-app":  # first matching rule wins, so the order on the page is the order applied
        assert rules.index(expected[1]) < rules.index(expected[2]) < rules.index(expected[3])


def test_expiry_click_limit_password_and_permanent_redirect_in_words(owner, runtime):
    lid = link_id(runtime, "wx-only")
    with runtime.db.session() as db:
        links.update_link(
            db,
            runtime.link_context(workspace_id(runtime)),
            lid,
            {
                "expires_at": "2099-12-31T23:59:00+08:00",
                "max_clicks": 100,
                "fallback_url": "https://example.com/sorry",
                "password": "secret-1",
                "redirect_status": 301,
            },
        )
    rules = rules_of(owner.get(f"/console/links/{lid}").text)
    assert "2099-12-31 23:59 后失效（北京时间），之后跳转到 https://example.com/sorry" in rules
    assert "最多 100 次点击后跳转到 https://example.com/sorry（已用 0 次）" in rules
    assert "需要密码" in rules
    assert any(r.startswith("跳转状态码 301（永久跳转）") and "不会被统计" in r for r in rules)


def test_a_past_expiry_shows_the_link_as_expired(owner, runtime):
    lid = link_id(runtime, "ab-test")
    with runtime.db.session() as db:
        links.update_link(db, runtime.link_context(workspace_id(runtime)), lid, {"expires_at": "2020-01-01T00:00:00Z"})
    html = owner.get(f"/console/links/{lid}").text
    assert 'data-status="expired">已失效<' in html
    assert "已于 2020-01-01 08:00 失效（北京时间）" in rules_of(html)


def test_archive_and_restore(owner, runtime):
    lid = link_id(runtime, "coffee")
    html = owner.get(f"/console/links/{lid}").text
    assert owner.post(f"/console/links/{lid}/archive", data={}).status_code == 403  # no CSRF token
    assert get_link(runtime, lid).archived is False
    response = owner.post(f"/console/links/{lid}/archive", data={"csrf": csrf_of(html)})
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/links/{lid}?done=archived"
    assert get_link(runtime, lid).archived is True
    page = owner.get(response.headers["location"]).text
    assert 'data-status="archived">已归档<' in page
    assert f'action="/console/links/{lid}/restore"' in page
    owner.post(f"/console/links/{lid}/restore", data={"csrf": csrf_of(page)})
    assert get_link(runtime, lid).archived is False


# --- analytics --------------------------------------------------------------------------------------


def test_clicks_and_breakdowns_for_the_link(coffee_clicks, owner):
    html = owner.get(f"/console/links/{coffee_clicks}").text
    assert stat(html, "clicks") == "3"  # the crawler is left out by default
    assert stat(html, "unique") == "3"
    assert stat(html, "bots") == "1"
    data = chart_data(html)
    platforms = {r["label"]: r["clicks"] for r in data["breakdowns"]["platform"]}
    assert platforms["微信"] == 1
    triggers = {r["key"]: (r["label"], r["clicks"]) for r in data["breakdowns"]["trigger"]}
    assert triggers == {"qr": ("扫描二维码", 1), "link": ("点击短链", 2)}
    outcomes = {r["key"]: (r["label"], r["clicks"]) for r in data["breakdowns"]["outcome"]}
    assert outcomes == {"redirected": ("已跳转", 2), "guidance": ("防红引导页", 1)}
    devices = {r["label"] for r in data["breakdowns"]["device_type"]}
    assert devices == {"手机", "电脑"}
    assert {r["label"] for r in data["breakdowns"]["referrer_domain"]} == {"直接访问"}
    # 30 Beijing-time days up to today by default, zeros included, today's clicks in the last point
    assert len(data["trend"]["x"]) == 30
    assert data["trend"]["clicks"][-1] == 3 and sum(data["trend"]["clicks"]) == 3
    assert data["trend"]["x"][-1] == datetime.now(SHANGHAI).strftime("%m-%d")
    assert '<table class="table ranking" id="provinces">' in html


def test_bots_toggle_and_hourly_view(coffee_clicks, owner):
    html = owner.get(f"/console/links/{coffee_clicks}?include_bots=1").text
    assert stat(html, "clicks") == "4"
    assert {r["key"] for r in chart_data(html)["breakdowns"]["device_type"]} >= {"bot"}
    today = datetime.now(SHANGHAI).date().isoformat()
    data = chart_data(owner.get(f"/console/links/{coffee_clicks}?since={today}&until={today}").text)
    assert len(data["trend"]["x"]) == 24  # a single day defaults to hourly buckets
    assert data["trend"]["x"][0].endswith("00:00") and sum(data["trend"]["clicks"]) == 3
    earlier = (datetime.now(SHANGHAI).date() - timedelta(days=10)).isoformat()
    past = owner.get(f"/console/links/{coffee_clicks}?since={earlier}&until={earlier}").text
    assert stat(past, "clicks") == "0" and "该时间段内没有点击" in past


BAD_PERIODS = [
    ("since=2026-02-30", "开始日期不是有效日期"),
    ("until=yesterday", "结束日期不是有效日期"),
    ("since=2026-03-01&until=2026-01-01", "开始日期不能晚于结束日期"),
    ("since=0001-01-01", "开始日期超出支持的范围"),
    ("since=2000-01-01&until=2026-01-01", "时间范围最长 10 年"),
    ("bucket=week", "粒度只能是按小时或按天"),
    ("since=2026-01-01&until=2026-03-31&bucket=hour", "按小时查看时，范围最长 31 天"),
]


def test_bad_dates_are_reported_inline(owner, runtime):
    lid = link_id(runtime, "coffee")
    for query, message in BAD_PERIODS:
        response = owner.get(f"/console/links/{lid}?{query}")
        assert response.status_code == 422, query
        assert message in re.search(r'id="period-error"[^>]*>([^<]*)<', response.text).group(1), query
        assert 'data-stat="clicks"' in response.text  # the page still works, on the default 30 days


def test_csv_export(coffee_clicks, owner):
    response = owner.get(f"/console/links/{coffee_clicks}/clicks.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="clicks-coffee-' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert len(rows) == 3
    assert {r["slug"] for r in rows} == {"coffee"}
    assert sorted(r["trigger"] for r in rows) == ["link", "link", "qr"]
    assert {r["platform"] for r in rows} == {"wechat", "none"}
    with_bots = owner.get(f"/console/links/{coffee_clicks}/clicks.csv?include_bots=1").text
    assert len(list(csv.DictReader(io.StringIO(with_bots.removeprefix("\ufeff"))))) == 4
    earlier = (datetime.now(SHANGHAI).date() - timedelta(days=3)).isoformat()
    empty = owner.get(f"/console/links/{coffee_clicks}/clicks.csv?since={earlier}&until={earlier}").text
    assert empty.removeprefix("\ufeff").strip().count("\n") == 0  # header only
    bad = owner.get(f"/console/links/{coffee_clicks}/clicks.csv?since=not-a-date")
    assert bad.status_code == 422 and "开始日期" in bad.text


# --- QR -----------------------------------------------------------------------------------------------


def test_qr_png_decodes_to_the_qr_link(owner, runtime):
    for slug in ("coffee", "get-app"):
        lid = link_id(runtime, slug)
        response = owner.get(f"/console/links/{lid}/qr.png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert [c.text for c in decode_image(response.content)] == [f"http://sy.test/{slug}/q"]
    lid = link_id(runtime, "coffee")
    styled = owner.get(
        f"/console/links/{lid}/qr.png", params={"size": 300, "border": 2, "dark": "#1d39c4", "error": "h"}
    )
    assert Image.open(io.BytesIO(styled.content)).size == (300, 300)
    assert decode_image(styled.content)[0].text == "http://sy.test/coffee/q"
    download = owner.get(f"/console/links/{lid}/qr.png?download=1")
    assert download.headers["content-disposition"] == 'attachment; filename="qr-coffee.png"'


def test_qr_svg_is_served(owner, runtime):
    lid = link_id(runtime, "coffee")
    response = owner.get(f"/console/links/{lid}/qr.svg", params={"dark": "#123456", "light": "transparent"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<?xml") and "<svg" in response.text
    assert 'fill="#123456"' in response.text and "<rect" not in response.text  # transparent background
    assert owner.get(f"/console/links/{lid}/qr.gif").status_code == 404


def test_page_preview_uses_the_chosen_options(owner, runtime):
    lid = link_id(runtime, "coffee")
    html = owner.get(f"/console/links/{lid}?size=256&dark=%23112233").text
    src = unescape(re.search(r'id="qr-img" src="([^"]+)"', html).group(1))
    assert "size=256" in src and "dark=%23112233" in src
    image = owner.get(src)
    assert image.status_code == 200 and decode_image(image.content)[0].text == "http://sy.test/coffee/q"


BAD_QR_OPTIONS = [
    ({"dark": "#zzz"}, "dark", "前景色无效"),
    ({"light": "red"}, "light", "背景色无效"),
    ({"dark": "#eeeeee"}, "dark", "前景色无效"),  # too little contrast to scan
    ({"size": "abc"}, "size", "尺寸（像素）无效"),
    ({"size": "10"}, "size", "尺寸（像素）无效"),
    ({"border": "99"}, "border", "边距（模块）无效"),
    ({"error": "x"}, "error", "容错级别无效"),
]


def test_bad_qr_options_name_the_field(owner, runtime):
    lid = link_id(runtime, "coffee")
    for params, field, label in BAD_QR_OPTIONS:
        image = owner.get(f"/console/links/{lid}/qr.png", params=params)
        assert image.status_code == 422, params
        assert image.json()["field"] == field and image.json()["message"].startswith(label), image.json()
        page = owner.get(f"/console/links/{lid}", params=params)
        assert page.status_code == 422, params
        assert unescape(re.search(r'id="qr-error"[^>]*>([^<]*)<', page.text).group(1)).startswith(label), params


def test_logo_upload_returns_a_download_that_still_decodes(owner, runtime):
    lid = link_id(runtime, "coffee")
    csrf = csrf_of(owner.get(f"/console/links/{lid}").text)
    fields = {"csrf": csrf, "size": "400", "border": "4", "dark": "#000000", "light": "#ffffff", "error": "m"}
    logo = {"logo": ("logo.png", png_logo(), "image/png")}
    response = owner.post(f"/console/links/{lid}/qr", data={**fields, "format": "png"}, files=logo)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="qr-coffee.png"'
    img = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert img.size == (400, 400) and img.getpixel((200, 200)) == (220, 30, 30)  # the logo sits in the middle
    assert decode_image(response.content)[0].text == "http://sy.test/coffee/q"
    svg = owner.post(f"/console/links/{lid}/qr", data={**fields, "format": "svg"}, files=logo)
    assert svg.status_code == 200 and "<image" in svg.text and "data:image/png;base64," in svg.text
    preview = owner.post(f"/console/links/{lid}/qr", data={**fields, "format": "png", "preview": "1"}, files=logo)
    assert preview.status_code == 200 and "content-disposition" not in preview.headers


def test_logo_upload_errors_are_inline_and_csrf_is_checked(owner, runtime):
    lid = link_id(runtime, "coffee")
    csrf = csrf_of(owner.get(f"/console/links/{lid}").text)
    bad_logo = {"logo": ("logo.png", b"not an image at all", "image/png")}
    page = owner.post(f"/console/links/{lid}/qr", data={"csrf": csrf, "format": "png"}, files=bad_logo)
    assert page.status_code == 422
    assert "中间 Logo无效" in unescape(page.text)
    preview = owner.post(f"/console/links/{lid}/qr", data={"csrf": csrf, "preview": "1"}, files=bad_logo)
    assert preview.status_code == 422 and preview.json()["field"] == "logo"
    colour = owner.post(f"/console/links/{lid}/qr", data={"csrf": csrf, "dark": "#zz", "preview": "1"})
    assert colour.status_code == 422 and colour.json()["field"] == "dark"
    forged = owner.post(f"/console/links/{lid}/qr", data={"format": "png"}, files={"logo": ("l.png", png_logo())})
    assert forged.status_code == 403


# --- access, escaping, language -----------------------------------------------------------------------


def test_another_workspaces_link_is_not_found(owner, runtime):
    with runtime.db.session() as db:
        other = workspaces.create_workspace(db, "Other brand", slug="other")
        workspaces.add_domain(db, other.id, "other.test", is_default=True)
        foreign = links.create_link(
            db, runtime.link_context(other.id), {"destination_url": "https://example.org/x", "title": "Secret plan"}
        )
        foreign_id = foreign.id
    csrf = csrf_of(owner.get(f"/console/links/{link_id(runtime, 'coffee')}").text)
    for path in ("", "/qr.png", "/qr.svg", "/clicks.csv"):
        response = owner.get(f"/console/links/{foreign_id}{path}")
        assert response.status_code == 404, path
        assert "Secret plan" not in response.text
    assert owner.post(f"/console/links/{foreign_id}/archive", data={"csrf": csrf}).status_code == 404
    assert get_link(runtime, foreign_id).archived is False
    assert owner.get("/console/links/999999").status_code == 404
    assert owner.get(f"/console/links/{2**70}").status_code == 404


def test_analyst_can_view_but_not_edit_or_archive(client, runtime, coffee_clicks):
    with runtime.db.session() as db:
        user = workspaces.create_user(db, "analyst@siyu.local", "analyst-pass-1", "Ana")
        workspaces.add_member(db, workspace_id(runtime), user.id, "analyst")
    sign_in(client, "analyst@siyu.local", "analyst-pass-1")
    response = client.get(f"/console/links/{coffee_clicks}")
    assert response.status_code == 200
    html = response.text
    assert stat(html, "clicks") == "3"
    assert "/edit" not in html and "/archive" not in html and 'data-action="archive"' not in html
    assert client.get(f"/console/links/{coffee_clicks}/clicks.csv").status_code == 200
    assert client.get(f"/console/links/{coffee_clicks}/qr.png").status_code == 200
    denied = client.post(f"/console/links/{coffee_clicks}/archive", data={"csrf": csrf_of(html)})
    assert denied.status_code == 403 and "你的角色无权执行此操作" in denied.text
    assert get_link(runtime, coffee_clicks).archived is False


def test_user_data_is_escaped(owner, runtime):
    with runtime.db.session() as db:
        link = links.create_link(
            db,
            runtime.link_context(workspace_id(runtime)),
            {
                "destination_url": "https://example.com/?q=%22%3E%3Cscript%3E",
                "title": '<script>alert("title")</script>',
                "notes": "<img src=x onerror=alert(1)>",
                "tags": ["<b>tag</b>"],
                "utm": {"source": "<i>src</i>"},
            },
        )
        lid = link.id
    html = owner.get(f"/console/links/{lid}").text
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>tag</b>" not in html
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;tag&lt;/b&gt;" in html and "&lt;i&gt;src&lt;/i&gt;" in html


def test_english(owner, runtime, coffee_clicks):
    owner.cookies.set("sy_lang", "en")
    html = owner.get(f"/console/links/{coffee_clicks}").text
    assert '<html lang="en">' in html
    rules = rules_of(html)
    assert "In WeChat, QQ, Weibo, DingTalk, Douyin: show the open-in-browser guidance page" in rules
    assert "Redirect status 302 (temporary)" in rules
    assert "Clicks over time" in html and "Export CSV" in html and "Download PNG" in html
    assert 'data-status="active">Active<' in html
    data = chart_data(html)
    assert "WeChat" in {r["label"] for r in data["breakdowns"]["platform"]}
    assert {r["label"] for r in data["breakdowns"]["trigger"]} == {"QR code scan", "Short link"}
    assert "Only allowed in: WeChat, WeCom" in rules_of(owner.get(f"/console/links/{link_id(runtime, 'wx-only')}").text)
    bad = owner.get(f"/console/links/{coffee_clicks}/qr.png?dark=nope").json()
    assert bad["message"].startswith("Invalid Foreground:")
    assert "From is not a valid date" in owner.get(f"/console/links/{coffee_clicks}?since=x").text


def test_signed_out_visitors_are_sent_to_sign_in(client, runtime):
    lid = link_id(runtime, "coffee")
    for path in ("", "/qr.png", "/clicks.csv"):
        response = client.get(f"/console/links/{lid}{path}")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
