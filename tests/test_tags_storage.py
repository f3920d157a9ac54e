"""Tags, segments, snapshots and audience exports on both operational databases (SQLite and the machine's
real PostgreSQL): the bulk writes (COPY on PostgreSQL), the in-place value changes, the deletes, and
the consent gate of the export, through the runtime's own ingester, stitcher and worker.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_settings
from sqlalchemy import func, select

from siyu.events.ingest import Sender
from siyu.identity.service import lookup
from siyu.runtime import Runtime
from siyu.segments import audience
from siyu.segments import service as segments
from siyu.segments.models import AudienceExport, SegmentHistory
from siyu.sources import service as sources
from siyu.tags import compute, definitions
from siyu.tags.models import TagAssignment, TagHistory
from siyu.workspaces import service as workspaces

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def rt(tmp_path, database_url):
    runtime = Runtime.create(make_settings(tmp_path, database_url, extra={"tags_interval_seconds": "0"}))
    yield runtime
    runtime.close()


def identify(user_id: str, phone: str | None, city: str, sharing: bool | None, days: int = 30) -> dict:
    message = {
        "type": "identify",
        "userId": user_id,
        "traits": {"city": city, **({"phone": phone} if phone else {})},
        "timestamp": (NOW - timedelta(days=days)).isoformat(),
    }
    if sharing is not None:
        message["context"] = {"consent": {"categoryPreferences": {"data_sharing": sharing}}}
    return message


def orders(user_id: str, n: int) -> list[dict]:
    return [
        {"type": "track", "userId": user_id, "event": "Order Completed", "properties": {"revenue": 10 * (k + 1)},
         "timestamp": (NOW - timedelta(days=k + 1)).isoformat()}
        for k in range(n)
    ]  # fmt: skip


def test_the_whole_cycle_on_both_databases(rt):
    with rt.db.session() as s:
        ws = workspaces.create_workspace(s, "Coffee", slug="coffee").id
        source = sources.create_source(s, ws, "官网", "website").source.id
    batch = [
        identify("M1", "13800138001", "上海", True),
        identify("M2", "+86 138 0013 8002", "上海", False),
        identify("M3", None, "上海", True),
        identify("M4", "13800138004", "北京", True),
        *orders("M1", 3),
        *orders("M2", 2),
        *orders("M3", 2),
        *orders("M4", 1),
    ]
    assert rt.ingestor.ingest_batch(Sender(ws, source), {"batch": batch}).accepted == len(batch)
    rt.stitch_now()
    with rt.db.session() as s:
        people = {m: lookup(s, ws, "member_id", m) for m in ("M1", "M2", "M3", "M4")}
        definitions.create_tag(s, ws, {"code": "city", "name": "城市", "kind": "fact", "trait": "city"})
        rule = {"type": "event", "event": "Order Completed", "within_days": 30, "op": "gte", "value": 2}
        definitions.create_tag(s, ws, {"code": "repeat", "name": "复购", "kind": "rule", "rule": rule})
        seg = segments.create_segment(
            s, ws, {"name": "上海复购", "rule": {"and": [{"type": "tag", "tag": "repeat"}, {"type": "tag", "tag": "city", "op": "eq", "value": "上海"}]}}
        ).id  # fmt: skip
    report = rt.tags.recompute(ws)[0]
    assert {t.code: (t.members, t.gained) for t in report.tags} == {"city": (4, 4), "repeat": (3, 3)}
    assert [(r.members, r.joined) for r in report.segments] == [(3, 3)]

    # M1's city changes in place; M3 stops being a repeat buyer when the rule asks for 3 orders
    rt.ingestor.ingest_batch(Sender(ws, source), {"batch": [identify("M1", None, "杭州", None, days=0)]})
    rt.stitch_now()
    with rt.db.session() as s:
        definitions.update_tag(s, ws, "repeat", {"rule": {**rule, "value": 3}})
    report = rt.tags.recompute(ws)[0]
    assert {t.code: (t.gained, t.lost, t.changed) for t in report.tags} == {"city": (0, 0, 1), "repeat": (0, 2, 0)}
    assert [(r.members, r.joined, r.left) for r in report.segments] == [(0, 0, 3)]
    with rt.db.session() as s:
        city = definitions.get_tag(s, ws, "city")
        values = dict(
            s.execute(select(TagAssignment.super_id, TagAssignment.value).where(TagAssignment.tag_id == city.id)).all()
        )
        assert values[people["M1"]] == "杭州"
        assert s.scalar(select(func.count()).select_from(TagHistory).where(TagHistory.workspace_id == ws)) == 10
        assert s.scalar(select(func.count()).select_from(SegmentHistory).where(SegmentHistory.segment_id == seg)) == 6

    # a static snapshot of the 上海 buyers of last week, exported for an ad platform
    with rt.db.session() as s:
        segments.update_segment(s, ws, seg, {"rule": {"type": "tag", "tag": "city", "op": "eq", "value": "上海"}})
    segments.recompute_segments(rt.db, rt.store, ws, [seg])
    with rt.db.session() as s:
        snap = segments.create_snapshot(s, ws, seg, "ops@example.com")
        assert snap.member_count == 2  # M2, M3 (M1 moved to 杭州)
        export = audience.export_audience(
            s, ws, snapshot_id=snap.id, id_type="phone", hash="sha256", actor="ops@example.com"
        )
    # M2 has a phone but refused data sharing; M3 agreed but has no phone: nothing may leave
    assert export.lines == [] and (export.log["members"], export.log["refused"], export.log["exported"]) == (2, 1, 0)

    with rt.db.session() as s:
        segments.update_segment(s, ws, seg, {"rule": {"type": "consent", "purpose": "data_sharing"}})
    segments.recompute_segments(rt.db, rt.store, ws, [seg])
    with rt.db.session() as s:
        export = audience.export_audience(s, ws, segment_id=seg, id_type="phone", hash="md5", actor="ops@example.com")
        logged = s.scalars(
            select(AudienceExport).where(AudienceExport.workspace_id == ws).order_by(AudienceExport.id)
        ).all()
    assert export.lines == sorted(hashlib.md5(p.encode()).hexdigest() for p in ("13800138001", "13800138004"))
    assert [(e.members, e.refused, e.exported, e.rows, e.hash) for e in logged] == [
        (2, 1, 0, 0, "sha256"),
        (3, 0, 2, 2, "md5"),
    ]


def test_model_values_and_merges_write_the_same_on_both_databases(rt):
    with rt.db.session() as s:
        ws = workspaces.create_workspace(s, "Tea", slug="tea").id
        source = sources.create_source(s, ws, "小程序", "mini_program").source.id
    rt.ingestor.ingest_batch(
        Sender(ws, source), {"batch": [identify(f"M{i}", None, "成都", None) for i in range(1, 6)]}
    )
    rt.stitch_now()
    with rt.db.session() as s:
        ids = [lookup(s, ws, "member_id", f"M{i}") for i in range(1, 6)]
        definitions.create_tag(s, ws, {"code": "risk", "name": "流失风险", "kind": "model"})
        compute.set_model_tag_values(s, ws, "risk", {ids[0]: "high", ids[1]: "low", ids[2]: "low"})
    with rt.db.session() as s:
        result = compute.set_model_tag_values(s, ws, "risk", {ids[1]: "high", ids[3]: "low"}, replace=True)
        assert (result.members, result.gained, result.lost, result.changed) == (2, 1, 2, 1)
        tag = definitions.get_tag(s, ws, "risk")
        rows = dict(
            s.execute(select(TagAssignment.super_id, TagAssignment.value).where(TagAssignment.tag_id == tag.id)).all()
        )
        assert rows == {ids[1]: "high", ids[3]: "low"}
        history = s.scalars(select(TagHistory).where(TagHistory.tag_id == tag.id).order_by(TagHistory.id)).all()
        assert {(h.super_id, h.change, h.value, h.previous) for h in history[3:]} == {
            (ids[0], "lost", None, "high"),
            (ids[1], "changed", "high", "low"),
            (ids[2], "lost", None, "low"),
            (ids[3], "gained", "low", None),
        }
        assert s.scalar(select(func.count()).select_from(TagHistory).where(TagHistory.tag_id == tag.id)) == 7
