"""One ID: how identifiers (子ID) resolve to a stable super ID (祖ID), and the guard rails around it.

Read top to bottom: normalisation and junk first (no database), then the graph on SQLite — linking,
conflicts, quarantine, the merge log, unmerge, erasure, short-link visitors — then configuration.
The same behaviour on PostgreSQL is in test_identity_storage.py; rebuild and quality in
test_identity_rebuild.py.
"""

from __future__ import annotations

import pytest

import siyu.models  # noqa: F401
from siyu.db import Database
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.identity import service as ids
from siyu.identity.normalize import parse_identifiers, phone_e164
from siyu.identity.rules import configure_type, default_rules, get_rules
from siyu.workspaces import service as workspaces


def fields(exc: pytest.ExceptionInfo) -> list[str]:
    return [e.field for e in exc.value.errors]


# --- normalisation: one spelling per real-world value ------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138001",
        "138 0013 8001",
        "138-0013-8001",
        "+86 138 0013 8001",
        "+8613800138001",
        "008613800138001",
        "8613800138001",
        " (138) 0013.8001 ",
    ],
)
def test_china_mobile_numbers_in_any_spelling_become_one_e164_number(raw):
    assert parse_identifiers(default_rules(), [("phone", raw)]) == [("phone", "+8613800138001")]


def test_landlines_and_foreign_numbers_are_e164_too():
    assert phone_e164("010-8888 6666")[0] == "+861088886666"  # area code kept, trunk 0 dropped
    assert phone_e164("+1 415 555 0100")[0] == "+14155550100"
    assert phone_e164("0085291234567")[0] == "+85291234567"  # Hong Kong via the 00 prefix


def test_other_types_are_normalised_as_their_systems_compare_them():
    rules = default_rules()
    assert parse_identifiers(rules, [("email", "  Li.Wei@QQ.com ")]) == [("email", "li.wei@qq.com")]
    assert parse_identifiers(rules, [("device_id", "6D92078A-8246-4BA4-AE5B-76104861E7DC")]) == [
        ("device_id", "6d92078a-8246-4ba4-ae5b-76104861e7dc")
    ]
    # An openid means nothing outside its app: it is stored as 'appid:openid'.
    assert parse_identifiers(rules, [("openid", "wx1234:oAbCd")]) == [("openid", "wx1234:oAbCd")]
    # Cookies and WeChat ids are case-sensitive and kept as they are.
    assert parse_identifiers(rules, [("visitor_cookie", "AbC123xyz")]) == [("visitor_cookie", "AbC123xyz")]


def test_identifiers_come_back_distinct_and_strongest_first():
    got = parse_identifiers(
        default_rules(),
        [("visitor_cookie", "c1"), ("phone", "13800138001"), ("member_id", "M1"), ("phone", "+86 138 0013 8001")],
    )
    assert got == [("member_id", "M1"), ("phone", "+8613800138001"), ("visitor_cookie", "c1")]


# --- junk values are blocked: dropped, never linked ------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "raw"),
    [
        ("member_id", "null"),
        ("member_id", "undefined"),
        ("member_id", "None"),
        ("member_id", ""),
        ("member_id", "0"),
        ("member_id", "-1"),
        ("email", "NULL"),
        ("visitor_cookie", "undefined"),
        ("phone", "13800138000"),  # the number every tutorial uses
        ("phone", "12345678901"),
        ("phone", "+86 138 0013 8000"),
        ("phone", "11111111111"),
        ("device_id", "00000000-0000-0000-0000-000000000000"),  # iOS IDFA with tracking limited
        ("device_id", "aaaaaaaa"),
        ("unionid", "000000"),
    ],
)
def test_junk_values_are_blocked(id_type, raw):
    assert parse_identifiers(default_rules(), [(id_type, raw)]) == []


def test_small_real_member_numbers_are_not_mistaken_for_junk():
    assert parse_identifiers(default_rules(), [("member_id", "11")]) == [("member_id", "11")]


