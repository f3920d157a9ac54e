"""The redirect, as a visitor experiences it: real user agents against the demo links and fresh ones.

Demo links (from the first run): `coffee` (防红 for WeChat/QQ/Weibo/DingTalk/Douyin, with UTM),
`wx-only` (WeChat/WeCom only), `get-app` (routes by OS, blocks QQ), `ab-test` (50/50 A/B).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import text

from siyu.db import Database
from siyu.events.store import ClickFilter

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 "
    "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
WECHAT_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 "
    "Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue"
)
QQ_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; M2012K11AC Build/SKQ1.211006.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/98.0.4758.102 MQQBrowser/6.2 TBS/046317 Mobile Safari/537.36 V1_AND_SQ_8.9.78_4548_YYB_D "
    "QQ/8.9.78.12275 NetType/WIFI WebP/0.3.0 AppId/537176863 Vendor/xiaomi"
)
CURL = "curl/8.5.0"


def ua(agent: str, **extra: str) -> dict[str, str]:
    return {"User-Agent": agent, **extra}


def create_link(client, auth, **fields) -> dict:
    response = client.post("/api/v1/links", json=fields, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def recorded_clicks(runtime) -> list[dict]:
    """Every click in the event store (bots included), oldest first, once the queue is flushed."""
    runtime.clicks.flush()
    rows = runtime.store.export(ClickFilter(workspace_id=1, include_bots=True))
    header = next(rows)
    return [dict(zip(header, row, strict=True)) for row in rows]


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


# --- plain redirects -------------------------------------------------------------------------------


def test_desktop_chrome_is_redirected_with_utm_merged_and_the_visitor_query_forwarded(client):
    response = client.get("/coffee?ref=friend", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("https://example.com/coffee?")
    assert query_of(location) == {
        "from": ["poster"],  # the destination's own query is kept
        "utm_source": ["poster"],
        "utm_medium": ["offline"],
        "utm_campaign": ["coffee-launch"],
        "ref": ["friend"],  # the visitor's query is forwarded
    }
    assert response.headers["x-robots-tag"] == "noindex"


def test_visitor_query_is_not_forwarded_when_forward_query_is_off(client, auth):
    create_link(
        client,
        auth,
        slug="no-forward",
        destination_url="https://example.com/page",
        forward_query=False,
        utm={"source": "sms"},
    )

    response = client.get("/no-forward?ref=friend&token=secret", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {"utm_source": ["sms"]}


def test_pass_visitor_id_hands_the_click_id_to_the_landing_page(client, auth, runtime):
    """With pass_visitor_id on, the destination gets sy_vid=<the visitor's id>, before any #fragment,
    so a landing page or mini program can report it (externalIds visitor_cookie) and One ID joins them."""
    link = create_link(
        client, auth, slug="pass-vid", destination_url="https://example.com/land?x=1#top", pass_visitor_id=True
    )
    assert link["pass_visitor_id"] is True
    first = client.get("/pass-vid", headers=ua(DESKTOP_CHROME))
    visitor = first.cookies["sy_vid"]
    assert first.headers["location"] == f"https://example.com/land?x=1&sy_vid={visitor}#top"
    again = client.get("/pass-vid?ref=a", headers=ua(DESKTOP_CHROME))  # the cookie is sent back now
    assert again.headers["location"] == f"https://example.com/land?x=1&ref=a&sy_vid={visitor}#top"
    other = create_link(client, auth, slug="no-pass", destination_url="https://example.com/land")
    assert other["pass_visitor_id"] is False
    assert "sy_vid" not in client.get("/no-pass", headers=ua(DESKTOP_CHROME)).headers["location"]
    bad = client.patch(f"/api/v1/links/{link['id']}", json={"pass_visitor_id": "yes please"}, headers=auth)
    assert bad.status_code == 422 and "pass_visitor_id" in bad.text
    assert [c["visitor_id"] for c in recorded_clicks(runtime) if c["slug"] == "pass-vid"] == [visitor, visitor]


def test_visitor_cookie_is_set_once_and_the_same_id_is_recorded_for_every_click(client, runtime):
    first = client.get("/coffee", headers=ua(DESKTOP_CHROME))
    cookie = first.headers["set-cookie"]
    visitor_id = re.match(r"sy_vid=([^;]+)", cookie).group(1)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=63072000" in cookie  # two years
    assert "Secure" not in cookie  # the test installation runs on plain http

    second = client.get("/coffee", headers=ua(DESKTOP_CHROME))  # the client sends the cookie back
    assert second.status_code == 302
    assert "set-cookie" not in second.headers

    clicks = recorded_clicks(runtime)
    assert [c["visitor_id"] for c in clicks] == [visitor_id, visitor_id]
    assert [c["new_visitor"] for c in clicks] == [True, False]


def test_a_malformed_visitor_cookie_is_replaced(client, runtime):
    response = client.get("/coffee", headers=ua(DESKTOP_CHROME, Cookie="sy_vid=<script>"))

    assert response.status_code == 302
    new_id = re.match(r"sy_vid=([^;]+)", response.headers["set-cookie"]).group(1)
    assert recorded_clicks(runtime)[0]["visitor_id"] == new_id


def test_a_cookie_whose_name_merely_ends_in_sy_vid_does_not_hide_the_real_one(client, runtime):
    cookie = "other_sy_vid=someoneelse123; sy_vid=visitor-42-abcdef"

    response = client.get("/coffee", headers=ua(DESKTOP_CHROME, Cookie=cookie))

    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    assert recorded_clicks(runtime)[0]["visitor_id"] == "visitor-42-abcdef"


def test_non_ascii_destination_gets_a_valid_percent_encoded_location(client, auth):
    destination = "https://example.com/咖啡/菜单?口味=拿铁"
    create_link(client, auth, slug="latte", destination_url=destination)

    response = client.get("/latte", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.isascii()
    assert location.startswith("https://example.com/%E5%92%96%E5%95%A1/%E8%8F%9C%E5%8D%95?")
    assert unquote(location) == destination


def test_redirect_status_and_cache_control(client, auth):
    """Permanent redirects may be cached by browsers; temporary ones never, so every visit is counted."""
    for status in (301, 302, 307, 308):
        create_link(
            client, auth, slug=f"status-{status}", destination_url="https://example.com/", redirect_status=status
        )

        response = client.get(f"/status-{status}", headers=ua(DESKTOP_CHROME))

        assert response.status_code == status
        cache_control = response.headers["cache-control"]
        if status in (301, 308):
            assert re.fullmatch(r"private, max-age=\d+", cache_control)
            assert int(cache_control.rsplit("=", 1)[1]) > 0
        else:
            assert "no-store" in cache_control
            assert "public" not in cache_control


# --- 防红: guidance pages for in-app browsers --------------------------------------------------------


def test_wechat_on_ios_gets_the_guidance_page_with_the_safari_step(client):
    response = client.get("/coffee", headers=ua(WECHAT_IOS))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "private, no-store"
    page = response.text
    assert '<html lang="zh-CN">' in page
    assert "微信内无法直接打开此链接" in page
    assert "选择「在 Safari 中打开」" in page
    assert "在浏览器中打开」" not in page  # not the Android step
    assert '<button type="button" id="copy" data-url="http://sy.test/coffee"' in page
    # The destination (with UTM merged) is shown, HTML-escaped.
    assert "https://example.com/coffee?from=poster&amp;utm_source=poster" in page
    assert 'class="arrow"' in page  # points at the ··· menu on phones


def test_wechat_on_android_gets_the_open_in_browser_step(client):
    response = client.get("/coffee", headers=ua(WECHAT_ANDROID))

    assert response.status_code == 200
    assert "选择「在浏览器中打开」" in response.text
    assert "Safari" not in response.text


def test_desktop_wechat_is_told_to_copy_the_link(client):
    response = client.get("/coffee", headers=ua(WECHAT_WINDOWS))

    assert response.status_code == 200
    assert "复制下面的链接，粘贴到电脑浏览器的地址栏中打开" in response.text
    assert 'class="arrow"' not in response.text  # no ··· menu to point at on a desktop
    assert 'id="copy"' in response.text


def test_guidance_page_speaks_english_to_an_english_browser(client):
    response = client.get("/coffee", headers=ua(WECHAT_IOS, **{"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"}))

    assert response.status_code == 200
    assert '<html lang="en">' in response.text
    assert "This link can&#39;t be opened inside WeChat" in response.text
    assert "Open in Safari" in response.text
    assert ">Copy link</button>" in response.text


def test_guidance_page_escapes_the_destination_and_the_forwarded_query(client, auth):
    payload = '"><script>alert(1)</script>'
    create_link(
        client,
        auth,
        slug="xss",
        destination_url=f"https://example.com/search?q={payload}",
        anti_block_platforms=["wechat"],
    )

    as_created = client.get("/xss", headers=ua(WECHAT_IOS))
    assert as_created.status_code == 200
    assert "<script>alert(1)" not in as_created.text
    assert "q=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</div>" in as_created.text
    assert as_created.text.count("<script>") == 1  # only the page's own copy-button script

    with_query = client.get("/xss", params={"x": '"><img src=x onerror=alert(2)>'}, headers=ua(WECHAT_IOS))
    assert with_query.status_code == 200
    assert "<img src=x" not in with_query.text
    assert "&amp;x=%22%3E%3Cimg+src%3Dx+onerror%3Dalert%282%29%3E</div>" in with_query.text


def test_a_password_protected_link_does_not_reveal_its_destination_on_the_guidance_page(client, auth):
    create_link(
        client,
        auth,
        slug="vip",
        destination_url="https://example.com/secret-offer",
        password="open-sesame",
        anti_block_platforms=["wechat"],
    )

    response = client.get("/vip", headers=ua(WECHAT_IOS))

    assert response.status_code == 200
    assert "secret-offer" not in response.text
    assert 'data-url="http://sy.test/vip"' in response.text  # they can still copy the short link


# --- who may open a link -----------------------------------------------------------------------------


def test_wechat_only_link_refuses_safari_and_serves_wechat(client):
    refused = client.get("/wx-only", headers=ua(IOS_SAFARI))
    assert refused.status_code == 403
    assert "此处无法访问" in refused.text
    assert "当前环境：浏览器" in refused.text

    served = client.get("/wx-only", headers=ua(WECHAT_IOS))
    assert served.status_code == 302
    assert served.headers["location"] == "https://example.com/member-day"


def test_blocked_qq_gets_the_not_allowed_page(client):
    response = client.get("/get-app", headers=ua(QQ_ANDROID))

    assert response.status_code == 403
    assert "当前环境：QQ" in response.text


def test_get_app_routes_by_operating_system(client):
    def destination(agent: str) -> str:
        response = client.get("/get-app", headers=ua(agent))
        assert response.status_code == 302
        return response.headers["location"]

    assert destination(IOS_SAFARI) == "https://apps.apple.com/app/id000000"
    assert destination(ANDROID_CHROME) == "https://example.com/download/app.apk"
    assert destination(DESKTOP_CHROME) == "https://example.com/download"


def test_ab_test_is_sticky_per_visitor_and_uses_both_variants(client, runtime):
    variants = {"https://example.com/landing-a", "https://example.com/landing-b"}
    seen = set()
    for i in range(30):
        cookie = f"sy_vid=visitor-{i:04d}-abcd"
        landings = {
            client.get("/ab-test", headers=ua(DESKTOP_CHROME, Cookie=cookie)).headers["location"] for _ in range(3)
        }
        assert len(landings) == 1, f"visitor {i} saw {landings}"
        seen |= landings
    assert seen == variants

    clicks = recorded_clicks(runtime)
    assert len(clicks) == 90
    for click in clicks:
        expected = "https://example.com/landing-a" if click["variant"] == 0 else "https://example.com/landing-b"
        assert click["destination"] == expected


# --- expiry -----------------------------------------------------------------------------------------


def test_link_past_its_date_shows_the_expired_page(client, auth):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    create_link(client, auth, slug="old-sale", destination_url="https://example.com/sale", expires_at=past)

    response = client.get("/old-sale", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 410
    assert "链接已失效" in response.text


def test_link_past_its_date_with_a_fallback_redirects_there(client, auth):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    create_link(
        client,
        auth,
        slug="old-sale",
        destination_url="https://example.com/sale",
        expires_at=past,
        fallback_url="https://example.com/next-sale",
    )

    response = client.get("/old-sale", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/next-sale"
    assert "no-store" in response.headers["cache-control"]


def test_click_limit_counts_people_but_not_bots_or_head_requests(client, auth):
    create_link(client, auth, slug="two-only", destination_url="https://example.com/gift", max_clicks=2)

    assert client.get("/two-only", headers=ua(CURL)).status_code == 302  # a bot: not counted
    assert client.head("/two-only", headers=ua(DESKTOP_CHROME)).status_code == 302  # a HEAD probe: not counted
    assert client.get("/two-only", headers=ua(DESKTOP_CHROME)).status_code == 302  # person 1
    assert client.head("/two-only", headers=ua(DESKTOP_CHROME)).status_code == 302
    assert client.get("/two-only", headers=ua(IOS_SAFARI)).status_code == 302  # person 2

    third = client.get("/two-only", headers=ua(ANDROID_CHROME))
    assert third.status_code == 410
    assert "链接已失效" in third.text


# --- passwords ---------------------------------------------------------------------------------------


def test_password_link_shows_a_form_and_opens_with_the_right_password(client, auth):
    create_link(client, auth, slug="private", destination_url="https://example.com/members", password="open-sesame")

    form = client.get("/private", headers=ua(DESKTOP_CHROME))
    assert form.status_code == 200
    assert '<form method="post">' in form.text
    assert 'name="password"' in form.text
    assert "members" not in form.text

    opened = client.post("/private", data={"password": "open-sesame"}, headers=ua(DESKTOP_CHROME))
    assert opened.status_code == 303  # POST -> GET the destination
    assert opened.headers["location"] == "https://example.com/members"


def test_wrong_passwords_are_refused_then_locked_out(client, auth):
    create_link(client, auth, slug="private", destination_url="https://example.com/members", password="open-sesame")

    for _ in range(4):
        wrong = client.post("/private", data={"password": "guess"}, headers=ua(DESKTOP_CHROME))
        assert wrong.status_code == 401
        assert "密码不正确" in wrong.text

    locked = client.post("/private", data={"password": "guess"}, headers=ua(DESKTOP_CHROME))
    assert locked.status_code == 429
    assert "尝试次数过多，请 15 分钟后再试" in locked.text

    # Even the right password waits out the lock.
    still_locked = client.post("/private", data={"password": "open-sesame"}, headers=ua(DESKTOP_CHROME))
    assert still_locked.status_code == 429


# --- triggers, unknown and archived links -------------------------------------------------------------


def test_qr_path_redirects_and_records_the_qr_trigger(client, runtime):
    assert client.get("/coffee/q", headers=ua(DESKTOP_CHROME)).status_code == 302
    assert client.get("/coffee", headers=ua(DESKTOP_CHROME)).status_code == 302

    assert [c["trigger"] for c in recorded_clicks(runtime)] == ["qr", "link"]


def test_unknown_slug_gets_the_not_found_page(client):
    response = client.get("/no-such-link", headers=ua(DESKTOP_CHROME))

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "链接不存在" in response.text


def test_archived_link_is_not_found(client, auth):
    link = create_link(client, auth, slug="retired", destination_url="https://example.com/old")
    assert client.get("/retired", headers=ua(DESKTOP_CHROME)).status_code == 302

    assert client.delete(f"/api/v1/links/{link['id']}", headers=auth).status_code == 200

    response = client.get("/retired", headers=ua(DESKTOP_CHROME))
    assert response.status_code == 404
    assert "链接不存在" in response.text


# --- caches: edits show up at once --------------------------------------------------------------------


def test_an_edit_through_the_api_takes_effect_immediately(client, auth):
    link = create_link(client, auth, slug="menu", destination_url="https://example.com/menu-v1")
    assert client.get("/menu", headers=ua(DESKTOP_CHROME)).headers["location"] == "https://example.com/menu-v1"

    patched = client.patch(
        f"/api/v1/links/{link['id']}", json={"destination_url": "https://example.com/menu-v2"}, headers=auth
    )
    assert patched.status_code == 200

    assert client.get("/menu", headers=ua(DESKTOP_CHROME)).headers["location"] == "https://example.com/menu-v2"


def test_an_edit_made_by_another_process_is_picked_up_by_the_poller(client, auth, runtime):
    link = create_link(client, auth, slug="menu", destination_url="https://example.com/menu-v1")
    assert client.get("/menu", headers=ua(DESKTOP_CHROME)).headers["location"] == "https://example.com/menu-v1"

    # Another process (the CLI, a second server) writes to the database: no in-process listener fires.
    other = Database(runtime.settings.database_url)
    try:
        with other.session() as session:
            session.execute(
                text(
                    "UPDATE short_links SET destination_url = :url, "
                    "change_seq = (SELECT max(change_seq) + 1 FROM short_links) WHERE id = :id"
                ),
                {"url": "https://example.com/menu-v2", "id": link["id"]},
            )
    finally:
        other.dispose()

    deadline = time.monotonic() + 5
    location = ""
    while time.monotonic() < deadline:
        location = client.get("/menu", headers=ua(CURL)).headers["location"]
        if location.endswith("v2"):
            break
        time.sleep(0.05)
    assert location == "https://example.com/menu-v2"


# --- hosts and paths ----------------------------------------------------------------------------------


def test_a_link_is_served_only_on_its_own_domain(client, auth):
    assert client.post("/api/v1/domains", json={"hostname": "b.test"}, headers=auth).status_code == 201
    create_link(client, auth, slug="promo", domain="b.test", destination_url="https://example.com/promo")

    on_b = client.get("http://b.test/promo", headers=ua(DESKTOP_CHROME))
    assert on_b.status_code == 302
    assert on_b.headers["location"] == "https://example.com/promo"

    assert client.get("http://sy.test/promo", headers=ua(DESKTOP_CHROME)).status_code == 404
    assert client.get("http://b.test/coffee", headers=ua(DESKTOP_CHROME)).status_code == 404


def test_reserved_paths_are_never_treated_as_slugs(client, auth):
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    api = client.get("/api/v1/platforms", headers=auth)
    assert api.status_code == 200
    assert api.headers["content-type"] == "application/json"

    refused = client.post(
        "/api/v1/links", json={"slug": "healthz", "destination_url": "https://example.com/"}, headers=auth
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == [
        {"field": "slug", "reason": "'healthz' is reserved", "code": "slug_reserved"}
    ]


def test_forgiving_lookups_slug_case_port_and_unregistered_host(client):
    """A slug retyped in capitals, the domain with a port, or the server's bare IP still reach the link."""
    chrome = {
        "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    }
    assert client.get("/COFFEE", headers=chrome).status_code == 302
    assert client.get("/coffee", headers={**chrome, "Host": "sy.test:8080"}).status_code == 302
    assert client.get("/coffee", headers={**chrome, "Host": "10.1.2.3:8000"}).status_code == 302
    # ... and again from the cache, not just on the first load
    assert client.get("/coffee", headers={**chrome, "Host": "sy.test:8080"}).status_code == 302
    assert client.get("/no-such-link", headers={**chrome, "Host": "10.1.2.3:8000"}).status_code == 404


def test_edits_evict_every_cached_alias_of_a_link(client, auth):
    chrome = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"}
    assert client.get("/COFFEE", headers=chrome).headers["location"].startswith("https://example.com/coffee")
    link = client.get("/api/v1/links?search=coffee", headers=auth).json()["links"][0]
    response = client.patch(
        f"/api/v1/links/{link['id']}", headers=auth, json={"destination_url": "https://example.com/tea"}
    )
    assert response.status_code == 200
    assert client.get("/COFFEE", headers=chrome).headers["location"].startswith("https://example.com/tea")


# --- the fast path: answered at once by Granian's thread, or handed to the event loop ----------------


class _Headers(dict):
    """Stands in for RSGI's header map (`.get(name, default)`)."""


def _now(app, path: str, method: str = "GET", **headers: str):
    header = _Headers({"host": "sy.test", "user-agent": DESKTOP_CHROME, **headers}).get
    return app.redirect.respond_now(method, path, "", header, "203.0.113.9")


def test_a_cached_link_is_answered_at_once_exactly_as_through_the_event_loop(client, app, runtime):
    cookie = "sy_vid=fastpathvisitor01"
    through_loop = client.get("/coffee", headers=ua(DESKTOP_CHROME, Cookie=cookie))  # also loads the cache
    status, headers, body = _now(app, "/coffee", cookie=cookie)

    assert (status, body) == (through_loop.status_code, b"")
    assert dict(headers)["location"] == through_loop.headers["location"]
    assert "set-cookie" not in dict(headers)  # a returning visitor keeps their id
    visits = [c for c in recorded_clicks(runtime) if c["visitor_id"] == "fastpathvisitor01"]
    assert [c["outcome"] for c in visits] == ["redirected", "redirected"]  # both visits are clicks


def test_what_must_wait_is_left_to_the_event_loop(client, app, auth):
    assert _now(app, "/not-cached-yet") is None  # unknown to the cache: the database decides
    assert _now(app, "/api/v1/links") is None  # not a link path at all

    create_link(client, auth, destination_url="https://example.com/pw", slug="fast-pw", password="letmein")
    create_link(client, auth, destination_url="https://example.com/few", slug="fast-few", max_clicks=2)
    for slug in ("fast-pw", "fast-few"):
        client.get(f"/{slug}", headers=ua(DESKTOP_CHROME))  # cached now

    status, _, body = _now(app, "/fast-pw")  # the password form itself needs no waiting
    assert status == 200 and b"password" in body
    assert _now(app, "/fast-pw", method="POST") is None  # the form post: body and hashing wait
    assert _now(app, "/fast-few") is None  # a click limit's counter belongs to the event loop
