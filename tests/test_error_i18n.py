"""Domain errors in the operator's language: every error code has a zh-CN and an English template, the console
shows them translated, and the REST API still says the English reason (now with the code beside it).

Codes are collected two ways: statically, from the `code` arguments at every raise site in the domain modules
(so a new raise without a template fails here), and dynamically, by feeding a broad set of bad inputs through
the real services (so the English template must say exactly what the domain's `reason` says).
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

import siyu.web.app  # noqa: F401  (imports every console module, so every catalogue is registered)
from siyu import qr
from siyu.db import Database
from siyu.errors import Conflict, FieldError, InvalidInput
from siyu.errors_i18n import ERRORS, error_text, field_label
from siyu.i18n import CATALOG
from siyu.links import importer, service
from siyu.webhooks import service as webhooks
from siyu.workspaces import invitations
from siyu.workspaces import service as workspaces

ROOT = Path(__file__).resolve().parent.parent / "siyu"
DOMAIN_MODULES = (
    "links/urls.py",
    "links/slugs.py",
    "links/rules.py",
    "links/service.py",
    "links/importer.py",
    "workspaces/service.py",
    "workspaces/invitations.py",
    "webhooks/service.py",
    "qr/generate.py",
    "qr/images.py",
    "qr/decode.py",
    "web/link_form.py",
    "web/link_detail.py",
)
# Where the English reason carries details (pixel sizes, which part of the file is broken) the template leaves out.
DETAIL_VARIES = {"corrupt", "too_many_pixels"}
CJK = re.compile(r"[\u4e00-\u9fff]")
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


# --- (1) every code has both templates ----------------------------------------------------------------------


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def raise_sites() -> list[tuple[str, int, str, str | None]]:
    """(module, line, constructor, code) for each FieldError/InvalidInput/Conflict/QrError built in the modules."""
    sites = []
    for rel in DOMAIN_MODULES:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name not in ("FieldError", "InvalidInput", "Conflict", "QrOptionError", "QrDecodeError"):
                continue
            if name == "InvalidInput" and len(node.args) == 1 and not node.keywords:
                continue  # InvalidInput(errors): re-raises FieldErrors built elsewhere
            code_node = next((k.value for k in node.keywords if k.arg == "code"), None)
            if code_node is None and name == "QrOptionError" and len(node.args) >= 3:
                code_node = node.args[2]
            if code_node is None and name == "QrDecodeError" and node.args:
                code_node = node.args[0]
            code = code_node.value if isinstance(code_node, ast.Constant) else None
            if code is None and code_node is not None:  # a computed code: each branch's literal
                literals = [n.value for n in ast.walk(code_node) if isinstance(n, ast.Constant)]
                code = ",".join(str(v) for v in literals) or "<computed>"
            sites.append((rel, node.lineno, name, code))
    return sites


def test_every_raise_site_in_the_domain_names_a_code():
    sites = raise_sites()
    assert len(sites) > 80
    missing = [(rel, line, name) for rel, line, name, code in sites if code is None]
    assert missing == []


def test_every_code_raised_has_a_zh_and_an_english_template():
    codes: set[str] = set()
    for *_where, code in raise_sites():
        codes.update(c for c in (code or "").split(",") if c not in ("<computed>", ""))
    # `QrOptionError("logo", exc.reason, exc.code, ...)` passes a QrDecodeError's code on: counted at its raise
    codes.discard("invalid")  # QrOptionError's default when a caller gives none: shown as its English reason
    assert len(codes) > 70
    without = sorted(c for c in codes if c not in ERRORS)
    assert without == []
    for code in codes:
        entry = CATALOG[f"error.{code}"]
        zh, en = ERRORS[code]
        assert entry == {"zh-CN": zh, "en": en}, f"error.{code} is overridden by another catalogue"
        assert CJK.search(zh), code
        assert en and not CJK.search(en), code


def test_templates_ask_only_for_params_the_english_one_has():
    def fields(text: str) -> set[str]:
        return {m.group(1) for m in re.finditer(r"(?<!\{)\{(\w+)(?:![rs])?\}", text)}

    for code, (zh, en) in ERRORS.items():
        assert fields(zh) <= fields(en), code


# --- bad inputs through the real services ------------------------------------------------------------------

OWN = "s.example"
BASE_HOST = "sy.test"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('errors') / 'siyu.db'}")
    database.migrate()
    with database.session() as s:
        ws = workspaces.create_workspace(s, "Shop", slug="shop")
        workspaces.add_domain(s, ws.id, OWN)
    yield database
    database.dispose()


@pytest.fixture
def session(db):
    s = Session(db.engine)
    try:
        yield s
    finally:
        s.rollback()


URL = "https://shop.example/a"
BAD_LINK_FIELDS = [
    {"destination_url": ""},
    {"destination_url": "https://a.cn/" + "x" * 5000},
    {"destination_url": "https://a b.cn/"},
    {"destination_url": "http://[::1/"},
    {"destination_url": "javascript:alert(1)"},
    {"destination_url": "shop.example/a"},
    {"destination_url": "http:///path"},
    {"destination_url": f"https://{OWN}/x"},
    {"destination_url": "http://999.1.1.1/"},
    {"destination_url": "http://-bad-.cn/"},
    {"destination_url": URL, "utm": "campaign"},
    {"destination_url": URL, "utm": {"colour": "red"}},
    {"destination_url": URL, "utm": {"source": "x" * 201}},
    {"destination_url": URL, "slug": 5},
    {"destination_url": URL, "slug": "a"},
    {"destination_url": URL, "slug": "a b"},
    {"destination_url": URL, "slug": "admin"},
    {"destination_url": URL, "title": 5},
    {"destination_url": URL, "title": "x" * 501},
    {"destination_url": URL, "title": "a\x00b"},
    {"destination_url": URL, "forward_query": "yes"},
    {"destination_url": URL, "redirect_status": 303},
    {"destination_url": URL, "max_clicks": 0},
    {"destination_url": URL, "password": "ab"},
    {"destination_url": URL, "expires_at": "tomorrow"},
    {"destination_url": URL, "expires_at": 5},
    {"destination_url": URL, "expires_at": "0001-01-01T00:00:00"},
    {"destination_url": URL, "tags": 5},
    {"destination_url": URL, "tags": [""]},
    {"destination_url": URL, "tags": [f"t{i}" for i in range(21)]},
    {"destination_url": URL, "colour": "red"},
    {"destination_url": URL, "anti_block_platforms": "wechat"},
    {"destination_url": URL, "anti_block_platforms": ["myspace"]},
    {"destination_url": URL, "rules": "ios"},
    {"destination_url": URL, "rules": [{"when": {"os": ["ios"]}, "url": URL}] * 51},
    {"destination_url": URL, "rules": ["ios"]},
    {"destination_url": URL, "rules": [{"when": {}, "url": URL}]},
    {"destination_url": URL, "rules": [{"when": {"colour": ["red"]}, "url": URL}]},
    {"destination_url": URL, "rules": [{"when": {"os": []}, "url": URL}]},
    {"destination_url": URL, "rules": [{"when": {"country": ["CHN"]}, "url": URL}]},
    {"destination_url": URL, "rules": [{"when": {"os": ["nokia"]}, "url": URL}]},
    {"destination_url": URL, "rules": [{"when": {"platform": ["myspace"]}, "url": "ftp://x"}]},
    {"destination_url": URL, "variants": "a"},
    {"destination_url": URL, "variants": [{"url": URL}]},
    {"destination_url": URL, "variants": ["a", "b"]},
    {"destination_url": URL, "variants": [{"url": URL, "weight": 0}, {"url": URL}]},
    {"destination_url": URL, "domain": 5},
    {"destination_url": URL, "domain": "https://s.example/x"},
    {"destination_url": URL, "domain": "s.example:99999"},
    {"destination_url": URL, "domain": "bad_host!"},
]


def collect(call) -> list[FieldError]:
    try:
        call()
    except InvalidInput as exc:
        return exc.errors
    except Conflict as exc:
        return [exc.field_error()]
    except qr.QrError as exc:
        return [FieldError(exc.field, exc.reason, code=exc.code, params=exc.params)]
    raise AssertionError("no error was raised")


def domain_errors(session) -> list[FieldError]:
    ws = workspaces.create_workspace(session, "Errors", slug="errors")
    workspaces.add_domain(session, ws.id, "e.example")
    ctx = service.Context(ws.id, base_host=BASE_HOST)
    empty = workspaces.create_workspace(session, "Empty", slug="empty")  # no domain yet
    user = workspaces.create_user(session, "member@shop.example", "password-1")
    workspaces.add_member(session, ws.id, user.id, "operator")
    out: list[FieldError] = []
    for raw in BAD_LINK_FIELDS:
        out += collect(lambda raw=raw: service.create_link(session, ctx, raw))
    out += collect(lambda: service.create_link(session, ctx, {}))
    out += collect(lambda: service.validate_fields(session, ctx, {"slug": "new"}, creating=False))
    out += collect(lambda: service.create_link(session, ctx, {"destination_url": URL, "domain": OWN}))
    service.create_link(session, ctx, {"destination_url": URL, "slug": "taken"})
    out += collect(lambda: service.create_link(session, ctx, {"destination_url": URL, "slug": "TAKEN"}))
    out += collect(lambda: service.create_link(session, service.Context(empty.id), {"destination_url": URL}))
    out += collect(lambda: service.list_links(session, ws.id, service.LinkQuery(sort="colour")))
    out += collect(lambda: service.list_links(session, ws.id, service.LinkQuery(limit=0)))
    out += collect(lambda: service.list_links(session, ws.id, service.LinkQuery(offset=-1)))
    # workspaces, users, keys, invitations, webhooks
    out += collect(lambda: workspaces.create_workspace(session, ""))
    out += collect(lambda: workspaces.create_workspace(session, "X", slug="Bad Slug"))
    out += collect(lambda: workspaces.create_workspace(session, "X", slug="x", ip_mode="all"))
    out += collect(lambda: workspaces.create_workspace(session, "X", slug="errors"))
    out += collect(lambda: workspaces.set_ip_mode(session, ws, "all"))
    out += collect(lambda: workspaces.add_domain(session, ws.id, "E.example"))
    out += collect(lambda: workspaces.create_user(session, "not-an-email", "short"))
    out += collect(lambda: workspaces.create_user(session, "member@shop.example", "password-2"))
    out += collect(lambda: workspaces.add_member(session, ws.id, user.id, "boss"))
    out += collect(lambda: workspaces.create_api_key(session, ws.id, "CI", ["links:everything"]))
    out += collect(lambda: invitations.create_invitation(session, ws.id, "nobody", "operator"))
    out += collect(lambda: invitations.create_invitation(session, ws.id, "new@shop.example", "boss"))
    out += collect(lambda: invitations.create_invitation(session, ws.id, "member@shop.example", "operator"))
    issued = invitations.create_invitation(session, ws.id, "invitee@shop.example", "operator")
    out += collect(lambda: invitations.accept_invitation(session, issued.invitation, user))
    out += collect(lambda: webhooks.create_webhook(session, ws.id, "ftp://x", []))
    # CSV import: whole-file problems, then per-row ones (kept on RowResult.errors)
    out += collect(lambda: importer.import_csv(session, ws.id, b"\xff\xfe\xff"))
    out += collect(lambda: importer.import_csv(session, ws.id, b"title\nx\n"))
    out += collect(lambda: importer.import_csv(session, ws.id, b"destination_url,colour\nhttps://a.cn/,red\n"))
    rows = "destination_url,max_clicks\nhttps://a.cn/1,many\nhttps://a.cn/2,1,extra\njavascript:x,\n"
    report = importer.import_csv(session, ws.id, rows.encode())
    assert [r.status for r in report.rows] == ["error", "error", "error"]
    for r in report.rows:
        assert r.errors and r.message  # the CLI's English line is still there
        out += r.errors
    return out


def qr_errors() -> list[FieldError]:
    big = "https://example.com/" + "x" * 1000
    calls = [
        lambda: qr.QrOptions(size="big"),
        lambda: qr.QrOptions(size=1),
        lambda: qr.QrOptions(dark=5),
        lambda: qr.QrOptions(dark="transparent"),
        lambda: qr.QrOptions(dark="red"),
        lambda: qr.QrOptions(dark="#ffffff", light="#000000"),
        lambda: qr.QrOptions(dark="#eeeeee"),
        lambda: qr.QrOptions(error="x"),
        lambda: qr.QrOptions(logo=b""),
        lambda: qr.QrOptions(logo=b"GIF89a not a png"),
        lambda: qr.layout(""),
        lambda: qr.layout("x" * 5000, qr.QrOptions(error="h")),
        lambda: qr.layout(big, qr.QrOptions(size=64)),
        lambda: qr.decode_image(b""),
        lambda: qr.decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * (qr.MAX_UPLOAD_BYTES + 1)),
    ]
    return [e for call in calls for e in collect(call)]


def test_bad_inputs_get_codes_whose_english_template_is_the_reason_and_a_chinese_one(session):
    errors = domain_errors(session) + qr_errors()
    codes = {e.code for e in errors}
    assert None not in codes, [e for e in errors if e.code is None]
    assert len(codes) >= 75, sorted(c for c in ERRORS if c not in codes)
    for e in errors:
        zh, en = error_text(e, "zh-CN"), error_text(e, "en")
        if e.code not in DETAIL_VARIES:
            assert en == e.reason, (e.field, e.code)
        assert zh != e.reason and CJK.search(zh) and "{" not in zh, (e.field, e.code, zh)


def test_chinese_texts_for_typical_mistakes():
    def zh(code: str, **params) -> str:
        return error_text(FieldError("x", "english", code=code, params=params), "zh-CN")

    assert zh("url_scheme", scheme="javascript") == "只支持 http 和 https 开头的网址（当前为 javascript）"
    assert zh("slug_reserved", slug="admin") == "「admin」是系统保留词，不能使用"
    assert zh("platform_unknown", value="myspace", known="qq, wechat") == "未知的平台 'myspace'；可用：qq, wechat"
    assert zh("slug_taken", slug="Coffee", host="sy.test") == "「Coffee」在 sy.test 上已被使用"


def test_unknown_codes_and_missing_params_fall_back_to_the_english_reason():
    assert error_text(FieldError("x", "something odd"), "zh-CN") == "something odd"
    assert error_text(FieldError("x", "something odd", code="no_such_code"), "zh-CN") == "something odd"
    assert error_text(FieldError("x", "at most 5 tags", code="tags_too_many"), "zh-CN") == "at most 5 tags"
    assert error_text(qr.QrOptionError("size", "must be odd"), "zh-CN") == "must be odd"  # code "invalid"


def test_field_labels():
    assert field_label("destination_url", "zh-CN") == "目标网址"
    assert field_label("destination_url", "en") == "Destination URL"
    assert field_label("rules[0].url", "zh-CN") == "分流规则 1 · 网址"
    assert field_label("rules[2].when.os", "en") == "Rules 3 · Conditions · OS"
    assert field_label("utm.utm_source", "zh-CN") == "UTM 参数 · 来源"
    assert field_label("tags[0]", "zh-CN") == "标签 1"
    assert field_label("colour", "zh-CN") == "colour"  # unknown names stay as typed


# --- (2) the console shows them translated ------------------------------------------------------------------


@pytest.fixture
def console(client, first_run):
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303, response.text
    return client


def csrf_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return CSRF_RE.search(response.text).group(1)


def error_for(page: str, key: str) -> str:
    found = re.findall(rf'<p class="error field-error" data-error-for="{re.escape(key)}">(.*?)</p>', page)
    assert found, f"no error shown for {key}"
    return html.unescape(" ".join(found))


BAD_FORM = {
    "destination_url": "javascript:alert(1)",
    "slug": "admin",
    "max_clicks": "0",
    "anti_block_platforms": ["myspace"],
    "rules-0-key-0": "os",
    "rules-0-values-0": "nokia",
    "rules-0-url": "https://shop.example/ios",
    "variants-0-url": "https://shop.example/a",
    "variants-0-weight": "0",
    "variants-1-url": "https://shop.example/b",
}


def test_a_bad_link_form_shows_chinese_reasons_by_default_and_english_ones_when_chosen(console):
    token = csrf_of(console, "/console/links/new")
    zh = console.post("/console/links/new", data={"csrf": token, **BAD_FORM})
    assert zh.status_code == 422
    assert "请修正下面标红的内容" in zh.text
    assert error_for(zh.text, "destination_url") == "只支持 http 和 https 开头的网址（当前为 javascript）"
    assert error_for(zh.text, "slug") == "「admin」是系统保留词，不能使用"
    assert error_for(zh.text, "max_clicks") == "必须是不小于 1 的整数"
    assert error_for(zh.text, "anti_block_platforms").startswith("未知的平台 'myspace'；可用：")
    assert error_for(zh.text, "rules.0.when").startswith("未知的取值 nokia；可用：ios, android")
    assert error_for(zh.text, "variants.0.weight") == "必须是 1 到 1000 之间的整数"
    assert "only http and https" not in zh.text and "is reserved" not in zh.text

    console.cookies.set("sy_lang", "en")
    token = csrf_of(console, "/console/links/new")
    en = console.post("/console/links/new", data={"csrf": token, **BAD_FORM})
    assert en.status_code == 422
    assert error_for(en.text, "destination_url") == "only http and https URLs are allowed (scheme: javascript)"
    assert error_for(en.text, "slug") == "'admin' is reserved"
    assert error_for(en.text, "variants.0.weight") == "must be a whole number from 1 to 1000"
    assert "只支持" not in en.text


def test_the_preview_names_the_field_and_the_problem_in_the_page_language(console):
    token = csrf_of(console, "/console/links/new")
    data = {"csrf": token, "destination_url": "https://shop.example/", "rules-0-url": "ftp://x",
            "rules-0-key-0": "os", "rules-0-values-0": "ios"}  # fmt: skip
    zh = html.unescape(console.post("/console/links/preview", data=data).text)
    assert "<strong>分流规则 1 · 网址</strong> 只支持 http 和 https 开头的网址（当前为 ftp）" in zh
    console.cookies.set("sy_lang", "en")
    en = html.unescape(console.post("/console/links/preview", data=data).text)
    assert "<strong>Rules 1 · URL</strong> only http and https URLs are allowed (scheme: ftp)" in en


def test_a_taken_slug_is_reported_in_chinese(console):
    token = csrf_of(console, "/console/links/new")
    data = {"csrf": token, "destination_url": "https://example.org/", "slug": "Coffee"}
    response = console.post("/console/links/new", data=data)
    assert response.status_code == 422
    assert error_for(response.text, "slug") == "「Coffee」在 sy.test 上已被使用"


def test_the_import_report_translates_field_names_and_reasons(console):
    token = csrf_of(console, "/console/links/import")
    body = "destination_url,slug,max_clicks\nhttps://shop.example/ok,imp-ok,\njavascript:alert(1),imp-b,\nhttps://shop.example/c,imp-c,many\n"
    upload = {"file": ("links.csv", body.encode(), "text/csv")}
    zh = console.post("/console/links/import", data={"csrf": token, "dry_run": "1"}, files=upload)
    assert zh.status_code == 200
    report = re.findall(r'<tr class="li-(\w+)">(.*?)</tr>', zh.text, flags=re.S)
    assert [status for status, _ in report] == ["valid", "error", "error"]
    assert "<td>目标网址 <code>destination_url</code></td>" in report[1][1]
    assert "只支持 http 和 https 开头的网址（当前为 javascript）" in html.unescape(report[1][1])
    assert "<td>最多点击次数 <code>max_clicks</code></td>" in report[2][1] and "<td>必须是整数</td>" in report[2][1]

    header = console.post(
        "/console/links/import", data={"csrf": token}, files={"file": ("x.csv", b"title\nx\n", "text/csv")}
    )
    assert header.status_code == 422
    assert "第一行必须是列名，且包含 destination_url" in header.text

    assert console.post("/console/links/import", data={"csrf": token}, files=upload).status_code == 200
    again = console.post("/console/links/import", data={"csrf": token}, files=upload)
    assert re.search(r"已导入为短链 #\d+", again.text)  # not "already imported as link …"

    console.cookies.set("sy_lang", "en")
    en = console.post("/console/links/import", data={"csrf": token, "dry_run": "1"}, files=upload)
    assert "<td>Destination URL <code>destination_url</code></td>" in en.text
    assert "only http and https URLs are allowed (scheme: javascript)" in en.text


def test_qr_option_errors_on_the_link_page_are_translated(console):
    page = console.get("/console/links")
    link_id = re.search(r'data-link-id="(\d+)"', page.text).group(1)
    zh = console.get(f"/console/links/{link_id}/qr.png?dark=%23eeeeee")
    assert zh.status_code == 422
    assert zh.json()["message"].startswith("前景色无效：与背景色的对比度只有 ")
    assert zh.json()["code"] == "colour_contrast"
    assert zh.json()["reason"].startswith("contrast with light is ")
    console.cookies.set("sy_lang", "en")
    en = console.get(f"/console/links/{link_id}/qr.png?size=abc")
    assert en.json()["message"] == "Invalid Size (px): must be a whole number"


# --- (3) the REST API keeps its English reasons and adds the code --------------------------------------------


def test_the_api_keeps_the_english_reason_and_adds_the_code(client, auth):
    response = client.post("/api/v1/links", json={"destination_url": "javascript:alert(1)", "slug": "a"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "destination_url", "reason": "only http and https URLs are allowed (scheme: javascript)",
         "code": "url_scheme"},
        {"field": "slug", "reason": "must be 2 to 64 characters", "code": "length_range"},
    ]  # fmt: skip

    client.post("/api/v1/links", json={"destination_url": "https://a.cn/", "slug": "twice"}, headers=auth)
    taken = client.post("/api/v1/links", json={"destination_url": "https://a.cn/", "slug": "twice"}, headers=auth)
    assert taken.status_code == 409
    [field] = taken.json()["error"]["fields"]
    assert field["code"] == "slug_taken" and field["reason"].startswith("'twice' is already used on ")

    shape = client.post("/api/v1/links", content=b"{not json", headers={**auth, "content-type": "application/json"})
    assert shape.status_code == 422
    assert all(f["reason"] and f["code"] for f in shape.json()["error"]["fields"])
