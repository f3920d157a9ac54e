"""The REST API v1, endpoint by endpoint: the happy path, then what a careless or hostile caller gets.

Every error is JSON: {"error": {"code", "message", "fields": [{"field", "reason"}]}}.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageDraw

from siyu import qr
from siyu.workspaces import service as workspaces

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
DEMO_SLUGS = {"coffee", "wx-only", "get-app", "ab-test"}


def create(client, auth, **fields) -> dict:
    response = client.post("/api/v1/links", json=fields, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def error_fields(response) -> list[str]:
    body = response.json()
    assert set(body) == {"error"}
    return [f["field"] for f in body["error"]["fields"]]


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def svg_to_png(svg: bytes, scale: int = 8) -> bytes:
    """Rasterise the renderer's SVG (a light rect and one path of `M x y h w v1 h-w z` runs)."""
    text = svg.decode()
    n = int(re.search(r'viewBox="0 0 (\d+) \d+"', text).group(1))
    image = Image.new("L", (n * scale, n * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", text):
        x, y, w = int(x), int(y), int(w)
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + 1) * scale - 1], fill=0)
    return png(image)


@pytest.fixture
def coffee(client, auth) -> dict:
    return client.get("/api/v1/links", params={"search": "coffee"}, headers=auth).json()["links"][0]


@pytest.fixture
def other_workspace(runtime, first_run) -> dict:
    """A second tenant with its own domain, key and link."""
    with runtime.db.session() as session:
        ws = workspaces.create_workspace(session, "Other shop", slug="other")
        workspaces.add_domain(session, ws.id, "other.test", is_default=True)
        key = workspaces.create_api_key(session, ws.id, "other key").secret
    return {"id": ws.id, "auth": {"Authorization": f"Bearer {key}"}}


@pytest.fixture
def read_only_auth(runtime, first_run) -> dict[str, str]:
    with runtime.db.session() as session:
        ws = workspaces.get_workspace(session, 1)
        key = workspaces.create_api_key(session, ws.id, "dashboard", scopes=["links:read"]).secret
    return {"Authorization": f"Bearer {key}"}


