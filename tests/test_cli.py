"""The `siyu` command line, run for real through Typer's CliRunner against a data directory in tmp_path.

Each test is a fresh installation (SIYU_DATA_DIR=tmp_path). Errors a user can cause must come out as
`error: <field>: <reason>` lines with exit status 1, never as a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from typer.testing import CliRunner

from siyu import qr, security
from siyu.cli import common
from siyu.cli.main import app
from siyu.clicks.enrich import enrich
from siyu.clicks.record import RawClick
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.links.models import ShortLink
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import ApiKey, Workspace

WECHAT_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN"
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Still argon2, with the cheapest parameters: `init` hashes the admin password on every test."""
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def siyu(tmp_path, monkeypatch):
    """`siyu(*args, code=0)` runs the CLI and checks its exit status; returns the Click result."""
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)  # the CLI caches its Database per process
    runner = CliRunner()

    def run(*args, code: int = 0):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == code, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        return result

    yield run
    if common._db is not None:
        common._db.dispose()


@pytest.fixture
def api_key(siyu) -> str:
    """An initialised installation with two links, 'coffee' (id 1) and 'wx-only'; returns the API key."""
    out = siyu("init", "--no-demo").stdout  # the demo also seeds a month of clicks: slow, and not wanted here
    siyu("links", "create", "https://example.com/coffee?from=poster", "--slug", "coffee", "--title", "Coffee")
    siyu("links", "create", "https://example.com/member-day", "--slug", "wx-only", "--allow", "wechat")
    return re.search(r"API key\s*:\s*(sy_\S+)", out).group(1)


def link_json(siyu, ref: str) -> dict:
    return json.loads(siyu("links", "show", ref, "--json").stdout)


# --- init ------------------------------------------------------------------------------------------------


def test_init_prints_the_secrets_once_and_is_idempotent(siyu, tmp_path):
    first = siyu("init").stdout
    key = re.search(r"API key\s*:\s*(sy_\S+)", first).group(1)
    assert first.count(key) == 1
    assert "workspace : default   domain: sy.test" in first
    assert re.search(r"sign in\s*: admin@siyu\.local / \S{12,}", first)
    assert (tmp_path / "siyu.db").exists()

    again = siyu("init").stdout
    assert again.strip() == f"Siyu is already initialised in {tmp_path}"
    assert "sy_" not in again

    with common.database().session() as s:
        assert s.scalar(select(func.count()).select_from(Workspace)) == 1
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
        assert workspaces.authenticate_api_key(s, key) is not None
        links = {link.slug: {t.name for t in link.tags} for link in s.scalars(select(ShortLink))}
    # the four demo links, plus the demo customers' personal share links (tagged 'share')
    assert {"coffee", "wx-only", "get-app", "ab-test"} <= set(links)
    assert all("share" in tags for slug, tags in links.items() if slug not in {"coffee", "wx-only", "get-app", "ab-test"})

    listed = siyu("links", "list").stdout
    total = len(links)
    assert "http://sy.test/coffee" in listed and listed.rstrip().endswith(f"of {total} link(s)")


def test_init_without_demo_links(siyu):
    siyu("init", "--no-demo")
    assert siyu("links", "list").stdout.strip() == "0 of 0 link(s)"


def test_commands_before_init_say_what_to_do(siyu):
    result = siyu("links", "list", code=1)
    assert result.stderr.strip() == "error: no workspace yet: run `siyu init` or `siyu serve`"


# --- links -----------------------------------------------------------------------------------------------


