"""Customer value over the real pipeline: tracked orders → One ID stitcher → value run → stored results,
model tags and segments; share-link clicks through the real redirect → referral edges and fission trees.

Messages go in through the runtime's tracking ingestor (what POST /v1/batch calls), `stitch_now()`
resolves them like the background stitcher, `service.run` computes as the worker does. The shop in
tests/value_data.py is deterministic, so the assertions say what the models must find.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import value_data
from sqlalchemy import select
from value_data import LOYAL_EVERY, NOW, identify, order

from siyu.errors import InvalidInput, NotFound
from siyu.events.ingest import Sender
from siyu.identity import service as identity
from siyu.segments import service as segments
from siyu.segments.models import SegmentMember
from siyu.sources import service as sources
from siyu.tags.models import TagAssignment, TagDefinition, TagHistory
from siyu.value import audiences, config, queries, service, share
from siyu.value.models import Referral, ValuePerson, ValueRepurchase
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from siyu import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def ws(runtime, first_run) -> int:
    with runtime.db.session() as s:
        return s.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))


def track(runtime, ws: int, messages: list[dict]) -> None:
    """Through the tracking ingestor, then stitched."""
    with runtime.db.session() as s:
        source = sources.list_sources(s, ws)[0].id if sources.list_sources(s, ws) else None
        if source is None:
            source = sources.create_source(s, ws, "官网", "website").source.id
    for chunk in value_data.chunks(messages):
        result = runtime.ingestor.ingest_batch(Sender(ws, source), {"batch": chunk})
        assert not result.refused, result.refused
    runtime.stitch_now()


def person(runtime, ws: int, member: str) -> int:
    with runtime.db.session() as s:
        found = identity.lookup(s, ws, "member_id", member)
    assert found is not None, member
    return found


@pytest.fixture
def shop(runtime, ws) -> dict:
    track(runtime, ws, value_data.shop())
    result = service.run(runtime.db, runtime.store, ws, actor="test")
    assert result["status"] == "succeeded", result["error"]
    return result


def value_of(runtime, ws: int, super_id: int) -> ValuePerson:
    with runtime.db.session() as s:
        row = s.get(ValuePerson, (ws, super_id))
    assert row is not None
    return row


# --- one run ------------------------------------------------------------------------------------------------


def test_a_run_finds_the_shops_segments_lifetime_value_and_clusters(runtime, ws, shop):
    s = shop["summary"]
    assert shop["orders"] == s["orders"] > 200 and s["buyers"] == 61 and set(s["notes"]) == {"social"}
    grid = {c["segment"]: c for c in s["rfm"]["grid"]}
    assert len(grid) == 8 and sum(c["customers"] for c in grid.values()) == 61
    assert abs(sum(c["revenue_share"] for c in grid.values()) - 1) < 1e-3
    # loyal members buy often, spend most and bought recently: important value customers
    loyal = value_of(runtime, ws, person(runtime, ws, "L05"))
    assert loyal.rfm_segment == "important_value" and loyal.f_score == 5
    one_time = value_of(runtime, ws, person(runtime, ws, "T03"))
    assert one_time.rfm_segment == "general_winback" and one_time.frequency == 1
    assert [t["tier"] for t in s["pyramid"]["tiers"]] == ["vip", "high", "medium", "low"]
    # CLV: a loyal member is worth more than a one-time buyer, and likely to buy in the next 30 days
    assert loyal.clv > 5 * one_time.clv and loyal.purchases_30d > 1 and loyal.purchase_intent == "likely"
    assert 0 < loyal.p_alive <= 1 and loyal.churn_risk == "low"
    assert s["clv"]["bgnbd"]["converged"] and s["clv"]["gamma_gamma"]["converged"]
    # clusters separate the loyal members from the one-time buyers, described in words
    assert loyal.cluster != one_time.cluster
    assert all(c["name_zh"] and c["name_en"] for c in s["clusters"]["clusters"])


def test_repurchase_cycles_per_category_and_who_is_due(runtime, ws, shop):
    loyal = person(runtime, ws, "L06")
    with runtime.db.session() as s:
        cycles = {
            c.category: c
            for c in s.scalars(
                select(ValueRepurchase).where(ValueRepurchase.workspace_id == ws, ValueRepurchase.super_id == loyal)
            )
        }
    assert set(cycles) == {"咖啡豆", "滤纸"}
    beans = cycles["咖啡豆"]
    last = value_data.loyal_days(6)[-1]
    assert beans.interval_days == LOYAL_EVERY and beans.interval_source == "person"
    assert beans.next_expected == (NOW + timedelta(hours=8) - timedelta(days=last) + timedelta(days=LOYAL_EVERY)).date()
    expected_status = "due" if abs(LOYAL_EVERY - last) <= 7 else "not_yet"
    assert beans.status == expected_status
    with runtime.db.session() as s:
        due = queries.repurchase_due(s, ws, "due", "咖啡豆", 200)
    ids = {r["super_id"] for r in due["items"]}
    assert (loyal in ids) == (expected_status == "due")
    assert {c["category"] for c in due["categories"]} >= {"咖啡豆", "滤纸", "挂耳咖啡"}


def test_basket_rules_say_beans_go_with_filter_paper_and_recommend_it(runtime, ws, shop):
    with runtime.db.session() as s:
        together = queries.bought_together(s, ws, "B01")
        beans_only = queries.person(s, ws, person(runtime, ws, "BEANS-ONLY"))
        loyal = queries.person(s, ws, person(runtime, ws, "L01"))
        with pytest.raises(NotFound):
            queries.bought_together(s, ws, "NO-SUCH-SKU")
    first = together["items"][0]
    assert first["product_id"] == "F01" and first["name"] == "V60 滤纸" and first["lift"] > 1
    assert first["confidence"] == pytest.approx(first["orders"] / together["orders"])
    assert [r["product_id"] for r in beans_only["recommendations"]][:1] == ["F01"]
    assert "F01" not in [r["product_id"] for r in loyal["recommendations"]]  # they already buy it


def test_value_results_become_model_tags_that_segments_can_use(runtime, ws, shop):
    with runtime.db.session() as s:
        tag = s.scalar(
            select(TagDefinition).where(TagDefinition.workspace_id == ws, TagDefinition.code == "churn_risk")
        )
        assert tag.kind == "model" and [v["code"] for v in tag.spec["values"]] == ["high", "medium", "low"]
        segment_tag = s.scalar(
            select(TagDefinition).where(TagDefinition.workspace_id == ws, TagDefinition.code == "rfm_segment")
        )
        held = dict(
            s.execute(
                select(TagAssignment.super_id, TagAssignment.value).where(TagAssignment.tag_id == segment_tag.id)
            ).all()
        )
        rows = dict(
            s.execute(select(ValuePerson.super_id, ValuePerson.rfm_segment).where(ValuePerson.workspace_id == ws)).all()
        )
        assert held == {k: v for k, v in rows.items() if v is not None}
        assert s.scalar(select(TagHistory.cause).where(TagHistory.tag_id == segment_tag.id).limit(1)) == "model"
        seg = segments.create_segment(
            s,
            ws,
            {"name": "重要价值", "rule": {"type": "tag", "tag": "rfm_segment", "op": "eq", "value": "important_value"}},
        ).id
    runtime.tags.recompute(ws)
    with runtime.db.session() as s:
        members = set(s.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == seg)))
    assert members == {k for k, v in rows.items() if v == "important_value"} and members


def test_a_second_run_changes_only_what_moved(runtime, ws, shop):
    track(runtime, ws, [order("T00", 9, 0, ["B01", "F01"]), order("T00", 10, 0.5, ["D01"])])  # a win-back
    again = service.run(runtime.db, runtime.store, ws)
    assert again["status"] == "succeeded"
    t00 = value_of(runtime, ws, person(runtime, ws, "T00"))
    assert t00.frequency == 3 and t00.rfm_segment != "general_winback"
    tags = again["summary"]["tags"]["rfm_segment"]
    assert tags["changed"] >= 1 and tags["gained"] == 0 and tags["members"] == 61


def test_consent_is_not_needed_to_compute_value(runtime, ws, shop):
    """Value is the brand's own analysis of its customers; exporting audiences is where consent applies."""
    denied = {"consent": {"categoryPreferences": {"marketing": False, "data_sharing": False, "personalization": False}}}
    track(runtime, ws, [identify("NO-CONSENT", 30, "不同意", denied), order("NO-CONSENT", 0, 29, ["B01"])])
    service.run(runtime.db, runtime.store, ws)
    assert value_of(runtime, ws, person(runtime, ws, "NO-CONSENT")).orders == 1


