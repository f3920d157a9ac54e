"""Links: what a link may be made of (validation), and what one visit of it does (the pure decision).

Validation goes through `create_link`/`update_link`, the path every delivery layer uses; each bad input must be
refused with an error that names the offending field. Decisions are checked on `decide()` directly, with
`CompiledLink` snapshots built exactly as the redirect cache builds them (`CompiledLink.from_model`).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.errors import InvalidInput
from siyu.links import service
from siyu.links.decide import (
    EXPIRED,
    GUIDANCE,
    NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD,
    REDIRECTED,
    CompiledLink,
    Visitor,
    decide,
)
from siyu.links.rules import validate_platform_list, validate_rules, validate_variants
from siyu.links.urls import build_destination
from siyu.workspaces import service as workspaces

BASE_HOST = "sy.test"  # the installation's own host (SIYU_BASE_URL)
OWN_DOMAIN = "s.example"  # a short-link domain registered in the workspace


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('links') / 'siyu.db'}")
    database.migrate()
    with database.session() as s:
        ws = workspaces.create_workspace(s, "Shop")
        workspaces.add_domain(s, ws.id, OWN_DOMAIN)
    yield database
    database.dispose()


@pytest.fixture
def session(db):
    """A session whose writes are thrown away: validation tests never leave anything behind."""
    s = Session(db.engine)
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def ctx() -> service.Context:
    return service.Context(workspace_id=1, actor="tester", base_host=BASE_HOST)


def refused(session, ctx, fields: dict, *, creating: bool = True) -> dict[str, str]:
    """Create (or update) with `fields`; return {field: reason} of the InvalidInput it must raise."""
    with pytest.raises(InvalidInput) as exc:
        if creating:
            service.create_link(session, ctx, fields)
        else:
            link = service.create_link(session, ctx, {"destination_url": "https://example.com/"})
            service.update_link(session, ctx, link.id, fields)
    return {e.field: e.reason for e in exc.value.errors}


def with_url(**fields) -> dict:
    return {"destination_url": "https://example.com/", **fields}


# --- destination URLs ------------------------------------------------------------------------------------

BAD_URLS = [
    pytest.param("javascript:alert(1)", "only http and https URLs are allowed (scheme: javascript)", id="javascript"),
    pytest.param("data:text/html,<script>alert(1)</script>", "(scheme: data)", id="data"),
    pytest.param("file:///etc/passwd", "(scheme: file)", id="file"),
    pytest.param("ftp://x", "(scheme: ftp)", id="ftp"),
    pytest.param("example.com/page", "(scheme: none)", id="no-scheme"),
    pytest.param("http://", "has no host", id="no-host"),
    pytest.param("https://exa mple.com", "spaces or control characters", id="space-in-host"),
    pytest.param("https://example.com/\x00", "spaces or control characters", id="nul"),
    pytest.param("http://[::1", "malformed URL", id="broken-ipv6"),
    pytest.param("http://example.com:99999/", "malformed URL", id="bad-port"),
    pytest.param("http://256.1.1.1/", "malformed IP address", id="bad-ipv4"),
    pytest.param("https://-shop-.com/", "host name is not valid", id="bad-label"),
    pytest.param("https://sh_op.com/", "host name is not valid", id="underscore-host"),
    pytest.param("https://example.com/" + "a" * 5000, "longer than 4096 characters", id="5000-chars"),
    pytest.param("", "a URL is required", id="empty"),
    pytest.param("   ", "a URL is required", id="blank"),
    pytest.param(None, "a URL is required", id="null"),
    pytest.param(42, "a URL is required", id="number"),
    pytest.param(f"https://{BASE_HOST}/coffee", "redirect loop", id="loop-to-base-host"),
    pytest.param(f"https://{OWN_DOMAIN}/coffee", "redirect loop", id="loop-to-own-domain"),
    pytest.param("HTTP://S.Example./x", "redirect loop", id="loop-case-and-dot"),
    pytest.param(f"https://user:pw@{OWN_DOMAIN}:8443/x", "redirect loop", id="loop-userinfo-port"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_bad_destination_urls_are_refused_naming_the_field(session, ctx, url, reason):
    errors = refused(session, ctx, {"destination_url": url})
    assert list(errors) == ["destination_url"]
    assert reason in errors["destination_url"]


def test_a_link_without_a_destination_is_refused(session, ctx):
    assert refused(session, ctx, {"title": "no url"}) == {"destination_url": "a URL is required"}


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://例子.测试/路径?q=1#top", "https://xn--fsqu00a.xn--0zwm56d/路径?q=1#top"),
        ("HTTPS://Example.COM./Path?Q=A", "https://example.com/Path?Q=A"),
        ("  https://example.com/trim  ", "https://example.com/trim"),
        ("http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("http://10.0.0.1/intranet", "http://10.0.0.1/intranet"),
    ],
)
def test_good_destination_urls_are_stored_normalised(session, ctx, url, stored):
    assert service.create_link(session, ctx, {"destination_url": url}).destination_url == stored


def test_the_same_rules_apply_to_fallback_rule_and_variant_urls(session, ctx):
    errors = refused(
        session,
        ctx,
        with_url(
            fallback_url="javascript:alert(1)",
            rules=[{"when": {"os": ["ios"]}, "url": f"https://{OWN_DOMAIN}/x"}],
            variants=[{"url": "ftp://a", "weight": 1}, {"url": "https://b.example", "weight": 1}],
        ),
    )
    assert set(errors) == {"fallback_url", "rules[0].url", "variants[0].url"}
    assert "redirect loop" in errors["rules[0].url"]


# --- slugs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("a", "must be 2 to 64 characters"),
        ("x" * 65, "must be 2 to 64 characters"),
        ("a/b", "may only contain letters, digits, '_' and '-'"),
        ("a.b", "may only contain letters"),
        ("with space", "may only contain letters"),
        ("促销", "may only contain letters"),
        ("café", "may only contain letters"),
        ("ａｂ", "may only contain letters"),  # full-width letters look like 'ab' but are not
        ("api", "'api' is reserved"),
        ("static", "'static' is reserved"),
        ("admin", "'admin' is reserved"),
        ("Admin", "'Admin' is reserved"),
        (123, "must be text"),
        (["ab"], "must be text"),
    ],
)
def test_bad_custom_slugs_are_refused(session, ctx, slug, reason):
    errors = refused(session, ctx, with_url(slug=slug))
    assert list(errors) == ["slug"]
    assert reason in errors["slug"]


def test_good_custom_slugs_are_kept_as_typed(session, ctx):
    assert service.create_link(session, ctx, with_url(slug="  Spring_Sale-2026 ")).slug == "Spring_Sale-2026"
    assert service.create_link(session, ctx, with_url(slug="x" * 64)).slug == "x" * 64
    assert service.create_link(session, ctx, with_url(slug=None)).slug  # no slug: a random one


def test_slug_and_domain_cannot_change_after_creation(session, ctx):
    errors = refused(session, ctx, {"slug": "new", "domain": OWN_DOMAIN}, creating=False)
    assert errors == {"slug": "cannot be changed after creation", "domain": "cannot be changed after creation"}


@pytest.mark.parametrize(
    ("domain", "reason"),
    [("other.example", "is not a domain of this workspace"), ("bad host", "not a valid host name"), (7, "host name")],
)
def test_links_can_only_live_on_the_workspaces_own_domains(session, ctx, domain, reason):
    errors = refused(session, ctx, with_url(domain=domain))
    assert list(errors) == ["domain"] and reason in errors["domain"]


# --- every other field -----------------------------------------------------------------------------------

BAD_FIELDS = [
    # redirect_status: only real permanent/temporary redirects, as integers
    ({"redirect_status": 200}, "redirect_status", "must be one of 301, 302, 307, 308"),
    ({"redirect_status": 303}, "redirect_status", "must be one of 301, 302, 307, 308"),
    ({"redirect_status": "301"}, "redirect_status", "must be one of"),
    ({"redirect_status": True}, "redirect_status", "must be one of"),
    # max_clicks
    ({"max_clicks": 0}, "max_clicks", "whole number of at least 1"),
    ({"max_clicks": -1}, "max_clicks", "whole number of at least 1"),
    ({"max_clicks": "3"}, "max_clicks", "whole number of at least 1"),
    ({"max_clicks": 2.5}, "max_clicks", "whole number of at least 1"),
    ({"max_clicks": True}, "max_clicks", "whole number of at least 1"),
    # expires_at
    ({"expires_at": "garbage"}, "expires_at", "not an ISO 8601 date-time"),
    ({"expires_at": "2026-13-45T00:00:00"}, "expires_at", "not an ISO 8601 date-time"),
    ({"expires_at": 1767225600}, "expires_at", "must be an ISO 8601 date-time string"),
    # UTM
    ({"utm": {"foo": "x"}}, "utm.foo", "unknown UTM field"),
    ({"utm": {"utm_source": "x" * 201}}, "utm.utm_source", "at most 200 characters"),
    ({"utm": {"campaign": 5}}, "utm.campaign", "must be text"),
    ({"utm": "source=x"}, "utm", "must be an object"),
    # rules
    (
        {"rules": [{"when": {"weather": ["rain"]}, "url": "https://a.example"}]},
        "rules[0].when.weather",
        "unknown condition",
    ),
    (
        {"rules": [{"when": {"os": ["symbian"]}, "url": "https://a.example"}]},
        "rules[0].when.os",
        "unknown value(s) symbian",
    ),
    (
        {"rules": [{"when": {"device": ["watch"]}, "url": "https://a.example"}]},
        "rules[0].when.device",
        "unknown value(s) watch",
    ),
    (
        {"rules": [{"when": {"platform": ["myspace"]}, "url": "https://a.example"}]},
        "rules[0].when.platform[0]",
        "unknown platform",
    ),
    (
        {"rules": [{"when": {"country": ["China"]}, "url": "https://a.example"}]},
        "rules[0].when.country",
        "two-letter ISO",
    ),
    ({"rules": [{"when": {"os": []}, "url": "https://a.example"}]}, "rules[0].when.os", "non-empty list of strings"),
    ({"rules": [{"when": {}, "url": "https://a.example"}]}, "rules[0].when", "must be a non-empty object"),
    ({"rules": [{"url": "https://a.example"}]}, "rules[0].when", "must be a non-empty object"),
    ({"rules": [{"when": {"os": ["ios"]}, "url": "javascript:x"}]}, "rules[0].url", "only http and https"),
    ({"rules": [{"when": {"os": ["ios"]}}]}, "rules[0].url", "a URL is required"),
    ({"rules": {"when": {"os": ["ios"]}, "url": "https://a.example"}}, "rules", "must be a list"),
    ({"rules": ["https://a.example"]}, "rules[0]", "must be an object"),
    ({"rules": [{"when": {"os": ["ios"]}, "url": "https://a.example"}] * 51}, "rules", "at most 50 rules"),
    # A/B variants
    ({"variants": [{"url": "https://a.example", "weight": 1}]}, "variants", "2 to 10 destinations"),
    ({"variants": [{"url": "https://a.example", "weight": 1}] * 11}, "variants", "2 to 10 destinations"),
    (
        {"variants": [{"url": "https://a.example", "weight": 1}, {"url": "https://b.example", "weight": 0}]},
        "variants[1].weight",
        "whole number from 1 to 1000",
    ),
    (
        {"variants": [{"url": "https://a.example", "weight": "x"}, {"url": "https://b.example"}]},
        "variants[0].weight",
        "whole number from 1 to 1000",
    ),
    (
        {"variants": [{"url": "https://a.example", "weight": 1001}, {"url": "https://b.example"}]},
        "variants[0].weight",
        "whole number from 1 to 1000",
    ),
    ({"variants": ["https://a.example", {"url": "https://b.example"}]}, "variants[0]", "must be an object"),
    ({"variants": "https://a.example"}, "variants", "must be a list"),
    # platform lists
    ({"allowed_platforms": ["myspace"]}, "allowed_platforms[0]", "unknown platform 'myspace'"),
    ({"allowed_platforms": ["wechat", 5]}, "allowed_platforms[1]", "unknown platform 5"),
    ({"blocked_platforms": "qq"}, "blocked_platforms", "must be a list of platform codes"),
    ({"anti_block_platforms": ["mobile"]}, "anti_block_platforms[0]", "unknown platform 'mobile'"),  # 防红 needs apps
    ({"anti_block_platforms": ["none"]}, "anti_block_platforms[0]", "unknown platform"),
    # tags
    ({"tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20 tags"),
    ({"tags": ["x" * 65]}, "tags[0]", "1 to 64 characters"),
    ({"tags": ["ok", "  "]}, "tags[1]", "1 to 64 characters"),
    ({"tags": 5}, "tags", "must be a list of tag names"),
    # text, flags, secrets
    ({"title": "x" * 501}, "title", "at most 500 characters"),
    ({"title": 5}, "title", "must be text"),
    ({"notes": "x" * 5001}, "notes", "at most 5000 characters"),
    ({"forward_query": "yes"}, "forward_query", "must be true or false"),
    ({"archived": 1}, "archived", "must be true or false"),
    ({"password": "abc"}, "password", "4 to 200 characters"),
    ({"person_ref": "x" * 201}, "person_ref", "at most 200 characters"),
    # fields that do not exist
    ({"colour": "red"}, "colour", "unknown field"),
    ({"click_count": 0}, "click_count", "unknown field"),
]


@pytest.mark.parametrize(
    ("fields", "field", "reason"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (_, f, _r) in enumerate(BAD_FIELDS)]
)
def test_every_bad_field_is_refused_by_name(session, ctx, fields, field, reason):
    errors = refused(session, ctx, with_url(**fields))
    assert list(errors) == [field]
    assert reason in errors[field]
    # updates validate exactly the same way
    assert refused(session, ctx, fields, creating=False) == errors


def test_all_problems_are_reported_at_once(session, ctx):
    with pytest.raises(InvalidInput) as exc:
        service.create_link(
            session,
            ctx,
            {
                "destination_url": "ftp://x",
                "slug": "a",
                "redirect_status": 200,
                "max_clicks": 0,
                "expires_at": "soon",
                "allowed_platforms": ["myspace"],
                "colour": "red",
            },
        )
    fields = [e.field for e in exc.value.errors]
    assert sorted(fields) == sorted(
        ["colour", "destination_url", "redirect_status", "expires_at", "max_clicks", "allowed_platforms[0]", "slug"]
    )
    message = str(exc.value)  # the one-line form the CLI and logs show
    assert "destination_url: only http and https URLs are allowed" in message
    assert "slug: must be 2 to 64 characters" in message
    assert "colour: unknown field" in message


def test_every_problem_inside_rules_and_variants_is_reported_too(session, ctx):
    errors = refused(
        session,
        ctx,
        with_url(
            rules=[
                {"when": {"os": ["symbian"]}, "url": "ftp://a"},  # both parts of one rule are wrong
                {"when": {"os": ["ios"]}, "url": "https://fine.example"},
                "not a rule",
            ],
            variants=[{"url": "javascript:x", "weight": 0}, {"url": "https://b.example", "weight": "x"}],
        ),
    )
    assert sorted(errors) == sorted(
        [
            "rules[0].url",
            "rules[0].when.os",
            "rules[2]",
            "variants[0].url",
            "variants[0].weight",
            "variants[1].weight",
        ]
    )


def test_valid_inputs_are_normalised(session, ctx):
    link = service.create_link(
        session,
        ctx,
        {
            "destination_url": "https://example.com/",
            "title": "  Spring  ",
            "utm": {"utm_source": "poster", "medium": "", "campaign": None},
            "expires_at": "2030-01-01T08:00:00+08:00",
            "redirect_status": 301,
            "max_clicks": 5,
            "rules": [
                {
                    "when": {"os": "iOS", "country": ["cn"], "province": ["广东省", "内蒙古自治区"]},
                    "url": "https://a.example",
                }
            ],
            "allowed_platforms": ["WeChat", "wechat", "Mobile", "in_app"],
            "anti_block_platforms": ["QQ"],
            "tags": " 咖啡 , demo,咖啡",
        },
    )
    assert link.title == "Spring"
    assert link.utm == {"source": "poster"}
    assert link.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert link.rules == [
        {"when": {"os": ["ios"], "country": ["CN"], "province": ["广东", "内蒙古"]}, "url": "https://a.example"}
    ]
    assert link.allowed_platforms == ["wechat", "mobile", "in_app"]
    assert link.anti_block_platforms == ["qq"]
    assert sorted(t.name for t in link.tags) == ["demo", "咖啡"]
    assert (link.redirect_status, link.max_clicks) == (301, 5)
    # clearing optional fields with null/empty is allowed
    service.update_link(session, ctx, link.id, {"expires_at": None, "max_clicks": "", "tags": [], "utm": None})
    assert (link.expires_at, link.max_clicks, link.tags, link.utm) == (None, None, [], {})


# --- the decision --------------------------------------------------------------------------------------

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEST = "https://example.com/landing"


def compiled(**fields) -> CompiledLink:
    """A link as stored (validated JSON shapes), compiled the way the redirect cache compiles it."""
    row = dict(
        id=7,
        workspace_id=1,
        hostname=OWN_DOMAIN,
        slug="promo",
        destination_url=DEST,
        redirect_status=302,
        forward_query=True,
        utm={},
        expires_at=None,
        max_clicks=None,
        fallback_url=None,
        password_hash=None,
        rules=[],
        variants=[],
        anti_block_platforms=[],
        allowed_platforms=[],
        blocked_platforms=[],
        archived=False,
        person_ref=None,
        title="",
    )
    row.update(fields)
    if row["rules"]:
        row["rules"] = validate_rules(row["rules"], set())
    if row["variants"]:
        row["variants"] = validate_variants(row["variants"], set())
    for name in ("anti_block_platforms", "allowed_platforms", "blocked_platforms"):
        row[name] = validate_platform_list(row[name], name, allow_groups=name != "anti_block_platforms")
    return CompiledLink.from_model(SimpleNamespace(**row))


# Visitors as the redirect classifies them: (platform, os, device).
IPHONE_SAFARI = ("none", "ios", "mobile")
ANDROID_CHROME = ("none", "android", "mobile")
IPAD_SAFARI = ("none", "ios", "tablet")
DESKTOP_CHROME = ("none", "windows", "desktop")
WECHAT_IPHONE = ("wechat", "ios", "mobile")
WECHAT_ANDROID = ("wechat", "android", "mobile")
WECHAT_DESKTOP = ("wechat", "windows", "desktop")
WECOM_ANDROID = ("wecom", "android", "mobile")
QQ_ANDROID = ("qq", "android", "mobile")
WEIBO_IPHONE = ("weibo", "ios", "mobile")


def visitor(kind=IPHONE_SAFARI, vid: str = "visitor-1", geo=None) -> Visitor:
    platform, os_name, device = kind
    return Visitor(platform, os_name, device, vid, geo)


def outcome(link: CompiledLink, kind=IPHONE_SAFARI, **kw) -> str:
    return decide(link, visitor(kind), kw.pop("now", NOW), **kw).outcome


def test_a_plain_link_redirects_with_its_status():
    decision = decide(compiled(redirect_status=301), visitor(), NOW)
    assert (decision.outcome, decision.url, decision.status, decision.variant) == (REDIRECTED, DEST, 301, None)


def test_an_archived_link_is_not_found_whatever_else_it_says():
    assert outcome(compiled(archived=True, fallback_url="https://e.com/fb")) == NOT_FOUND


def test_expiry_by_date_with_and_without_a_fallback():
    link = compiled(expires_at=NOW)
    assert outcome(link, now=NOW - timedelta(seconds=1)) == REDIRECTED
    assert decide(link, visitor(), NOW).outcome == EXPIRED  # expires *at* that instant
    assert decide(link, visitor(), NOW).url is None  # → the "expired" page
    with_fallback = compiled(expires_at=NOW, fallback_url="https://example.com/next-time")
    late = decide(with_fallback, visitor(), NOW + timedelta(days=1))
    assert (late.outcome, late.url, late.status) == (EXPIRED, "https://example.com/next-time", 302)


def test_expiry_by_click_count_with_and_without_a_fallback():
    link = compiled(max_clicks=3)
    assert [outcome(link, clicks_so_far=n) for n in (0, 2, 3, 50)] == [REDIRECTED, REDIRECTED, EXPIRED, EXPIRED]
    with_fallback = compiled(max_clicks=1, fallback_url="https://example.com/sold-out")
    assert decide(with_fallback, visitor(), NOW, clicks_so_far=1).url == "https://example.com/sold-out"
    assert decide(with_fallback, visitor(), NOW, clicks_so_far=0).url == DEST


@pytest.mark.parametrize(
    ("allowed", "blocked", "welcome", "turned_away"),
    [
        pytest.param(
            ["wechat"],
            [],
            [WECHAT_IPHONE, WECHAT_DESKTOP],
            [IPHONE_SAFARI, WECOM_ANDROID, QQ_ANDROID],
            id="only-wechat",
        ),
        pytest.param(
            ["mobile"],
            [],
            [IPHONE_SAFARI, WECHAT_ANDROID, QQ_ANDROID],
            [DESKTOP_CHROME, IPAD_SAFARI, WECHAT_DESKTOP],
            id="only-mobile",
        ),
        pytest.param([], ["qq"], [IPHONE_SAFARI, WECHAT_IPHONE, DESKTOP_CHROME], [QQ_ANDROID], id="all-but-qq"),
        pytest.param(
            ["in_app"], [], [WECHAT_IPHONE, QQ_ANDROID, WEIBO_IPHONE], [IPHONE_SAFARI, DESKTOP_CHROME], id="only-in-app"
        ),
        pytest.param(["browser"], [], [IPHONE_SAFARI, DESKTOP_CHROME], [WECHAT_IPHONE, QQ_ANDROID], id="only-browser"),
        pytest.param(
            ["ios"], ["wechat"], [IPHONE_SAFARI, IPAD_SAFARI], [ANDROID_CHROME, WECHAT_IPHONE], id="ios-not-wechat"
        ),
        pytest.param(["wechat", "wecom"], [], [WECHAT_ANDROID, WECOM_ANDROID], [QQ_ANDROID], id="wechat-or-wecom"),
    ],
)
def test_allowed_and_blocked_platforms(allowed, blocked, welcome, turned_away):
    link = compiled(allowed_platforms=allowed, blocked_platforms=blocked)
    assert {kind: outcome(link, kind) for kind in welcome} == dict.fromkeys(welcome, REDIRECTED)
    assert {kind: outcome(link, kind) for kind in turned_away} == dict.fromkeys(turned_away, NOT_ALLOWED)


def test_anti_block_guidance_only_for_the_configured_platforms():
    link = compiled(anti_block_platforms=["wechat", "qq"], utm={"source": "poster"})
    guidance = decide(link, visitor(WECHAT_IPHONE), NOW, query="ref=qr")
    # the guidance page shows (and copies) the real destination, with UTM and the forwarded query
    assert (guidance.outcome, guidance.url) == (GUIDANCE, DEST + "?utm_source=poster&ref=qr")
    assert outcome(link, QQ_ANDROID) == GUIDANCE
    assert outcome(link, WEIBO_IPHONE) == REDIRECTED
    assert outcome(link, WECOM_ANDROID) == REDIRECTED
    assert outcome(link, IPHONE_SAFARI) == REDIRECTED
    assert outcome(compiled(), WECHAT_IPHONE) == REDIRECTED  # no 防红 configured: WeChat just redirects


def test_the_checks_run_in_order_expiry_access_guidance_password():
    everything = dict(
        max_clicks=1, allowed_platforms=["mobile"], anti_block_platforms=["wechat"], password_hash="$argon2id$..."
    )
    link = compiled(**everything)
    assert outcome(link, WECHAT_IPHONE, clicks_so_far=1) == EXPIRED
    assert outcome(link, DESKTOP_CHROME) == NOT_ALLOWED
    assert outcome(link, WECHAT_IPHONE) == GUIDANCE  # open in the browser first, then type the password
    assert outcome(link, IPHONE_SAFARI) == PASSWORD
    assert outcome(link, IPHONE_SAFARI, password_ok=True) == REDIRECTED


def test_the_password_gate():
    link = compiled(password_hash="$argon2id$v=19$...")
    gate = decide(link, visitor(), NOW)
    assert (gate.outcome, gate.url) == (PASSWORD, None)  # the destination is not revealed before the password
    assert decide(link, visitor(), NOW, password_ok=True).url == DEST


def test_rules_are_tried_in_order_and_the_first_match_wins():
    link = compiled(
        rules=[
            {"when": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"},
            {"when": {"device": ["mobile"]}, "url": "https://m.example.com/"},
            {"when": {"os": ["android"], "platform": ["wechat"]}, "url": "https://never.example/"},  # shadowed
            {"when": {"platform": ["wechat"], "device": ["desktop"]}, "url": "https://pc-wechat.example/"},
        ]
    )

    def target(kind) -> str:
        return decide(link, visitor(kind), NOW).url

    assert target(IPHONE_SAFARI) == "https://apps.apple.com/app/id1"
    assert target(IPAD_SAFARI) == "https://apps.apple.com/app/id1"
    assert target(ANDROID_CHROME) == "https://m.example.com/"
    assert target(WECHAT_ANDROID) == "https://m.example.com/"
    assert target(WECHAT_DESKTOP) == "https://pc-wechat.example/"  # every condition of a rule must hold
    assert target(DESKTOP_CHROME) == DEST


def test_country_and_province_rules_use_geo_lazily():
    link = compiled(
        rules=[
            {"when": {"province": ["广东"]}, "url": "https://gd.example/"},
            {"when": {"province": ["北京市"]}, "url": "https://bj.example/"},
            {"when": {"country": ["cn"]}, "url": "https://cn.example/"},
        ]
    )
    calls = []

    def at(country: str, province: str):
        def geo():
            calls.append(1)
            return country, province

        return geo

    def target(country: str, province: str) -> str:
        return decide(link, visitor(geo=at(country, province)), NOW).url

    assert target("CN", "广东省") == "https://gd.example/"  # '广东' in the rule, '广东省' from the IP database
    assert target("CN", "广东") == "https://gd.example/"
    assert target("CN", "北京") == "https://bj.example/"
    assert target("CN", "浙江省") == "https://cn.example/"
    assert target("US", "California") == DEST
    assert target("", "") == DEST  # unknown location: no geo rule matches
    assert len(calls) == 6  # one lookup per visit, however many geo rules

    never = compiled(rules=[{"when": {"os": ["ios"]}, "url": "https://a.example/"}])
    assert not never.needs_geo and link.needs_geo

    def explode():
        raise AssertionError("geo looked up for a link without geo rules")

    assert decide(never, visitor(geo=explode), NOW).outcome == REDIRECTED


def test_ab_variants_are_sticky_per_visitor_and_follow_the_weights():
    link = compiled(
        variants=[
            {"url": "https://example.com/a", "weight": 70},
            {"url": "https://example.com/b", "weight": 20},
            {"url": "https://example.com/c", "weight": 10},
        ]
    )
    first = decide(link, visitor(vid="alice"), NOW)
    assert first.url in {"https://example.com/a", "https://example.com/b", "https://example.com/c"}
    assert {decide(link, visitor(vid="alice"), NOW + timedelta(hours=h)).variant for h in range(20)} == {first.variant}

    counts = Counter(decide(link, visitor(vid=f"v{i}"), NOW).variant for i in range(10_000))
    assert set(counts) == {0, 1, 2}
    for index, share in enumerate((0.70, 0.20, 0.10)):
        assert abs(counts[index] / 10_000 - share) < 0.03, counts
    for index, url in enumerate(("https://example.com/a", "https://example.com/b", "https://example.com/c")):
        assert link.variants[index][0] == url

    # the smallest weights work too: 1:1 is an even split, and no variant is starved
    even = compiled(
        variants=[{"url": "https://example.com/a", "weight": 1}, {"url": "https://example.com/b", "weight": 1}]
    )
    halves = Counter(decide(even, visitor(vid=f"v{i}"), NOW).variant for i in range(2000))
    assert abs(halves[0] - halves[1]) < 200, halves

    # another link with the same variants splits the same visitors independently
    other = compiled(
        id=8, variants=[{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 50}]
    )
    same = sum(
        decide(other, visitor(vid=f"v{i}"), NOW).variant == decide(link, visitor(vid=f"v{i}"), NOW).variant
        for i in range(1000)
    )
    assert 300 < same < 700


def test_a_matching_rule_beats_the_ab_test():
    link = compiled(
        rules=[{"when": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"}],
        variants=[{"url": "https://example.com/a", "weight": 1}, {"url": "https://example.com/b", "weight": 1}],
    )
    ios = decide(link, visitor(IPHONE_SAFARI), NOW)
    assert (ios.url, ios.variant) == ("https://apps.apple.com/app/id1", None)
    assert decide(link, visitor(ANDROID_CHROME), NOW).variant in (0, 1)


# --- destination URL building ----------------------------------------------------------------------------


def test_utm_is_merged_into_the_destination_and_replaces_old_utm_values():
    url = build_destination(
        "https://example.com/p?from=poster&utm_source=old#top", {"source": "wechat", "campaign": "spring"}
    )
    assert url == "https://example.com/p?from=poster&utm_source=wechat&utm_campaign=spring#top"


def test_the_visitors_query_is_forwarded_only_when_enabled():
    assert build_destination("https://example.com/p?a=1", {}, "ref=qr&a=2") == "https://example.com/p?ref=qr&a=2"
    assert (
        build_destination("https://example.com/p?a=1", {}, "ref=qr", forward_query=False) == "https://example.com/p?a=1"
    )
    assert (
        build_destination("https://example.com/p", {"source": "poster"}, "ref=qr", forward_query=False)
        == "https://example.com/p?utm_source=poster"
    )


def test_a_destination_without_utm_or_query_is_left_byte_for_byte_alone():
    odd = "https://example.com/p?flag&q=a%20b;c#frag"
    assert build_destination(odd, {}, "") == odd
    assert build_destination(odd, {}, "x=1", forward_query=False) == odd


def test_decide_applies_utm_and_forwarding_from_the_link():
    on = compiled(utm={"source": "poster", "medium": "offline"})
    assert decide(on, visitor(), NOW, query="ref=qr").url == DEST + "?utm_source=poster&utm_medium=offline&ref=qr"
    off = compiled(utm={"source": "poster"}, forward_query=False)
    assert decide(off, visitor(), NOW, query="ref=qr").url == DEST + "?utm_source=poster"
