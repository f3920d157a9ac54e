"""Compatibility APIs, exercised over real HTTP with the real client libraries where one exists.

Bitly v4 is driven by pyshorteners, YOURLS by the `yourls` package, Shlink v3 by httpx following
Shlink's documented API. Every API authenticates with Siyu API keys, honours their scopes and
workspace, and answers errors in its original's shape, never with a 500.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyshorteners
import pytest
import requests
import yourls
from pyshorteners.exceptions import BadAPIResponseException, ExpandingErrorException, ShorteningErrorException

from siyu.api.auth import caller_for_key
from siyu.workspaces.service import add_domain, create_api_key, create_workspace

DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
BITLY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
YOURLS_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


# --- helpers -----------------------------------------------------------------------------------


def rival_workspace_key(server) -> str:
    """An all-scopes key of a second workspace (domain rival.test) on the same installation."""
    with server.runtime.db.session() as session:
        ws = create_workspace(session, "Rival shop", slug="rival")
        add_domain(session, ws.id, "rival.test", is_default=True)
        return create_api_key(session, ws.id, "rival key").secret


def key_with_scopes(server, *scopes: str) -> str:
    """A key of the first workspace that holds only `scopes`."""
    workspace_id = caller_for_key(server.runtime, server.api_key).workspace_id
    with server.runtime.db.session() as session:
        return create_api_key(session, workspace_id, "limited key", list(scopes)).secret


def add_workspace_domain(server, hostname: str) -> None:
    workspace_id = caller_for_key(server.runtime, server.api_key).workspace_id
    with server.runtime.db.session() as session:
        add_domain(session, workspace_id, hostname)


def visit(short_url: str) -> httpx.Response:
    """A person opening the short link in a desktop browser."""
    response = httpx.get(short_url, headers={"User-Agent": DESKTOP_CHROME})
    assert response.status_code == 302
    return response


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 5.0) -> Any:
    """Clicks reach the event store asynchronously: poll until `read()` gives `expected`."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


# --- Bitly v4 ----------------------------------------------------------------------------------


def bitly(server, key: str | None = None):
    """pyshorteners' Bitly backend, pointed at Siyu instead of api-ssl.bit.ly."""
    return pyshorteners.Shortener(api_key=key or server.api_key, api_url=f"{server.url}/v4", timeout=10).bitly


def bitly_post(server, path: str, key: str | None = "default", **kwargs) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {server.api_key if key == 'default' else key}"}
    return httpx.post(f"{server.url}/v4{path}", headers=headers, **kwargs)


def test_pyshorteners_bitly_shortens_expands_and_counts_clicks(live_server):
    shortener = bitly(live_server)

    short = shortener.short("https://shop.example.com/spring-sale?ref=mail")

    assert re.fullmatch(rf"{live_server.url}/[A-Za-z0-9]{{6,8}}", short)
    assert visit(short).headers["location"].startswith("https://shop.example.com/spring-sale?ref=mail")
    assert shortener.expand(short) == "https://shop.example.com/spring-sale?ref=mail"
    assert eventually(lambda: shortener.total_clicks(short), 1) == 1


def test_bitly_shorten_answers_like_bitly_and_reuses_the_bitlink_for_the_same_long_url(live_server):
    first = bitly_post(live_server, "/shorten", json={"long_url": "https://example.org/menu", "group_guid": "Ba1b"})
    again = bitly_post(live_server, "/shorten", json={"long_url": "https://example.org/menu"})

    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    host, slug = body["id"].split("/")
    assert host == f"127.0.0.1:{live_server.port}"
    assert body["link"] == f"{live_server.url}/{slug}"
    assert body["long_url"] == "https://example.org/menu"
    assert BITLY_TIME.match(body["created_at"])
    assert body["archived"] is False and body["tags"] == [] and body["custom_bitlinks"] == []
    assert again.json()["id"] == body["id"]