def test_create_a_link_with_every_kind_of_option(siyu, api_key):
    created = json.loads(
        siyu(
            "links", "create", "https://shop.example/spring?from=poster",
            "--slug", "spring", "--title", "春季上新", "--tag", "promo,2026", "--tag", "poster",
            "--anti-block", "wechat,qq", "--allow", "mobile", "--block", "weibo",
            "--utm-source", "poster", "--utm-campaign", "spring",
            "--max-clicks", "100", "--expires", "2030-01-01T08:00:00+08:00", "--redirect-status", "301",
            "--rules", '[{"when": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"}]',
            "--no-forward-query", "--password", "open-sesame", "--json",
        ).stdout
    )  # fmt: skip
    assert created["short_url"] == "http://sy.test/spring"
    assert created["destination_url"] == "https://shop.example/spring?from=poster"
    assert created["title"] == "春季上新"
    assert created["tags"] == sorted(["promo", "2026", "poster"])
    assert created["anti_block_platforms"] == ["wechat", "qq"]
    assert created["allowed_platforms"] == ["mobile"]
    assert created["blocked_platforms"] == ["weibo"]
    assert created["utm"] == {"source": "poster", "campaign": "spring"}
    assert (created["max_clicks"], created["redirect_status"], created["forward_query"]) == (100, 301, False)
    assert created["expires_at"] == "2030-01-01T00:00:00+00:00"
    assert created["rules"] == [{"when": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"}]
    assert created["has_password"] is True and "open-sesame" not in json.dumps(created)

    shown = link_json(siyu, "spring")
    assert {k: v for k, v in shown.items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }
    assert link_json(siyu, str(created["id"]))["slug"] == "spring"

    human = siyu("links", "show", "spring").stdout
    assert human.startswith("http://sy.test/spring  →  https://shop.example/spring?from=poster\n")
    assert "  anti_block_platforms: ['wechat', 'qq']" in human
    assert "  has_password: True" in human


def test_list_search_archive_and_show(siyu, api_key):
    siyu("links", "create", "https://shop.example/a", "--slug", "alpha", "--title", "Alpha sale", "--tag", "sale")
    siyu("links", "create", "https://shop.example/b", "--slug", "beta", "--tag", "sale")

    listing = siyu("links", "list").stdout.splitlines()
    assert listing[-1] == "4 of 4 link(s)"
    assert "http://sy.test/beta" in listing[0]  # newest first
    found = json.loads(siyu("links", "list", "--tag", "sale", "--json").stdout)
    assert found["total"] == 2 and [x["slug"] for x in found["links"]] == ["beta", "alpha"]
    assert json.loads(siyu("links", "list", "--search", "ALPHA", "--json").stdout)["total"] == 1
    assert (
        json.loads(siyu("links", "list", "--limit", "1", "--offset", "1", "--json").stdout)["links"][0]["slug"]
        == "alpha"
    )

    assert siyu("links", "archive", "alpha").stdout.strip() == "archived alpha"
    assert "alpha" not in siyu("links", "list").stdout
    archived = json.loads(siyu("links", "list", "--archived", "--json").stdout)
    assert [x["slug"] for x in archived["links"]] == ["alpha"]
    assert link_json(siyu, "alpha")["archived"] is True  # kept, not deleted
    assert "  archived: True" in siyu("links", "show", "alpha").stdout


def test_an_all_digit_custom_slug_can_be_shown_by_slug(siyu, api_key):
    siyu("links", "create", "https://shop.example/2024", "--slug", "2024")
    assert link_json(siyu, "2024")["destination_url"] == "https://shop.example/2024"
    assert link_json(siyu, "1")["slug"] == "coffee"  # ids still work


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        (
            ["links", "create", "javascript:alert(1)"],
            ["destination_url: only http and https URLs are allowed (scheme: javascript)"],
        ),
        (
            ["links", "create", "http://sy.test/coffee"],
            ["destination_url: points at one of our own short-link domains (redirect loop)"],
        ),
        (
            ["links", "create", "ftp://x", "--slug", "a/b", "--redirect-status", "200", "--max-clicks", "0"],
            [
                "destination_url: only http and https URLs are allowed (scheme: ftp)",
                "redirect_status: must be one of 301, 302, 307, 308",
                "max_clicks: must be a whole number of at least 1",
                "slug: may only contain letters, digits, '_' and '-'",
            ],
        ),
        (["links", "create", "https://e.com", "--slug", "admin"], ["slug: 'admin' is reserved"]),
        (["links", "create", "https://e.com", "--slug", "coffee"], ["slug: 'coffee' is already used on sy.test"]),
        (
            ["links", "create", "https://e.com", "--expires", "next week"],
            ["expires_at: not an ISO 8601 date-time (e.g. 2026-12-31T23:59:00+08:00)"],
        ),
        (
            ["links", "create", "https://e.com", "--allow", "myspace"],
            ["allowed_platforms[0]: unknown platform 'myspace'"],
        ),
        (
            ["links", "create", "https://e.com", "--anti-block", "mobile"],
            ["anti_block_platforms[0]: unknown platform 'mobile'"],
        ),
        (["links", "create", "https://e.com", "--rules", "not json"], ["rules: not valid JSON (Expecting value)"]),
        (
            [
                "links",
                "create",
                "https://e.com",
                "--rules",
                '[{"when": {"os": ["symbian"]}, "url": "https://a.example"}]',
            ],
            ["rules[0].when.os: unknown value(s) symbian"],
        ),
        (
            ["links", "create", "https://e.com", "--domain", "elsewhere.example"],
            ["domain: 'elsewhere.example' is not a domain of this workspace"],
        ),
        (["links", "create", "https://e.com", "--workspace", "nope"], ["workspace 'nope' not found"]),
        (["links", "show", "nope"], ["link 'nope' not found"]),
        (["links", "show", "999"], ["link '999' not found"]),
        (["links", "archive", "nope"], ["link 'nope' not found"]),
        (["links", "list", "--limit", "0"], ["limit: must be between 1 and 1000"]),
    ],
)
def test_bad_input_is_one_error_line_per_problem_and_exit_status_1(siyu, api_key, args, errors):
    result = siyu(*args, code=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(errors)
    for line, expected in zip(lines, errors, strict=True):
        assert line.startswith(f"error: {expected}")
    assert result.stdout == ""
    with common.database().session() as s:
        assert s.scalar(select(func.count()).select_from(ShortLink)) == 2  # nothing half-created


# --- QR codes --------------------------------------------------------------------------------------------


def test_qr_show_writes_a_png_that_scans_back_to_the_short_link(siyu, api_key, tmp_path):
    out = tmp_path / "coffee.png"
    result = siyu("qr", "show", "coffee", "--out", out, "--size", "300", "--dark", "#1a5e20")
    assert result.stdout.strip() == f"wrote {out} (http://sy.test/coffee/q)"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [c.text for c in qr.decode_image(out.read_bytes())] == ["http://sy.test/coffee/q"]

    svg = tmp_path / "coffee.svg"
    siyu("qr", "show", "1", "--out", svg)
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_qr_show_prints_terminal_art(siyu, api_key):
    lines = siyu("qr", "show", "coffee").stdout.splitlines()
    assert lines[-1] == "http://sy.test/coffee/q"
    art = lines[:-1]
    assert len(art) > 10 and len({len(line) for line in art if line}) == 1  # a square block of equal lines
    assert set("".join(art)) <= set("█▀▄ ")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--out", "code.gif"], "error: --out must end in .png or .svg"),
        (["--out", "code.png", "--dark", "#ffffff"], "error: dark: must be darker than light"),
        (["--out", "code.png", "--size", "5"], "error: size:"),
    ],
)
def test_qr_show_refuses_bad_options(siyu, api_key, tmp_path, args, error):
    args = [str(tmp_path / a) if a.startswith("code.") else a for a in args]
    assert siyu("qr", "show", "coffee", *args, code=1).stderr.startswith(error)
    assert not list(tmp_path.glob("code.*"))