# --- bad input names the field ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([("fingerprint", "x")], "identifiers[0].type"),  # unknown type
        ([("email", "a@b.co"), (7, "x")], "identifiers[1].type"),  # type not text
        ([("member_id", 12345)], "identifiers[0].value"),  # value not text
        ([("member_id", None)], "identifiers[0].value"),
        ([("member_id", "M" * 256)], "identifiers[0].value"),  # overlong
        ([("member_id", "M\x001")], "identifiers[0].value"),  # NUL (PostgreSQL refuses it)
        ([("phone", "call me")], "identifiers[0].value"),
        ([("phone", "+86 123 4567")], "identifiers[0].value"),
        ([("email", "not-an-email")], "identifiers[0].value"),
        ([("openid", "oAbCd")], "identifiers[0].value"),  # no appid
        ([("member_id", "M1", "extra")], "identifiers[0]"),
        ([{"type": "member_id"}], "identifiers[0]"),
        ("member_id=M1", "identifiers"),
        ([("member_id", f"M{i}") for i in range(51)], "identifiers"),
    ],
)
def test_bad_identifiers_are_refused_with_the_field_named(raw, field):
    with pytest.raises(InvalidInput) as exc:
        parse_identifiers(default_rules(), raw)
    assert field in fields(exc)


def test_every_bad_identifier_is_reported_at_once():
    with pytest.raises(InvalidInput) as exc:
        parse_identifiers(default_rules(), [("nope", "x"), ("email", "ok@example.com"), ("phone", "12")])
    assert fields(exc) == ["identifiers[0].type", "identifiers[2].value"]


# --- the graph (SQLite; both databases in test_identity_storage.py) ---------------------------------------


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def ws(db) -> int:
    with db.session() as s:
        return workspaces.create_workspace(s, "Coffee Co", slug="coffee").id


def resolve(db, ws, *identifiers, ref=None):
    with db.session() as s:
        return ids.resolve(s, ws, list(identifiers), ref)


def test_resolve_creates_a_person_then_links_new_identifiers_to_it(db, ws):
    alice = resolve(db, ws, ("phone", "13800138001"), ref="signup")
    assert resolve(db, ws, ("phone", "+86 138 0013 8001"), ("email", "Alice@Example.com"), ref="e2") == alice
    assert resolve(db, ws, ("email", "alice@example.com")) == alice  # the new email now finds her
    with db.session() as s:
        assert [i["type"] for i in ids.identifiers_of(s, ws, alice)] == ["phone", "email"]


def test_resolve_is_idempotent(db, ws):
    first = resolve(db, ws, ("member_id", "M1"), ("visitor_cookie", "c1"), ref="e1")
    with db.session() as s:
        before = (ids.profile(s, ws, first), ids.merge_log(s, ws), ids.list_conflicts(s, ws))
    assert resolve(db, ws, ("member_id", "M1"), ("visitor_cookie", "c1"), ref="e1") == first
    with db.session() as s:
        assert (ids.profile(s, ws, first), ids.merge_log(s, ws), ids.list_conflicts(s, ws)) == before


def test_events_with_only_junk_stay_anonymous(db, ws):
    assert resolve(db, ws, ("member_id", "null"), ("device_id", "00000000-0000-0000-0000-000000000000")) is None


def test_the_oldest_super_id_survives_a_merge_and_the_merge_log_says_how(db, ws):
    older = resolve(db, ws, ("phone", "13800138001"), ("visitor_cookie", "c-phone"), ref="e1")
    newer = resolve(db, ws, ("email", "li@example.com"), ("visitor_cookie", "c-laptop"), ref="e2")
    assert older < newer
    # One browser session carries both cookies: the two are one person.
    assert resolve(db, ws, ("visitor_cookie", "c-laptop"), ("visitor_cookie", "c-phone"), ref="e3") == older
    with db.session() as s:
        assert ids.lookup(s, ws, "email", "li@example.com") == older
        assert ids.current_super_id(s, ws, newer) == older  # events stamped with the old id still resolve
        assert ids.profile(s, ws, newer)["merged_ids"] == [newer]
        [entry] = ids.merge_log(s, ws)
        assert entry["action"] == "merge"
        assert (entry["survivor_id"], entry["merged_id"]) == (older, newer)
        assert entry["via"] == ["visitor_cookie", "c-phone"] and entry["event_ref"] == "e3"


