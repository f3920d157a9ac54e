"""Console QR tools and settings, driven through the full app like a browser: sign in, read the CSRF token from the
page, post forms, follow what the server says. Chinese is the default language, so messages are checked in zh-CN
unless a test switches to English."""

from __future__ import annotations

import base64
import html
import re
from datetime import timedelta
from io import BytesIO
from urllib.parse import urlsplit

import pytest
from alembic import command
from alembic.config import Config
from markupsafe import escape
from PIL import Image
from sqlalchemy import inspect, select

from siyu import qr
from siyu.db import Database, utcnow
from siyu.i18n import t
from siyu.links.models import ShortLink
from siyu.webhooks.models import Webhook
from siyu.workspaces import service as workspaces
from siyu.workspaces.invitations import Invitation
from siyu.workspaces.models import ApiKey, Domain, Membership, User, Workspace

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
INVITE = re.compile(r"http://sy\.test/console/invite/([A-Za-z0-9_-]+)")
XSS = "<script>alert(1)</script>"
UA = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"}


def esc(text: str) -> str:
    """Text as Jinja's autoescape writes it."""
    return str(escape(text))


def zh(key: str, **kw: object) -> str:
    """The text as it appears in the HTML (autoescaped)."""
    return esc(t(key, "zh-CN", **kw))


def sign_in(client, email: str, password: str) -> str:
    """Sign in (replacing any session) and return the CSRF token the settings page carries."""
    client.cookies.clear()
    response = client.post("/console/login", data={"email": email, "password": password, "next": "/console/settings"})
    assert response.status_code == 303, response.text
    page = client.get("/console/settings")
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)


def workspace_id(runtime) -> int:
    with runtime.db.session() as db:
        return db.scalar(select(Workspace.id).where(Workspace.slug == "default"))


def add_user(runtime, email: str, role: str, name: str = "", password: str = "password-123") -> int:
    with runtime.db.session() as db:
        user = workspaces.create_user(db, email, password, name)
        workspaces.add_member(db, workspace_id(runtime), user.id, role)
        return user.id


@pytest.fixture
def owner(client, first_run) -> str:
    return sign_in(client, first_run.email, first_run.password)


def png_upload(data: bytes, name: str = "code.png") -> dict:
    return {"image": (name, data, "image/png")}


def blank_png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (300, 200), "white").save(out, format="PNG")
    return out.getvalue()


# --- QR tools --------------------------------------------------------------------------------------------


def test_qr_page_offers_file_camera_and_drop_zone(client, owner):
    page = client.get("/console/qr")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'capture="environment"' in page.text
    assert 'id="qr-drop"' in page.text
    assert zh("qr.title") in page.text


def test_upload_decode_create_short_link_whose_qr_scans_back(client, owner, runtime):
    decoded = client.post(
        "/console/qr/decode", data={"csrf": owner}, files=png_upload(qr.render_png("https://example.com/x"))
    )
    assert decoded.status_code == 200
    assert re.search(r"<pre[^>]*data-qr-text>https://example.com/x</pre>", decoded.text)
    assert zh("qr.make_link") in decoded.text
    assert 'name="url" value="https://example.com/x"' in decoded.text

    created = client.post("/console/qr/create", data={"csrf": owner, "url": "https://example.com/x"})
    assert created.status_code == 303
    link_id = int(created.headers["location"].split("created=")[1])
    with runtime.db.session() as db:
        link = db.get(ShortLink, link_id)
        assert link.destination_url == "https://example.com/x"
        assert link.workspace_id == workspace_id(runtime)
        short = f"http://{link.hostname}/{link.slug}"

    page = client.get(created.headers["location"])
    assert page.status_code == 200
    assert short in page.text
    assert f'href="/console/links/{link_id}"' in page.text
    src = html.unescape(re.search(r'<img class="qr-img" src="([^"]+)"', page.text).group(1))
    if src.startswith("data:image/png;base64,"):
        png = base64.b64decode(src.split(",", 1)[1])
    else:
        assert src == f"/console/links/{link_id}/qr.png"
        image = client.get(src)
        assert image.status_code == 200
        png = image.content
    codes = qr.decode_image(png)
    assert [c.text for c in codes] == [short + "/q"]  # the short link's QR form, so scans are counted as QR

    scanned = client.get(urlsplit(codes[0].text).path, headers=UA)
    assert scanned.status_code in (301, 302, 307, 308)
    assert scanned.headers["location"].startswith("https://example.com/x")


