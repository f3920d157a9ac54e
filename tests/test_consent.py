"""Consent per purpose (PIPL): purposes a workspace configures, append-only records per person and purpose,
and the one question everything downstream asks — `has_consent(person, purpose)`.

Consent arrives four ways: tracked events carrying Segment's `context.consent.categoryPreferences` (through the
identity stitcher's listener), the REST API, the console's consent panel, and imports. Records are read over
the identity family, so a merge gives the survivor the most recent answer of either person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from siyu import security
from siyu.consent import issues, purposes
from siyu.consent import service as consent
from siyu.consent.listener import ConsentListener
from siyu.consent.models import ConsentRecord
from siyu.db import Database
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.identity import service as ids
from siyu.identity.listeners import StitchedEvent
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import User, Workspace

T0 = (datetime.now(UTC) - timedelta(days=60)).replace(microsecond=0)  # consent may not be dated in the future
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    database.migrate()
    yield database
    database.dispose()


def new_workspace(db, slug: str) -> int:
    with db.session() as s:
        return workspaces.create_workspace(s, slug.title(), slug=slug).id


def person(db, ws: int, *identifiers: tuple[str, str]) -> int:
    with db.session() as s:
        return ids.resolve(s, ws, list(identifiers))


def state(db, ws: int, super_id: int) -> dict[str, str | None]:
    with db.session() as s:
        return {c["purpose"]: c["status"] for c in consent.current_consents(s, ws, super_id)}


def say(db, ws: int, super_id: int, purpose: str, status: str, at: datetime | None = None, **kw) -> dict:
    with db.session() as s:
        return consent.record(s, ws, super_id, purpose, status, source=kw.pop("source", "api"), recorded_at=at, **kw)


def allowed(db, ws: int, super_id: int, purpose: str) -> bool:
    with db.session() as s:
        return consent.has_consent(s, ws, super_id, purpose)


# --- purposes -----------------------------------------------------------------------------------------------


def test_a_workspace_starts_with_the_four_default_purposes(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    with sqlite_db.session() as s:
        listed = purposes.list_purposes(s, ws)
    assert [(p.code, p.name, p.enabled, p.builtin) for p in listed] == [
        ("basic", "基础信息", True, True),
        ("personalization", "个性化推荐", True, True),
        ("marketing", "营销触达", True, True),
        ("data_sharing", "数据共享", True, True),
    ]


def test_purposes_can_be_added_renamed_and_disabled_per_workspace(sqlite_db):
    ws, other = new_workspace(sqlite_db, "shop"), new_workspace(sqlite_db, "other")
    with sqlite_db.session() as s:
        added = purposes.add_purpose(s, ws, {"code": "member_sms", "name": " 会员短信 ", "description": "生日券"})
        renamed = purposes.update_purpose(s, ws, "marketing", {"name": "营销短信与推送", "name_en": "Marketing push"})
        purposes.update_purpose(s, ws, "data_sharing", {"enabled": False})
    assert (added.code, added.name, added.name_en, added.builtin) == ("member_sms", "会员短信", "会员短信", False)
    assert (renamed.name, renamed.name_en, renamed.builtin) == ("营销短信与推送", "Marketing push", True)
    with sqlite_db.session() as s:
        mine = {p.code: p for p in purposes.list_purposes(s, ws)}
        theirs = {p.code: p for p in purposes.list_purposes(s, other)}
        purposes.update_purpose(s, ws, "data_sharing", {"enabled": True})
        assert purposes.get_purpose(s, ws, "data_sharing").enabled
    assert list(mine) == ["basic", "personalization", "marketing", "data_sharing", "member_sms"]
    assert mine["marketing"].description == theirs["marketing"].description  # a rename keeps the rest
    assert not mine["data_sharing"].enabled and theirs["data_sharing"].enabled
    assert "member_sms" not in theirs and theirs["marketing"].name == "营销触达"


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ({"code": "Marketing2", "name": "x"}, ["code"]),
        ({"code": "m", "name": "x"}, ["code"]),
        ({"code": "has space", "name": "x"}, ["code"]),
        ({"code": 7, "name": "x"}, ["code"]),
        ({"code": "vip_club"}, ["name"]),
        ({"code": "vip_club", "name": "   "}, ["name"]),
        ({"code": "vip_club", "name": "x" * 101}, ["name"]),
        ({"code": "vip_club", "name": "ok", "description": "\x00"}, ["description"]),
        ({"code": "vip_club", "name": "ok", "enabled": "yes"}, ["enabled"]),
        ({"code": "vip_club", "name": "ok", "colour": "red"}, ["colour"]),
        ({"code": "BAD", "name": ""}, ["code", "name"]),
    ],
)
def test_a_bad_purpose_is_refused_naming_each_field(sqlite_db, raw, fields):
    ws = new_workspace(sqlite_db, "shop")
    with sqlite_db.session() as s, pytest.raises(InvalidInput) as exc:
        purposes.add_purpose(s, ws, raw)
    assert sorted(e.field for e in exc.value.errors) == sorted(fields)


def test_purpose_codes_are_unique_and_changes_need_a_known_code(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    with sqlite_db.session() as s:
        with pytest.raises(Conflict, match="marketing"):
            purposes.add_purpose(s, ws, {"code": "marketing", "name": "again"})
        with pytest.raises(NotFound):
            purposes.update_purpose(s, ws, "nonexistent", {"name": "x"})
        with pytest.raises(InvalidInput) as exc:
            purposes.update_purpose(s, ws, "marketing", {"code": "renamed", "enabled": 1})
    assert sorted(e.field for e in exc.value.errors) == ["code", "enabled"]


# --- records: granted, denied, withdrawn ------------------------------------------------------------------


def test_a_denial_after_a_grant_is_a_withdrawal_and_only_a_current_grant_counts(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))

    assert state(sqlite_db, ws, li) == {"basic": None, "personalization": None, "marketing": None, "data_sharing": None}
    assert not allowed(sqlite_db, ws, li, "marketing")  # never asked is no

    assert say(sqlite_db, ws, li, "marketing", "granted", T0, evidence="form #88")["status"] == "granted"
    assert allowed(sqlite_db, ws, li, "marketing")
    assert say(sqlite_db, ws, li, "marketing", "denied", T0 + timedelta(days=1))["status"] == "withdrawn"
    assert not allowed(sqlite_db, ws, li, "marketing")
    assert say(sqlite_db, ws, li, "marketing", "denied", T0 + timedelta(days=2))["status"] == "denied"
    # Asking to "withdraw" what was never granted is recorded as what it is: a denial.
    assert say(sqlite_db, ws, li, "data_sharing", "withdrawn", T0)["status"] == "denied"

    with sqlite_db.session() as s:
        rows = consent.history(s, ws, li)
        only_marketing = consent.history(s, ws, li, "marketing")
        current = {c["purpose"]: c for c in consent.current_consents(s, ws, li)}
    assert [(r["purpose"], r["status"]) for r in rows] == [
        ("marketing", "denied"),
        ("marketing", "withdrawn"),
        ("data_sharing", "denied"),  # newest first by when it was said, then by when it was recorded
        ("marketing", "granted"),
    ]
    assert [r["status"] for r in only_marketing] == ["denied", "withdrawn", "granted"]
    assert rows[-1]["evidence"] == "form #88" and rows[-1]["source"] == "api"
    assert current["marketing"]["status"] == "denied" and current["marketing"]["recorded_at"] == T0 + timedelta(days=2)
    assert current["basic"]["status"] is None and current["basic"]["source"] is None


def test_a_late_arriving_older_record_does_not_override_what_the_person_said_since(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    say(sqlite_db, ws, li, "marketing", "denied", T0 + timedelta(days=30), source="console")
    # Last year's paper form, imported today:
    assert say(sqlite_db, ws, li, "marketing", "granted", T0, source="import")["status"] == "granted"
    assert state(sqlite_db, ws, li)["marketing"] == "denied"
    assert not allowed(sqlite_db, ws, li, "marketing")


def test_a_disabled_purpose_counts_as_not_consented_and_takes_no_new_records(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    say(sqlite_db, ws, li, "data_sharing", "granted", T0)
    with sqlite_db.session() as s:
        purposes.update_purpose(s, ws, "data_sharing", {"enabled": False})
    assert not allowed(sqlite_db, ws, li, "data_sharing")
    with pytest.raises(InvalidInput, match="disabled"):
        say(sqlite_db, ws, li, "data_sharing", "granted")
    with sqlite_db.session() as s:
        shown = {c["purpose"]: c for c in consent.current_consents(s, ws, li)}
    assert shown["data_sharing"]["enabled"] is False and shown["data_sharing"]["granted"] is False


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"purpose": "newsletter"}, ["purpose"]),
        ({"purpose": None}, ["purpose"]),
        ({"status": "maybe"}, ["status"]),
        ({"status": True}, ["status"]),
        ({"source": "fax"}, ["source"]),
        ({"evidence": "x" * 501}, ["evidence"]),
        ({"evidence": 12}, ["evidence"]),
        ({"evidence": "a\x00b"}, ["evidence"]),
        ({"recorded_at": "yesterday"}, ["recorded_at"]),
        ({"recorded_at": datetime.now(UTC) + timedelta(days=2)}, ["recorded_at"]),
        ({"status": "nope", "source": "nope", "evidence": None}, ["status", "source", "evidence"]),
    ],
)
def test_bad_consent_input_is_refused_naming_each_field(sqlite_db, kwargs, fields):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    args = {"purpose": "marketing", "status": "granted", "source": "api", **kwargs}
    with sqlite_db.session() as s, pytest.raises(InvalidInput) as exc:
        consent.record(
            s, ws, li, args.pop("purpose"), args.pop("status"), **{k: v for k, v in args.items() if k != "x"}
        )
    assert sorted(e.field for e in exc.value.errors) == sorted(fields)
    with sqlite_db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_one_event_records_a_purpose_once(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    say(sqlite_db, ws, li, "marketing", "granted", event_id="m-42")
    with pytest.raises(Conflict, match="m-42"):
        say(sqlite_db, ws, li, "marketing", "denied", event_id="m-42")
    assert say(sqlite_db, ws, li, "basic", "granted", event_id="m-42")["event_id"] == "m-42"


def test_an_unknown_purpose_names_the_known_ones(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    with sqlite_db.session() as s, pytest.raises(InvalidInput) as exc:
        consent.has_consent(s, ws, li, "newsletter")
    assert exc.value.errors[0].reason == (
        "unknown purpose 'newsletter'; known purposes: basic, personalization, marketing, data_sharing"
    )


def test_unknown_or_erased_persons_have_no_consent_and_cannot_get_any(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    say(sqlite_db, ws, li, "marketing", "granted")
    with sqlite_db.session() as s:
        assert not consent.has_consent(s, ws, 999_999, "marketing")
        with pytest.raises(NotFound):
            consent.record(s, ws, 999_999, "marketing", "granted", source="api")
        with pytest.raises(InvalidInput):
            consent.has_consent(s, ws, "12", "marketing")
        ids.erase(s, ws, li)
    with sqlite_db.session() as s:
        assert not consent.has_consent(s, ws, li, "marketing")
        with pytest.raises(NotFound):
            consent.current_consents(s, ws, li)


def test_workspaces_do_not_see_each_others_people_or_purposes(sqlite_db):
    a, b = new_workspace(sqlite_db, "a"), new_workspace(sqlite_db, "b")
    li = person(sqlite_db, a, ("phone", "13912345678"))
    say(sqlite_db, a, li, "marketing", "granted")
    with sqlite_db.session() as s:
        purposes.add_purpose(s, a, {"code": "member_sms", "name": "会员短信"})
        assert not consent.has_consent(s, b, li, "marketing")
        with pytest.raises(NotFound):
            consent.current_consents(s, b, li)
        with pytest.raises(NotFound):
            consent.record(s, b, li, "marketing", "granted", source="api")
        with pytest.raises(InvalidInput):
            consent.has_consent(s, b, li, "member_sms")


def test_with_consent_answers_has_consent_for_many_people_at_once(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    people = [person(sqlite_db, ws, ("member_id", f"M{i}")) for i in range(6)]
    for i, p in enumerate(people):
        if i % 3 == 0:
            say(sqlite_db, ws, p, "marketing", "granted")
        elif i % 3 == 1:
            say(sqlite_db, ws, p, "marketing", "granted", T0)
            say(sqlite_db, ws, p, "marketing", "denied", T0 + timedelta(hours=1))
    with sqlite_db.session() as s:
        bulk = consent.with_consent(s, ws, "marketing", [*people, 424242])
        one_by_one = {p for p in people if consent.has_consent(s, ws, p, "marketing")}
        assert consent.with_consent(s, ws, "basic", people) == set()
    assert bulk == one_by_one == {people[0], people[3]}


# --- merges: the survivor's consent per purpose is the most recent record of either ------------------------


def test_after_a_merge_each_purpose_follows_the_most_recent_record_of_either_person(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    by_phone = person(sqlite_db, ws, ("phone", "13912345678"))
    by_member = person(sqlite_db, ws, ("member_id", "M1001"))
    say(sqlite_db, ws, by_phone, "marketing", "granted", T0 + timedelta(days=3))  # newer
    say(sqlite_db, ws, by_member, "marketing", "denied", T0)
    say(sqlite_db, ws, by_phone, "personalization", "granted", T0)
    say(sqlite_db, ws, by_member, "personalization", "denied", T0 + timedelta(days=1))  # newer
    say(sqlite_db, ws, by_member, "basic", "granted", T0)

    survivor = person(sqlite_db, ws, ("member_id", "M1001"), ("phone", "13912345678"))  # one event names both
    assert survivor == min(by_phone, by_member)
    with sqlite_db.session() as s:
        ConsentListener().persons_merged(s, ws, survivor, max(by_phone, by_member))
    assert state(sqlite_db, ws, survivor) == {
        "basic": "granted",
        "personalization": "denied",
        "marketing": "granted",
        "data_sharing": None,
    }
    assert allowed(sqlite_db, ws, max(by_phone, by_member), "marketing")  # the old id answers for the survivor
    with sqlite_db.session() as s:
        assert len(consent.history(s, ws, survivor)) == 5
        assert consent.with_consent(s, ws, "basic", [survivor]) == {survivor}

    # An unmerge splits the records back with the people they were recorded for.
    absorbed = max(by_phone, by_member)
    with sqlite_db.session() as s:
        ids.unmerge(s, ws, absorbed)
    mine = state(sqlite_db, ws, by_phone)
    theirs = state(sqlite_db, ws, by_member)
    assert (mine["marketing"], mine["personalization"], mine["basic"]) == ("granted", "granted", None)
    assert (theirs["marketing"], theirs["personalization"], theirs["basic"]) == ("denied", "denied", "granted")


# --- the tracking listener ----------------------------------------------------------------------------------


def stitched(
    ws: int, super_id: int | None, prefs: object, at: datetime = T0, event_id: str = "m-1", **consent_extra
) -> StitchedEvent:
    return StitchedEvent(
        workspace_id=ws,
        event_id=event_id,
        kind="event",
        type="identify",
        event=None,
        timestamp=at,
        super_id=super_id,
        source_id=3,
        context={"consent": {"categoryPreferences": prefs, **consent_extra}},
    )


def test_the_listener_records_changes_only_and_reports_codes_it_cannot_record(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    listener = ConsentListener()
    hour = timedelta(hours=1)
    batch = [
        stitched(ws, li, {"Marketing": True, "personalization": False}, T0, "m-1", evidence="banner v3"),
        stitched(ws, li, {"marketing": True, "personalization": False}, T0 + hour, "m-2"),  # the banner repeats
        stitched(ws, li, {"marketing": False, "newsletter": True, "basic": "yes"}, T0 + 2 * hour, "m-3"),
        stitched(ws, None, {"marketing": True}, T0 + 3 * hour, "m-anon"),  # nobody to record for yet
        stitched(ws, li, {"newsletter": False}, T0 + 4 * hour, "m-4"),
    ]
    with sqlite_db.session() as s:
        listener.events_stitched(s, batch)
    with sqlite_db.session() as s:
        listener.events_stitched(s, batch[:3])  # the stitcher replays a batch: nothing new
    with sqlite_db.session() as s:
        rows = consent.history(s, ws, li)
        reported = {(i["code"], i["problem"]): (i["count"], i["last_event_id"]) for i in issues.list_issues(s, ws)}
    assert [(r["purpose"], r["status"], r["event_id"]) for r in rows] == [
        ("marketing", "withdrawn", "m-3"),
        ("personalization", "denied", "m-1"),
        ("marketing", "granted", "m-1"),
    ]
    assert {r["source"] for r in rows} == {"tracking"} and rows[2]["actor"] == "source:3"
    assert rows[2]["evidence"] == "banner v3" and rows[2]["recorded_at"] == T0
    assert reported == {("newsletter", "unknown"): (3, "m-3"), ("basic", "not_boolean"): (2, "m-3")}
    with sqlite_db.session() as s:
        assert {p.code for p in purposes.list_purposes(s, ws)} == {
            "basic",
            "personalization",
            "marketing",
            "data_sharing",
        }


def test_the_listener_judges_out_of_order_events_by_their_own_time(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    listener = ConsentListener()
    with sqlite_db.session() as s:
        listener.events_stitched(s, [stitched(ws, li, {"marketing": False}, T0 + timedelta(days=1), "late")])
    with sqlite_db.session() as s:  # an offline mini program uploads yesterday's grant afterwards
        listener.events_stitched(s, [stitched(ws, li, {"marketing": True}, T0, "early")])
    assert state(sqlite_db, ws, li)["marketing"] == "denied"
    with sqlite_db.session() as s:
        assert [r["event_id"] for r in consent.history(s, ws, li)] == ["late", "early"]


def test_consent_for_a_disabled_purpose_is_reported_not_recorded(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    with sqlite_db.session() as s:
        purposes.update_purpose(s, ws, "data_sharing", {"enabled": False})
        ConsentListener().events_stitched(s, [stitched(ws, li, {"data_sharing": True, "marketing": True})])
    assert state(sqlite_db, ws, li)["marketing"] == "granted"
    with sqlite_db.session() as s:
        assert "data_sharing" not in {r["purpose"] for r in consent.history(s, ws, li)}
        assert [(i["code"], i["problem"]) for i in issues.list_issues(s, ws)] == [("data_sharing", "disabled")]


def test_the_listener_forgets_an_erased_persons_records(sqlite_db):
    ws = new_workspace(sqlite_db, "shop")
    li = person(sqlite_db, ws, ("phone", "13912345678"))
    other = person(sqlite_db, ws, ("phone", "13698765432"))
    say(sqlite_db, ws, li, "marketing", "granted")
    say(sqlite_db, ws, other, "marketing", "granted")
    with sqlite_db.session() as s:
        ConsentListener().person_erased(s, ws, li)
        left = s.scalars(select(ConsentRecord.super_id)).all()
    assert left == [other]


# --- storage on both databases ------------------------------------------------------------------------------


def test_consent_lives_its_whole_life_on_both_databases(db):
    ws = new_workspace(db, "shop")
    li = person(db, ws, ("phone", "13912345678"))
    with db.session() as s:
        purposes.add_purpose(s, ws, {"code": "member_sms", "name": "会员短信"})
        purposes.update_purpose(s, ws, "marketing", {"name": "营销", "enabled": True})
    say(db, ws, li, "member_sms", "granted", T0, evidence="门店登记表 #12")
    say(db, ws, li, "member_sms", "denied", T0 + timedelta(minutes=5))
    with db.session() as s:
        ConsentListener().events_stitched(s, [stitched(ws, li, {"marketing": True, "typo": True})])
    with db.session() as s:
        assert consent.has_consent(s, ws, li, "marketing")
        assert not consent.has_consent(s, ws, li, "member_sms")
        assert [r["status"] for r in consent.history(s, ws, li, "member_sms")] == ["withdrawn", "granted"]
        assert consent.history(s, ws, li, "member_sms")[1]["recorded_at"] == T0
        assert [i["code"] for i in issues.list_issues(s, ws)] == ["typo"]
        assert consent.erase_records(s, ws, li) == 3


# --- through the running system: tracking API, REST API, console ------------------------------------------


def first_workspace(rt) -> int:
    with rt.db.session() as s:
        return s.scalar(select(Workspace.id).order_by(Workspace.id))


def write_key(rt, ws: int, kind: str = "website") -> dict[str, str]:
    import base64

    from siyu.sources import service as sources

    with rt.db.session() as s:
        key = sources.create_source(s, ws, f"{kind}-{len(sources.list_sources(s, ws))}", kind).write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def member(rt, ws: int, member_id: str) -> int | None:
    with rt.db.session() as s:
        return ids.lookup(s, ws, "member_id", member_id)


def test_consent_sent_with_tracked_events_is_recorded_for_the_person_they_resolve_to(client, runtime):
    ws = first_workspace(runtime)
    key = write_key(runtime, ws)
    context = {"consent": {"categoryPreferences": {"marketing": True, "data_sharing": False, "Newsletter": True}}}
    sent = client.post(
        "/v1/identify",
        headers=key,
        json={"userId": "M1001", "traits": {"phone": "13912345678"}, "context": {**context, "locale": "zh-CN"}},
    )
    assert sent.status_code == 200, sent.text
    # analytics.js's consent wrapper repeats the preferences on every event; then the visitor withdraws.
    batch = [
        {"type": "track", "userId": "M1001", "event": "Product Viewed", "context": context},
        {
            "type": "page",
            "userId": "M1001",
            "name": "隐私设置",
            "context": {"consent": {"categoryPreferences": {"marketing": False}, "evidence": "cmp v2 / 偏好中心"}},
            "timestamp": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        },
    ]
    assert client.post("/v1/batch", headers=key, json={"batch": batch}).status_code == 200
    runtime.stitch_now()

    li = member(runtime, ws, "M1001")
    assert li is not None
    with runtime.db.session() as s:
        rows = consent.history(s, ws, li)
        assert not consent.has_consent(s, ws, li, "marketing")
        assert not consent.has_consent(s, ws, li, "data_sharing")
        reported = [(i["code"], i["problem"], i["count"]) for i in issues.list_issues(s, ws)]
    assert [(r["purpose"], r["status"], r["source"]) for r in rows] == [
        ("marketing", "withdrawn", "tracking"),
        ("data_sharing", "denied", "tracking"),
        ("marketing", "granted", "tracking"),
    ]
    assert rows[0]["evidence"] == "cmp v2 / 偏好中心"
    assert reported == [("Newsletter", "unknown", 2)]


def test_the_rest_api_configures_purposes_and_records_consent(client, runtime, auth):
    ws = first_workspace(runtime)
    li = person(runtime.db, ws, ("member_id", "M1001"))

    listed = client.get("/api/v1/consent/purposes", headers=auth).json()
    assert [p["code"] for p in listed["purposes"]] == ["basic", "personalization", "marketing", "data_sharing"]
    assert listed["issues"] == []
    added = client.post(
        "/api/v1/consent/purposes", headers=auth, json={"code": "member_sms", "name": "会员短信", "name_en": "SMS"}
    )
    assert added.status_code == 201 and added.json()["builtin"] is False
    renamed = client.put("/api/v1/consent/purposes/marketing", headers=auth, json={"name": "营销推送"})
    assert renamed.json()["name"] == "营销推送" and renamed.json()["builtin"] is True

    said = client.post(
        f"/api/v1/consent/persons/{li}",
        headers=auth,
        json={"purpose": "member_sms", "status": "granted", "evidence": "门店登记表 #12"},
    )
    assert said.status_code == 201, said.text
    assert said.json()["source"] == "api" and said.json()["actor"].startswith("key:")
    client.post(f"/api/v1/consent/persons/{li}", headers=auth, json={"purpose": "member_sms", "status": "denied"})
    current = client.get(f"/api/v1/consent/persons/{li}", headers=auth).json()
    assert {c["purpose"]: c["status"] for c in current["consents"]}["member_sms"] == "withdrawn"
    history = client.get(f"/api/v1/consent/persons/{li}/history?purpose=member_sms", headers=auth).json()
    assert [r["status"] for r in history["history"]] == ["withdrawn", "granted"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fields"),
    [
        ("post", "/api/v1/consent/purposes", {"code": "Bad Code", "name": "x"}, 422, ["code"]),
        ("post", "/api/v1/consent/purposes", {"code": "marketing", "name": "x"}, 409, ["code"]),
        ("post", "/api/v1/consent/purposes", {"code": "vip", "name": "x", "extra": 1}, 422, ["extra"]),
        ("post", "/api/v1/consent/purposes", {"code": "vip", "name": 5}, 422, ["name"]),
        ("put", "/api/v1/consent/purposes/nonexistent", {"name": "x"}, 404, []),
        ("put", "/api/v1/consent/purposes/marketing", {"enabled": "sometimes"}, 422, ["enabled"]),
        ("post", "/api/v1/consent/persons/{li}", {"purpose": "newsletter", "status": "granted"}, 422, ["purpose"]),
        ("post", "/api/v1/consent/persons/{li}", {"purpose": "marketing", "status": "maybe"}, 422, ["status"]),
        ("post", "/api/v1/consent/persons/{li}", {"purpose": "marketing"}, 422, ["status"]),
        (
            "post",
            "/api/v1/consent/persons/{li}",
            {"purpose": "marketing", "status": "granted", "recorded_at": "2999-01-01T00:00:00Z"},
            422,
            ["recorded_at"],
        ),
        (
            "post",
            "/api/v1/consent/persons/{li}",
            {"purpose": "marketing", "status": "granted", "evidence": "x" * 501},
            422,
            ["evidence"],
        ),
        ("post", "/api/v1/consent/persons/999999", {"purpose": "marketing", "status": "granted"}, 404, []),
        ("get", "/api/v1/consent/persons/999999", None, 404, []),
        ("get", "/api/v1/consent/persons/0", None, 422, ["super_id"]),
        ("get", "/api/v1/consent/persons/{li}/history?purpose=newsletter", None, 422, ["purpose"]),
    ],
)
def test_bad_api_requests_get_a_clear_error_never_a_500(client, runtime, auth, method, path, body, status, fields):
    ws = first_workspace(runtime)
    li = person(runtime.db, ws, ("member_id", "M1001"))
    kwargs = {"headers": auth} if body is None else {"headers": auth, "json": body}
    response = getattr(client, method)(path.format(li=li), **kwargs)
    assert response.status_code == status, response.text
    assert sorted(f["field"] for f in response.json()["error"]["fields"]) == fields


def test_consent_endpoints_need_their_scopes_and_stay_in_the_keys_workspace(client, runtime, auth):
    ws = first_workspace(runtime)
    li = person(runtime.db, ws, ("member_id", "M1001"))
    other = new_workspace(runtime.db, "other-brand")
    with runtime.db.session() as s:
        reader = workspaces.create_api_key(s, ws, "reader", ["consent:read"]).secret
        links_only = workspaces.create_api_key(s, ws, "links", ["links:read"]).secret
        foreign = workspaces.create_api_key(s, other, "foreign", ["consent:write"]).secret

    def h(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    assert client.get(f"/api/v1/consent/persons/{li}", headers=h(reader)).status_code == 200
    denied = client.post(
        f"/api/v1/consent/persons/{li}", headers=h(reader), json={"purpose": "basic", "status": "granted"}
    )
    assert denied.status_code == 403 and "consent:write" in denied.json()["error"]["message"]
    assert client.get("/api/v1/consent/purposes", headers=h(links_only)).status_code == 403
    assert client.get(f"/api/v1/consent/persons/{li}", headers=h(foreign)).status_code == 404
    assert client.get("/api/v1/consent/purposes", headers=h(foreign)).status_code == 200


# --- the console's consent panel ----------------------------------------------------------------------------


def sign_in(client, email: str, password: str) -> str:
    client.cookies.clear()
    response = client.post("/console/login", data={"email": email, "password": password, "next": "/console/privacy"})
    assert response.status_code == 303, response.text
    return CSRF.search(client.get("/console/privacy").text).group(1)


def add_member(rt, ws: int, email: str, role: str) -> None:
    with rt.db.session() as s:
        user = workspaces.create_user(s, email, "password-123", email.split("@")[0])
        workspaces.add_member(s, ws, user.id, role)


def test_the_console_records_a_consent_change_from_the_consent_panel(client, runtime, first_run):
    ws = first_workspace(runtime)
    li = person(runtime.db, ws, ("member_id", "M1001"))
    say(runtime.db, ws, li, "marketing", "granted", T0)
    csrf = sign_in(client, first_run.email, first_run.password)

    panel = client.get(f"/console/privacy?person={li}")
    assert panel.status_code == 200
    assert f'data-consent-for="{li}"' in panel.text and 'data-purpose="marketing" data-status="granted"' in panel.text
    assert f'action="/console/profiles/{li}/consent"' in panel.text

    changed = client.post(
        f"/console/profiles/{li}/consent",
        data={
            "csrf": csrf,
            "purpose": "marketing",
            "status": "denied",
            "evidence": "客服电话 #77",
            "next": f"/console/privacy?person={li}#consent",
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == f"/console/privacy?person={li}&consent_done=1#consent"
    with runtime.db.session() as s:
        latest = consent.history(s, ws, li)[0]
        user_id = s.scalar(select(User.id).where(User.email == first_run.email))
    assert (latest["status"], latest["source"], latest["evidence"]) == ("withdrawn", "console", "客服电话 #77")
    assert latest["actor"] == f"user:{user_id}"  # an id: the e-mail is not copied into consent records
    shown = client.get(changed.headers["location"])
    assert 'data-purpose="marketing" data-status="withdrawn"' in shown.text

    # Without `next` the form returns to the profile page; a foreign `next` is ignored.
    back = client.post(
        f"/console/profiles/{li}/consent",
        data={"csrf": csrf, "purpose": "basic", "status": "granted", "next": "https://evil.example/"},
    )
    assert back.headers["location"] == f"/console/profiles/{li}?consent_done=1#consent"
    profile = client.get(back.headers["location"])  # the profile page (profile 360) includes the same panel
    assert profile.status_code == 200
    assert f'data-consent-for="{li}"' in profile.text and t_html("consent.recorded") in profile.text
    assert 'data-purpose="basic" data-status="granted"' in profile.text


def test_the_consent_panel_refuses_bad_input_and_strangers(client, runtime, first_run):
    ws = first_workspace(runtime)
    li = person(runtime.db, ws, ("member_id", "M1001"))
    csrf = sign_in(client, first_run.email, first_run.password)
    nxt = f"/console/privacy?person={li}"

    bad = client.post(
        f"/console/profiles/{li}/consent", data={"csrf": csrf, "purpose": "marketing", "status": "x", "next": nxt}
    )
    assert bad.headers["location"] == f"{nxt}&consent_error=status#consent"
    assert t_html("consent.error.status") in client.get(bad.headers["location"]).text
    unknown = client.post(
        f"/console/profiles/{li}/consent", data={"csrf": csrf, "purpose": "spam", "status": "granted"}
    )
    assert unknown.headers["location"].endswith("consent_error=purpose#consent")
    assert (
        client.post(
            "/console/profiles/999999/consent", data={"csrf": csrf, "purpose": "basic", "status": "granted"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/console/profiles/{li}/consent", data={"csrf": "forged", "purpose": "basic", "status": "granted"}
        ).status_code
        == 403
    )
    add_member(runtime, ws, "analyst@example.com", "analyst")
    csrf = sign_in(client, "analyst@example.com", "password-123")
    assert 'id="consent-form"' not in client.get(nxt).text  # the panel is read-only for analysts
    refused = client.post(
        f"/console/profiles/{li}/consent", data={"csrf": csrf, "purpose": "basic", "status": "granted"}
    )
    assert refused.status_code == 403
    with runtime.db.session() as s:
        assert consent.history(s, ws, li) == []


def t_html(key: str) -> str:
    from markupsafe import escape

    from siyu.i18n import t

    return str(escape(t(key, "zh-CN")))


def test_consent_columns_of_an_imported_member_file_are_recorded_as_imported(runtime, first_run):
    from siyu.imports.service import run_import

    ws = first_workspace(runtime)
    csv = "member_id,phone,consent_marketing,consent_data_sharing,consent_evidence\nM1001,13912345678,是,0,门店登记表 #12\n"
    result = run_import(runtime.db, runtime.store, ws, "members", csv.encode(), file_name="members.csv")
    assert result.status == "completed", result
    runtime.stitch_now()
    li = member(runtime, ws, "M1001")
    with runtime.db.session() as s:
        rows = {r["purpose"]: r for r in consent.history(s, ws, li)}
        assert consent.has_consent(s, ws, li, "marketing")
    assert {p: (r["status"], r["source"], r["evidence"]) for p, r in rows.items()} == {
        "marketing": ("granted", "import", "门店登记表 #12"),
        "data_sharing": ("denied", "import", "门店登记表 #12"),
    }