def test_two_people_with_different_phone_numbers_are_never_merged_a_conflict_is_recorded(db, ws):
    mother = resolve(db, ws, ("phone", "13900139001"), ("device_id", "family-ipad-01"), ref="e1")
    # Her son logs in on the family iPad with his own number: the iPad would link them.
    son = resolve(db, ws, ("phone", "13900139002"), ("device_id", "family-ipad-01"), ref="e2")
    assert son != mother
    with db.session() as s:
        [conflict] = ids.list_conflicts(s, ws)
        assert conflict == {
            "kind": "unique",
            "person_id": son,
            "other_person_id": mother,
            "via": ["device_id", "family-ipad-01"],
            "clash_type": "phone",
            "event_ref": "e2",
        }
        assert ids.lookup(s, ws, "device_id", "family-ipad-01") == mother  # it stays with its first owner


def test_a_second_value_of_a_unique_type_is_refused_not_attached(db, ws):
    m = resolve(db, ws, ("member_id", "M1"), ("phone", "13800138001"))
    # A typo'd number on a later order: the member id wins, the typo is not attached to M1.
    assert resolve(db, ws, ("member_id", "M1"), ("phone", "13800138011"), ref="order-9") == m
    with db.session() as s:
        assert ids.lookup(s, ws, "phone", "13800138011") is None
        [c] = ids.list_conflicts(s, ws)
        assert (c["kind"], c["person_id"], c["other_person_id"], c["clash_type"]) == ("unique", m, None, "phone")


def test_caps_limit_how_many_values_of_a_type_one_person_holds(db, ws):
    p = resolve(db, ws, ("member_id", "M1"), ("email", "a@x.cn"), ("email", "b@x.cn"), ("email", "c@x.cn"))
    assert resolve(db, ws, ("member_id", "M1"), ("email", "d@x.cn")) == p  # a fourth e-mail: over the cap of 3
    with db.session() as s:
        assert ids.lookup(s, ws, "email", "d@x.cn") is None
        assert [(c["kind"], c["clash_type"]) for c in ids.list_conflicts(s, ws)] == [("cap", "email")]


def test_a_cookie_shared_by_too_many_people_is_quarantined_and_stops_linking(db, ws):
    # The shop's demo tablet: four customers log in on it, each with their own phone number.
    owners = [
        resolve(db, ws, ("phone", f"1390013900{i}"), ("visitor_cookie", "shop-tablet"), ref=f"e{i}") for i in range(4)
    ]
    assert len(set(owners)) == 4
    with db.session() as s:
        assert ids.quarantined(s, ws) == [{"type": "visitor_cookie", "value": "shop-tablet", "people": 4}]
        assert ids.lookup(s, ws, "visitor_cookie", "shop-tablet") is None
        flagged = [i for i in ids.identifiers_of(s, ws, owners[0]) if i["type"] == "visitor_cookie"]
        assert flagged[0]["quarantined"] is True  # still listed under its first owner, flagged
    # An anonymous visit from it is anonymous now; with an identifier it goes to that person only.
    assert resolve(db, ws, ("visitor_cookie", "shop-tablet")) is None
    assert resolve(db, ws, ("email", "new@x.cn"), ("visitor_cookie", "shop-tablet")) not in owners


def test_several_openids_of_one_unionid_are_one_person(db, ws):
    p = resolve(db, ws, ("unionid", "oU_abc"), ("openid", "wxmp01:o_mp"))
    assert resolve(db, ws, ("openid", "wxmini02:o_mini"), ("unionid", "oU_abc")) == p
    assert resolve(db, ws, ("openid", "wxmini02:o_mini")) == p
    with db.session() as s:
        assert ids.lookup(s, ws, "openid", "wxmp01:o_mp") == p