def test_decoding_our_own_short_link_points_at_it_instead_of_offering_a_loop(client, owner, runtime):
    with runtime.db.session() as db:
        coffee = db.scalar(select(ShortLink).where(ShortLink.slug == "coffee"))
    image = qr.render_png(f"http://{coffee.hostname}/coffee/q")
    page = client.post("/console/qr/decode", data={"csrf": owner}, files=png_upload(image))
    assert page.status_code == 200
    assert f'href="/console/links/{coffee.id}"' in page.text
    assert zh("qr.make_link") not in page.text


def test_non_url_codes_are_shown_escaped_without_a_create_button(client, owner):
    payload = f"WIFI:S:{XSS};T:WPA;P:secret;;"
    page = client.post("/console/qr/decode", data={"csrf": owner}, files=png_upload(qr.render_png(payload)))
    assert page.status_code == 200
    assert XSS not in page.text
    assert esc(payload) in page.text
    assert zh("qr.not_url") in page.text
    assert zh("qr.make_link") not in page.text


@pytest.mark.parametrize(
    ("files", "key"),
    [
        (png_upload(blank_png()), "qr.error.no_code_found"),
        (png_upload(b"this is not an image at all", "x.png"), "qr.error.unsupported_format"),
        (png_upload(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50), "qr.error.corrupt"),
        (png_upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * qr.MAX_UPLOAD_BYTES, "huge.png"), "qr.error.too_large"),
        (None, "qr.error.no_file"),
    ],
    ids=["no-code", "garbage", "corrupt-png", "oversized", "no-file"],
)
def test_bad_uploads_get_a_clear_422(client, owner, files, key):
    response = client.post("/console/qr/decode", data={"csrf": owner}, files=files)
    assert response.status_code == 422
    assert zh(key, mb=qr.MAX_UPLOAD_BYTES // (1024 * 1024)) in response.text
    assert 'role="alert"' in response.text


def test_errors_follow_the_language_switch(client, owner):
    client.get("/console/lang/en?next=/console/qr")
    response = client.post("/console/qr/decode", data={"csrf": owner}, files=png_upload(blank_png()))
    assert response.status_code == 422
    assert esc(t("qr.error.no_code_found", "en")) in response.text
    assert '<html lang="en">' in response.text


def test_create_refuses_non_urls_and_our_own_domains(client, owner, runtime):
    with runtime.db.session() as db:
        count = len(db.scalars(select(ShortLink.id)).all())
        host = db.scalar(select(Domain.hostname))
    bad = client.post("/console/qr/create", data={"csrf": owner, "url": "javascript:alert(1)"})
    assert bad.status_code == 422
    assert zh("qr.error.not_url") in bad.text
    loop = client.post("/console/qr/create", data={"csrf": owner, "url": f"http://{host}/coffee"})
    assert loop.status_code == 422
    assert zh("qr.error.own_domain") in loop.text
    with runtime.db.session() as db:
        assert len(db.scalars(select(ShortLink.id)).all()) == count


# --- settings: domains, privacy, webhooks --------------------------------------------------------------------


def test_domains_add_validate_inline_and_set_default(client, owner, runtime):
    bad = client.post("/console/settings/domains", data={"csrf": owner, "hostname": "https://bad host/x"})
    assert bad.status_code == 422
    assert re.search(r'data-error="hostname">' + re.escape(zh("settings.domains.invalid")), bad.text)

    xss = client.post("/console/settings/domains", data={"csrf": owner, "hostname": f'"><{XSS}'})
    assert xss.status_code == 422
    assert XSS not in xss.text
    assert esc(f'"><{XSS}') in xss.text  # the entered value is echoed back, escaped

    ok = client.post("/console/settings/domains", data={"csrf": owner, "hostname": "Go.Example.COM"})
    assert ok.status_code == 303
    page = client.get(ok.headers["location"])
    assert "go.example.com" in page.text
    assert zh("settings.done.domain_added") in page.text

    taken = client.post("/console/settings/domains", data={"csrf": owner, "hostname": "go.example.com"})
    assert taken.status_code == 422
    assert zh("settings.domains.taken") in taken.text

    with runtime.db.session() as db:
        new = db.scalar(select(Domain).where(Domain.hostname == "go.example.com"))
        assert not new.is_default
    assert client.post(f"/console/settings/domains/{new.id}/default", data={"csrf": owner}).status_code == 303
    with runtime.db.session() as db:
        defaults = db.scalars(select(Domain.hostname).where(Domain.is_default)).all()
    assert defaults == ["go.example.com"]
    assert client.post("/console/settings/domains/999999/default", data={"csrf": owner}).status_code == 404


def test_privacy_mode_change_persists(client, owner, runtime):
    page = client.get("/console/settings")
    for mode in ("full", "truncated", "hashed", "none"):
        assert zh(f"settings.privacy.{mode}.help") in page.text
    response = client.post("/console/settings/privacy", data={"csrf": owner, "ip_mode": "none"})
    assert response.status_code == 303
    with runtime.db.session() as db:
        assert db.get(Workspace, workspace_id(runtime)).ip_mode == "none"
    assert re.search(r'value="none"\s+checked', client.get("/console/settings").text)
    bad = client.post("/console/settings/privacy", data={"csrf": owner, "ip_mode": "everything"})
    assert bad.status_code == 422
    with runtime.db.session() as db:
        assert db.get(Workspace, workspace_id(runtime)).ip_mode == "none"


def test_webhook_secret_is_shown_once_and_urls_are_escaped(client, owner, runtime):
    url = f"https://hooks.example.com/in?x={XSS}"
    created = client.post(
        "/console/settings/webhooks", data={"csrf": owner, "url": url, "events": ["link.created", "link.clicked"]}
    )
    assert created.status_code == 200
    with runtime.db.session() as db:
        hook = db.scalar(select(Webhook))
    assert hook.url == url and hook.events == ["link.created", "link.clicked"]
    assert created.text.count(hook.secret) >= 1
    assert zh("settings.once") in created.text
    assert XSS not in created.text

    later = client.get("/console/settings")
    assert hook.secret not in later.text
    assert esc(url) in later.text and XSS not in later.text

    off = client.post(f"/console/settings/webhooks/{hook.id}/deactivate", data={"csrf": owner})
    assert off.status_code == 303
    with runtime.db.session() as db:
        assert db.get(Webhook, hook.id).active is False

    missing = client.post("/console/settings/webhooks", data={"csrf": owner, "url": "ftp://x"})
    assert missing.status_code == 422
    assert zh("settings.webhooks.bad_url") in missing.text
    assert zh("settings.webhooks.bad_events") in missing.text


# --- settings: API keys ----------------------------------------------------------------------------------


def test_api_key_secret_once_then_prefix_authenticates_and_revokes(client, owner, runtime):
    none = client.post("/console/settings/keys", data={"csrf": owner, "name": "CI"})
    assert none.status_code == 422
    assert zh("settings.keys.bad_scopes") in none.text

    created = client.post("/console/settings/keys", data={"csrf": owner, "name": "CI", "scopes": ["links:read"]})
    assert created.status_code == 200
    secret = re.search(r"data-once>(sy_[A-Za-z0-9_-]+)<", created.text).group(1)
    with runtime.db.session() as db:
        key = db.scalar(select(ApiKey).where(ApiKey.name == "CI"))
    assert key.scopes == ["links:read"] and secret.startswith(key.prefix)

    later = client.get("/console/settings")
    assert secret not in later.text
    assert key.prefix in later.text

    api = client.get("/api/v1/links", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200 and api.json()["total"] >= 4
    assert (
        client.post(
            "/api/v1/links",
            headers={"Authorization": f"Bearer {secret}"},
            json={"destination_url": "https://example.com/k"},
        ).status_code
        == 403
    )

    revoked = client.post(f"/console/settings/keys/{key.id}/revoke", data={"csrf": owner})
    assert revoked.status_code == 303
    assert client.get("/api/v1/links", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert zh("settings.keys.revoked") in client.get("/console/settings").text


# --- settings: members and invitations --------------------------------------------------------------------


def test_invite_flow_end_to_end(client, owner, runtime, first_run):
    invited = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "New@Example.com", "role": "analyst"}
    )
    assert invited.status_code == 200
    token = INVITE.search(invited.text).group(1)
    with runtime.db.session() as db:
        inv = db.scalar(select(Invitation))
        assert inv.email == "new@example.com" and inv.role == "analyst"
        assert token not in inv.token_hash and len(inv.token_hash) == 64  # only a hash is stored
        assert timedelta(days=6) < inv.expires_at - utcnow() <= timedelta(days=7)
    assert token not in client.get("/console/settings").text  # shown once

    client.cookies.clear()  # the invitee has no session
    form = client.get(f"/console/invite/{token}")
    assert form.status_code == 200
    assert "new@example.com" in form.text and zh("role.analyst") in form.text
    form_token = FORM_TOKEN.search(form.text).group(1)
    mismatch = client.post(
        f"/console/invite/{token}",
        data={"form_token": form_token, "name": XSS, "password": "analyst-pass-1", "confirm": "nope"},
    )
    assert mismatch.status_code == 422
    assert zh("settings.accept.mismatch") in mismatch.text
    joined = client.post(
        f"/console/invite/{token}",
        data={"form_token": form_token, "name": XSS, "password": "analyst-pass-1", "confirm": "analyst-pass-1"},
    )
    assert joined.status_code == 303 and joined.headers["location"] == "/console/"
    assert client.get(f"/console/invite/{token}").status_code == 404  # one-time

    csrf = sign_in(client, "new@example.com", "analyst-pass-1")
    with runtime.db.session() as db:
        user = db.scalar(select(User).where(User.email == "new@example.com"))
        role = db.scalar(select(Membership.role).where(Membership.user_id == user.id))
    assert role == "analyst" and user.display_name == XSS
    settings_page = client.get("/console/settings")
    assert zh("settings.members.owner_only") in settings_page.text
    assert XSS not in settings_page.text and esc(XSS) in settings_page.text
    before = client.get("/console/qr")
    assert before.status_code == 200 and zh("qr.title") in before.text
    assert (
        client.post("/console/qr/create", data={"csrf": csrf, "url": "https://example.com/analyst"}).status_code == 403
    )
    with runtime.db.session() as db:
        assert db.scalar(select(ShortLink).where(ShortLink.destination_url == "https://example.com/analyst")) is None

    sign_in(client, first_run.email, first_run.password)
    members = client.get("/console/settings").text
    assert esc(XSS) in members and XSS not in members


def test_invite_for_an_existing_account_signs_in_and_joins(client, owner, runtime):
    with runtime.db.session() as db:
        workspaces.create_user(db, "old@example.com", "old-password-1", "Old hand")
    invited = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "old@example.com", "role": "operator"}
    )
    token = INVITE.search(invited.text).group(1)
    client.cookies.clear()
    form = client.get(f"/console/invite/{token}")
    assert zh("settings.accept.existing") in form.text and 'name="name"' not in form.text
    form_token = FORM_TOKEN.search(form.text).group(1)
    wrong = client.post(f"/console/invite/{token}", data={"form_token": form_token, "password": "nope-nope"})
    assert wrong.status_code == 401
    assert zh("settings.accept.wrong_password") in wrong.text
    ok = client.post(f"/console/invite/{token}", data={"form_token": form_token, "password": "old-password-1"})
    assert ok.status_code == 303
    assert client.get("/console/qr").status_code == 200  # the new session works
    with runtime.db.session() as db:
        user_id = db.scalar(select(User.id).where(User.email == "old@example.com"))
        assert db.scalar(select(Membership.role).where(Membership.user_id == user_id)) == "operator"