def test_bitly_bitlink_lookup_and_click_summary(live_server):
    created = bitly_post(
        live_server, "/bitlinks", json={"long_url": "https://example.org/tea", "title": "Tea", "tags": ["drinks"]}
    ).json()
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    visit(created["link"])

    fetched = httpx.get(f"{live_server.url}/v4/bitlinks/{created['id']}", headers=headers).json()
    assert (fetched["id"], fetched["title"], fetched["tags"]) == (created["id"], "Tea", ["drinks"])

    def summary() -> int:
        url = f"{live_server.url}/v4/bitlinks/{created['id']}/clicks/summary"
        return httpx.get(url, headers=headers).json()["total_clicks"]

    assert eventually(summary, 1) == 1
    clicks = httpx.get(f"{live_server.url}/v4/bitlinks/{created['id']}/clicks?unit=day&units=7", headers=headers)
    assert clicks.json()["unit"] == "day" and clicks.json()["units"] == 7
    assert [c["clicks"] for c in clicks.json()["link_clicks"]] == [1]
    assert BITLY_TIME.match(clicks.json()["link_clicks"][0]["date"])


def test_bitly_shortens_on_another_domain_of_the_workspace_only(live_server):
    add_workspace_domain(live_server, "go.example")
    rival_workspace_key(live_server)

    ours = bitly_post(live_server, "/shorten", json={"long_url": "https://example.org/x", "domain": "go.example"})
    theirs = bitly_post(live_server, "/shorten", json={"long_url": "https://example.org/x", "domain": "rival.test"})

    assert ours.status_code == 201 and ours.json()["link"].startswith("http://go.example/")
    assert theirs.status_code == 400
    assert theirs.json()["message"] == "INVALID_ARG_DOMAIN"
    assert theirs.json()["errors"][0]["field"] == "domain"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"long_url": "javascript:alert(document.cookie)"}, "long_url"),
        ({"long_url": "https://" + "a" * 5000 + ".example"}, "long_url"),
        ({"long_url": ""}, "long_url"),
        ({"long_url": ["https://example.org"]}, "long_url"),
        ({}, "long_url"),
        ({"long_url": "https://example.org", "domain": 42}, "domain"),
        ({"long_url": "https://example.org", "domain": "not a host!"}, "domain"),
    ],
)
def test_bitly_rejects_bad_input_naming_the_field(live_server, body, field):
    response = bitly_post(live_server, "/shorten", json=body)

    assert response.status_code == 400
    assert response.json()["message"] == f"INVALID_ARG_{field.upper()}"
    assert response.json()["resource"] == "bitlinks"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_bitly_rejects_bodies_that_are_not_json_objects(live_server):
    for content in (b"long_url=https://example.org", b"[1, 2]", b"{" * 100_000):
        response = bitly_post(live_server, "/shorten", content=content)
        assert response.status_code in (400, 413)
        assert response.json()["message"] == "INVALID_BODY"


def test_bitly_keys_and_scopes(live_server):
    reader = key_with_scopes(live_server, "links:read")
    created = bitly_post(live_server, "/shorten", json={"long_url": "https://example.org/a"}).json()

    assert bitly_post(live_server, "/shorten", key=None, json={"long_url": "https://example.org/b"}).status_code == 403
    wrong = bitly_post(live_server, "/shorten", key="sy_not-a-key", json={"long_url": "https://example.org/b"})
    assert (wrong.status_code, wrong.json()["message"]) == (403, "FORBIDDEN")
    read_only = bitly_post(live_server, "/shorten", key=reader, json={"long_url": "https://example.org/b"})
    assert read_only.status_code == 403 and "links:write" in read_only.json()["description"]
    assert bitly(live_server, reader).expand(created["link"]) == "https://example.org/a"
    with pytest.raises(ShorteningErrorException):
        bitly(live_server, "sy_not-a-key").short("https://example.org/c")
    with pytest.raises(BadAPIResponseException):  # click counts need analytics:read
        bitly(live_server, reader).total_clicks(created["link"])


def test_bitly_keys_cannot_see_another_workspaces_links(live_server):
    rival = rival_workspace_key(live_server)
    ours = bitly(live_server).short("https://example.org/secret-plan")

    with pytest.raises(ExpandingErrorException):
        bitly(live_server, rival).expand(ours)
    response = httpx.get(
        f"{live_server.url}/v4/bitlinks/{ours.split('://')[1]}", headers={"Authorization": f"Bearer {rival}"}
    )
    assert (response.status_code, response.json()["message"]) == (404, "NOT_FOUND")