# --- authentication and tenancy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sy_not-a-real-key"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-Api-Key": ""}],
    ids=["no key", "unknown key", "wrong scheme", "empty x-api-key"],
)
def test_requests_without_a_valid_key_get_401_json(client, headers):
    response = client.get("/api/v1/links", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "API key" in error["message"]


def test_the_key_also_works_as_x_api_key(client, api_key):
    response = client.get("/api/v1/links", headers={"X-Api-Key": api_key})

    assert response.status_code == 200
    assert {link["slug"] for link in response.json()["links"]} == DEMO_SLUGS


def test_a_key_without_the_scope_gets_403(client, read_only_auth, coffee):
    assert client.get("/api/v1/links", headers=read_only_auth).status_code == 200

    for method, path, body in [
        ("POST", "/api/v1/links", {"destination_url": "https://example.com/"}),
        ("PATCH", f"/api/v1/links/{coffee['id']}", {"title": "x"}),
        ("DELETE", f"/api/v1/links/{coffee['id']}", None),
        ("GET", "/api/v1/analytics", None),
        ("GET", "/api/v1/webhooks", None),
    ]:
        response = client.request(method, path, json=body, headers=read_only_auth)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"
        assert "scope" in response.json()["error"]["message"]


def test_another_workspaces_link_does_not_exist_for_you(client, auth, other_workspace):
    theirs = create(client, other_workspace["auth"], slug="their-sale", destination_url="https://other.example/sale")
    assert theirs["short_url"] == "http://other.test/their-sale"

    for method, path in [
        ("GET", f"/api/v1/links/{theirs['id']}"),
        ("PATCH", f"/api/v1/links/{theirs['id']}"),
        ("DELETE", f"/api/v1/links/{theirs['id']}"),
        ("GET", f"/api/v1/links/{theirs['id']}/qr.png"),
        ("GET", f"/api/v1/links/{theirs['id']}/analytics"),
        ("GET", f"/api/v1/analytics/clicks.csv?link_id={theirs['id']}"),
    ]:
        response = client.request(method, path, json={"title": "mine now"} if method == "PATCH" else None, headers=auth)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"

    mine = client.get("/api/v1/links", params={"search": "sale"}, headers=auth).json()
    assert mine["total"] == 0
    # Nor can a link be put on someone else's domain.
    refused = client.post(
        "/api/v1/links", json={"destination_url": "https://example.com/", "domain": "other.test"}, headers=auth
    )
    assert refused.status_code == 422
    assert error_fields(refused) == ["domain"]
    # And their link is untouched.
    again = client.get(f"/api/v1/links/{theirs['id']}", headers=other_workspace["auth"]).json()
    assert again["title"] == "" and again["archived"] is False


# --- creating links -------------------------------------------------------------------------------------


def test_create_a_link_with_every_option(client, auth):
    link = create(
        client,
        auth,
        slug="spring-menu",
        destination_url="https://shop.example.com/menu",
        title="Spring menu",
        notes="poster in store",
        tags=["spring", "food"],
        redirect_status=307,
        forward_query=False,
        utm={"source": "poster", "utm_campaign": "spring"},
        expires_at="2030-06-30T23:59:00+08:00",
        max_clicks=1000,
        fallback_url="https://shop.example.com/",
        password="open-sesame",
        rules=[{"when": {"os": ["iOS"], "province": ["广东省"]}, "url": "https://shop.example.com/gd-ios"}],
        anti_block_platforms=["wechat", "qq"],
        allowed_platforms=["mobile"],
        blocked_platforms=["weibo"],
        person_ref="member-42",
    )

    assert link["short_url"] == "http://sy.test/spring-menu"
    assert link["qr_url"] == "http://sy.test/spring-menu/q"
    assert link["domain"] == "sy.test"
    assert link["tags"] == ["food", "spring"]
    assert link["redirect_status"] == 307
    assert link["forward_query"] is False
    assert link["utm"] == {"source": "poster", "campaign": "spring"}
    assert link["expires_at"] == "2030-06-30T15:59:00+00:00"
    assert link["max_clicks"] == 1000
    assert link["has_password"] is True
    assert "password" not in link and "password_hash" not in link
    assert link["rules"] == [{"when": {"os": ["ios"], "province": ["广东"]}, "url": "https://shop.example.com/gd-ios"}]
    assert link["anti_block_platforms"] == ["wechat", "qq"]
    assert link["created_by"] == "key:first key"
    assert client.get(f"/api/v1/links/{link['id']}", headers=auth).json() == link


def test_a_random_slug_avoids_look_alike_characters(client, auth):
    link = create(client, auth, destination_url="https://example.com/")

    assert re.fullmatch(r"[23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ]{6}", link["slug"])


def test_a_taken_slug_is_a_conflict_whatever_its_case(client, auth):
    response = client.post(
        "/api/v1/links", json={"slug": "Coffee", "destination_url": "https://example.com/"}, headers=auth
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert error_fields(response) == ["slug"]


BAD_LINKS = [  # (body, the fields the 422 names)
    ({"destination_url": "https://example.com/", "max_clicks": "ten"}, ["max_clicks"]),
    ({"destination_url": "https://example.com/", "tags": "a,b"}, ["tags"]),
    ({"destination_url": "https://example.com/", "forward_query": "maybe"}, ["forward_query"]),
    ({"destination_url": "https://example.com/", "shortcode": "x"}, ["shortcode"]),  # unknown field
    ({"destination_url": 42}, ["destination_url"]),
    ({"title": "no destination"}, ["destination_url"]),
    ({"destination_url": "javascript:alert(1)"}, ["destination_url"]),
    ({"destination_url": "https://exa mple.com/"}, ["destination_url"]),
    ({"destination_url": "http://sy.test/coffee"}, ["destination_url"]),  # a redirect loop
    ({"destination_url": "https://example.com/", "redirect_status": 303}, ["redirect_status"]),
    ({"destination_url": "https://example.com/", "expires_at": "next tuesday"}, ["expires_at"]),
    ({"destination_url": "https://example.com/", "utm": {"campaign": "ok", "colour": "red"}}, ["utm.colour"]),
    ({"destination_url": "https://example.com/", "slug": "has space"}, ["slug"]),
    ({"destination_url": "https://example.com/", "password": "abc"}, ["password"]),
    ({"destination_url": "https://example.com/", "anti_block_platforms": ["myspace"]}, ["anti_block_platforms[0]"]),
    (
        {"destination_url": "https://example.com/", "rules": [{"when": {"os": "ios"}, "url": 3}]},
        ["rules[0].when.os", "rules[0].url"],
    ),
    (
        {"destination_url": "https://example.com/", "rules": [{"when": {"planet": ["mars"]}, "url": "https://e.com"}]},
        ["rules[0].when.planet"],
    ),
    ({"destination_url": "https://example.com/", "variants": [{"url": "https://a.example/"}]}, ["variants"]),
    (
        {"destination_url": "ftp://x", "max_clicks": 0, "redirect_status": 200},
        ["destination_url", "redirect_status", "max_clicks"],
    ),
]


def test_bad_input_is_refused_with_422_naming_each_field(client, auth):
    wrong = []
    for body, fields in BAD_LINKS:
        response = client.post("/api/v1/links", json=body, headers=auth)
        error = response.json().get("error", {})
        named = [f["field"] for f in error.get("fields", [])]
        if response.status_code != 422 or error.get("code") != "invalid_input" or named != fields:
            wrong.append((body, response.status_code, response.text))
        assert all(f["reason"] for f in error.get("fields", []))
    assert wrong == []


def test_a_body_that_is_not_a_json_object_is_refused(client, auth):
    for raw in ['{"destination_url": ', "not json at all", "[1, 2]", '"https://example.com/"', ""]:
        response = client.post("/api/v1/links", content=raw, headers={**auth, "Content-Type": "application/json"})
        assert response.status_code == 422, raw
        assert error_fields(response) == ["body"], raw


# --- listing ---------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(client, auth):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert client.post("/api/v1/domains", json={"hostname": "b.test"}, headers=auth).status_code == 201
    made = {
        "menu-a": create(
            client, auth, slug="menu-a", destination_url="https://example.com/a", title="Alpha menu", tags=["food"]
        ),
        "menu-b": create(
            client, auth, slug="menu-b", destination_url="https://example.com/b", title="Beta", tags=["food", "drink"]
        ),
        "zz-old": create(client, auth, slug="zz-old", destination_url="https://example.com/old", expires_at=past),
        "on-b": create(client, auth, slug="on-b", domain="b.test", destination_url="https://example.com/menu-b"),
    }
    client.delete(
        f"/api/v1/links/{create(client, auth, slug='gone', destination_url='https://example.com/g')['id']}",
        headers=auth,
    )
    return made


def slugs(client, auth, **params) -> list[str]:
    response = client.get("/api/v1/links", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return [link["slug"] for link in response.json()["links"]]


def test_list_links_filters_and_searches(client, auth, catalogue):
    assert set(slugs(client, auth)) == DEMO_SLUGS | {"menu-a", "menu-b", "zz-old", "on-b"}  # archived hidden
    assert set(slugs(client, auth, search="MENU")) == {"menu-a", "menu-b", "on-b"}  # slug, title or destination
    assert set(slugs(client, auth, search="alpha")) == {"menu-a"}
    assert set(slugs(client, auth, tag="food")) == {"menu-a", "menu-b"}
    assert set(slugs(client, auth, tag="drink")) == {"menu-b"}
    assert slugs(client, auth, tag="nothing") == []
    assert slugs(client, auth, domain="b.test") == ["on-b"]
    assert slugs(client, auth, archived="true") == ["gone"]
    assert slugs(client, auth, expired="true") == ["zz-old"]
    assert "zz-old" not in slugs(client, auth, expired="false")


def test_list_links_sorts_and_pages(client, auth, catalogue):
    by_slug = slugs(client, auth, sort="slug", limit=1000)
    assert by_slug == sorted(by_slug)
    newest_first = slugs(client, auth)
    assert newest_first[0] == "on-b"
    assert slugs(client, auth, sort="-created")[0] == "coffee"

    page1 = client.get("/api/v1/links", params={"sort": "slug", "limit": 3}, headers=auth).json()
    page2 = client.get("/api/v1/links", params={"sort": "slug", "limit": 3, "offset": 3}, headers=auth).json()
    assert (page1["total"], page1["limit"], page1["offset"]) == (8, 3, 0)
    assert [link["slug"] for link in page1["links"] + page2["links"]] == by_slug[:6]


def test_list_links_refuses_bad_parameters(client, auth):
    for params, field in [
        ({"sort": "random"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"archived": "perhaps"}, "archived"),
    ]:
        response = client.get("/api/v1/links", params=params, headers=auth)
        assert response.status_code == 422, params
        assert error_fields(response) == [field], params


# --- reading, editing, archiving -------------------------------------------------------------------------


def test_get_patch_and_archive_a_link(client, auth):
    link = create(client, auth, slug="menu", destination_url="https://example.com/v1", tags=["a", "b"])

    patched = client.patch(
        f"/api/v1/links/{link['id']}",
        json={
            "destination_url": "https://example.com/v2",
            "tags": ["c"],
            "password": "open-sesame",
            "title": "  New  ",
        },
        headers=auth,
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["destination_url"], body["tags"], body["has_password"], body["title"]) == (
        "https://example.com/v2",
        ["c"],
        True,
        "New",
    )
    assert body["updated_at"] > link["updated_at"]
    assert body["slug"] == "menu"  # untouched fields stay

    cleared = client.patch(f"/api/v1/links/{link['id']}", json={"password": None}, headers=auth).json()
    assert cleared["has_password"] is False

    archived = client.delete(f"/api/v1/links/{link['id']}", headers=auth)
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert client.get(f"/api/v1/links/{link['id']}", headers=auth).json()["archived"] is True  # kept, not deleted

    restored = client.patch(f"/api/v1/links/{link['id']}", json={"archived": False}, headers=auth).json()
    assert restored["archived"] is False


def test_patch_refuses_bad_changes_and_changes_nothing(client, auth, coffee):
    for body, field in [
        ({"slug": "renamed"}, "slug"),
        ({"domain": "b.test"}, "domain"),
        ({"destination_url": None}, "destination_url"),
        ({"redirect_status": 303}, "redirect_status"),
        ({"archived": None}, "archived"),
        ({"title": "ok", "max_clicks": -1}, "max_clicks"),  # nothing is applied when one field is bad
    ]:
        response = client.patch(f"/api/v1/links/{coffee['id']}", json=body, headers=auth)
        assert response.status_code == 422, body
        assert error_fields(response) == [field], body
    assert client.get(f"/api/v1/links/{coffee['id']}", headers=auth).json() == coffee


def test_a_malformed_link_id_is_422_and_a_missing_one_404(client, auth):
    for link_id in ["abc", "0", "-1", str(2**63)]:
        response = client.get(f"/api/v1/links/{link_id}", headers=auth)
        assert response.status_code == 422, link_id
        assert error_fields(response) == ["link_id"], link_id

    missing = client.get("/api/v1/links/999999", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "link 999999 not found"


# --- QR codes --------------------------------------------------------------------------------------------


def test_link_qr_png_decodes_back_to_the_qr_short_link(client, auth, coffee):
    response = client.get(f"/api/v1/links/{coffee['id']}/qr.png", params={"size": 300}, headers=auth)

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (300, 300)
    assert [c.text for c in qr.decode_image(response.content)] == ["http://sy.test/coffee/q"]


def test_link_qr_svg_decodes_back_to_the_qr_short_link(client, auth, coffee):
    response = client.get(
        f"/api/v1/links/{coffee['id']}/qr.svg", params={"dark": "#1677ff", "error": "h", "border": 2}, headers=auth
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert 'fill="#1677ff"' in response.text
    assert [c.text for c in qr.decode_image(svg_to_png(response.content))] == ["http://sy.test/coffee/q"]


def test_bad_qr_options_are_refused_naming_the_option(client, auth, coffee):
    for fmt, params, field in [
        ("png", {"size": 10}, "size"),
        ("png", {"size": 99999}, "size"),
        ("png", {"border": 50}, "border"),
        ("svg", {"dark": "red"}, "dark"),
        ("svg", {"dark": "#ffffff", "light": "#000000"}, "dark"),  # inverted
        ("svg", {"dark": "#cccccc"}, "dark"),  # too little contrast to scan
        ("png", {"light": "#12345"}, "light"),
        ("png", {"error": "z"}, "error"),
        ("gif", {}, "fmt"),
        ("png", {"size": "big"}, "size"),
    ]:
        response = client.get(f"/api/v1/links/{coffee['id']}/qr.{fmt}", params=params, headers=auth)
        assert response.status_code == 422, (fmt, params, response.text)
        assert error_fields(response) == [field], (fmt, params)


def test_a_qr_too_dense_for_the_requested_size_is_refused(client, auth):
    long_slug = create(client, auth, slug="x" * 64, destination_url="https://example.com/")

    response = client.get(
        f"/api/v1/links/{long_slug['id']}/qr.png", params={"size": 64, "border": 16, "error": "h"}, headers=auth
    )

    assert response.status_code == 422
    assert error_fields(response) == ["size"]
    assert "too small" in response.json()["error"]["message"]


def upload(client, auth, data: bytes, **params):
    return client.post(
        "/api/v1/qr/decode", params=params, files={"image": ("poster.png", data, "image/png")}, headers=auth
    )


def test_decode_an_uploaded_qr_image(client, auth):
    image = qr.render_png("https://shop.example.com/menu?table=7")

    response = upload(client, auth, image)

    assert response.status_code == 200
    assert response.json() == {
        "codes": [
            {
                "text": "https://shop.example.com/menu?table=7",
                "format": "QRCode",
                "url": "https://shop.example.com/menu?table=7",
                "link": None,
            }
        ]
    }


def test_decode_with_create_reissues_the_code_as_a_short_link(client, auth):
    response = upload(client, auth, qr.render_png("https://shop.example.com/menu?table=7"), create="true")

    assert response.status_code == 200
    [code] = response.json()["codes"]
    link = code["link"]
    assert link["destination_url"] == "https://shop.example.com/menu?table=7"
    assert link["title"] == "QR upload"
    new_qr = client.get(f"/api/v1/links/{link['id']}/qr.png", headers=auth)
    assert [c.text for c in qr.decode_image(new_qr.content)] == [link["qr_url"]]


def test_decode_with_create_does_not_shorten_text_that_is_not_a_web_link(client, auth):
    wifi = qr.render_png("WIFI:T:WPA;S:cafe;P:secret;;")

    [code] = upload(client, auth, wifi, create="true").json()["codes"]

    assert (code["url"], code["link"]) == (None, None)


def test_decode_with_create_needs_the_write_scope(client, read_only_auth):
    response = upload(client, read_only_auth, qr.render_png("https://shop.example.com/"), create="true")

    assert response.status_code == 403


def test_decode_refuses_images_it_cannot_use_with_a_clear_reason(client, auth):
    for name, data, reason in [
        ("blank image", png(Image.new("L", (300, 300), 255)), "no QR code could be read"),
        ("not an image", b"GIF89a this is not a png", "only PNG, JPEG and WebP images are accepted"),
        ("garbage png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable PNG image"),
        ("empty", b"", "file is empty"),
        ("over 10 MB", b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024), "the limit is 10 MB"),
    ]:
        response = upload(client, auth, data)
        assert response.status_code == 422, name
        [field] = response.json()["error"]["fields"]
        assert field["field"] == "image", name
        assert reason in field["reason"], (name, field)


def test_decode_without_an_image_is_422(client, auth):
    response = client.post("/api/v1/qr/decode", data={"picture": "x"}, headers=auth)

    assert response.status_code == 422
    assert error_fields(response) == ["image"]


# --- analytics -------------------------------------------------------------------------------------------


@pytest.fixture
def visited(client, runtime):
    for path in ("/coffee", "/coffee/q", "/coffee", "/get-app"):
        assert client.get(path, headers={"User-Agent": DESKTOP_CHROME}).status_code == 302
    runtime.clicks.flush()


def test_workspace_analytics(client, auth, visited, coffee):
    report = client.get("/api/v1/analytics", headers=auth).json()

    assert (report["clicks"], report["unique_visitors"], report["bot_clicks"]) == (4, 1, 0)
    assert sum(point["clicks"] for point in report["timeseries"]) == 4
    assert report["breakdowns"]["trigger"] == [
        {"value": "link", "clicks": 3, "unique_visitors": 1},
        {"value": "qr", "clicks": 1, "unique_visitors": 1},
    ]
    assert report["top_links"][0] == {
        "link_id": coffee["id"],
        "slug": "coffee",
        "title": coffee["title"],
        "clicks": 3,
        "unique_visitors": 1,
    }


def test_link_analytics_with_a_range_and_buckets(client, auth, visited, coffee):
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=2)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}

    hourly = client.get(f"/api/v1/links/{coffee['id']}/analytics", params={**window, "bucket": "hour"}, headers=auth)
    assert hourly.status_code == 200
    report = hourly.json()
    assert report["clicks"] == 3
    assert report["since"] == window["since"]
    [point] = report["timeseries"]
    assert point["clicks"] == 3
    assert point["time"] == now.replace(minute=0, second=0, microsecond=0).isoformat()

    last_year = {"since": "2020-01-01", "until": "2020-12-31T23:59:59Z", "bucket": "month"}
    empty = client.get(f"/api/v1/links/{coffee['id']}/analytics", params=last_year, headers=auth).json()
    assert (empty["clicks"], empty["timeseries"]) == (0, [])


def test_analytics_refuses_bad_ranges(client, auth, coffee):
    for params, field in [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ({"since": "2000-01-01", "until": "2020-01-01"}, "since"),  # more than ten years
        ({"bucket": "year"}, "bucket"),
        ({"until": "0001-01-01"}, "until"),  # the default 30-day window would start before year 1
        ({"since": "0001-01-01T00:00:00+08:00"}, "since"),  # before year 1 in UTC
        ({"include_bots": "sometimes"}, "include_bots"),
    ]:
        for path in ("/api/v1/analytics", f"/api/v1/links/{coffee['id']}/analytics", "/api/v1/analytics/clicks.csv"):
            if path.endswith(".csv") and "bucket" in params:
                continue
            response = client.get(path, params=params, headers=auth)
            assert response.status_code == 422, (path, params, response.text)
            assert error_fields(response) == [field], (path, params)


def test_csv_export_lists_clicks_and_defuses_spreadsheet_formulas(client, auth, runtime, coffee):
    client.get("/coffee", headers={"User-Agent": DESKTOP_CHROME, "Referer": "https://www.baidu.com/"})
    client.get(
        "/coffee?utm_source=-2%2B3",
        headers={"User-Agent": "@SUM(1+1)*cmd|' /C calc'!A0", "Referer": '=HYPERLINK("http://evil.example","x")'},
    )
    runtime.clicks.flush()

    response = client.get("/api/v1/analytics/clicks.csv", params={"link_id": coffee["id"]}, headers=auth)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="clicks.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    assert rows[0]["slug"] == "coffee"
    assert rows[0]["referrer_domain"] == "baidu.com"
    assert rows[0]["browser"] == "Chrome"
    assert rows[0]["is_bot"] == "False"
    assert rows[1]["referrer"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[1]["user_agent"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[1]["utm_source"] == "'-2+3"
    assert not any(value[:1] in "=+-@" for row in rows for value in row.values() if value)


def test_csv_export_of_a_quiet_range_is_just_the_header(client, auth):
    response = client.get(
        "/api/v1/analytics/clicks.csv", params={"since": "2020-01-01", "until": "2020-02-01"}, headers=auth
    )

    assert response.status_code == 200
    assert response.text.splitlines()[0].startswith("click_id,ts,workspace_id,link_id,")
    assert len(response.text.splitlines()) == 1


# --- domains, workspace, platforms, docs --------------------------------------------------------------


def test_domains(client, auth):
    assert client.get("/api/v1/domains", headers=auth).json() == {
        "domains": [{"id": 1, "hostname": "sy.test", "is_default": True}]
    }

    added = client.post("/api/v1/domains", json={"hostname": "Go.Example.COM."}, headers=auth)
    assert added.status_code == 201
    assert added.json()["hostname"] == "go.example.com"
    assert added.json()["is_default"] is False

    duplicate = client.post("/api/v1/domains", json={"hostname": "go.example.com"}, headers=auth)
    assert duplicate.status_code == 409
    assert error_fields(duplicate) == ["hostname"]

    for bad in ("not a host", "-x.com", "example.com:99999", ""):
        response = client.post("/api/v1/domains", json={"hostname": bad}, headers=auth)
        assert response.status_code == 422, bad
        assert error_fields(response) == ["hostname"]


def test_workspace_settings(client, auth):
    assert client.get("/api/v1/workspace", headers=auth).json() == {
        "id": 1,
        "slug": "default",
        "name": "默认工作区 Default",
        "ip_mode": "truncated",
    }

    updated = client.patch("/api/v1/workspace", json={"name": " Coffee Co ", "ip_mode": "hashed"}, headers=auth)
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["ip_mode"]) == ("Coffee Co", "hashed")

    for body, field in [({"name": "  "}, "name"), ({"ip_mode": "all"}, "ip_mode"), ({"colour": "red"}, "colour")]:
        response = client.patch("/api/v1/workspace", json=body, headers=auth)
        assert response.status_code == 422, body
        assert error_fields(response) == [field]


def test_platforms_lists_codes_for_the_link_settings(client, auth):
    body = client.get("/api/v1/platforms", headers=auth).json()

    codes = {p["code"] for p in body["platforms"]}
    assert {"wechat", "wecom", "qq", "weibo", "dingtalk", "douyin"} <= codes
    assert "none" not in codes
    assert next(p for p in body["platforms"] if p["code"] == "wechat")["name_zh"] == "微信"
    assert "in_app" in body["groups"]


def test_openapi_and_docs_load(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["info"]["title"] == "Siyu API"
    assert {"/links", "/links/{link_id}", "/qr/decode", "/analytics", "/webhooks"} <= set(spec["paths"])

    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "'/api/v1/openapi.json'" in docs.text


def test_unknown_api_paths_are_json_404s(client, auth):
    response = client.get("/api/v1/nothing-here", headers=auth)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"

    wrong_method = client.put("/api/v1/links", headers=auth)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
