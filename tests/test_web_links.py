"""Console link pages through the whole app: list, bulk actions, CSV in and out, the link form and its preview.

Every test signs in like a person does (POST /console/login), reads the CSRF token from a page, and checks
what was stored through `siyu.links.service`, not just what the page says.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.links import service
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(client, email: str, password: str) -> None:
    response = client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text


def csrf_of(client, path: str = "/console/links") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return CSRF_RE.search(response.text).group(1)


def rows_of(page_html: str) -> list[str]:
    """The table rows of the links list, one HTML chunk per link."""
    return re.findall(r'<tr data-link-id="\d+">.*?</tr>', page_html, flags=re.S)


def slugs_of(page_html: str) -> list[str]:
    return [re.search(r'href="/console/links/\d+">http://[^/]+/([^<]+)</a>', row).group(1) for row in rows_of(page_html)]


@pytest.fixture
def ws_id(runtime, first_run) -> int:
    with runtime.db.session() as db:
        return db.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))


@pytest.fixture
def console(client, first_run):
    sign_in(client, first_run.email, first_run.password)
    return client


@pytest.fixture
def csrf(console) -> str:
    return csrf_of(console)


def get_link(runtime, ws_id: int, slug: str):
    with runtime.db.session() as db:
        return service.get_link_by_slug(db, ws_id, slug)


def make_links(runtime, ws_id: int, items: list[dict], actor: str = "admin@siyu.local") -> list[int]:
    with runtime.db.session() as db:
        ctx = runtime.link_context(ws_id, actor)
        return [service.create_link(db, ctx, item).id for item in items]


# --- the list ----------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client, first_run):
    response = client.get("/console/links?tag=demo")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/links%3Ftag%3Ddemo"


def test_the_list_shows_short_urls_with_copy_buttons_titles_tags_and_click_totals(console, runtime, ws_id):
    assert console.get("/coffee", headers={"User-Agent": DESKTOP_CHROME}).status_code == 302
    assert console.get("/coffee", headers={"User-Agent": DESKTOP_CHROME}).status_code == 302
    runtime.clicks.flush()

    page = console.get("/console/links")

    assert page.status_code == 200
    assert "短链" in page.text and "共 4 条" in page.text  # Chinese by default
    coffee = get_link(runtime, ws_id, "coffee")
    row = next(r for r in rows_of(page.text) if f'data-link-id="{coffee.id}"' in r)
    assert 'data-copy="http://sy.test/coffee"' in row
    assert "精品咖啡新品 · Coffee launch" in row
    assert '<a class="tag" href="/console/links?tag=%E5%92%96%E5%95%A1">咖啡</a>' in row
    assert re.search(r'<td class="num" data-label="点击">2</td>', row)
    assert f'href="/console/links/{coffee.id}/edit"' in row
    other = next(r for r in rows_of(page.text) if "wx-only" in r)
    assert 'data-label="点击">0</td>' in other


def test_search_filters_sort_and_pages(console, runtime, ws_id):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    make_links(runtime, ws_id, [{"destination_url": f"https://shop.example/p/{i}", "slug": f"p{i:02d}",
                                 "title": f"Product {i:02d}", "tags": ["bulk"]} for i in range(60)])  # fmt: skip
    make_links(runtime, ws_id, [{"destination_url": "https://old.example/", "slug": "gone", "expires_at": past}])
    make_links(runtime, ws_id, [{"destination_url": "https://ops.example/", "slug": "by-ops"}], actor="ops@shop.cn")
    archived = make_links(runtime, ws_id, [{"destination_url": "https://shop.example/old", "slug": "retired"}])[0]
    with runtime.db.session() as db:
        service.archive_link(db, runtime.link_context(ws_id), archived)

    first = console.get("/console/links")
    assert "共 66 条" in first.text  # 4 demo + 60 + gone + by-ops; the archived one is hidden by default
    assert len(rows_of(first.text)) == 50
    assert 'href="/console/links?page=2"' in first.text
    second = console.get("/console/links?page=2")
    assert len(rows_of(second.text)) == 16
    assert 'aria-current="page">2<' in second.text
    assert set(slugs_of(first.text)).isdisjoint(slugs_of(second.text))

    assert slugs_of(console.get("/console/links?q=COFFEE").text) == ["coffee"]
    expected = [f"p{i}" for i in range(19, 9, -1)] + ["p01"]  # newest first
    assert slugs_of(console.get("/console/links?q=shop.example/p/1").text) == expected
    assert slugs_of(console.get("/console/links?tag=%E5%92%96%E5%95%A1").text) == ["coffee"]
    assert slugs_of(console.get("/console/links?created_by=ops@shop.cn").text) == ["by-ops"]
    assert slugs_of(console.get("/console/links?expired=yes").text) == ["gone"]
    assert "gone" not in slugs_of(console.get("/console/links?expired=no&q=o").text)
    assert slugs_of(console.get("/console/links?archived=yes").text) == ["retired"]
    assert "retired" in slugs_of(console.get("/console/links?archived=all&q=retired").text)
    assert slugs_of(console.get("/console/links?domain=nowhere.example").text) == []

    by_slug = slugs_of(console.get("/console/links?sort=slug&tag=demo").text)
    assert by_slug == sorted(by_slug) == ["ab-test", "coffee", "get-app", "wx-only"]
    oldest = slugs_of(console.get("/console/links?sort=-created&tag=demo").text)
    assert oldest == ["coffee", "wx-only", "get-app", "ab-test"]
    newest = console.get("/console/links?tag=bulk&q=p5")
    assert slugs_of(newest.text) == ["p59", "p58", "p57", "p56", "p55", "p54", "p53", "p52", "p51", "p50"]
    # A page past the end shows the last page instead of nothing; junk parameters fall back to defaults.
    assert len(rows_of(console.get("/console/links?page=99").text)) == 16
    assert console.get("/console/links?sort=evil&archived=maybe&page=-1").status_code == 200


def test_english_through_the_language_switch(console):
    switched = console.get("/console/lang/en?next=/console/links")
    assert switched.status_code == 303 and switched.headers["location"] == "/console/links"

    page = console.get("/console/links")

    assert "<h1>Links" in page.text and "+ New link" in page.text and "4 links" in page.text


# --- bulk actions and export -------------------------------------------------------------------


def test_bulk_add_tag_archive_and_restore(console, csrf, runtime, ws_id):
    coffee, wx = get_link(runtime, ws_id, "coffee"), get_link(runtime, ws_id, "wx-only")

    tagged = console.post(
        "/console/links/bulk", data={"csrf": csrf, "action": "tag", "new_tag": "双11", "ids": [coffee.id, wx.id]}
    )
    assert tagged.status_code == 303
    assert tagged.headers["location"] == "/console/links?done=tag&n=2"
    assert [t.name for t in get_link(runtime, ws_id, "coffee").tags] == ["demo", "双11", "咖啡"]
    assert [t.name for t in get_link(runtime, ws_id, "wx-only").tags] == ["demo", "双11"]
    assert "已为 2 条短链添加标签" in console.get(tagged.headers["location"]).text

    no_name = console.post("/console/links/bulk", data={"csrf": csrf, "action": "tag", "new_tag": " ", "ids": [coffee.id]})
    assert no_name.status_code == 422 and "请输入标签名" in no_name.text
    nothing = console.post("/console/links/bulk", data={"csrf": csrf, "action": "archive"})
    assert nothing.status_code == 422 and "请先勾选短链" in nothing.text

    page = console.get("/console/links")
    assert 'data-confirm-action="确定归档勾选的短链吗' in page.text  # archive asks first
    archived = console.post(
        "/console/links/bulk", data={"csrf": csrf, "action": "archive", "ids": [coffee.id], "q": "co"}
    )
    assert archived.status_code == 303
    assert archived.headers["location"] == "/console/links?q=co&done=archive&n=1"  # the filters are kept
    assert get_link(runtime, ws_id, "coffee").archived is True
    assert get_link(runtime, ws_id, "wx-only").archived is False
    assert "coffee" not in slugs_of(console.get("/console/links").text)
    assert console.get("/coffee", headers={"User-Agent": DESKTOP_CHROME}).status_code == 404

    restored = console.post(
        "/console/links/bulk", data={"csrf": csrf, "action": "unarchive", "ids": [coffee.id], "archived": "yes"}
    )
    assert restored.status_code == 303
    assert get_link(runtime, ws_id, "coffee").archived is False


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="links-')
    assert response.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_export_the_checked_rows_or_the_filtered_list(console, csrf, runtime, ws_id):
    coffee, ab = get_link(runtime, ws_id, "coffee"), get_link(runtime, ws_id, "ab-test")
    make_links(runtime, ws_id, [{"destination_url": "https://example.com/x", "slug": "formula", "title": "=1+1"}])

    selected = read_csv(console.post("/console/links/bulk", data={"csrf": csrf, "action": "export",
                                                                   "ids": [ab.id, coffee.id]}))  # fmt: skip
    assert [r["slug"] for r in selected] == ["ab-test", "coffee"]
    row = selected[1]
    assert row["short_url"] == "http://sy.test/coffee"
    assert row["destination_url"] == "https://example.com/coffee?from=poster"
    assert row["tags"] == "demo,咖啡"
    assert row["anti_block_platforms"] == "wechat,qq,weibo,dingtalk,douyin"
    assert row["clicks"] == "0" and row["archived"] == "False"

    filtered = read_csv(console.post("/console/links/bulk", data={"csrf": csrf, "action": "export", "tag": "demo"}))
    assert sorted(r["slug"] for r in filtered) == ["ab-test", "coffee", "get-app", "wx-only"]

    by_link = read_csv(console.get("/console/links/export?q=formula"))
    assert [r["title"] for r in by_link] == ["'=1+1"]  # no formula runs when the file opens in Excel


# --- CSV import --------------------------------------------------------------------------------

IMPORT_FILE = (
    "destination_url,slug,title,tags,anti_block_platforms\n"
    "https://shop.example/a,imp-a,导入 A,\"春季,海报\",wechat\n"
    "javascript:alert(1),imp-b,坏网址,,\n"
    "https://shop.example/c,imp-c,<b>C</b>,,\"wechat,myspace\"\n"
).encode()


def test_csv_import_dry_run_then_for_real_with_a_report_per_row(console, runtime, ws_id):
    token = csrf_of(console, "/console/links/import")
    upload = {"file": ("links.csv", IMPORT_FILE, "text/csv")}

    dry = console.post("/console/links/import", data={"csrf": token, "dry_run": "1"}, files=upload)

    assert dry.status_code == 200
    assert "试运行结果（未创建任何短链）" in dry.text
    report = re.findall(r'<tr class="li-(\w+)">(.*?)</tr>', dry.text, flags=re.S)
    assert [status for status, _ in report] == ["valid", "error", "error"]
    assert "<td>目标网址 <code>destination_url</code></td>" in report[1][1]  # the column, named and as typed
    assert "只支持 http 和 https 开头的网址（当前为 javascript）" in report[1][1]
    assert "<td>防红 2 <code>anti_block_platforms[1]</code></td>" in report[2][1]
    assert "未知的平台 &#39;myspace&#39;；可用：" in report[2][1]
    assert 'rowspan="1">2<' in report[0][1]  # rows are numbered like the file's lines
    with runtime.db.session() as db:
        assert service.list_links(db, ws_id, service.LinkQuery(search="imp-"))[1] == 0

    real = console.post("/console/links/import", data={"csrf": token}, files=upload)

    assert real.status_code == 200 and "导入结果" in real.text
    assert [s for s, _ in re.findall(r'<tr class="li-(\w+)">(.*?)</tr>', real.text, flags=re.S)] == [
        "created", "error", "error"
    ]  # fmt: skip
    created = get_link(runtime, ws_id, "imp-a")
    assert created.anti_block_platforms == ["wechat"]
    assert [t.name for t in created.tags] == ["春季", "海报"]
    assert f'<a href="/console/links/{created.id}">http://sy.test/imp-a</a>' in real.text

    again = console.post("/console/links/import", data={"csrf": token}, files=upload)
    assert "已存在，跳过" in again.text


def test_csv_import_refuses_a_file_without_the_right_header_or_no_file(console):
    token = csrf_of(console, "/console/links/import")

    bad = console.post("/console/links/import", data={"csrf": token},
                       files={"file": ("x.csv", b"url,title\nhttps://a.example,A\n", "text/csv")})  # fmt: skip
    assert bad.status_code == 422
    assert "第一行必须是列名，且包含 destination_url" in bad.text

    missing = console.post("/console/links/import", data={"csrf": token}, files={"file": ("", b"", "text/csv")})
    assert missing.status_code == 422 and "请选择一个 CSV 文件" in missing.text

    template = console.get("/console/links/import/template")
    assert template.status_code == 200 and template.text.lstrip("\ufeff").startswith("destination_url,slug,")


# --- create and edit ---------------------------------------------------------------------------

FULL_FORM = {
    "destination_url": "https://shop.example/spring?ref=sy",
    "domain": "sy.test",
    "slug": "spring-sale",
    "title": "春季大促",
    "notes": "海报二维码",
    "tags": "春季, 海报，促销",
    "redirect_status": "307",
    "forward_query": "1",
    "utm_source": "wechat",
    "utm_medium": "social",
    "utm_campaign": "spring",
    "utm_term": "",
    "utm_content": "",
    "expires_at": "2030-01-01T10:00",
    "max_clicks": "500",
    "fallback_url": "https://shop.example/ended",
    "password_mode": "set",
    "password": "open-sesame",
    "anti_block_platforms": ["wechat", "qq"],
    "allowed_platforms": ["mobile", "wechat"],
    "blocked_platforms": ["weibo"],
    "rules-0-key-0": "os",
    "rules-0-values-0": "ios",
    "rules-0-key-1": "platform",
    "rules-0-values-1": "微信, QQ",
    "rules-0-url": "https://shop.example/ios",
    "rules-1-key-0": "device",
    "rules-1-values-0": "",  # a blank condition line is ignored
    "rules-1-url": "",  # and so is an untouched row
    "rules-5-key-0": "province",
    "rules-5-values-0": "广东省",
    "rules-5-url": "https://shop.example/gd",
    "variants-0-url": "https://shop.example/a",
    "variants-0-weight": "70",
    "variants-1-url": "https://shop.example/b",
    "variants-1-weight": "30",
    "variants-2-url": "",
    "variants-2-weight": "",
    "person_ref": "",
}


def test_create_with_every_option(console, csrf, runtime, ws_id):
    form_page = console.get("/console/links/new")
    assert form_page.status_code == 200
    def checkbox_group(name: str) -> dict[str, str]:
        return dict(re.findall(rf'name="{name}" value="(\w+)" > ([^<]+)</label>', form_page.text))

    anti_block = checkbox_group("anti_block_platforms")
    for code, name in [("wechat", "微信"), ("wecom", "企业微信"), ("qq", "QQ"), ("weibo", "微博"), ("alipay", "支付宝"),
                       ("dingtalk", "钉钉"), ("douyin", "抖音"), ("kuaishou", "快手"), ("xiaohongshu", "小红书"),
                       ("baidu", "百度"), ("feishu", "飞书")]:  # fmt: skip
        assert anti_block[code] == name
    assert "none" not in anti_block and "uc" not in anti_block  # browsers need no 防红
    allowed = checkbox_group("allowed_platforms")
    assert allowed["in_app"] == "任意 App 内" and allowed["mobile"] == "手机" and allowed["wechat"] == "微信"
    assert checkbox_group("blocked_platforms") == allowed
    assert "重复点击不会被统计" in form_page.text  # the hint about permanent redirects
    assert '<option value="sy.test" selected>' in form_page.text

    response = console.post("/console/links/new", data={**FULL_FORM, "csrf": csrf})

    assert response.status_code == 303, response.text
    link = get_link(runtime, ws_id, "spring-sale")
    assert response.headers["location"] == f"/console/links/{link.id}"
    assert link.hostname == "sy.test"
    assert link.destination_url == "https://shop.example/spring?ref=sy"
    assert (link.title, link.notes) == ("春季大促", "海报二维码")
    assert [t.name for t in link.tags] == ["促销", "春季", "海报"]
    assert link.redirect_status == 307 and link.forward_query is True
    assert link.utm == {"source": "wechat", "medium": "social", "campaign": "spring"}
    assert link.expires_at == datetime(2030, 1, 1, 2, 0, tzinfo=UTC)  # typed as China time
    assert (link.max_clicks, link.fallback_url) == (500, "https://shop.example/ended")
    assert link.password_hash and link.password_hash != "open-sesame"
    assert link.anti_block_platforms == ["wechat", "qq"]
    assert link.allowed_platforms == ["mobile", "wechat"]
    assert link.blocked_platforms == ["weibo"]
    assert link.rules == [
        {"when": {"os": ["ios"], "platform": ["wechat", "qq"]}, "url": "https://shop.example/ios"},
        {"when": {"province": ["广东"]}, "url": "https://shop.example/gd"},
    ]
    assert link.variants == [
        {"url": "https://shop.example/a", "weight": 70},
        {"url": "https://shop.example/b", "weight": 30},
    ]
    assert link.created_by == "admin@siyu.local"


def test_a_minimal_link_gets_a_random_slug_on_the_default_domain(console, csrf, runtime, ws_id):
    response = console.post("/console/links/new", data={"csrf": csrf, "destination_url": "https://example.org/"})

    assert response.status_code == 303
    link_id = int(response.headers["location"].rsplit("/", 1)[1])
    with runtime.db.session() as db:
        link = service.get_link(db, ws_id, link_id)
        assert link.hostname == "sy.test" and len(link.slug) >= 6
        assert link.redirect_status == 302 and link.forward_query is False  # the checkbox was left unticked
        assert link.password_hash is None and link.rules == [] and link.variants == []


def test_bad_inputs_come_back_inline_next_to_their_fields_with_what_was_typed(console, csrf, runtime, ws_id):
    form = {
        "csrf": csrf,
        "destination_url": "javascript:alert(1)",
        "slug": "admin",
        "title": "我的标题 <i>",
        "tags": "甲, 乙",
        "anti_block_platforms": ["wechat", "myspace"],
        "rules-0-key-0": "os",
        "rules-0-values-0": "nokia",
        "rules-0-url": "https://shop.example/n",
        "rules-1-key-0": "os",
        "rules-1-values-0": "ios",
        "rules-1-url": "",
        "variants-0-url": "https://shop.example/a",
        "variants-0-weight": "lots",
        "variants-1-url": "ftp://shop.example/b",
        "max_clicks": "many",
        "expires_at": "2030-13-45T99:00",
        "utm_source": "x" * 201,
        "password_mode": "set",
        "password": "",
    }

    response = console.post("/console/links/new", data=form)

    assert response.status_code == 422
    text = response.text
    assert "Traceback" not in text
    assert "请修正下面标红的内容" in text

    def error_for(key: str) -> str:
        found = re.findall(rf'<p class="error field-error" data-error-for="{re.escape(key)}">(.*?)</p>', text)
        assert found, f"no error shown for {key}"
        return html.unescape(" ".join(found))

    assert "只支持 http 和 https 开头的网址（当前为 javascript）" in error_for("destination_url")
    assert "「admin」是系统保留词" in error_for("slug")
    assert "未知的平台 'myspace'" in error_for("anti_block_platforms")
    assert "未知的取值 nokia" in error_for("rules.0.when")
    assert "请填写网址" in error_for("rules.1.url")
    assert "必须是不小于 1 的整数" in error_for("max_clicks")
    assert "不是有效的日期时间" in error_for("expires_at")
    assert "最多 200 个字符" in error_for("utm_source")
    assert "请输入新密码" in error_for("password")
    assert "必须是 1 到 1000 之间的整数" in error_for("variants.0.weight")
    # What was typed is still there.
    assert 'value="javascript:alert(1)"' in text
    assert 'name="slug" value="admin"' in text
    assert 'value="我的标题 &lt;i&gt;"' in text
    assert 'value="甲, 乙"' in text
    assert 'name="anti_block_platforms" value="wechat" checked' in text
    assert 'name="anti_block_platforms" value="myspace" checked' in text
    assert 'name="rules-0-values-0" value="nokia"' in text
    assert 'name="variants-0-weight" value="lots"' in text
    assert 'name="max_clicks" value="many"' in text
    with runtime.db.session() as db:
        assert service.list_links(db, ws_id, service.LinkQuery(search="javascript"))[1] == 0


def test_a_taken_slug_is_shown_at_the_slug(console, csrf):
    response = console.post(
        "/console/links/new", data={"csrf": csrf, "destination_url": "https://example.org/", "slug": "Coffee"}
    )
    assert response.status_code == 422
    assert re.search(r'data-error-for="slug">「Coffee」在 sy.test 上已被使用<', response.text)


def test_edit_shows_the_saved_values_and_saves_changes(console, csrf, runtime, ws_id):
    coffee = get_link(runtime, ws_id, "coffee")
    page = console.get(f"/console/links/{coffee.id}/edit")
    assert page.status_code == 200
    assert 'value="https://example.com/coffee?from=poster"' in page.text
    assert 'name="utm_source" value="poster"' in page.text
    assert 'name="anti_block_platforms" value="weibo" checked' in page.text
    assert 'name="slug"' not in page.text  # the slug and domain are fixed after creation
    assert "精品咖啡新品" in page.text
    assert 'data-outcome="guidance"' in page.text  # the saved link's preview is there on load

    form = {
        "csrf": csrf,
        "destination_url": "https://example.com/coffee-v2",
        "title": "新品咖啡",
        "tags": "咖啡",
        "redirect_status": "302",
        "utm_source": "poster",
        "anti_block_platforms": ["wechat"],
        "password_mode": "set",
        "password": "beans123",
    }
    saved = console.post(f"/console/links/{coffee.id}/edit", data=form)

    assert saved.status_code == 303
    assert saved.headers["location"] == f"/console/links/{coffee.id}"
    link = get_link(runtime, ws_id, "coffee")
    assert (link.destination_url, link.title) == ("https://example.com/coffee-v2", "新品咖啡")
    assert [t.name for t in link.tags] == ["咖啡"]
    assert link.utm == {"source": "poster"} and link.anti_block_platforms == ["wechat"]
    first_hash = link.password_hash
    assert first_hash

    page = console.get(f"/console/links/{coffee.id}/edit")
    assert 'name="password_mode" value="keep" checked' in page.text
    kept = console.post(f"/console/links/{coffee.id}/edit", data={**form, "password_mode": "keep", "password": ""})
    assert kept.status_code == 303 and get_link(runtime, ws_id, "coffee").password_hash == first_hash
    removed = console.post(f"/console/links/{coffee.id}/edit", data={**form, "password_mode": "remove"})
    assert removed.status_code == 303 and get_link(runtime, ws_id, "coffee").password_hash is None

    bad = console.post(f"/console/links/{coffee.id}/edit", data={**form, "destination_url": "http://sy.test/x"})
    assert bad.status_code == 422 and "会造成循环跳转" in bad.text
    assert get_link(runtime, ws_id, "coffee").destination_url == "https://example.com/coffee-v2"


def test_edit_of_a_link_in_another_workspace_is_not_found(console, csrf, runtime):
    with runtime.db.session() as db:
        other = workspaces.create_workspace(db, "Other", slug="other")
        workspaces.add_domain(db, other.id, "other.example")
        foreign = service.create_link(db, runtime.link_context(other.id), {"destination_url": "https://x.example/"})
    assert console.get(f"/console/links/{foreign.id}/edit").status_code == 404
    posted = console.post(f"/console/links/{foreign.id}/edit", data={"csrf": csrf, "destination_url": "https://y.example/"})
    assert posted.status_code == 404
    preview = console.post("/console/links/preview", data={"csrf": csrf, "link_id": str(foreign.id)})
    assert preview.status_code == 404


# --- the live preview --------------------------------------------------------------------------


def visitor_block(fragment: str, key: str) -> str:
    match = re.search(rf'<div class="lf-visitor" data-visitor="{key}" data-outcome="(\w+)">(.*?)</div>', fragment, re.S)
    assert match, fragment
    return match.group(1) + " " + match.group(2)


def test_preview_shows_the_guidance_page_in_wechat_and_a_redirect_on_the_desktop(console, csrf):
    response = console.post(
        "/console/links/preview",
        data={"csrf": csrf, "destination_url": "https://shop.example/p", "anti_block_platforms": "wechat",
              "utm_source": "wx", "forward_query": "1", "slug": "pv-test"},
    )  # fmt: skip

    assert response.status_code == 200
    wechat = visitor_block(response.text, "wechat_ios")
    assert wechat.startswith("guidance ")
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', wechat).group(1))
    assert "请在浏览器中打开" in srcdoc and "微信内无法直接打开此链接" in srcdoc
    assert "http://sy.test/pv-test" in srcdoc and "https://shop.example/p?utm_source=wx" in srcdoc
    assert 'sandbox=""' in wechat  # the visitor page's script never runs in the console
    qq = visitor_block(response.text, "qq_android")
    assert qq.startswith("redirected ") and "https://shop.example/p?utm_source=wx" in qq
    desktop = visitor_block(response.text, "desktop_chrome")
    assert desktop.startswith("redirected ")
    assert "跳转到（302）" in desktop and "https://shop.example/p?utm_source=wx" in desktop
    assert "<iframe" not in desktop


def test_preview_of_allowed_platforms_password_rules_and_bad_input(console, csrf):
    only_wechat = console.post(
        "/console/links/preview",
        data={"csrf": csrf, "destination_url": "https://shop.example/", "allowed_platforms": ["wechat"],
              "password_mode": "set", "password": "secret1",
              "rules-0-key-0": "os", "rules-0-values-0": "ios", "rules-0-url": "https://shop.example/ios"},
    ).text  # fmt: skip
    assert visitor_block(only_wechat, "wechat_ios").startswith("password ")
    assert visitor_block(only_wechat, "qq_android").startswith("not_allowed ")
    assert "此处无法访问" in html.unescape(visitor_block(only_wechat, "qq_android"))
    assert visitor_block(only_wechat, "desktop_chrome").startswith("not_allowed ")

    routed = console.post(
        "/console/links/preview",
        data={"csrf": csrf, "destination_url": "https://shop.example/",
              "rules-0-key-0": "os", "rules-0-values-0": "ios", "rules-0-url": "https://shop.example/ios"},
    ).text  # fmt: skip
    assert "https://shop.example/ios" in visitor_block(routed, "wechat_ios")
    assert "https://shop.example/ios" not in visitor_block(routed, "desktop_chrome")

    invalid = console.post("/console/links/preview", data={"csrf": csrf, "destination_url": "javascript:x"})
    assert invalid.status_code == 200
    assert "设置有误，暂时无法预览" in invalid.text and "只支持 http 和 https 开头的网址" in invalid.text
    empty = console.post("/console/links/preview", data={"csrf": csrf})
    assert "填写目标网址后显示预览" in empty.text


def test_preview_of_a_saved_link_uses_its_slug_and_kept_password(console, csrf, runtime, ws_id):
    coffee = get_link(runtime, ws_id, "coffee")
    data = {"csrf": csrf, "link_id": str(coffee.id), "destination_url": coffee.destination_url,
            "anti_block_platforms": ["wechat"], "archived": "1"}  # fmt: skip
    archived = console.post("/console/links/preview", data=data).text
    assert visitor_block(archived, "desktop_chrome").startswith("not_found ")

    live = console.post("/console/links/preview", data={**data, "archived": ""}).text
    assert "http://sy.test/coffee" in html.unescape(visitor_block(live, "wechat_ios"))


# --- protection: CSRF, roles, escaping ---------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(console, runtime, ws_id):
    for path, data in [
        ("/console/links/new", {"destination_url": "https://example.org/nocsrf", "slug": "no-csrf"}),
        ("/console/links/bulk", {"action": "archive", "ids": "1"}),
        ("/console/links/preview", {"destination_url": "https://example.org/"}),
        ("/console/links/1/edit", {"destination_url": "https://example.org/changed"}),
        ("/console/links/import", {}),
    ]:
        response = console.post(path, data={**data, "csrf": "forged"})
        assert response.status_code == 403, path
        assert "页面已过期" in response.text
        assert console.post(path, data=data).status_code == 403, path
    with runtime.db.session() as db:
        assert service.list_links(db, ws_id, service.LinkQuery(search="no-csrf"))[1] == 0
    assert get_link(runtime, ws_id, "coffee").archived is False
    assert get_link(runtime, ws_id, "coffee").destination_url == "https://example.com/coffee?from=poster"


def test_an_analyst_can_read_and_export_but_not_create_edit_or_bulk(client, runtime, ws_id):
    with runtime.db.session() as db:
        user = workspaces.create_user(db, "analyst@shop.cn", "numbers-only-1", "小数")
        workspaces.add_member(db, ws_id, user.id, "analyst")
    sign_in(client, "analyst@shop.cn", "numbers-only-1")
    coffee = get_link(runtime, ws_id, "coffee")

    page = client.get("/console/links")
    assert page.status_code == 200 and len(rows_of(page.text)) == 4
    assert "新建短链" not in page.text and 'name="ids"' not in page.text and "/edit" not in page.text
    token = CSRF_RE.search(page.text).group(1)
    assert len(read_csv(client.get("/console/links/export"))) == 4

    assert client.get("/console/links/new").status_code == 403
    assert client.get(f"/console/links/{coffee.id}/edit").status_code == 403
    assert client.get("/console/links/import").status_code == 403
    created = client.post("/console/links/new", data={"csrf": token, "destination_url": "https://example.org/"})
    assert created.status_code == 403 and "你的角色无权执行此操作" in created.text
    edited = client.post(f"/console/links/{coffee.id}/edit", data={"csrf": token, "destination_url": "https://x.org/"})
    assert edited.status_code == 403
    bulk = client.post("/console/links/bulk", data={"csrf": token, "action": "archive", "ids": [coffee.id]})
    assert bulk.status_code == 403
    assert client.post("/console/links/bulk", data={"csrf": token, "action": "export"}).status_code == 403
    assert client.post("/console/links/preview", data={"csrf": token}).status_code == 403
    assert get_link(runtime, ws_id, "coffee").archived is False
    assert get_link(runtime, ws_id, "coffee").destination_url == "https://example.com/coffee?from=poster"


def test_user_data_is_escaped_everywhere(console, runtime, ws_id):
    evil = "<script>alert(1)</script>"
    link_id = make_links(runtime, ws_id, [{
        "destination_url": 'https://example.com/?q="><img/src=x/onerror=alert(2)>',
        "slug": "xss",
        "title": evil,
        "notes": evil,
        "tags": ["<b>tag</b>"],
    }], actor='<svg onload=alert(3)>')[0]  # fmt: skip

    listing = console.get("/console/links").text
    edit = console.get(f"/console/links/{link_id}/edit").text
    for page in (listing, edit):
        assert evil not in page and "<img/src" not in page and "<b>tag</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;svg onload=alert(3)&gt;" in listing and "<svg onload" not in listing
    assert "&lt;b&gt;tag&lt;/b&gt;" in listing