# --- YOURLS ------------------------------------------------------------------------------------


def yourls_client(server, key: str | None = None) -> yourls.YOURLSClient:
    return yourls.YOURLSClient(f"{server.url}/yourls-api.php", signature=key or server.api_key)


def yourls_call(server, method: str = "GET", **params: str) -> requests.Response:
    params.setdefault("signature", server.api_key)
    if method == "POST":
        return requests.post(f"{server.url}/yourls-api.php", data=params, timeout=10)
    return requests.get(f"{server.url}/yourls-api.php", params=params, timeout=10)


def test_yourls_client_shortens_expands_and_reads_stats(live_server):
    client = yourls_client(live_server)

    link = client.shorten("https://shop.example.com/coffee-beans", keyword="beans", title="Coffee beans")

    assert link.shorturl == f"{live_server.url}/beans"
    assert (link.keyword, link.url, link.title) == ("beans", "https://shop.example.com/coffee-beans", "Coffee beans")
    assert client.expand("beans") == "https://shop.example.com/coffee-beans"
    assert client.expand(f"{live_server.url}/beans") == "https://shop.example.com/coffee-beans"
    visit(link.shorturl)
    stats = eventually(lambda: client.url_stats("beans").clicks, 1)
    assert stats == 1
    assert client.db_stats().total_links == 5  # four demo links and this one
    top, totals = client.stats("top", limit=2)
    assert top[0].shorturl == link.shorturl and top[0].clicks == 1
    assert (totals.total_links, totals.total_clicks) == (5, 1)
    last, _ = client.stats("last", limit=1)
    assert last[0].shorturl == link.shorturl


def test_yourls_returns_the_existing_short_url_for_a_known_long_url(live_server):
    client = yourls_client(live_server)
    first = client.shorten("https://example.org/already-there")

    with pytest.raises(yourls.YOURLSURLExistsError) as exists:
        client.shorten("https://example.org/already-there", keyword="another")

    assert exists.value.url.shorturl == first.shorturl
    raw = yourls_call(live_server, action="shorturl", url="https://example.org/already-there", format="json").json()
    assert (raw["status"], raw["code"], raw["statusCode"]) == ("fail", "error:url", 200)
    assert raw["url"]["keyword"] == first.keyword and raw["url"]["clicks"] == "0"


@pytest.mark.parametrize("keyword", ["coffee", "COFFEE", "api", "yourls-api"])
def test_yourls_refuses_taken_and_reserved_keywords(live_server, keyword):
    with pytest.raises(yourls.YOURLSKeywordExistsError) as taken:
        yourls_client(live_server).shorten("https://example.org/new-page", keyword=keyword)

    assert taken.value.keyword == keyword


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"url": ""}, "error:nourl"),
        ({"url": "javascript:alert(1)"}, "error:nourl"),
        ({"url": "https://example.org/" + "x" * 5000}, "error:nourl"),
        ({"url": "https://example.org/ok", "keyword": "no spaces please"}, "error:keyword"),
        ({"url": "https://example.org/ok", "keyword": "k" * 65}, "error:keyword"),
        ({"url": "https://example.org/ok", "title": "t" * 501}, "error:title"),
    ],
)
def test_yourls_rejects_bad_input_with_yourls_codes(live_server, params, code):
    response = yourls_call(live_server, "POST", action="shorturl", format="json", **params)

    assert response.status_code == 400
    assert (response.json()["status"], response.json()["code"]) == ("fail", code)


def test_yourls_client_raises_its_own_errors(live_server):
    client = yourls_client(live_server)

    with pytest.raises(yourls.YOURLSNoURLError):
        client.shorten("javascript:alert(1)")
    with pytest.raises(yourls.YOURLSNoLoopError):
        client.shorten(f"{live_server.url}/coffee")
    with pytest.raises(yourls.YOURLSHTTPError, match="not found"):
        client.expand("no-such-keyword")