def test_invite_acceptance_needs_its_own_form_token_and_a_live_invitation(client, owner, runtime):
    invited = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "x@example.com", "role": "admin"}
    )
    token = INVITE.search(invited.text).group(1)
    bad_email = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "not-an-email", "role": "admin"}
    )
    assert bad_email.status_code == 422 and zh("settings.invite.bad_email") in bad_email.text
    member = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "admin@siyu.local", "role": "admin"}
    )
    assert member.status_code == 422 and zh("settings.invite.already_member") in member.text

    client.cookies.clear()
    forged = client.post(
        f"/console/invite/{token}", data={"form_token": "x", "name": "X", "password": "12345678", "confirm": "12345678"}
    )
    assert forged.status_code == 403
    with runtime.db.session() as db:
        assert db.scalar(select(User).where(User.email == "x@example.com")) is None
        db.scalar(select(Invitation)).expires_at = utcnow() - timedelta(seconds=1)
    expired = client.get(f"/console/invite/{token}")
    assert expired.status_code == 404
    assert zh("settings.accept.invalid") in expired.text
    assert client.get("/console/invite/made-up-token").status_code == 404


def test_revoked_invitation_link_stops_working(client, owner, runtime):
    invited = client.post(
        "/console/settings/invitations", data={"csrf": owner, "email": "r@example.com", "role": "analyst"}
    )
    token = INVITE.search(invited.text).group(1)
    with runtime.db.session() as db:
        inv_id = db.scalar(select(Invitation.id))
    assert client.post(f"/console/settings/invitations/{inv_id}/revoke", data={"csrf": owner}).status_code == 303
    client.cookies.clear()
    assert client.get(f"/console/invite/{token}").status_code == 404