def test_a_recycled_phone_number_does_not_merge_its_new_owner_into_the_old_one(db, ws):
    old = resolve(db, ws, ("member_id", "M-2019"), ("phone", "13800138001"))
    # The carrier re-issued the number; the new owner registers with it. member_id outranks phone.
    new = resolve(db, ws, ("member_id", "M-2024"), ("phone", "13800138001"))
    assert new != old
    with db.session() as s:
        assert ids.lookup(s, ws, "phone", "13800138001") == old
        assert ids.list_conflicts(s, ws)[0]["clash_type"] == "member_id"


def test_lookup_by_any_identifier_and_the_profile_of_a_super_id(db, ws):
    p = resolve(db, ws, ("member_id", "M7"), ("phone", "13800138007"), ("unionid", "oU7"), ("openid", "wxmp01:o7"))
    with db.session() as s:
        for id_type, value in [
            ("member_id", "M7"),
            ("phone", "138 0013 8007"),
            ("unionid", "oU7"),
            ("openid", "wxmp01:o7"),
        ]:
            assert ids.lookup(s, ws, id_type, value) == p
        assert ids.lookup(s, ws, "member_id", "M8") is None
        profile = ids.find_profile(s, ws, "phone", "+8613800138007")
        assert profile["super_id"] == p
        assert [(i["type"], i["value"]) for i in profile["identifiers"]] == [
            ("member_id", "M7"),
            ("unionid", "oU7"),
            ("phone", "+8613800138007"),
            ("openid", "wxmp01:o7"),
        ]
        with pytest.raises(InvalidInput) as exc:
            ids.lookup(s, ws, "shoe_size", "42")
        assert fields(exc) == ["type"]
        with pytest.raises(NotFound):
            ids.profile(s, ws, 999_999)


def test_workspaces_do_not_share_people(db, ws):
    with db.session() as s:
        other = workspaces.create_workspace(s, "Tea Co", slug="tea").id
    a = resolve(db, ws, ("phone", "13800138001"))
    b = resolve(db, other, ("phone", "13800138001"))
    assert a != b
    with db.session() as s:
        with pytest.raises(NotFound):
            ids.profile(s, other, a)
        with pytest.raises(NotFound):
            ids.resolve(s, 424242, [("phone", "13800138001")])
        with pytest.raises(InvalidInput) as exc:
            ids.resolve(s, True, [("phone", "13800138001")])
        assert fields(exc) == ["workspace_id"]
        with pytest.raises(InvalidInput) as exc:
            ids.resolve(s, ws, [("phone", "13800138001")], event_ref="x" * 201)
        assert fields(exc) == ["event_ref"]


# --- unmerge: split a person back along the merge log ----------------------------------------------------