def test_yourls_output_formats(live_server):
    simple = yourls_call(
        live_server, action="shorturl", url="https://example.org/plain", keyword="plain", format="simple"
    )
    assert (simple.text, simple.headers["content-type"]) == (f"{live_server.url}/plain", "text/plain; charset=utf-8")

    xml = yourls_call(live_server, action="expand", shorturl="plain")  # YOURLS' default format is XML
    assert xml.headers["content-type"] == "application/xml"
    assert "<longurl>https://example.org/plain</longurl>" in xml.text

    jsonp = yourls_call(live_server, action="expand", shorturl="plain", format="jsonp", callback="show")
    assert jsonp.text.startswith('show({"keyword": "plain"')

    evil = yourls_call(live_server, action="expand", shorturl="plain", format="jsonp", callback="alert(1)//")
    assert evil.status_code == 400 and "alert" not in evil.text


def test_yourls_authentication_and_scopes(live_server):
    reader = key_with_scopes(live_server, "links:read")

    missing = requests.get(f"{live_server.url}/yourls-api.php", params={"action": "db-stats", "format": "json"})
    assert (missing.status_code, missing.json()) == (403, {"message": "Please log in", "errorCode": 403})
    wrong = yourls_call(live_server, signature="sy_wrong", action="db-stats", format="json")
    assert (wrong.status_code, wrong.json()["message"]) == (403, "Invalid username or password")
    with pytest.raises(yourls.YOURLSHTTPError, match="Invalid username or password"):
        yourls_client(live_server, "sy_wrong").db_stats()

    by_password = yourls.YOURLSClient(f"{live_server.url}/yourls-api.php", username="any", password=reader)
    assert by_password.expand("coffee").startswith("https://example.com/coffee")
    with pytest.raises(yourls.YOURLSHTTPError, match="links:write"):
        by_password.shorten("https://example.org/not-allowed")


def test_yourls_keys_cannot_see_another_workspaces_links(live_server):
    rival = yourls_client(live_server, rival_workspace_key(live_server))

    for ref in ("coffee", f"{live_server.url}/coffee"):
        with pytest.raises(yourls.YOURLSHTTPError, match="not found"):
            rival.expand(ref)
        with pytest.raises(yourls.YOURLSHTTPError):
            rival.url_stats(ref)
    assert rival.db_stats().total_links == 0


def test_yourls_unknown_actions_and_odd_requests_never_fail_with_500(live_server):
    unknown = yourls_call(live_server, action="delete-everything", format="json")
    assert (unknown.status_code, unknown.json()["message"]) == (400, 'Unknown or missing "action" parameter')

    too_many = requests.get(
        f"{live_server.url}/yourls-api.php", params={f"p{i}": "x" for i in range(200)} | {"format": "json"}
    )
    assert too_many.status_code == 400
    huge = requests.post(f"{live_server.url}/yourls-api.php?format=json", data={"url": "x" * 100_000})
    assert huge.status_code == 413
    bad_limit = yourls_call(live_server, action="stats", filter="top", limit="many", format="json")
    assert bad_limit.status_code == 400 and "limit" in bad_limit.json()["message"]


# --- Shlink v3 ---------------------------------------------------------------------------------


def shlink(server, key: str | None = "default") -> httpx.Client:
    headers = {} if key is None else {"X-Api-Key": server.api_key if key == "default" else key}
    return httpx.Client(base_url=f"{server.url}/rest/v3", headers=headers)