def test_qr_decode_prints_codes_and_can_reissue_them_as_short_links(siyu, api_key, tmp_path):
    poster = tmp_path / "poster.png"
    poster.write_bytes(qr.render_png("https://shop.example/menu?table=7", qr.QrOptions(size=300)))

    assert siyu("qr", "decode", poster).stdout.strip() == "QRCode: https://shop.example/menu?table=7"
    with common.database().session() as s:
        assert s.scalar(select(func.count()).select_from(ShortLink)) == 2  # decoding alone creates nothing

    lines = siyu("qr", "decode", poster, "--create").stdout.strip().splitlines()
    assert lines[0] == "QRCode: https://shop.example/menu?table=7"
    short = re.fullmatch(r"  → (http://sy\.test/(\w+))", lines[1])
    assert short
    made = link_json(siyu, short.group(2))
    assert (made["destination_url"], made["title"]) == ("https://shop.example/menu?table=7", "QR: poster.png")


def test_qr_decode_errors(siyu, api_key, tmp_path):
    ours = tmp_path / "ours.png"
    siyu("qr", "show", "coffee", "--out", ours)
    result = siyu("qr", "decode", ours, "--create", code=1)  # our own short link cannot be shortened again
    assert result.stdout.strip() == "QRCode: http://sy.test/coffee/q"
    assert result.stderr.startswith("error: destination_url: points at one of our own short-link domains")

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert siyu("qr", "decode", not_an_image, code=1).stderr.startswith("error: ")