def test_unmerge_restores_both_people_and_tells_which_events_move_back(db, ws):
    dad = resolve(db, ws, ("member_id", "M-dad"), ("visitor_cookie", "c-dad"), ref="e1")
    kid = resolve(db, ws, ("email", "kid@x.cn"), ("visitor_cookie", "c-kid"), ref="e2")
    # The kid borrowed dad's phone browser once: both cookies in one session merged them.
    assert resolve(db, ws, ("visitor_cookie", "c-dad"), ("visitor_cookie", "c-kid"), ref="e3") == dad
    events = {  # the event store's rows: their identifiers, and the super id stamped on them
        "e1": [("member_id", "M-dad"), ("visitor_cookie", "c-dad")],
        "e2": [("email", "kid@x.cn"), ("visitor_cookie", "c-kid")],
        "e4": [("visitor_cookie", "c-kid")],
    }
    with db.session() as s:
        assert ids.reassign_events(s, ws, list(events.values())) == [dad, dad, dad]
        result = ids.unmerge(s, ws, kid, actor="ops@coffee")
        assert (result.kept, result.restored) == (dad, kid)
        assert result.moved == [("email", "kid@x.cn"), ("visitor_cookie", "c-kid")]
        assert result.identifiers == {
            dad: [("member_id", "M-dad"), ("visitor_cookie", "c-dad")],
            kid: [("email", "kid@x.cn"), ("visitor_cookie", "c-kid")],
        }
        # The caller re-stamps its events with this:
        assert ids.reassign_events(s, ws, list(events.values())) == [dad, kid, kid]
        assert [e["action"] for e in ids.merge_log(s, ws)] == ["merge", "unmerge"]  # append-only
        with pytest.raises(Conflict):
            ids.unmerge(s, ws, kid)  # already apart
    # The link that joined them does not join them again.
    assert resolve(db, ws, ("visitor_cookie", "c-dad"), ("visitor_cookie", "c-kid"), ref="e5") == dad
    with db.session() as s:
        assert ids.lookup(s, ws, "visitor_cookie", "c-kid") == kid
        assert ids.list_conflicts(s, ws)[0]["kind"] == "kept_apart"


def test_unmerge_takes_along_whoever_had_merged_into_the_person(db, ws):
    a = resolve(db, ws, ("member_id", "A"), ("visitor_cookie", "ca"))
    b = resolve(db, ws, ("email", "b@x.cn"), ("visitor_cookie", "cb"))
    b2 = resolve(db, ws, ("email", "b2@x.cn"), ("visitor_cookie", "cb2"))
    assert resolve(db, ws, ("visitor_cookie", "cb"), ("visitor_cookie", "cb2")) == b  # b2 → b
    assert resolve(db, ws, ("visitor_cookie", "ca"), ("visitor_cookie", "cb")) == a  # b (with b2) → a
    with db.session() as s:
        assert ids.profile(s, ws, a)["merged_ids"] == [b, b2]
        result = ids.unmerge(s, ws, b)
        assert result.identifiers == {
            a: [("member_id", "A"), ("visitor_cookie", "ca")],
            b: [("email", "b@x.cn"), ("visitor_cookie", "cb"), ("email", "b2@x.cn"), ("visitor_cookie", "cb2")],
        }
        assert ids.profile(s, ws, b)["merged_ids"] == [b2]
        assert ids.lookup(s, ws, "email", "b2@x.cn") == b


# --- erasure hook ------------------------------------------------------------------------------------------


def test_an_erased_person_is_never_linked_again(db, ws):
    p = resolve(db, ws, ("phone", "13800138001"), ("email", "gone@x.cn"), ref="e1")
    q = resolve(db, ws, ("email", "gone@x.cn"), ("visitor_cookie", "c9"))
    assert p == q
    with db.session() as s:
        assert ids.erase(s, ws, p) == 3
        with pytest.raises(NotFound):
            ids.profile(s, ws, p)
        assert ids.lookup(s, ws, "email", "gone@x.cn") is None
    # The same identifiers arriving again are ignored: nothing is re-created or re-merged.
    assert resolve(db, ws, ("phone", "13800138001"), ("email", "gone@x.cn")) is None
    fresh = resolve(db, ws, ("email", "gone@x.cn"), ("member_id", "M-new"))
    with db.session() as s:
        assert [i["type"] for i in ids.identifiers_of(s, ws, fresh)] == ["member_id"]


# --- short-link visitors and personal links ----------------------------------------------------------------


def test_a_short_link_visitor_becomes_known_when_that_browser_identifies(db, ws):
    with db.session() as s:
        assert ids.resolve_click(s, ws, "sy_vid_abc", None) is None  # an anonymous click stays anonymous
    # Later the same browser signs in on the brand's H5 page: its sy_vid cookie joins the graph.
    member = resolve(db, ws, ("member_id", "M42"), ("visitor_cookie", "sy_vid_abc"), ref="login")
    with db.session() as s:
        assert ids.resolve_click(s, ws, "sy_vid_abc", None) == member
        # ... and the earlier clicks can be re-stamped from their visitor id.
        assert ids.reassign_events(s, ws, [[("visitor_cookie", "sy_vid_abc")]]) == [member]