def test_a_workspace_without_orders_gets_a_run_that_says_why(runtime, ws):
    result = service.run(runtime.db, runtime.store, ws)
    assert result["status"] == "succeeded" and result["persons"] == 0
    assert set(result["summary"]["notes"]) >= {"rfm", "clv", "social"}
    with runtime.db.session() as s:
        assert queries.rfm_grid(s, ws)["rfm"] is None
        assert queries.people(s, ws)["total"] == 0


def test_workspaces_never_see_each_others_value(runtime, ws, shop):
    with runtime.db.session() as s:
        other = workspaces.create_workspace(s, "Other", slug="other").id
    result = service.run(runtime.db, runtime.store, other)
    assert result["persons"] == 0
    loyal = person(runtime, ws, "L00")
    with runtime.db.session() as s:
        assert queries.people(s, other)["total"] == 0
        with pytest.raises(NotFound):
            queries.person(s, other, loyal)
        assert queries.people(s, ws)["total"] == 61


# --- settings and rescoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"commercial_weight": -0.1}, "commercial_weight"),
        ({"commercial_weight": 0, "social_weight": 0}, "social_weight"),
        ({"social_weight": "lots"}, "social_weight"),
        ({"window_days": 0}, "window_days"),
        ({"koc_top": -1}, "koc_top"),
        ({"pyramid_method": "gut_feeling"}, "pyramid_method"),
        ({"share_url": "javascript:alert(1)"}, "share_url"),
        ({"utc_offset_hours": 30}, "utc_offset_hours"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_the_field_and_change_nothing(runtime, ws, raw, field):
    with runtime.db.session() as s:
        with pytest.raises(InvalidInput) as caught:
            config.save(s, ws, raw)
        assert [e.field for e in caught.value.errors] == [field]
        assert config.load(s, ws) == config.Config()


def test_new_weights_rescore_everyone_and_move_the_kocs(runtime, ws, shop):
    with runtime.db.session() as s:
        before = {r["super_id"]: r["value_score"] for r in queries.people(s, ws, limit=200)["items"]}
        config.save(s, ws, {"commercial_weight": 1, "social_weight": 0})
        assert service.rescore(s, ws) == len(before)
        after = {r["super_id"]: r["value_score"] for r in queries.people(s, ws, limit=200)["items"]}
    # without referrals the score is all commercial: the ranks stay, the scale moves from 30 to 100
    assert before.keys() == after.keys() and max(after.values()) == pytest.approx(100.0)
    assert max(before.values()) == pytest.approx(30.0)


# --- share links, referral edges, fission trees, KOCs ---------------------------------------------------------


WECHAT = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.44"


def write_key(runtime, ws: int) -> dict[str, str]:
    with runtime.db.session() as s:
        key = sources.create_source(s, ws, "落地页", "website").write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def arrive(client, key: dict[str, str], short_url: str, member: str, name: str, ua: str = WECHAT) -> str:
    """A visitor opens a share link (the real redirect), lands, identifies with the visitor cookie and orders."""
    client.cookies.clear()
    visit = client.get(short_url.split("sy.test", 1)[1], headers={"User-Agent": ua})
    assert visit.status_code == 302
    cookie = visit.cookies.get("sy_vid")
    landing = {"externalIds": [{"type": "visitor_cookie", "id": cookie, "collection": "users", "encoding": "none"}]}
    # After the click, whenever this runs: NOW is fixed at import, and a long suite outlives it.
    later = (max(NOW, datetime.now(UTC)) + timedelta(minutes=5)).isoformat()
    messages = [
        {"type": "identify", "userId": member, "traits": {"name": name}, "context": landing, "timestamp": later},
        {**order(member, 0, 0, ["D01"]), "timestamp": later},
    ]
    response = client.post("/v1/batch", json={"batch": messages}, headers=key)
    assert response.status_code == 200, response.text
    return cookie


def test_share_links_turn_first_touches_into_referral_trees_and_kocs(client, runtime, ws):
    track(runtime, ws, value_data.shop(loyal=6, occasional=6, one_time=6))
    with runtime.db.session() as s:
        config.save(s, ws, {"share_url": "https://shop.example/invite"})
    ctx = runtime.link_context(ws, "test")
    a = person(runtime, ws, "L00")
    with runtime.db.session() as s:
        shared = share.get_or_create(s, ctx, a)
        again = share.get_or_create(s, ctx, a)
        a_url = f"http://sy.test/{shared.link.slug}"
    assert shared.created and not again.created and again.link.id == shared.link.id
    assert shared.link.pass_visitor_id and shared.link.person_ref is None  # clicks stay the visitor's

    key = write_key(runtime, ws)
    arrive(client, key, a_url, "NEW-1", "新客一")  # A brings in NEW-1
    arrive(client, key, a_url, "O01", "偶尔1")  # an existing customer clicks too: not brought in by A
    runtime.stitch_now()
    new1 = person(runtime, ws, "NEW-1")
    with runtime.db.session() as s:
        new1_url = f"http://sy.test/{share.get_or_create(s, ctx, new1).link.slug}"
    arrive(client, key, new1_url, "NEW-2", "新客二")  # NEW-1 shares on: a second level
    arrive(client, key, new1_url, "NEW-3", "新客三")
    client.cookies.clear()
    assert client.get(a_url.split("sy.test", 1)[1], headers={"User-Agent": "Googlebot/2.1"}).status_code in (302, 200)
    runtime.stitch_now()

    result = service.run(runtime.db, runtime.store, ws)
    assert result["status"] == "succeeded" and "social" not in result["summary"]["notes"]
    ids = {m: person(runtime, ws, m) for m in ("NEW-1", "NEW-2", "NEW-3", "O01")}
    with runtime.db.session() as s:
        edges = {(r.referrer, r.referred) for r in s.scalars(select(Referral).where(Referral.workspace_id == ws))}
        tree = queries.tree(s, ws, a)
        kocs = queries.kocs(s, ws)["items"]
    assert edges == {(a, ids["NEW-1"]), (ids["NEW-1"], ids["NEW-2"]), (ids["NEW-1"], ids["NEW-3"])}
    assert tree["size"] == 4 and [c["super_id"] for c in tree["root"]["children"]] == [ids["NEW-1"]]
    assert {c["name"] for c in tree["root"]["children"][0]["children"]} == {"新客二", "新客三"}
    new1_value, a_value = value_of(runtime, ws, ids["NEW-1"]), value_of(runtime, ws, a)
    assert (a_value.direct_referrals, a_value.descendants, a_value.depth) == (1, 3, 0)
    assert (new1_value.referrer, new1_value.depth, new1_value.direct_referrals) == (a, 1, 2)
    assert new1_value.pagerank > 0 and a_value.pagerank > new1_value.pagerank  # who brings in sharers counts more
    assert value_of(runtime, ws, ids["O01"]).referrer is None
    assert {p["super_id"] for p in kocs} == {a, ids["NEW-1"]}  # only people who brought someone in

    # social weighs 100 %: the sharer who started the tree ranks first
    with runtime.db.session() as s:
        config.save(s, ws, {"commercial_weight": 0, "social_weight": 1, "koc_top": 1})
        service.rescore(s, ws)
        top = queries.kocs(s, ws)["items"]
        koc_tag = s.scalar(select(TagDefinition).where(TagDefinition.workspace_id == ws, TagDefinition.code == "koc"))
        holders = set(s.scalars(select(TagAssignment.super_id).where(TagAssignment.tag_id == koc_tag.id)))
    assert [p["super_id"] for p in top] == [a] and holders == {a}


def test_a_share_link_needs_a_person_and_a_landing_page(runtime, ws):
    ctx = runtime.link_context(ws, "test")
    track(runtime, ws, [identify("SOLO", 1, "独自")])
    solo = person(runtime, ws, "SOLO")
    with runtime.db.session() as s:
        with pytest.raises(NotFound):
            share.get_or_create(s, ctx, 987654)
        with pytest.raises(InvalidInput) as caught:
            share.get_or_create(s, ctx, solo)
        assert caught.value.errors[0].field == "destination_url"
        made = share.get_or_create(s, ctx, solo, "https://shop.example/solo")
        assert made.link.destination_url == "https://shop.example/solo"


# --- lookalike ------------------------------------------------------------------------------------------------


def test_lookalike_saves_the_most_similar_people_as_a_new_segment(runtime, ws, shop):
    with runtime.db.session() as s:
        seed = segments.create_segment(
            s,
            ws,
            {"name": "忠诚客户", "rule": {"type": "tag", "tag": "rfm_segment", "op": "eq", "value": "important_value"}},
        ).id
    runtime.tags.recompute(ws)
    made = audiences.create(
        runtime.db, ws, {"seed_segment_id": seed, "top_n": 5}, "test", refresh=runtime.tags.recompute
    )
    assert made["audience"] == 5 and made["seeds"] >= 10 and 0.5 <= made["auc"] <= 1
    assert made["features"] and {"feature", "importance", "direction"} <= set(made["features"][0])
    assert made["segment"]["member_count"] == 5 and made["segment"]["rule"] == {"type": "tag", "tag": made["tag_code"]}
    with runtime.db.session() as s:
        members = set(s.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == made["segment_id"])))
        seeds = set(s.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == seed)))
        assert not members & seeds  # seeds are never their own lookalikes
        assert audiences.list_lookalikes(s, ws)[0]["id"] == made["id"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"seed_segment_id": 999}, "seed_segment_id"),
        ({"seed_segment_id": "one"}, "seed_segment_id"),
        ({"seed_segment_id": 1, "top_n": 0}, "top_n"),
        ({"seed_segment_id": 1, "top_n": -5}, "top_n"),
        ({"seed_segment_id": 1, "threshold": 1.5}, "threshold"),
        ({"seed_segment_id": 1, "model": "magic"}, "model"),
        ({"seed_segment_id": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_lookalike_requests_name_the_field(runtime, ws, raw, field):
    with pytest.raises(InvalidInput) as caught:
        audiences.create(runtime.db, ws, raw)
    assert field in [e.field for e in caught.value.errors]


def test_a_seed_too_small_to_learn_from_is_refused(runtime, ws, shop):
    with runtime.db.session() as s:
        seed = segments.create_segment(
            s,
            ws,
            {"name": "只买豆子", "rule": {"type": "tag", "tag": "rfm_segment", "op": "eq", "value": "general_value"}},
        ).id
    runtime.tags.recompute(ws)
    with pytest.raises(InvalidInput) as caught:
        audiences.create(runtime.db, ws, {"seed_segment_id": seed, "top_n": 5})
    assert caught.value.errors[0].field == "seed_segment_id" and caught.value.errors[0].code == "value_seed_small"


# --- storage on both databases ------------------------------------------------------------------------------------


def test_results_are_stored_and_replaced_the_same_on_sqlite_and_postgresql(database_url, tmp_path):
    from conftest import make_settings

    from siyu.bootstrap import initialize
    from siyu.runtime import Runtime

    rt = Runtime.create(make_settings(tmp_path, database_url))
    try:
        info = initialize(rt.settings, rt.db, demo=False)
        with rt.db.session() as s:
            ws = s.scalar(select(Workspace.id).where(Workspace.slug == info.workspace))
        track(rt, ws, value_data.shop(loyal=8, occasional=8, one_time=8))
        first = service.run(rt.db, rt.store, ws)
        second = service.run(rt.db, rt.store, ws)  # replaces, never duplicates
        assert first["status"] == second["status"] == "succeeded"
        with rt.db.session() as s:
            rows = list(s.scalars(select(ValuePerson).where(ValuePerson.workspace_id == ws)))
            assert len(rows) == 25 == second["persons"]
            loyal = s.get(ValuePerson, (ws, identity.lookup(s, ws, "member_id", "L01")))
            assert loyal.next_purchase is not None and loyal.is_koc is False and loyal.rfm_segment
            cycles = s.scalars(select(ValueRepurchase).where(ValueRepurchase.super_id == loyal.super_id)).all()
            assert {c.category for c in cycles} == {"咖啡豆", "滤纸"} and all(c.last_purchase for c in cycles)
            assert queries.bought_together(s, ws, "B01")["items"][0]["product_id"] == "F01"
            config.save(s, ws, {"commercial_weight": 2, "social_weight": 1})
            assert service.rescore(s, ws) == 25
        with rt.db.session() as s:
            assert queries.status(s, ws)["last_success"]["id"] == second["id"]
    finally:
        rt.close()


# --- the worker ---------------------------------------------------------------------------------------------------


def test_the_schedule_recomputes_only_workspaces_whose_last_run_is_old(runtime, ws):
    from siyu.value.worker import ValueWorker

    worker = ValueWorker(runtime.db, runtime.store, interval_seconds=3600)
    assert worker.run_scheduled() == 1  # never computed: due now
    assert worker.run_scheduled() == 0  # computed a moment ago: not due for an hour
    with runtime.db.session() as s:
        assert queries.status(s, ws)["last_success"]["cause"] == "schedule"


def test_a_run_left_running_by_a_stopped_server_is_marked_failed_and_queued_ones_still_run(runtime, ws):
    from siyu.value.models import ValueRun
    from siyu.value.worker import ValueWorker

    with runtime.db.session() as s:
        s.add(ValueRun(workspace_id=ws, status="running", cause="manual", summary={}))
        queued = service.queue_run(s, ws, "manual", "someone").id
    worker = ValueWorker(runtime.db, runtime.store, interval_seconds=0)
    worker._abandon_interrupted()
    assert worker.run_queued() == 1
    with runtime.db.session() as s:
        runs = {r["id"]: r for r in queries.runs(s, ws)}
    assert runs[queued]["status"] == "succeeded" and runs[queued]["requested_by"] == "someone"
    interrupted = next(r for r in runs.values() if r["id"] != queued)
    assert interrupted["status"] == "failed" and "interrupted" in interrupted["error"]