def assert_problem(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """Shlink errors are RFC 7807 problem details with Shlink's type URLs."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"https://shlink.io/api/error/{error_type}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_shlink_creates_and_gets_short_urls_with_shlink_fields(live_server):
    api = shlink(live_server)

    created = api.post(
        "/short-urls",
        json={
            "longUrl": "https://shop.example.com/launch",
            "customSlug": "launch",
            "tags": ["campaign", "spring"],
            "title": "Launch",
            "validUntil": "2031-01-01T00:00:00+08:00",
            "maxVisits": 500,
            "forwardQuery": False,
            "crawlable": True,
            "deviceLongUrls": {"ios": "https://apps.apple.com/app/id1", "android": None},
        },
    )

    assert created.status_code == 200
    body = created.json()
    assert body["shortCode"] == "launch"
    assert body["shortUrl"] == f"{live_server.url}/launch"
    assert body["longUrl"] == "https://shop.example.com/launch"
    assert body["tags"] == ["campaign", "spring"]
    assert body["title"] == "Launch"
    assert body["meta"] == {"validSince": None, "validUntil": "2030-12-31T16:00:00+00:00", "maxVisits": 500}
    assert body["forwardQuery"] is False
    assert body["domain"] is None  # the default domain, as Shlink reports it
    assert body["deviceLongUrls"] == {"android": None, "ios": "https://apps.apple.com/app/id1", "desktop": None}
    assert body["visitsSummary"] == {"total": 0, "nonBots": 0, "bots": 0}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["dateCreated"])

    visit(body["shortUrl"])
    visits = eventually(lambda: api.get("/short-urls/launch").json()["visitsSummary"]["total"], 1)
    assert visits == 1
    assert api.get("/short-urls/launch").json()["shortCode"] == "launch"


def test_shlink_find_if_exists_and_short_code_length(live_server):
    api = shlink(live_server)
    first = api.post("/short-urls", json={"longUrl": "https://example.org/once", "shortCodeLength": 12}).json()

    again = api.post("/short-urls", json={"longUrl": "https://example.org/once", "findIfExists": True}).json()
    fresh = api.post("/short-urls", json={"longUrl": "https://example.org/once"}).json()

    assert len(first["shortCode"]) == 12
    assert again["shortCode"] == first["shortCode"]
    assert fresh["shortCode"] != first["shortCode"]


def test_shlink_lists_short_urls_page_by_page(live_server):
    api = shlink(live_server)
    for n in range(3):
        api.post("/short-urls", json={"longUrl": f"https://example.org/{n}", "customSlug": f"page-{n}"})

    page = api.get("/short-urls", params={"page": 2, "itemsPerPage": 3}).json()["shortUrls"]
    tagged = api.get("/short-urls", params={"tags[]": "demo", "orderBy": "shortCode-ASC"}).json()["shortUrls"]
    search = api.get("/short-urls", params={"searchTerm": "page-1"}).json()["shortUrls"]

    assert page["pagination"] == {
        "currentPage": 2,
        "pagesCount": 3,
        "itemsPerPage": 3,
        "itemsInCurrentPage": 3,
        "totalItems": 7,
    }
    assert [u["shortCode"] for u in tagged["data"]] == ["ab-test", "coffee", "get-app", "wx-only"]
    assert [u["shortCode"] for u in search["data"]] == ["page-1"]


def test_shlink_domains_other_than_the_default_are_named(live_server):
    add_workspace_domain(live_server, "go.example")
    api = shlink(live_server)

    created = api.post(
        "/short-urls", json={"longUrl": "https://example.org/d", "customSlug": "dd", "domain": "go.example"}
    )

    assert (created.json()["domain"], created.json()["shortUrl"]) == ("go.example", "http://go.example/dd")
    assert api.get("/short-urls/dd", params={"domain": "go.example"}).json()["shortCode"] == "dd"
    body = assert_problem(api.get("/short-urls/dd"), 404, "short-url-not-found")  # not on the default domain
    assert body["shortCode"] == "dd"


@pytest.mark.parametrize(
    ("body", "elements"),
    [
        ({"longUrl": "javascript:alert(1)"}, ["longUrl"]),
        ({}, ["longUrl"]),
        ({"longUrl": "https://example.org/" + "x" * 5000}, ["longUrl"]),
        ({"longUrl": "https://example.org", "customSlug": "api"}, ["customSlug"]),
        ({"longUrl": "https://example.org", "customSlug": "s" * 65}, ["customSlug"]),
        ({"longUrl": "https://example.org", "customSlug": "has space"}, ["customSlug"]),
        ({"longUrl": "https://example.org", "maxVisits": "ten", "tags": [1]}, ["maxVisits", "tags"]),
        ({"longUrl": "https://example.org", "maxVisits": 10**20}, ["maxVisits"]),
        ({"longUrl": "https://example.org", "validUntil": "next tuesday"}, ["validUntil"]),
        ({"longUrl": "https://example.org", "validSince": "2999-01-01T00:00:00Z"}, ["validSince"]),
        ({"longUrl": "https://example.org", "forwardQuery": "yes"}, ["forwardQuery"]),
        ({"longUrl": "https://example.org", "findIfExists": 1}, ["findIfExists"]),
        ({"longUrl": "https://example.org", "shortCodeLength": 2}, ["shortCodeLength"]),
        ({"longUrl": "https://example.org", "domain": "rival.test"}, ["domain"]),
        ({"longUrl": "https://example.org", "deviceLongUrls": {"ios": "ftp://x"}}, ["deviceLongUrls"]),
        ({"longUrl": "https://example.org", "deviceLongUrls": {"watch": "https://x.org"}}, ["deviceLongUrls"]),
    ],
)
def test_shlink_rejects_invalid_data_naming_the_elements(live_server, body, elements):
    response = shlink(live_server).post("/short-urls", json=body)

    problem = assert_problem(response, 400, "invalid-data")
    assert (problem["title"], problem["detail"]) == ("Invalid data", "Provided data is not valid")
    assert sorted(problem["invalidElements"]) == sorted(elements)
    assert set(problem["reasons"]) == set(elements)


def test_shlink_refuses_a_slug_in_use(live_server):
    response = shlink(live_server).post("/short-urls", json={"longUrl": "https://example.org", "customSlug": "Coffee"})

    problem = assert_problem(response, 400, "non-unique-slug")
    assert problem["customSlug"] == "Coffee"
    assert problem["detail"] == 'Provided slug "Coffee" is already in use.'


@pytest.mark.parametrize("content", [b"not json", b'["longUrl"]', b"{" * 1000, b"x" * 70_000])
def test_shlink_malformed_bodies_are_problems(live_server, content):
    response = shlink(live_server).post("/short-urls", content=content, headers={"content-type": "application/json"})

    assert_problem(response, 413 if len(content) > 65536 else 400, "malformed-request-body")


def test_shlink_refuses_list_filters_it_cannot_honour(live_server):
    api = shlink(live_server)

    for params, element in [
        ({"startDate": "2025-01-01"}, "startDate"),
        ({"tags[]": ["a", "b"]}, "tags"),
        ({"orderBy": "visits-DESC"}, "orderBy"),
        ({"page": "0"}, "page"),
        ({"itemsPerPage": "lots"}, "itemsPerPage"),
    ]:
        assert assert_problem(api.get("/short-urls", params=params), 400, "invalid-data")["invalidElements"] == [
            element
        ]


def test_shlink_keys_and_scopes(live_server):
    writer_only = key_with_scopes(live_server, "links:write")
    reader_only = key_with_scopes(live_server, "links:read")

    missing = assert_problem(shlink(live_server, None).get("/short-urls"), 401, "missing-authentication")
    assert missing["expectedTypes"] == ["X-Api-Key"]
    assert_problem(shlink(live_server, "sy_wrong").get("/short-urls"), 401, "invalid-api-key")
    assert_problem(shlink(live_server, writer_only).get("/short-urls/coffee"), 403, "forbidden-operation")
    assert_problem(
        shlink(live_server, reader_only).post("/short-urls", json={"longUrl": "https://example.org"}),
        403,
        "forbidden-operation",
    )
    assert shlink(live_server, reader_only).get("/short-urls/coffee").status_code == 200


def test_shlink_keys_cannot_see_another_workspaces_links(live_server):
    rival = shlink(live_server, rival_workspace_key(live_server))

    body = assert_problem(rival.get("/short-urls/coffee"), 404, "short-url-not-found")
    assert body["shortCode"] == "coffee"
    host = f"127.0.0.1:{live_server.port}"
    assert_problem(rival.get("/short-urls/coffee", params={"domain": host}), 404, "short-url-not-found")
    assert rival.get("/short-urls").json()["shortUrls"]["pagination"]["totalItems"] == 0
    # and the rival's own slug namespace is its own domain: 'coffee' is free there
    assert (
        rival.post("/short-urls", json={"longUrl": "https://rival.example/c", "customSlug": "coffee"}).status_code
        == 200
    )


def test_shlink_health_needs_no_key(live_server):
    response = httpx.get(f"{live_server.url}/rest/health")

    assert response.status_code == 200 and response.json()["status"] == "pass"