def test_last_owner_cannot_be_demoted_or_removed(client, owner, runtime, first_run):
    with runtime.db.session() as db:
        me = db.scalar(select(User.id).where(User.email == first_run.email))
    demote = client.post(f"/console/settings/members/{me}/role", data={"csrf": owner, "role": "admin"})
    assert demote.status_code == 422
    assert zh("settings.members.last_owner") in demote.text
    remove = client.post(f"/console/settings/members/{me}/remove", data={"csrf": owner})
    assert remove.status_code == 422
    with runtime.db.session() as db:
        assert db.scalar(select(Membership.role).where(Membership.user_id == me)) == "owner"

    other = add_user(runtime, "second@example.com", "operator")
    assert (
        client.post(f"/console/settings/members/{other}/role", data={"csrf": owner, "role": "owner"}).status_code == 303
    )
    assert client.post(f"/console/settings/members/{me}/role", data={"csrf": owner, "role": "admin"}).status_code == 303
    with runtime.db.session() as db:
        roles = dict(db.execute(select(Membership.user_id, Membership.role)).all())
    assert roles[me] == "admin" and roles[other] == "owner"
    # now an admin: member management is refused
    assert client.post(f"/console/settings/members/{other}/remove", data={"csrf": owner}).status_code == 403


def test_owner_removes_a_member(client, owner, runtime):
    other = add_user(runtime, "leaver@example.com", "operator", name="Leaver")
    page = client.get("/console/settings").text
    assert f'action="/console/settings/members/{other}/remove"' in page
    assert "data-confirm=" in page
    assert client.post(f"/console/settings/members/{other}/remove", data={"csrf": owner}).status_code == 303
    with runtime.db.session() as db:
        assert db.scalar(select(Membership).where(Membership.user_id == other)) is None