def test_a_personal_link_attributes_the_click_to_its_member_without_adopting_the_browser(db, ws):
    member = resolve(db, ws, ("member_id", "M42"), ("phone", "13800138042"))
    with db.session() as s:
        assert ids.resolve_click(s, ws, "friends-browser", "M42", event_ref="click-1") == member
        # Personal links get forwarded in WeChat groups: the clicking browser is not linked to M42.
        assert ids.lookup(s, ws, "visitor_cookie", "friends-browser") is None
        # A person_ref not seen before is a member we did not know yet.
        newcomer = ids.resolve_click(s, ws, None, "M43")
        assert newcomer not in (None, member)
        assert ids.resolve_click(s, ws, "friends-browser", "null") is None  # junk ref, unknown browser
        with pytest.raises(InvalidInput) as exc:
            ids.resolve_click(s, ws, 123, None)
        assert fields(exc) == ["visitor_id"]
        with pytest.raises(InvalidInput) as exc:
            ids.resolve_click(s, ws, None, "M" * 300)
        assert fields(exc) == ["person_ref"]


# --- configuration per workspace ----------------------------------------------------------------------------


def test_workspaces_add_custom_identifier_types_and_tune_the_defaults(db, ws):
    with db.session() as s:
        crm = configure_type(s, ws, "crm_id", {"priority": 5, "unique": True})
        assert crm.as_dict() == {
            "name": "crm_id",
            "priority": 5,
            "unique": True,
            "max_values": 1,
            "max_people": 5,
            "weak": False,
            "blocked_values": [],
        }
        configure_type(s, ws, "email", {"blocked_values": ["noreply@coffee.cn"], "max_values": 5})
        rules = get_rules(s, ws)
        assert list(rules.types)[0] == "crm_id"  # strongest first
        assert rules["email"].limit == 5
    p = resolve(db, ws, ("crm_id", "C-1"), ("email", "noreply@coffee.cn"), ("email", "a@b.cn"))
    with db.session() as s:
        assert [(i["type"], i["value"]) for i in ids.identifiers_of(s, ws, p)] == [
            ("crm_id", "C-1"),
            ("email", "a@b.cn"),
        ]
        with pytest.raises(InvalidInput) as exc:
            configure_type(s, ws, "Bad Name", {})
        assert fields(exc) == ["name"]
        with pytest.raises(InvalidInput) as exc:
            configure_type(s, ws, "crm_id", {"priority": -1, "unique": "yes", "colour": "red", "blocked_values": [1]})
        assert sorted(fields(exc)) == ["blocked_values[0]", "colour", "priority", "unique"]


def test_weak_types_never_merge_two_identified_people(db, ws):
    """Opt-in: with device_id weak, a family tablet cannot join a phone-only and a member-only person.

    Off by default: on the synthetic population it costs far more recall than it saves precision
    (docs/benchmarks.md), because a person's own devices are often the only bridge between their
    CRM record and their WeChat identity.
    """
    mum = resolve(db, ws, ("phone", "13900139001"), ("device_id", "ipad"))
    assert resolve(db, ws, ("member_id", "M-son"), ("device_id", "ipad")) == mum  # no clash, so: merged
    with db.session() as s:
        other = workspaces.create_workspace(s, "Tea Co", slug="tea").id
        configure_type(s, other, "device_id", {"weak": True})
    mum2 = resolve(db, other, ("phone", "13900139001"), ("device_id", "ipad"))
    son2 = resolve(db, other, ("member_id", "M-son"), ("device_id", "ipad"))
    assert son2 != mum2
    assert resolve(db, other, ("device_id", "ipad")) == mum2  # anonymous use still goes to its owner
    with db.session() as s:
        assert ids.list_conflicts(s, other) == []  # routine, so not recorded
