"""Subject rights (PIPL): export everything kept about a person, erase a person everywhere, audit both.

Data gets in the way it does in production — Segment calls on the tracking API, clicks on personal short
links, the stitcher resolving them to persons, traits and consent following — and every test reads what is
left in SQL and in the DuckDB event store afterwards. An erasure must remove the person's events, clicks,
event links, traits, consent records and identifiers, leave everyone else alone, and make sure the same
phone number arriving again does not bring the person back.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from conftest import make_settings
from sqlalchemy import func, select
from typer.testing import CliRunner

from siyu import security
from siyu.cli import common
from siyu.cli.main import app as cli
from siyu.consent import service as consent
from siyu.consent.models import ConsentRecord
from siyu.errors import NotFound
from siyu.events.ingest import Sender
from siyu.events.store import EventFilter
from siyu.identity import service as ids
from siyu.privacy import requests
from siyu.privacy.models import PrivacyAudit
from siyu.profiles.service import traits_of
from siyu.runtime import Runtime
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import User, Workspace

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LI = {"member": "M1001", "phone": "13912345678", "name": "李雷", "email": "li.lei@example.com"}
HAN = {"member": "M2002", "phone": "13698765432", "name": "韩梅梅", "email": "han@example.com"}


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def first_workspace(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(Workspace.id).order_by(Workspace.id))


def basic(rt: Runtime, ws: int) -> dict[str, str]:
    with rt.db.session() as s:
        key = sources.create_source(s, ws, f"官网-{len(sources.list_sources(s, ws))}", "website").write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def calls(who: dict[str, str]) -> list[dict]:
    """What a brand's website sends about one member: identify (with consent), a track and a page."""
    return [
        {
            "type": "identify",
            "userId": who["member"],
            "traits": {"phone": who["phone"], "name": who["name"], "email": who["email"], "level": "gold"},
            "context": {"consent": {"categoryPreferences": {"marketing": True, "personalization": False}}},
        },
        {"type": "track", "userId": who["member"], "event": "Order Completed", "properties": {"revenue": 199}},
        {"type": "page", "userId": who["member"], "name": "会员中心"},
    ]


def personal_link(client, auth, who: dict[str, str]) -> str:
    slug = f"coupon-{who['member'].lower()}"
    made = client.post(
        "/api/v1/links",
        headers=auth,
        json={"destination_url": "https://example.com/coupon", "slug": slug, "person_ref": who["member"]},
    )
    assert made.status_code == 201, made.text
    return slug


def person_of(rt: Runtime, ws: int, who: dict[str, str]) -> int | None:
    with rt.db.session() as s:
        return ids.lookup(s, ws, "member_id", who["member"])


@dataclass
class Two:
    ws: int
    li: int
    han: int
    key: dict[str, str]


@pytest.fixture
def two(client, runtime, auth) -> Two:
    """Li Lei and Han Meimei: each identified with traits and consent, a track, a page, and a personal-link click."""
    ws = first_workspace(runtime)
    key = basic(runtime, ws)
    for who in (LI, HAN):
        assert client.post("/v1/batch", headers=key, json={"batch": calls(who)}).status_code == 200
        assert client.get(f"/{personal_link(client, auth, who)}").status_code in (301, 302)
    runtime.stitch_now()
    li, han = person_of(runtime, ws, LI), person_of(runtime, ws, HAN)
    assert li and han and li != han
    return Two(ws, li, han, key)


def rows_of(rt: Runtime, ws: int) -> tuple[list[dict], list[tuple]]:
    """(events, clicks) of a workspace as the store holds them."""
    rt.stitch_now()
    events = rt.store.list_events(EventFilter(ws), limit=10_000)
    clicks = rt.store.query("SELECT slug, person_ref FROM clicks WHERE workspace_id = ?", [ws])
    return events, clicks


