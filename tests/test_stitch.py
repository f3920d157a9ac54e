"""The stitcher: every stored event and short-link click ends up with a person (One ID) in `event_persons`.

Everything goes through the real system: Segment calls into the tracking API, short-link visits through
the redirect, the Runtime's writers and its stitcher (`runtime.stitch_now()` drains the writers and
stitches synchronously; the background worker does the same on its own). Read top to bottom: how
identifiers are read from messages, then linking across events, short-link visitors, merges and
unmerges, what the listeners hear, and what survives a crash. The issue's end-to-end story closes it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from conftest import make_settings
from sqlalchemy import select

from siyu.events.ingest import Sender
from siyu.identity import service as ids
from siyu.identity import stitch
from siyu.identity.extract import message_identifiers, usable_keys
from siyu.identity.models import IdentityErased, IdentityPerson
from siyu.identity.rules import default_rules
from siyu.runtime import Runtime
from siyu.sources import service as sources
from siyu.workspaces import service as workspaces

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
RULES = default_rules()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def source(rt: Runtime, kind: str, workspace_id: int = 1) -> str:
    with rt.db.session() as session:
        return sources.create_source(session, workspace_id, f"{kind}-{uuid.uuid4().hex[:6]}", kind).write_key


def send(client, write_key: str, type_: str, **message) -> str:
    """One Segment call through the tracking API; returns its messageId."""
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    response = client.post(f"/v1/{type_}", json=message, headers={"Authorization": auth})
    assert response.status_code == 200, response.text
    return message["messageId"]


def visit(client, slug: str, agent: str = IPHONE_SAFARI, cookie: str | None = None) -> str:
    """A short-link visit; returns the visitor id (the cookie the redirect set, or the one sent)."""
    headers = {"User-Agent": agent}
    if cookie:
        headers["Cookie"] = f"sy_vid={cookie}"
    response = client.get(f"/{slug}", headers=headers)
    assert response.status_code in (301, 302, 307, 308), response.text
    return cookie or re.match(r"sy_vid=([^;]+)", response.headers["set-cookie"]).group(1)


def persons(rt: Runtime, workspace_id: int = 1) -> dict[str, int | None]:
    """event_id -> super ID of every stitched event and click, once everything stored is stitched."""
    rt.stitch_now()
    rows = rt.store.query(
        "SELECT event_id, super_id FROM event_persons WHERE workspace_id = ? ORDER BY ts", [workspace_id]
    )
    return dict(rows)


def clicks_of(rt: Runtime, visitor_id: str) -> list[str]:
    rt.clicks.flush()
    return [r[0] for r in rt.store.query("SELECT click_id FROM clicks WHERE visitor_id = ? ORDER BY ts", [visitor_id])]


def holder(rt: Runtime, id_type: str, value: str, workspace_id: int = 1) -> int | None:
    with rt.db.session() as session:
        return ids.lookup(session, workspace_id, id_type, value)


class Recorder:
    """A PersonListener that writes down what it hears (the profile and consent listeners do real work)."""

    def __init__(self) -> None:
        self.stitched: list = []
        self.merged: list[tuple[int, int, int]] = []
        self.split: list[tuple[int, int, int]] = []
        self.erased: list[tuple[int, int]] = []

    def events_stitched(self, session, events) -> None:
        self.stitched.extend(events)

    def persons_merged(self, session, workspace_id, survivor, absorbed) -> None:
        self.merged.append((workspace_id, survivor, absorbed))

    def person_split(self, session, workspace_id, kept, restored) -> None:
        self.split.append((workspace_id, kept, restored))

    def person_erased(self, session, workspace_id, super_id) -> None:
        self.erased.append((workspace_id, super_id))


@pytest.fixture
def recorder(runtime) -> Recorder:
    listener = Recorder()
    runtime.person_listeners.append(listener)
    return listener


# --- which identifiers a message carries --------------------------------------------------------------------


def test_user_id_traits_device_and_external_ids_are_read_from_a_message():
    message = {
        "type": "identify",
        "userId": "M-1001",
        "anonymousId": "ajs-7",
        "traits": {"phone": 13912345678, "email": "Li.Lei@Example.com", "openid": "oAbC", "appid": "wx11"},
        "context": {
            "traits": {"unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL"},
            "device": {"id": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
            "externalIds": [
                {"id": "sy-visitor-1", "type": "visitor_cookie", "collection": "users", "encoding": "none"},
                {"id": "GA1.2.3", "type": "ga_client_id"},  # a type the workspace does not know: ignored
            ],
        },
    }
    assert usable_keys(RULES, message_identifiers(message, "website", RULES)) == [
        ("member_id", "M-1001"),
        ("unionid", "o6_bmasdasdsad6_2sgVt7hMZOPfL"),
        ("phone", "+8613912345678"),
        ("email", "li.lei@example.com"),
        ("openid", "wx11:oAbC"),
        ("device_id", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
        ("visitor_cookie", "ajs-7"),
        ("visitor_cookie", "sy-visitor-1"),
    ]


def test_a_mini_programs_anonymous_id_is_a_device_a_websites_is_a_browser_cookie():
    message = {"type": "track", "anonymousId": "dev-42", "event": "Viewed"}
    assert usable_keys(RULES, message_identifiers(message, "mini_program", RULES)) == [("device_id", "dev-42")]
    assert usable_keys(RULES, message_identifiers(message, "website", RULES)) == [("visitor_cookie", "dev-42")]
    alias = {"type": "alias", "userId": "M-1", "previousId": "dev-42"}
    assert ("device_id", "dev-42") in usable_keys(RULES, message_identifiers(alias, "mini_program", RULES))


def test_the_appid_of_an_openid_comes_from_the_traits_or_the_context_and_without_it_the_openid_is_skipped():
    def openids(message):
        return [k for k in usable_keys(RULES, message_identifiers(message, "mini_program", RULES)) if k[0] == "openid"]

    traits = {"type": "identify", "userId": "M-1", "traits": {"openid": "oX"}}
    assert openids({**traits, "context": {"app": {"id": "wxA"}}}) == [("openid", "wxA:oX")]
    assert openids({**traits, "context": {"wechat": {"appid": "wxB"}}}) == [("openid", "wxB:oX")]
    assert openids(traits) == []


def test_junk_and_malformed_identifiers_are_dropped_one_by_one_and_group_traits_are_not_the_persons():
    message = {
        "type": "identify",
        "userId": "undefined",  # junk an SDK sends for "no value"
        "anonymousId": "ajs-1",
        "traits": {"phone": "not a phone", "email": "li@example.com", "member_id": {"nested": 1}},
    }
    assert usable_keys(RULES, message_identifiers(message, "website", RULES)) == [
        ("email", "li@example.com"),
        ("visitor_cookie", "ajs-1"),
    ]
    group = {"type": "group", "userId": "M-1", "groupId": "g", "traits": {"email": "office@corp.example"}}
    assert usable_keys(RULES, message_identifiers(group, "website", RULES)) == [("member_id", "M-1")]


# --- events through the tracking API reach event_persons ---------------------------------------------------


def test_events_reach_event_persons_with_the_person_they_belong_to(client, runtime):
    web = source(runtime, "website")
    a = send(client, web, "identify", userId="M-1", traits={"phone": "13900000001", "name": "Li Lei"})
    b = send(client, web, "track", userId="M-1", event="Product Viewed")
    c = send(client, web, "track", anonymousId="stranger-cookie", event="Product Viewed")
    d = send(client, web, "page", anonymousId="anon-x", context={"traits": {"phone": "139 0000 0001"}})

    stitched = persons(runtime)
    li = holder(runtime, "member_id", "M-1")
    assert stitched[a] == stitched[b] == stitched[d] == li  # d: same phone, in any spelling
    assert stitched[c] == holder(runtime, "visitor_cookie", "stranger-cookie") != li


def test_a_merge_repoints_the_earlier_events_of_the_absorbed_person(client, runtime, recorder):
    web, crm = source(runtime, "website"), source(runtime, "crm")
    send(client, crm, "identify", userId="M-7", traits={"email": "wang@example.com"})
    browsing = [send(client, web, "page", anonymousId="cookie-9", name=f"p{n}") for n in range(3)]
    before = persons(runtime)
    member, visitor = holder(runtime, "member_id", "M-7"), holder(runtime, "visitor_cookie", "cookie-9")
    assert {before[m] for m in browsing} == {visitor} and visitor != member

    login = send(client, web, "identify", userId="M-7", anonymousId="cookie-9")
    after = persons(runtime)
    assert {after[m] for m in [*browsing, login]} == {member}  # the older super ID survives
    assert visitor not in after.values()
    assert (1, member, visitor) in recorder.merged


def test_one_bad_identifier_does_not_lose_the_event(client, runtime):
    web = source(runtime, "website")
    ok = send(client, web, "identify", userId="M-5", traits={"phone": "12", "email": "nope"})
    nothing = send(client, web, "track", anonymousId="null", event="Junk", traits={})
    stitched = persons(runtime)
    assert stitched[ok] == holder(runtime, "member_id", "M-5") is not None
    assert stitched[nothing] is None  # only junk: stored, stitched, anonymous


def test_a_mini_program_device_and_its_member_are_one_person(client, runtime):
    mini = source(runtime, "mini_program")
    browse = send(client, mini, "screen", anonymousId="mp-device-1", name="Home")
    login = send(client, mini, "identify", anonymousId="mp-device-1", userId="M-88")
    stitched = persons(runtime)
    assert stitched[browse] == stitched[login] == holder(runtime, "device_id", "mp-device-1")
    assert holder(runtime, "visitor_cookie", "mp-device-1") is None


def test_events_already_known_to_belong_to_one_person_skip_the_merge_engine(client, runtime):
    web = source(runtime, "website")
    send(client, web, "identify", userId="M-3", anonymousId="c-3")
    runtime.stitch_now()
    slow_before, fast_before = runtime.stitcher.slow, runtime.stitcher.fast

    for n in range(20):
        send(client, web, "track", userId="M-3", anonymousId="c-3", event="Scrolled", properties={"n": n})
    send(client, web, "track", userId="M-3", anonymousId="c-new", event="Scrolled")
    assert runtime.stitch_now() == 21

    assert runtime.stitcher.fast - fast_before == 20
    assert runtime.stitcher.slow - slow_before == 1  # the new cookie has to be linked
    assert holder(runtime, "visitor_cookie", "c-new") == holder(runtime, "member_id", "M-3")


def test_workspaces_never_share_persons(client, runtime):
    with runtime.db.session() as session:
        other = workspaces.create_workspace(session, "Other brand").id
    mine, theirs = source(runtime, "website"), source(runtime, "website", other)
    a = send(client, mine, "identify", userId="M-1")
    b = send(client, theirs, "identify", userId="M-1")
    assert persons(runtime)[a] != persons(runtime, other)[b]


# --- short-link visitors ---------------------------------------------------------------------------------------


def test_a_short_link_click_becomes_known_when_the_landing_page_reports_its_visitor_id(client, runtime):
    web = source(runtime, "website")
    cookie = visit(client, "coffee")
    again = visit(client, "coffee", cookie=cookie)
    assert cookie == again
    first, second = clicks_of(runtime, cookie)
    assert persons(runtime)[first] is None  # a click alone names no one

    login = send(
        client,
        web,
        "identify",
        userId="M-21",
        context={"externalIds": [{"id": cookie, "type": "visitor_cookie", "collection": "users", "encoding": "none"}]},
    )
    stitched = persons(runtime)
    member = holder(runtime, "member_id", "M-21")
    assert stitched[login] == stitched[first] == stitched[second] == member

    later = visit(client, "coffee", cookie=cookie)
    assert persons(runtime)[clicks_of(runtime, later)[-1]] == member  # from now on at once


def test_a_personal_links_clicks_are_its_members_but_the_browser_is_not_adopted(client, runtime, auth):
    response = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example.com/vip", "slug": "for-wang", "person_ref": "M-42"},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    forwarded_to = visit(client, "for-wang", agent=DESKTOP_CHROME)

    (click,) = clicks_of(runtime, forwarded_to)
    assert persons(runtime)[click] == holder(runtime, "member_id", "M-42") is not None
    assert holder(runtime, "visitor_cookie", forwarded_to) is None  # forwarded in a group chat: not their browser


def test_bots_clicks_belong_to_no_one_and_listeners_do_not_hear_of_them(client, runtime, recorder):
    web = source(runtime, "website")
    cookie = visit(client, "coffee", agent=GOOGLEBOT)
    send(client, web, "identify", userId="M-9", context={"externalIds": [{"id": cookie, "type": "visitor_cookie"}]})
    (click,) = clicks_of(runtime, cookie)
    assert persons(runtime)[click] is None
    assert click not in {e.event_id for e in recorder.stitched}


# --- unmerge through the system ----------------------------------------------------------------------------------


def test_click_owners_match_workspace_and_cookie_together_and_skip_bots_and_cookieless_clicks():
    clicks = pa.table(
        {
            "workspace_id": pa.array([1, 2, 1, 1, 1, 2], pa.int32()),
            "visitor_id": ["v-a", "v-a", "v-b", "v-a", "", None],
            "is_bot": [False, False, False, True, False, False],
        }
    )
    usable = pa.array([True, True, True, False, False, False])  # what _stitch_clicks passes: not bot, has a cookie
    owners = stitch._owners(clicks, usable, [1, 2], ["v-a", "v-b"], [100, 200])
    # v-a is known in workspace 1 only, v-b in workspace 2 only; the bot and the cookieless clicks stay anonymous
    assert owners.to_pylist() == [100, None, None, None, None, None]
    assert stitch._owners(clicks, usable, [], [], []).to_pylist() == [None] * 6


def test_unmerge_gives_each_person_back_their_own_events(client, runtime, recorder):
    web, crm = source(runtime, "website"), source(runtime, "crm")
    member_event = send(client, crm, "identify", userId="M-7", traits={"email": "wang@example.com"})
    browsing = [send(client, web, "page", anonymousId="shared-pc", name=f"p{n}") for n in range(2)]
    persons(runtime)
    member, visitor = holder(runtime, "member_id", "M-7"), holder(runtime, "visitor_cookie", "shared-pc")
    login = send(client, web, "identify", userId="M-7", anonymousId="shared-pc")
    assert set(persons(runtime).values()) == {member}

    split = runtime.stitcher.unmerge(1, visitor, "test")
    assert (split.kept, split.restored) == (member, visitor)
    after = persons(runtime)
    assert [after[m] for m in browsing] == [visitor, visitor]  # their own identifiers are the cookie's
    assert after[member_event] == after[login] == member  # the login names the member first
    assert recorder.split == [(1, member, visitor)]

    again = send(client, web, "identify", userId="M-7", anonymousId="shared-pc")  # the same link, once more
    assert persons(runtime)[again] == member and holder(runtime, "visitor_cookie", "shared-pc") == visitor


def test_unmerging_a_person_that_was_never_merged_is_a_conflict_naming_the_field(client, runtime):
    send(client, source(runtime, "website"), "identify", userId="M-1")
    persons(runtime)
    from siyu.errors import Conflict, NotFound

    with pytest.raises(Conflict) as exc:
        runtime.stitcher.unmerge(1, holder(runtime, "member_id", "M-1"))
    assert exc.value.field == "person_id"
    with pytest.raises(NotFound):
        runtime.stitcher.unmerge(1, 999_999)


# --- what listeners hear ---------------------------------------------------------------------------------------------


def test_listeners_hear_each_batch_with_traits_and_final_super_ids(client, runtime, recorder):
    web = source(runtime, "website")
    send(client, web, "page", anonymousId="c-1", context={"traits": {"nickname": "阿伟"}})
    login = send(client, web, "identify", userId="M-1", anonymousId="c-1", traits={"plan": "gold"})
    send(client, source(runtime, "crm"), "identify", userId="M-1", traits={"phone": "13900000002"})
    runtime.stitch_now()

    member = holder(runtime, "member_id", "M-1")
    heard = {e.event_id: e for e in recorder.stitched}
    assert heard[login].super_id == member and heard[login].traits == {"plan": "gold"}
    assert heard[login].kind == "event" and heard[login].type == "identify"
    assert heard[login].timestamp.tzinfo is not None
    assert {e.super_id for e in recorder.stitched} == {member}


def test_a_poisoned_event_is_stored_as_anonymous_and_does_not_block_the_rest(client, runtime, recorder):
    class Picky:
        def events_stitched(self, session, events):
            if any(e.properties.get("poison") for e in events):
                raise ValueError("cannot digest this one")

        def persons_merged(self, *args): ...

        def person_split(self, *args): ...

        def person_erased(self, *args): ...

    runtime.person_listeners.insert(0, Picky())
    web = source(runtime, "website")
    good = [send(client, web, "track", userId=f"M-{n}", event="Ok") for n in range(5)]
    bad = send(client, web, "track", userId="M-2", event="Bad", properties={"poison": True})
    more = send(client, web, "track", userId="M-3", event="Ok")

    stitched = persons(runtime)
    assert stitched[bad] is None
    assert [stitched[g] for g in good] == [holder(runtime, "member_id", f"M-{n}") for n in range(5)]
    assert stitched[more] == holder(runtime, "member_id", "M-3")
    assert runtime.stitcher.poisoned == 1
    assert bad not in {e.event_id for e in recorder.stitched}  # its batch was rolled back, nobody heard of it


# --- restarts and failures ---------------------------------------------------------------------------------------------


def ingest(rt: Runtime, write_key_source_id: int, received_at: float | None = None, **message) -> str:
    """Store an event the way the tracking API does, without a running server (no stitcher either)."""
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    result = rt.ingestor.ingest_one(Sender(1, write_key_source_id), message["type"], message, received_at)
    assert result.accepted == 1
    rt.events.flush()
    return message["messageId"]


def source_id(rt: Runtime, kind: str = "server") -> int:
    with rt.db.session() as session:
        return sources.create_source(session, 1, f"{kind}-{uuid.uuid4().hex[:6]}", kind).source.id


def crash(rt: Runtime) -> None:
    """The process dies: nothing is stopped or drained, the files stay as they are."""
    rt.store.close()
    rt.db.dispose()


def test_events_stored_before_a_crash_are_stitched_at_the_next_start(settings, first_run):
    rt = Runtime.create(settings)
    src = source_id(rt)
    early = ingest(rt, src, type="identify", userId="M-1")
    assert rt.stitch_now() == 1
    stored_only = [ingest(rt, src, type="track", userId="M-1", event=f"e{n}") for n in range(3)]
    crash(rt)

    rt = Runtime.create(settings)
    try:
        stitched = persons(rt)
        assert set(stitched) == {early, *stored_only}
        assert set(stitched.values()) == {holder(rt, "member_id", "M-1")}
    finally:
        rt.close()


def test_rows_written_long_after_they_arrived_are_found_at_the_next_start(settings, first_run):
    # A previous run could not write them and kept them in its spill file: they arrive with old times.
    rt = Runtime.create(settings)
    src = source_id(rt)
    ingest(rt, src, type="identify", userId="M-1")
    rt.stitch_now()
    hours_ago = (datetime.now(UTC) - timedelta(hours=3)).timestamp()
    late = ingest(rt, src, received_at=hours_ago, type="track", userId="M-2", event="Paid")
    assert late not in persons(rt)  # older than the overlap a running stitcher re-checks
    crash(rt)

    rt = Runtime.create(settings)
    try:
        assert persons(rt)[late] == holder(rt, "member_id", "M-2") is not None
    finally:
        rt.close()


def test_when_the_event_store_refuses_a_resolved_batch_it_is_written_later_without_resolving_again(
    runtime, first_run, monkeypatch
):
    src = source_id(runtime)
    event = ingest(runtime, src, type="identify", userId="M-1", traits={"phone": "13900000003"})
    save = runtime.store.save_stitched

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runtime.store, "save_stitched", refuse)
    with pytest.raises(OSError):
        runtime.stitch_now()
    monkeypatch.setattr(runtime.store, "save_stitched", save)
    slow = runtime.stitcher.slow

    stitched = persons(runtime)
    assert stitched == {event: holder(runtime, "member_id", "M-1")}
    assert runtime.stitcher.slow == slow  # written from memory, not resolved again
    with runtime.db.session() as session:
        assert len(session.scalars(select(IdentityPerson.id)).all()) == 1


def test_a_crash_between_the_database_commit_and_the_event_store_restitches_the_same_people(
    settings, first_run, monkeypatch
):
    rt = Runtime.create(settings)
    src = source_id(rt)
    event = ingest(rt, src, type="identify", userId="M-1", anonymousId="c-1")

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(rt.store, "save_stitched", die)
    with pytest.raises(SystemExit):
        rt.stitch_now()
    monkeypatch.undo()
    crash(rt)

    rt = Runtime.create(settings)
    try:
        assert persons(rt) == {event: holder(rt, "member_id", "M-1")}
        assert holder(rt, "visitor_cookie", "c-1") == holder(rt, "member_id", "M-1")
        with rt.db.session() as session:
            assert len(session.scalars(select(IdentityPerson.id)).all()) == 1  # resolving again changed nothing
        assert rt.store.query("SELECT count(*) FROM event_persons")[0][0] == 1
    finally:
        rt.close()


def test_a_graceful_stop_stitches_everything_the_writers_held(client, runtime):
    web = source(runtime, "website")
    sent = [send(client, web, "track", userId="M-1", event=f"e{n}") for n in range(50)]
    cookie = visit(client, "coffee")
    runtime.stop()  # what the server does on shutdown: the writers drain, then the stitcher

    rows = dict(runtime.store.query("SELECT event_id, super_id FROM event_persons"))
    assert set(sent) <= set(rows)
    assert clicks_of(runtime, cookie)[0] in rows


def test_the_stitcher_works_the_same_on_postgresql(pg_url, tmp_path):
    from siyu.bootstrap import initialize

    rt = Runtime.create(make_settings(tmp_path, pg_url))
    try:
        initialize(rt.settings, rt.db, demo=False)
        src = source_id(rt)
        member = ingest(rt, src, type="identify", userId="M-1", traits={"phone": "13900000004"})
        browsing = ingest(rt, src, type="page", anonymousId="c-1", name="Home")
        rt.stitch_now()
        visitor = holder(rt, "visitor_cookie", "c-1")
        login = ingest(rt, src, type="identify", userId="M-1", anonymousId="c-1")
        assert set(persons(rt).values()) == {holder(rt, "member_id", "M-1")} != {visitor}

        split = rt.stitcher.unmerge(1, visitor)
        stitched = persons(rt)
        assert stitched[browsing] == split.restored == visitor
        assert stitched[member] == stitched[login] == split.kept
    finally:
        rt.close()


# --- erased identifiers are kept as keyed digests --------------------------------------------------------------------


def test_erased_identifiers_are_kept_as_keyed_digests_and_never_link_again(client, runtime):
    web = source(runtime, "website")
    send(client, web, "identify", userId="M-1", traits={"phone": "13912345678"})
    persons(runtime)
    with runtime.db.session() as session:
        ids.erase(session, 1, holder(runtime, "phone", "13912345678"))
    with runtime.db.session() as session:
        digests = set(session.scalars(select(IdentityErased.digest)))
    plain = hashlib.sha256(b"1\x00phone\x00+8613912345678").hexdigest()
    assert len(digests) == 2 and plain not in digests  # enumerating phone numbers finds nothing

    again = send(client, web, "identify", traits={"phone": "139 1234 5678"}, anonymousId="new-browser")
    stitched = persons(runtime)
    assert holder(runtime, "phone", "13912345678") is None
    assert stitched[again] == holder(runtime, "visitor_cookie", "new-browser")


def test_migration_0005_turns_plain_digests_into_keyed_ones_that_still_block(tmp_path):
    from alembic import command
    from alembic.config import Config

    from siyu.db import Database

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", "siyu:migrations")
    cfg.attributes["connection_engine"] = db.engine
    command.upgrade(cfg, "0004")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO workspaces (id, name, slug, ip_mode, ip_salt, created_at) "
            "VALUES (1, 'Shop', 'shop', 'truncated', '00', '2026-01-01 00:00:00')"
        )
        plain = hashlib.sha256(b"1\x00phone\x00+8613912345678").hexdigest()
        conn.exec_driver_sql(
            "INSERT INTO identity_erased (workspace_id, digest, reason, created_at) "
            f"VALUES (1, '{plain}', 'erasure', '2026-01-01 00:00:00')"
        )
    command.upgrade(cfg, "head")
    with db.session() as session:
        (digest,) = session.scalars(select(IdentityErased.digest)).all()
        assert digest != plain
        assert ids.resolve(session, 1, [("phone", "13912345678")]) is None  # still erased
        assert ids.resolve(session, 1, [("phone", "13912345679")]) is not None
    with pytest.raises(RuntimeError, match="cannot downgrade"):
        command.downgrade(cfg, "0004")
    db.dispose()


# --- the story ---------------------------------------------------------------------------------------------------


def test_a_phone_click_a_mini_program_login_and_a_store_purchase_are_one_person(client, runtime, auth):
    mini, store, crm = source(runtime, "mini_program"), source(runtime, "store"), source(runtime, "crm")

    # 1. Someone taps a short link on their phone. The link passes the visitor id on to the landing
    #    page (pass_visitor_id): the id in the destination URL is the cookie the redirect set.
    link = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example.cn/mp-landing", "slug": "mp-launch", "pass_visitor_id": True},
        headers=auth,
    )
    assert link.status_code == 201, link.text
    response = client.get("/mp-launch", headers={"User-Agent": IPHONE_SAFARI})
    cookie = re.match(r"sy_vid=([^;]+)", response.headers["set-cookie"]).group(1)
    assert response.headers["location"] == f"https://shop.example.cn/mp-landing?sy_vid={cookie}"
    (click,) = clicks_of(runtime, cookie)
    runtime.stitch_now()

    # 2. Later they log in to the mini program with their phone number; the landing page read sy_vid
    #    from its URL, and the mini program reports it as an external id.
    login = send(
        client,
        mini,
        "identify",
        anonymousId="mp-storage-id-1",
        traits={"phone": "139 1234 5678"},
        context={"externalIds": [{"id": cookie, "type": "visitor_cookie"}]},
    )
    runtime.stitch_now()

    # 3. They buy in a store, showing the member card.
    purchase = send(
        client, store, "track", userId="VIP-0042", event="Order Completed", properties={"order_id": "S-1", "total": 88}
    )
    runtime.stitch_now()

    # 4. The nightly CRM sync says member VIP-0042 has that phone number.
    sync = send(client, crm, "identify", userId="VIP-0042", traits={"phone": "+86 139-1234-5678"})

    stitched = persons(runtime)
    (person,) = {stitched[e] for e in (click, login, purchase, sync)}
    assert person is not None
    assert person == holder(runtime, "visitor_cookie", cookie) == holder(runtime, "member_id", "VIP-0042")
    assert person == holder(runtime, "device_id", "mp-storage-id-1")
    assert runtime.store.event_ids_of(1, person) == [
        ("click", click),
        ("event", login),
        ("event", purchase),
        ("event", sync),
    ]