# --- keys and domains ------------------------------------------------------------------------------------


def test_api_keys_create_list_revoke(siyu, api_key):
    out = siyu("keys", "create", "ci bot", "--scope", "links:read", "--scope", "analytics:read").stdout
    secret, info = out.strip().splitlines()
    assert secret.startswith("sy_") and len(secret) > 30
    key_id = int(re.search(r"\(id (\d+), scopes: links:read, analytics:read; shown once\)", info).group(1))

    listing = siyu("keys", "list").stdout
    row = next(line for line in listing.splitlines() if line.split()[0] == str(key_id))
    assert f"{secret[:10]}…" in row and "ci bot" in row and "active" in row and secret not in listing

    with common.database().session() as s:
        assert workspaces.authenticate_api_key(s, secret).scopes == ["links:read", "analytics:read"]

    assert siyu("keys", "revoke", key_id).stdout.strip() == f"revoked key {key_id}"
    row = next(line for line in siyu("keys", "list").stdout.splitlines() if line.split()[0] == str(key_id))
    assert "revoked" in row
    with common.database().session() as s:
        assert workspaces.authenticate_api_key(s, secret) is None
        assert workspaces.authenticate_api_key(s, api_key) is not None  # the others still work


def test_api_key_errors(siyu, api_key):
    assert siyu("keys", "create", "x", "--scope", "root", code=1).stderr.startswith(
        "error: scopes: unknown scope(s) root; known: links:read"
    )
    assert siyu("keys", "revoke", "999", code=1).stderr.strip() == "error: api key not found"


def test_domains_add_and_list(siyu, api_key):
    assert siyu("domains", "add", "Go.Example.COM.").stdout.strip() == "added go.example.com"
    assert siyu("domains", "list").stdout.splitlines() == ["sy.test  (default)", "go.example.com"]
    assert siyu("domains", "add", "例子.中国", "--default").stdout.strip() == "added xn--fsqu00a.xn--fiqs8s (default)"
    assert siyu("domains", "list").stdout.splitlines() == [
        "sy.test",
        "go.example.com",
        "xn--fsqu00a.xn--fiqs8s  (default)",
    ]

    made = json.loads(siyu("links", "create", "https://shop.example/", "--domain", "go.example.com", "--json").stdout)
    assert made["short_url"].startswith("http://go.example.com/")
    fresh = json.loads(siyu("links", "create", "https://shop.example/x", "--json").stdout)
    assert fresh["domain"] == "xn--fsqu00a.xn--fiqs8s"  # the new default

    assert siyu("domains", "add", "GO.example.com", code=1).stderr.strip() == (
        "error: hostname: domain 'go.example.com' is already registered"
    )
    assert siyu("domains", "add", "bad host!", code=1).stderr.strip() == "error: hostname: not a valid host name"
    assert siyu("domains", "add", "localhost:99999", code=1).stderr.strip() == (
        "error: hostname: port must be a number between 1 and 65535"
    )