# --- permissions and CSRF --------------------------------------------------------------------------------


SETTINGS_POSTS = [
    ("/console/settings/domains", {"hostname": "evil.example.com"}),
    ("/console/settings/domains/1/default", {}),
    ("/console/settings/privacy", {"ip_mode": "full"}),
    ("/console/settings/webhooks", {"url": "https://evil.example.com/", "events": ["link.created"]}),
    ("/console/settings/webhooks/1/deactivate", {}),
    ("/console/settings/members/1/role", {"role": "analyst"}),
    ("/console/settings/members/1/remove", {}),
    ("/console/settings/invitations", {"email": "evil@example.com", "role": "owner"}),
    ("/console/settings/keys", {"name": "evil", "scopes": ["links:write"]}),
    ("/console/settings/keys/1/revoke", {}),
]


@pytest.mark.parametrize("role", ["operator", "analyst"])
def test_operators_and_analysts_get_403_on_settings_posts(client, runtime, role):
    add_user(runtime, f"{role}@example.com", role)
    csrf = sign_in(client, f"{role}@example.com", "password-123")
    page = client.get("/console/settings").text
    assert zh("settings.keys.owner_only") in page and zh("settings.not_allowed") in page
    assert 'action="/console/settings/privacy"' not in page
    for path, data in SETTINGS_POSTS:
        response = client.post(path, data={"csrf": csrf, **data})
        assert response.status_code == 403, path
        assert zh("error.forbidden") in response.text
    with runtime.db.session() as db:
        assert db.get(Workspace, workspace_id(runtime)).ip_mode == "truncated"
        assert db.scalar(select(Domain).where(Domain.hostname == "evil.example.com")) is None
        assert db.scalar(select(Invitation)) is None
        assert db.scalar(select(ApiKey).where(ApiKey.name == "evil")) is None