def event_links(rt: Runtime, ws: int, super_id: int) -> int:
    return rt.store.query("SELECT count(*) FROM event_persons WHERE workspace_id = ? AND super_id = ?", [ws, super_id])[
        0
    ][0]


# --- export -------------------------------------------------------------------------------------------------


def test_an_export_holds_everything_kept_about_the_person_and_nothing_about_anyone_else(client, runtime, auth, two):
    response = client.post(f"/api/v1/privacy/persons/{two.li}/export", headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()

    assert data["format"] == "siyu.person-export/1" and data["super_id"] == two.li
    assert {(i["type"], i["value"]) for i in data["identifiers"]} >= {
        ("member_id", "M1001"),
        ("phone", "+8613912345678"),
        ("email", "li.lei@example.com"),
    }
    assert data["traits"]["name"] == "李雷" and data["traits"]["level"] == "gold"
    consents = {c["purpose"]: c["status"] for c in data["consents"]}
    assert consents == {"basic": None, "personalization": "denied", "marketing": "granted", "data_sharing": None}
    assert {(r["purpose"], r["status"]) for r in data["consent_history"]} == {
        ("marketing", "granted"),
        ("personalization", "denied"),
    }
    assert sorted(e["type"] for e in data["events"]) == ["identify", "page", "track"]
    assert {e["user_id"] for e in data["events"]} == {"M1001"}
    assert [(c["slug"], c["person_ref"]) for c in data["clicks"]] == [("coupon-m1001", "M1001")]
    assert data["merge_log"] == []
    text = json.dumps(data, ensure_ascii=False)
    assert all(v not in text for v in HAN.values())

    assert data["audit"]["action"] == "export" and data["audit"]["super_id"] == two.li
    assert data["audit"]["counts"] == {"identifiers": 3, "traits": 4, "consent_records": 2, "events": 3, "clicks": 1}
    audit = client.get("/api/v1/privacy/audit", headers=auth).json()["audit"]
    assert [(a["action"], a["super_id"], a["actor"]) for a in audit] == [("export", two.li, "key:first key")]


def test_an_export_of_a_merged_person_includes_both_halves_and_the_merge(client, runtime, auth, two):
    # Li's phone turns up on a mini-program identify under a device id: one event links the two.
    device = {"type": "identify", "anonymousId": "dev-77", "traits": {"device_id": "dev-77", "city": "杭州"}}
    link = {"type": "identify", "anonymousId": "dev-77", "traits": {"device_id": "dev-77", "phone": LI["phone"]}}
    assert client.post("/v1/identify", headers=two.key, json=device).status_code == 200
    runtime.stitch_now()
    assert client.post("/v1/identify", headers=two.key, json=link).status_code == 200
    runtime.stitch_now()

    data = client.post(f"/api/v1/privacy/persons/{two.li}/export", headers=auth).json()
    assert data["super_id"] == two.li and len(data["merged_ids"]) == 1
    assert ("device_id", "dev-77") in {(i["type"], i["value"]) for i in data["identifiers"]}
    assert data["traits"]["city"] == "杭州"
    assert len(data["events"]) == 5
    assert [(m["action"], m["survivor_id"]) for m in data["merge_log"]] == [("merge", two.li)]


# --- erasure ------------------------------------------------------------------------------------------------


def test_erasure_removes_the_person_everywhere_and_leaves_everyone_else_alone(client, runtime, auth, two):
    events_before, clicks_before = rows_of(runtime, two.ws)
    assert len(events_before) == 6 and len(clicks_before) == 2

    response = client.post(f"/api/v1/privacy/persons/{two.li}/erase", headers=auth)
    assert response.status_code == 200, response.text
    entry = response.json()
    assert entry["action"] == "erase" and entry["super_id"] == two.li and entry["actor"] == "key:first key"
    assert entry["counts"] == {
        "persons": 1,
        "traits": 4,
        "consent_records": 2,
        "identifiers": 3,
        "events": 3,
        "clicks": 1,
        "event_links": 4,
    }

    events, clicks = rows_of(runtime, two.ws)
    assert {e["user_id"] for e in events} == {"M2002"} and len(events) == 3
    assert clicks == [("coupon-m2002", "M2002")]
    assert event_links(runtime, two.ws, two.li) == 0 and event_links(runtime, two.ws, two.han) == 4
    with runtime.db.session() as s:
        for read in (traits_of, consent.current_consents, ids.identifiers_of):
            with pytest.raises(NotFound):
                read(s, two.ws, two.li)
        assert ids.lookup(s, two.ws, "phone", LI["phone"]) is None
        assert s.scalar(select(func.count()).select_from(ConsentRecord).where(ConsentRecord.super_id == two.li)) == 0
        # Han Meimei is untouched.
        assert traits_of(s, two.ws, two.han)["name"] == "韩梅梅"
        assert consent.has_consent(s, two.ws, two.han, "marketing")
        assert ids.lookup(s, two.ws, "phone", HAN["phone"]) == two.han

    # The audit log says who erased whom and how much, and nothing personal.
    audit = client.get(f"/api/v1/privacy/audit?super_id={two.li}&action=erase", headers=auth).json()["audit"]
    assert [a["id"] for a in audit] == [entry["id"]]
    with runtime.db.session() as s:
        stored = json.dumps([(a.action, a.super_id, a.actor, a.counts) for a in s.scalars(select(PrivacyAudit))])
    assert all(v not in stored for v in LI.values())


def test_the_same_phone_arriving_after_an_erasure_does_not_bring_the_person_back(client, runtime, auth, two):
    assert client.post(f"/api/v1/privacy/persons/{two.li}/erase", headers=auth).status_code == 200

    again = calls(LI)
    again[0]["traits"]["email"] = "li.new@example.com"  # one identifier the erased person never had
    assert client.post("/v1/batch", headers=two.key, json={"batch": again}).status_code == 200
    runtime.stitch_now()

    with runtime.db.session() as s:
        assert ids.lookup(s, two.ws, "phone", LI["phone"]) is None
        assert ids.lookup(s, two.ws, "member_id", LI["member"]) is None
        newcomer = ids.lookup(s, two.ws, "email", "li.new@example.com")
        assert newcomer is not None and newcomer != two.li
        assert [i["type"] for i in ids.identifiers_of(s, two.ws, newcomer)] == ["email"]
    data = client.post(f"/api/v1/privacy/persons/{newcomer}/export", headers=auth).json()
    assert len(data["events"]) == 1  # only the new identify carries the new e-mail; nothing of the old history
    # Consent starts again from what the new event said, not from the erased history.
    assert sorted((r["purpose"], r["status"], r["event_id"]) for r in data["consent_history"]) == [
        ("marketing", "granted", data["events"][0]["message_id"]),
        ("personalization", "denied", data["events"][0]["message_id"]),
    ]
    assert data["traits"]["email"] == "li.new@example.com"
    assert all(c["slug"] != "coupon-m1001" for c in data["clicks"])
    # The erased super ID is gone for good.
    assert client.post(f"/api/v1/privacy/persons/{two.li}/export", headers=auth).status_code == 404
    assert client.post(f"/api/v1/privacy/persons/{two.li}/erase", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/v1/privacy/persons/999999/export", 404),
        ("post", "/api/v1/privacy/persons/999999/erase", 404),
        ("post", "/api/v1/privacy/persons/0/erase", 422),
        ("post", "/api/v1/privacy/persons/abc/export", 422),
        ("get", "/api/v1/privacy/audit?action=delete", 422),
        ("get", "/api/v1/privacy/audit?limit=0", 422),
        ("get", "/api/v1/privacy/persons/1/erase", 405),
    ],
)
def test_bad_privacy_requests_get_a_clear_error(client, auth, method, path, status):
    response = getattr(client, method)(path, headers=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_privacy_endpoints_need_the_privacy_scope_and_stay_in_the_keys_workspace(client, runtime, two):
    other = workspaces.create_workspace
    with runtime.db.session() as s:
        links_key = workspaces.create_api_key(s, two.ws, "links", ["links:read", "consent:write"]).secret
        foreign_ws = other(s, "Other brand", slug="other-brand").id
        foreign_key = workspaces.create_api_key(s, foreign_ws, "foreign", ["privacy:write"]).secret
    denied = client.post(f"/api/v1/privacy/persons/{two.li}/erase", headers={"Authorization": f"Bearer {links_key}"})
    assert denied.status_code == 403 and "privacy:write" in denied.json()["error"]["message"]
    foreign = {"Authorization": f"Bearer {foreign_key}"}
    assert client.post(f"/api/v1/privacy/persons/{two.li}/erase", headers=foreign).status_code == 404
    assert client.get("/api/v1/privacy/audit", headers=foreign).json()["audit"] == []
    assert person_of(runtime, two.ws, LI) == two.li  # still there


def test_erasure_runs_the_same_on_postgresql(tmp_path, pg_url):
    rt = Runtime.create(make_settings(tmp_path, pg_url))
    try:
        with rt.db.session() as s:
            ws = workspaces.create_workspace(s, "PG brand", slug="pg").id
            source = sources.create_source(s, ws, "server", "server").source.id
        for who in (LI, HAN):
            result = rt.ingestor.ingest_batch(Sender(ws, source), {"batch": calls(who)})
            assert result.accepted == 3 and not result.refused
        rt.stitch_now()
        li, han = person_of(rt, ws, LI), person_of(rt, ws, HAN)
        exported = requests.export(rt, ws, li, "cli")
        assert exported["audit"]["counts"]["events"] == 3 and exported["traits"]["name"] == "李雷"
        entry = requests.erase(rt, ws, li, "cli")
        assert (entry["counts"]["events"], entry["counts"]["identifiers"], entry["counts"]["consent_records"]) == (
            3,
            3,
            2,
        )
        assert {e["user_id"] for e in rt.store.list_events(EventFilter(ws), limit=100)} == {"M2002"}
        with rt.db.session() as s:
            assert ids.lookup(s, ws, "phone", LI["phone"]) is None
            assert consent.has_consent(s, ws, han, "marketing")
            assert [a.action for a in s.scalars(select(PrivacyAudit).order_by(PrivacyAudit.id))] == ["export", "erase"]
    finally:
        rt.close()


# --- console ------------------------------------------------------------------------------------------------


def sign_in(client, email: str, password: str) -> str:
    client.cookies.clear()
    response = client.post("/console/login", data={"email": email, "password": password, "next": "/console/privacy"})
    assert response.status_code == 303, response.text
    return CSRF.search(client.get("/console/privacy").text).group(1)


@pytest.fixture
def owner(client, first_run) -> str:
    return sign_in(client, first_run.email, first_run.password)


def test_the_privacy_page_configures_purposes_and_shows_what_sdks_got_wrong(client, runtime, owner, two):
    page = client.get("/console/privacy")
    assert page.status_code == 200
    assert 'href="/console/privacy" class="on"' in page.text  # the nav entry
    assert all(f'data-purpose="{c}"' in page.text for c in ("basic", "personalization", "marketing", "data_sharing"))

    bad = client.post("/console/privacy/purposes", data={"csrf": owner, "code": "Member SMS", "name": ""})
    assert bad.status_code == 422
    assert 'data-error="code"' in bad.text and 'value="Member SMS"' in bad.text
    made = client.post("/console/privacy/purposes", data={"csrf": owner, "code": "member_sms", "name": "会员短信"})
    assert made.status_code == 303 and made.headers["location"].startswith("/console/privacy?done=purpose_added")
    taken = client.post("/console/privacy/purposes", data={"csrf": owner, "code": "member_sms", "name": "again"})
    assert taken.status_code == 422 and 'data-error="code"' in taken.text

    renamed = client.post(
        "/console/privacy/purposes/marketing",
        data={"csrf": owner, "name": "营销推送", "name_en": "Marketing push", "description": "短信与公众号"},
    )
    assert renamed.status_code == 303
    off = client.post("/console/privacy/purposes/data_sharing", data={"csrf": owner, "enabled": "0"})
    assert off.status_code == 303
    assert client.post("/console/privacy/purposes/nope", data={"csrf": owner, "name": "x"}).status_code == 404
    empty = client.post("/console/privacy/purposes/marketing", data={"csrf": owner, "name": " "})
    assert empty.status_code == 422 and 'data-error="marketing_name"' in empty.text

    # An SDK sends a code nobody configured: it shows up here instead of becoming a purpose.
    banner = {"consent": {"categoryPreferences": {"newsletter": True}}}
    client.post("/v1/track", headers=two.key, json={"userId": "M1001", "event": "X", "context": banner})
    runtime.stitch_now()
    page = client.get("/console/privacy")
    assert 'value="营销推送"' in page.text and 'data-purpose="member_sms"' in page.text
    assert 'data-purpose="data_sharing" class="muted"' in page.text
    assert 'data-issue="newsletter"' in page.text


def test_looking_up_exporting_and_erasing_a_person_from_the_console(client, runtime, owner, first_run, two):
    found = client.get(f"/console/privacy?person=phone:{LI['phone']}")
    assert f'data-super-id="{two.li}"' in found.text and "+8613912345678" in found.text
    assert 'data-purpose="marketing" data-status="granted"' in found.text
    nobody = client.get("/console/privacy?person=phone:13500000001")
    assert 'data-error="person"' in nobody.text
    garbled = client.get("/console/privacy?person=not a reference")
    assert 'data-error="person"' in garbled.text

    download = client.post("/console/privacy/export", data={"csrf": owner, "person": str(two.li)})
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="person-{two.li}.json"'
    assert json.loads(download.content)["traits"]["name"] == "李雷"

    confirm = client.post("/console/privacy/erase", data={"csrf": owner, "person": f"member_id:{LI['member']}"})
    assert confirm.status_code == 200
    assert 'data-count="events"' in confirm.text and 'name="confirm"' in confirm.text
    assert re.search(r'data-count="events"><th>[^<]+</th><td class="num">3</td>', confirm.text)
    mismatch = client.post(
        "/console/privacy/erase/confirm", data={"csrf": owner, "super_id": str(two.li), "confirm": str(two.han)}
    )
    assert mismatch.status_code == 422 and 'data-error="confirm"' in mismatch.text
    assert person_of(runtime, two.ws, LI) == two.li  # nothing happened yet

    done = client.post(
        "/console/privacy/erase/confirm", data={"csrf": owner, "super_id": str(two.li), "confirm": str(two.li)}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/console/privacy?done=erased&id={two.li}#audit"
    assert person_of(runtime, two.ws, LI) is None
    page = client.get(done.headers["location"])
    assert 'data-action="erase"' in page.text and 'data-action="export"' in page.text
    assert "Admin" in page.text and first_run.email not in page.text.split('id="audit"')[1]
    with runtime.db.session() as s:
        admin = s.scalar(select(User.id).where(User.email == first_run.email))
        actors = {a.actor for a in s.scalars(select(PrivacyAudit))}
    assert actors == {f"user:{admin}"}
    again = client.post(
        "/console/privacy/erase/confirm", data={"csrf": owner, "super_id": str(two.li), "confirm": str(two.li)}
    )
    assert again.status_code == 404


def test_only_owners_and_admins_export_or_erase(client, runtime, first_run, two):
    with runtime.db.session() as s:
        for email, role in (("ops@example.com", "operator"), ("bi@example.com", "analyst")):
            user = workspaces.create_user(s, email, "password-123", role)
            workspaces.add_member(s, two.ws, user.id, role)
    for email in ("ops@example.com", "bi@example.com"):
        csrf = sign_in(client, email, "password-123")
        page = client.get(f"/console/privacy?person={two.li}")
        assert page.status_code == 200 and 'action="/console/privacy/erase"' not in page.text
        assert 'id="add-purpose"' not in page.text
        for path, data in (
            ("/console/privacy/erase", {"person": str(two.li)}),
            ("/console/privacy/erase/confirm", {"super_id": str(two.li), "confirm": str(two.li)}),
            ("/console/privacy/export", {"person": str(two.li)}),
            ("/console/privacy/purposes", {"code": "x_y", "name": "x"}),
        ):
            assert client.post(path, data={"csrf": csrf, **data}).status_code == 403
    assert person_of(runtime, two.ws, LI) == two.li
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(PrivacyAudit)) == 0


# --- CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture
def siyu(tmp_path, monkeypatch):
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    runner = CliRunner()

    def run(*args, code: int = 0, input: str | None = None):
        result = runner.invoke(cli, [str(a) for a in args], input=input)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    yield run
    if common._db is not None:
        common._db.dispose()


def seed(settings) -> tuple[int, int]:
    """Two people sent through the event pipeline of a Runtime that is then closed (as a stopped server)."""
    rt = Runtime.create(settings)
    try:
        with rt.db.session() as s:
            ws = s.scalar(select(Workspace.id).order_by(Workspace.id))
            source = sources.create_source(s, ws, "crm", "crm").source.id
        for who in (LI, HAN):
            rt.ingestor.ingest_batch(Sender(ws, source), {"batch": calls(who)})
        rt.stitch_now()
        return person_of(rt, ws, LI), person_of(rt, ws, HAN)
    finally:
        rt.close()


def test_the_cli_exports_erases_and_lists_the_audit_log(siyu, tmp_path):
    siyu("init", "--no-demo")
    li, han = seed(common.settings())

    out = tmp_path / "li.json"
    exported = siyu("privacy", "export", f"phone:{LI['phone']}", "--out", out)
    assert f"person {li}:" in exported.stdout and "events 3" in exported.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["traits"]["name"] == "李雷"

    kept = siyu("privacy", "erase", str(li), input="n\n", code=1)
    assert "events 3" in kept.output and "nothing erased" in kept.output
    erased = siyu("privacy", "erase", str(li), "--yes")
    assert f"erased person {li}:" in erased.stdout and "identifiers 3" in erased.stdout

    audit = json.loads(siyu("privacy", "audit", "--json").stdout)["audit"]
    assert [(a["action"], a["super_id"], a["actor"]) for a in audit] == [("erase", li, "cli"), ("export", li, "cli")]
    assert "2 entries" in siyu("privacy", "audit").stdout

    assert "error: person" in siyu("privacy", "export", "who?", code=1).output
    assert "not found" in siyu("privacy", "erase", str(li), "--yes", code=1).output
    assert "not found" in siyu("privacy", "export", f"phone:{LI['phone']}", code=1).output
    assert f'"super_id": {han}' in siyu("privacy", "export", f"member_id:{HAN['member']}").stdout


def test_the_cli_says_to_use_the_api_while_the_server_holds_the_event_store(siyu, tmp_path):
    from siyu.events.duckdb_store import DuckDBEventStore

    siyu("init", "--no-demo")
    li, _ = seed(common.settings())
    held = DuckDBEventStore(common.settings().events_path)  # this process stands in for the running server
    try:
        env = {**os.environ, "SIYU_DATA_DIR": str(tmp_path), "SIYU_BASE_URL": "http://sy.test"}
        done = subprocess.run(
            [sys.executable, "-m", "siyu.cli.main", "privacy", "erase", str(li), "--yes"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        held.close()
    assert done.returncode == 1, done.stderr
    assert "in use by the running server" in done.stderr and "/api/v1/privacy/persons" in done.stderr
    assert "Traceback" not in done.stderr