# --- stats -----------------------------------------------------------------------------------------------


def record_clicks(events_path, clicks: list[tuple[int, str, str, str]]) -> None:
    """Write clicks (link_id, slug, visitor_id, user_agent) the way the click writer does."""
    now = time.time()
    batch = [
        RawClick(
            now - 60 * i, link_id, 1, "sy.test", slug, vid, True, "192.0.2.10", ua, "GET", "",
            "link", "redirected", "", "https://example.com/", None,
            "wechat" if "MicroMessenger" in ua else "none", None,
        )
        for i, (link_id, slug, vid, ua) in enumerate(clicks)
    ]  # fmt: skip
    store = DuckDBEventStore(events_path)
    try:
        store.append_clicks(enrich(batch, lambda ws: ("none", b"")))
    finally:
        store.close()


def test_stats_before_any_click_is_all_zero(siyu, api_key):
    assert siyu("stats").stdout.splitlines()[0] == "clicks: 0  unique visitors: 0  bots: 0"


def test_stats_for_the_workspace_and_one_link_and_csv_export(siyu, api_key, tmp_path):
    coffee, other = link_json(siyu, "coffee")["id"], link_json(siyu, "wx-only")["id"]
    record_clicks(
        tmp_path / "events.duckdb",
        [
            (coffee, "coffee", "alice", WECHAT_IPHONE),
            (coffee, "coffee", "alice", WECHAT_IPHONE),
            (coffee, "coffee", "bob", DESKTOP_CHROME),
            (coffee, "coffee", "crawler", GOOGLEBOT),
            (other, "wx-only", "carol", WECHAT_IPHONE),
        ],
    )

    summary = siyu("stats").stdout.splitlines()
    assert summary[0] == "clicks: 4  unique visitors: 3  bots: 1"
    assert "platform: wechat 3, none 1" in summary

    one = json.loads(siyu("stats", "coffee", "--json").stdout)
    assert (one["clicks"], one["unique_visitors"], one["bot_clicks"]) == (3, 2, 1)
    assert one["breakdowns"]["platform"] == [
        {"value": "wechat", "clicks": 2, "unique_visitors": 1},
        {"value": "none", "clicks": 1, "unique_visitors": 1},
    ]
    assert sum(p["clicks"] for p in one["timeseries"]) == 3
    assert json.loads(siyu("stats", str(coffee), "--include-bots", "--json").stdout)["clicks"] == 4
    assert json.loads(siyu("stats", "--since", "2000-01-01", "--until", "2000-02-01", "--json").stdout)["clicks"] == 0

    out = tmp_path / "clicks.csv"
    assert siyu("stats", "--csv", out).stdout.strip() == f"wrote {out}"
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 4  # bots excluded, like the summary
    assert sorted(r["slug"] for r in rows) == ["coffee", "coffee", "coffee", "wx-only"]
    assert {r["visitor_id"] for r in rows} == {"alice", "bob", "carol"}
    assert all(r["ip"] == "" for r in rows)  # ip_mode 'none' was applied when the clicks were written


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--since", "yesterday"], "error: since: not an ISO 8601 date"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "error: since: must be before 'until'"),
        (["--bucket", "year"], "error: bucket: must be one of hour, day, week, month"),
        (["no-such-link"], "error: link 'no-such-link' not found"),
    ],
)
def test_stats_errors(siyu, api_key, args, error):
    assert siyu("stats", *args, code=1).stderr.startswith(error)
