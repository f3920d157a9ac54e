"""Tags (标签) through the real pipeline: SDK calls into POST /v1/batch and short-link visits through the
redirect, stitched to persons by the runtime's stitcher, facts refreshed, tags computed, segments
counted. Nothing stands in for a part of the system. The people are tag_data's coffee brand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from tag_data import (
    COFFEE,
    REPEAT,
    ago,
    build_shop,
    changes,
    define,
    holders,
    member,
    order,
    quiet_settings,
    send,
    workspace_of,
    write_key,
)

from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.identity.service import lookup
from siyu.segments import facts
from siyu.segments import service as segments
from siyu.tags import compute, definitions, reading
from siyu.tags.models import TagAssignment, TagHistory
from siyu.tags.worker import TagWorker
from siyu.workspaces import service as workspaces


@pytest.fixture
def settings(tmp_path):
    return quiet_settings(tmp_path)


@pytest.fixture
def ws(runtime, first_run) -> int:
    return workspace_of(runtime, first_run)


@pytest.fixture
def shop(client, runtime, ws) -> dict[str, int]:
    return build_shop(client, runtime, ws)


# --- the pipeline ------------------------------------------------------------------------------------------------


def test_tracked_events_and_clicks_become_tags_and_segment_counts(client, runtime, ws, shop, auth):
    m1, m2, m3 = shop["M1"], shop["M2"], shop["M3"]
    for raw in (
        {"code": "city", "name": "城市", "kind": "fact", "trait": "city"},
        {"code": "repeat_buyer", "name": "复购客户", "kind": "rule", "rule": REPEAT},
        {"code": "coffee_lover", "name": "精品咖啡爱好者", "kind": "rule", "rule": COFFEE},
    ):
        assert client.post("/api/v1/tags", json=raw, headers=auth).status_code == 201
    report = client.post("/api/v1/tags/recompute", headers=auth)
    assert report.status_code == 200, report.text
    assert report.json()["persons"] == 3
    assert {t["code"]: t["members"] for t in report.json()["tags"]} == {"city": 3, "repeat_buyer": 1, "coffee_lover": 1}

    assert holders(runtime, "city", ws) == {m1: "上海", m2: "上海", m3: "北京"}
    assert holders(runtime, "repeat_buyer", ws) == {m1: None}
    assert holders(runtime, "coffee_lover", ws) == {m1: None}  # his 3 WeChat visits, stitched through the cookie

    listed = {t["code"]: t for t in client.get("/api/v1/tags", headers=auth).json()["tags"]}
    assert listed["city"]["coverage"] == 1.0 and listed["repeat_buyer"]["coverage"] == round(1 / 3, 4)
    detail = client.get("/api/v1/tags/city", headers=auth).json()
    assert detail["value_counts"] == [{"value": "上海", "count": 2}, {"value": "北京", "count": 1}]

    rule = {
        "and": [
            {"type": "tag", "tag": "city", "op": "eq", "value": "上海"},
            {"not": {"type": "tag", "tag": "repeat_buyer"}},
        ]
    }
    preview = client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth).json()
    assert (preview["count"], preview["persons"], preview["sample"]) == (1, 3, [m2])
    created = client.post("/api/v1/segments", json={"name": "上海待复购", "rule": rule}, headers=auth)
    assert created.status_code == 201 and created.json()["member_count"] == 1
    mine = client.get(f"/api/v1/segments/{created.json()['id']}/members", headers=auth).json()
    assert [(m["super_id"], m["name"]) for m in mine["items"]] == [(m2, "李四")]

    person = client.get(f"/api/v1/tags/persons/{m1}", headers=auth).json()
    assert {t["tag"] for t in person["tags"]} == {"city", "repeat_buyer", "coffee_lover"}
    assert {(h["tag"], h["change"], h["cause"]) for h in person["history"]} == {
        ("city", "gained", "manual"),
        ("repeat_buyer", "gained", "manual"),
        ("coffee_lover", "gained", "manual"),
    }


def test_simple_event_count_tags_update_as_events_arrive(client, runtime, ws, shop):
    m2 = shop["M2"]
    define(runtime, ws, code="repeat_buyer", name="复购客户", kind="rule", rule=REPEAT)
    with runtime.db.session() as s:
        assert definitions.get_tag(s, ws, "repeat_buyer").streaming
    runtime.tags.recompute(ws)
    assert m2 not in holders(runtime, "repeat_buyer", ws)

    # 李四 orders twice today: no recomputation, the stitcher's listener hands him to the worker.
    key = write_key(runtime, ws)
    send(client, key, order("M2", 0.1, 30, "B2"), order("M2", 0.05, 40, "B3"))
    runtime.stitch_now()
    results = runtime.tags.run_streaming()
    assert [(r.code, r.gained) for r in results] == [("repeat_buyer", 1)]
    assert m2 in holders(runtime, "repeat_buyer", ws)
    assert changes(runtime, "repeat_buyer", ws)[-1] == (m2, "gained", None, None, "stream", 1)
    # the facts follow at once: a segment on the tag counts him before the next scheduled run
    with runtime.db.session() as s:
        assert segments.preview(s, runtime.store, ws, {"type": "tag", "tag": "repeat_buyer"})["count"] == 2
    assert runtime.tags.run_streaming() == []  # nothing new: nothing to decide


def test_history_keeps_every_gain_loss_and_change_with_its_version(client, runtime, ws, shop, auth):
    m1, m2 = shop["M1"], shop["M2"]
    define(runtime, ws, code="buyer", name="下单客户", kind="rule", rule={**REPEAT, "value": 1})
    define(runtime, ws, code="level", name="会员等级", kind="fact", trait="level")
    runtime.tags.recompute(ws)
    assert set(holders(runtime, "buyer", ws)) == {m1}  # 李四's order is older than 90 days

    changed = client.put("/api/v1/tags/buyer", json={"rule": {**REPEAT, "within_days": 365, "value": 1}}, headers=auth)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    send(client, write_key(runtime, ws), member("M1", "张三", "上海", "黑金卡"))  # an upgrade, told today
    runtime.stitch_now()
    runtime.tags.recompute(ws)
    assert set(holders(runtime, "buyer", ws)) == {m1, m2}
    assert changes(runtime, "buyer", ws) == [
        (m1, "gained", None, None, "manual", 1),
        (m2, "gained", None, None, "manual", 2),
    ]
    assert changes(runtime, "level", ws)[-1] == (m1, "changed", "黑金卡", "金卡", "manual", 1)

    client.put("/api/v1/tags/buyer", json={"rule": {**REPEAT, "within_days": 7, "value": 1}}, headers=auth)
    runtime.tags.recompute(ws)
    assert holders(runtime, "buyer", ws) == {m1: None}
    assert changes(runtime, "buyer", ws)[-1] == (m2, "lost", None, None, "manual", 3)
    versions = client.get("/api/v1/tags/buyer", headers=auth).json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[-1]["spec"] == {"rule": {**REPEAT, "value": 1}}


def test_rule_tags_read_other_tags_in_order(client, runtime, ws, shop):
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    define(runtime, ws, code="repeat_buyer", name="复购客户", kind="rule", rule=REPEAT)
    define(
        runtime,
        ws,
        code="sh_repeat",
        name="上海复购",
        kind="rule",
        rule={
            "and": [{"type": "tag", "tag": "repeat_buyer"}, {"type": "tag", "tag": "city", "op": "eq", "value": "上海"}]
        },
    )
    runtime.tags.recompute(ws)  # one run: sh_repeat is computed after the tags it reads
    assert set(holders(runtime, "sh_repeat", ws)) == {shop["M1"]}

    with runtime.db.session() as s, pytest.raises(InvalidInput) as exc:
        definitions.update_tag(s, ws, "repeat_buyer", {"rule": {"type": "tag", "tag": "sh_repeat"}})
    assert [(e.field, e.reason) for e in exc.value.errors] == [("rule", "the tag 'sh_repeat' depends on this tag")]
    with runtime.db.session() as s, pytest.raises(InvalidInput) as exc:
        definitions.update_tag(s, ws, "sh_repeat", {"rule": {"not": {"type": "tag", "tag": "sh_repeat"}}})
    assert exc.value.errors[0].reason == "a rule tag cannot refer to itself"
    with runtime.db.session() as s, pytest.raises(Conflict) as conflict:
        definitions.delete_tag(s, ws, "city")
    assert conflict.value.reason == "the tag 'city' is used by tag 'sh_repeat'"


def test_model_tags_take_values_written_by_a_model(runtime, ws, shop):
    m1, m2, m3 = shop["M1"], shop["M2"], shop["M3"]
    values = [{"code": "high", "name": "高", "name_en": "High"}, {"code": "low", "name": "低", "name_en": "Low"}]
    define(runtime, ws, code="churn_risk", name="流失风险", kind="model", values=values)
    with runtime.db.session() as s:
        result = compute.set_model_tag_values(s, ws, "churn_risk", {m1: "low", m2: "high"})
    assert (result.members, result.gained) == (2, 2)
    with runtime.db.session() as s:
        compute.set_model_tag_values(s, ws, "churn_risk", {m2: "low", m3: "high"}, replace=True)
    assert holders(runtime, "churn_risk", ws) == {m2: "low", m3: "high"}
    assert {c[:3] for c in changes(runtime, "churn_risk", ws)[2:]} == {
        (m2, "changed", "low"),
        (m3, "gained", "high"),
        (m1, "lost", None),
    }
    assert {c[4] for c in changes(runtime, "churn_risk", ws)} == {"model"}

    with runtime.db.session() as s:
        with pytest.raises(InvalidInput) as exc:
            compute.set_model_tag_values(s, ws, "churn_risk", {m1: "extreme"})
        assert [(e.field, e.reason) for e in exc.value.errors] == [(f"values.{m1}", "must be one of high, low")]
        with pytest.raises(InvalidInput) as exc:
            compute.set_model_tag_values(s, ws, "churn_risk", {987654: "high"})
        assert exc.value.errors[0].reason == "unknown super IDs in this workspace: 987654"
        define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
        with pytest.raises(InvalidInput) as exc:
            compute.set_model_tag_values(s, ws, "city", {m1: "上海"})
        assert exc.value.errors[0].reason == "'city' is a fact tag: only model tags take values"
    runtime.tags.recompute(ws)
    with runtime.db.session() as s:  # the facts carry model values too: segments can use them
        rule = {"type": "tag", "tag": "churn_risk", "op": "eq", "value": "high"}
        assert segments.preview(s, runtime.store, ws, rule)["sample"] == [m3]


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ({"code": "Bad Code", "name": "x", "kind": "fact", "trait": "city"},
         [("code", "2 to 64 characters: a lower-case letter, then lower-case letters, digits or '_'")]),
        ({"code": "vip", "name": "x", "kind": "magic"}, [("kind", "must be one of fact, rule, model")]),
        ({"code": "vip", "name": "x", "kind": "rule"}, [("rule", "a rule tag needs 'rule'")]),
        ({"code": "vip", "name": "x", "kind": "fact", "trait": "shoe_size"}, [("trait", "unknown trait 'shoe_size'")]),
        ({"code": "vip", "name": "x", "kind": "fact", "trait": "city", "rule": REPEAT},
         [("rule", "a fact tag does not take 'rule'")]),
        ({"code": "vip", "name": "", "kind": "rule", "rule": {"and": [{"not": {"type": "trait", "field": "foo", "op": "exists"}}]}},
         [("name", "must not be empty"), ("rule.and[0].not.field", "unknown trait 'foo'")]),
        ({"code": "vip", "name": "x", "kind": "model", "values": [{"code": "a b"}]},
         [("values", "must be 1 to 50 distinct {code, name, name_en}: codes of letters, digits, _ or - (at most 32)")]),
        ({"code": "vip", "name": "x", "kind": "rule", "rule": REPEAT, "colour": "red"}, [("colour", "unknown field")]),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_naming_the_field(runtime, ws, shop, raw, errors):
    with runtime.db.session() as s, pytest.raises(InvalidInput) as exc:
        definitions.create_tag(s, ws, raw)
    assert [(e.field, e.reason) for e in exc.value.errors] == errors


def test_a_code_is_unique_and_never_changes(runtime, ws, shop, client, auth):
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    again = client.post(
        "/api/v1/tags", json={"code": "city", "name": "x", "kind": "fact", "trait": "city"}, headers=auth
    )
    assert again.status_code == 409 and again.json()["error"]["fields"][0]["reason"] == "the tag 'city' already exists"
    bad = client.put("/api/v1/tags/city", json={"rule": REPEAT}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["reason"] == "a fact tag does not take 'rule'"
    assert client.get("/api/v1/tags/nope", headers=auth).status_code == 404
    assert client.delete("/api/v1/tags/city", headers=auth).status_code == 204
    assert client.get("/api/v1/tags/city", headers=auth).status_code == 404


# --- persons change: merges, erasure; workspaces stay apart -----------------------------------------------------------


def test_a_merge_gives_the_survivor_the_absorbed_persons_tags(client, runtime, ws, shop):
    m1 = shop["M1"]
    key = write_key(runtime, ws)
    send(
        client,
        key,
        {"type": "identify", "anonymousId": "tablet-7", "traits": {"email": "zs@example.com"}, "timestamp": ago(1)},
    )
    runtime.stitch_now()
    with runtime.db.session() as s:
        guest = lookup(s, ws, "email", "zs@example.com")
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    define(runtime, ws, code="churn_risk", name="流失风险", kind="model")
    with runtime.db.session() as s:
        compute.set_model_tag_values(s, ws, "churn_risk", {guest: "high"})
    runtime.tags.recompute(ws)
    # The guest on the shop's tablet was 张三: he signs in with that e-mail, One ID merges the two.
    send(client, key, {"type": "identify", "userId": "M1", "traits": {"email": "zs@example.com"}, "timestamp": ago()})
    runtime.stitch_now()
    with runtime.db.session() as s:
        survivor = lookup(s, ws, "member_id", "M1")
        assert lookup(s, ws, "email", "zs@example.com") == survivor
    absorbed = guest if survivor == m1 else m1
    assert holders(runtime, "churn_risk", ws) == {survivor: "high"}
    if survivor != guest:  # the tag moved: recorded as gained by the survivor, because of the merge
        assert changes(runtime, "churn_risk", ws)[-1][:5] == (survivor, "gained", "high", None, "merge")
    runtime.tags.recompute(ws)
    assert holders(runtime, "city", ws)[survivor] == "上海" and absorbed not in holders(runtime, "city", ws)
    assert holders(runtime, "churn_risk", ws) == {survivor: "high"}


def test_an_erasure_removes_the_persons_tags_history_and_memberships(client, runtime, ws, shop, auth):
    m1 = shop["M1"]
    define(runtime, ws, code="repeat_buyer", name="复购客户", kind="rule", rule=REPEAT)
    seg = client.post(
        "/api/v1/segments", json={"name": "复购", "rule": {"type": "tag", "tag": "repeat_buyer"}}, headers=auth
    )
    runtime.tags.recompute(ws)
    assert client.get(f"/api/v1/segments/{seg.json()['id']}/members", headers=auth).json()["total"] == 1
    erased = client.post(f"/api/v1/privacy/persons/{m1}/erase", headers=auth)
    assert erased.status_code == 200, erased.text
    with runtime.db.session() as s:
        assert not s.scalars(select(TagAssignment).where(TagAssignment.super_id == m1)).all()
        assert not s.scalars(select(TagHistory).where(TagHistory.super_id == m1)).all()
    assert facts.exists(runtime.store)
    assert runtime.store.query("SELECT count(*) FROM facts_tags WHERE super_id = ?", [m1])[0][0] == 0
    runtime.tags.recompute(ws)
    assert client.get(f"/api/v1/segments/{seg.json()['id']}/members", headers=auth).json()["total"] == 0


def test_workspaces_never_see_each_others_tags(client, runtime, ws, shop, auth):
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    runtime.tags.recompute()
    with runtime.db.session() as s:
        tea = workspaces.create_workspace(s, "Tea Co", slug="tea")
        tea_key = {"Authorization": f"Bearer {workspaces.create_api_key(s, tea.id, 'tea').secret}"}
        links_only = {"Authorization": f"Bearer {workspaces.create_api_key(s, ws, 'links', ['links:read']).secret}"}
    assert client.get("/api/v1/tags", headers=tea_key).json() == {"persons": 0, "tags": []}
    assert client.get("/api/v1/tags/city", headers=tea_key).status_code == 404
    assert client.get(f"/api/v1/tags/persons/{shop['M1']}", headers=tea_key).status_code == 404
    made = client.post(
        "/api/v1/tags", json={"code": "city", "name": "城市", "kind": "fact", "trait": "city"}, headers=tea_key
    )
    assert made.status_code == 422  # nobody in Tea Co has a city yet
    report = client.post("/api/v1/tags/recompute", headers=tea_key).json()
    assert report["persons"] == 0 and report["tags"] == []
    assert client.get("/api/v1/tags", headers=links_only).status_code == 403
    assert client.post("/api/v1/tags/recompute", headers=links_only).status_code == 403
    with runtime.db.session() as s, pytest.raises(NotFound):
        reading.person_tags(s, tea.id, shop["M1"])


def test_the_schedule_recomputes_on_its_own(runtime, ws, shop):
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    worker = TagWorker(runtime.db, runtime.store, runtime.stitcher.lock, interval_seconds=3600, first_run_seconds=0)
    worker.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while ws not in worker.last and datetime.now(UTC) < deadline:
            worker._stopping.wait(0.05)
    finally:
        worker.stop()
    assert worker.last[ws].cause == "schedule"
    assert len(holders(runtime, "city", ws)) == 3
    assert {c[4] for c in changes(runtime, "city", ws)} == {"schedule"}


def test_after_one_whole_copy_a_refresh_reads_again_only_who_changed(client, runtime, ws, shop, auth):
    m2, m3 = shop["M2"], shop["M3"]
    define(runtime, ws, code="city", name="城市", kind="fact", trait="city")
    assert runtime.tags.recompute(ws)[0].facts.sql == "full"  # the process's first look: everything
    assert runtime.tags.recompute(ws)[0].facts.sql == "0 changed"

    send(client, write_key(runtime, ws), member("M2", "李四", "杭州", "银卡"))  # 李四 moved
    runtime.stitch_now()
    report = runtime.tags.recompute(ws)[0]
    assert report.facts.sql == "1 changed"
    assert holders(runtime, "city", ws)[m2] == "杭州"
    assert [(t.code, t.changed) for t in report.tags] == [("city", 1)]

    granted = client.post(
        f"/api/v1/consent/persons/{m3}", json={"purpose": "marketing", "status": "granted"}, headers=auth
    )
    assert granted.status_code in (200, 201), granted.text
    assert runtime.tags.recompute(ws)[0].facts.sql == "1 changed"  # a new consent record names its person
    with runtime.db.session() as s:
        rule = {"type": "consent", "purpose": "marketing"}
        assert segments.preview(s, runtime.store, ws, rule)["sample"] == [m3]