def test_admin_may_change_settings_but_not_members_or_keys(client, runtime):
    add_user(runtime, "admin2@example.com", "admin")
    csrf = sign_in(client, "admin2@example.com", "password-123")
    assert client.post("/console/settings/privacy", data={"csrf": csrf, "ip_mode": "hashed"}).status_code == 303
    assert client.post("/console/settings/keys", data={"csrf": csrf, "scopes": ["links:read"]}).status_code == 403
    invite = client.post("/console/settings/invitations", data={"csrf": csrf, "email": "a@b.cn", "role": "owner"})
    assert invite.status_code == 403


def test_missing_or_wrong_csrf_is_refused(client, owner, runtime):
    assert client.post("/console/settings/privacy", data={"ip_mode": "full"}).status_code == 403
    wrong = client.post("/console/settings/privacy", data={"csrf": "forged", "ip_mode": "full"})
    assert wrong.status_code == 403 and zh("error.csrf") in wrong.text
    no_token = client.post("/console/qr/decode", files=png_upload(qr.render_png("https://example.com/x")))
    assert no_token.status_code == 403
    with runtime.db.session() as db:
        assert db.get(Workspace, workspace_id(runtime)).ip_mode == "truncated"
    header = client.post("/console/settings/privacy", data={"ip_mode": "full"}, headers={"x-csrf-token": owner})
    assert header.status_code == 303  # fetch() callers may send the token as a header


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/console/settings")
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
    assert client.get("/console/qr").status_code == 303


# --- migration -------------------------------------------------------------------------------------------


def test_invitations_migration_upgrades_and_downgrades(database_url):
    db = Database(database_url)
    try:
        db.migrate()
        assert "invitations" in inspect(db.engine).get_table_names()
        cfg = Config()
        cfg.set_main_option("script_location", "siyu:migrations")
        cfg.attributes["connection_engine"] = db.engine
        command.downgrade(cfg, "0001")
        assert "invitations" not in inspect(db.engine).get_table_names()
        db.migrate()
        assert "invitations" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_qr_image_falls_back_to_an_inline_png_without_the_detail_route():
    from types import SimpleNamespace

    from siyu.web.qr_tools import _qr_src

    request = SimpleNamespace(app=SimpleNamespace(routes=[]))
    src = _qr_src(request, 7, "http://sy.test/abc/q")  # type: ignore[arg-type]
    assert src.startswith("data:image/png;base64,")
    assert [c.text for c in qr.decode_image(base64.b64decode(src.split(",", 1)[1]))] == ["http://sy.test/abc/q"]
