"""Shared by the tag and segment tests: a coffee brand's people, sent through the real pipeline.

M1 张三  上海 金卡  3 orders this month, clicked /coffee 3 times (his browser identified itself)
M2 李四  上海 银卡  1 order 100 days ago
M3 王五  北京 普通  nothing but his sign-up
"""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta

from conftest import make_settings
from sqlalchemy import select

from siyu.identity.service import lookup
from siyu.sources import service as sources
from siyu.tags import definitions
from siyu.tags.models import TagAssignment, TagHistory
from siyu.workspaces.models import Workspace

NOW = datetime.now(UTC).replace(microsecond=0)
SOURCES = itertools.count(1)
WECHAT = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.44"
REPEAT = {"type": "event", "event": "Order Completed", "within_days": 90, "op": "gte", "value": 2}
COFFEE = {"type": "event", "event": "Short Link Clicked", "link_tag": "咖啡", "within_days": 30, "value": 3}


def quiet_settings(tmp_path):
    """No scheduled runs: each test computes when it says so."""
    return make_settings(tmp_path, extra={"tags_interval_seconds": "0"})


def workspace_of(runtime, first_run) -> int:
    with runtime.db.session() as s:
        return s.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))


def write_key(runtime, ws: int) -> dict[str, str]:
    with runtime.db.session() as s:
        key = sources.create_source(s, ws, f"官网 {next(SOURCES)}", "website").write_key
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def ago(days: float = 0, minutes: float = 0) -> str:
    return (NOW - timedelta(days=days, minutes=minutes)).isoformat()


def send(client, key, *messages) -> None:
    response = client.post("/v1/batch", json={"batch": list(messages)}, headers=key)
    assert response.status_code == 200, response.text


def member(user_id: str, name: str, city: str, level: str, **extra) -> dict:
    return {
        "type": "identify",
        "userId": user_id,
        "traits": {"name": name, "city": city, "level": level, **extra},
        "timestamp": ago(days=120),
    }


def order(user_id: str, days: float, revenue: float, order_id: str) -> dict:
    return {
        "type": "track",
        "userId": user_id,
        "event": "Order Completed",
        "properties": {"order_id": order_id, "revenue": revenue},
        "timestamp": ago(days=days),
    }


def visit_coffee(client) -> str:
    response = client.get("/coffee", headers={"User-Agent": WECHAT})
    assert response.status_code == 200  # the 防红 guidance page in WeChat; the click is recorded
    return response.cookies.get("sy_vid")


def build_shop(client, runtime, ws) -> dict[str, int]:
    """The three people, sent through POST /v1/batch and the redirect, then stitched: member id -> super ID."""
    key = write_key(runtime, ws)
    send(
        client,
        key,
        member("M1", "张三", "上海", "金卡", phone="13800138001"),
        member("M2", "李四", "上海", "银卡"),
        member("M3", "王五", "北京", "普通", phone="13800138003"),
        order("M1", 2, 100, "A1"),
        order("M1", 9, 150, "A2"),
        order("M1", 20, 50, "A3"),
        order("M2", 100, 80, "B1"),
    )
    cookie = visit_coffee(client)
    client.cookies.set("sy_vid", cookie)
    visit_coffee(client)
    visit_coffee(client)
    client.cookies.delete("sy_vid")
    landing = {"externalIds": [{"type": "visitor_cookie", "id": cookie, "collection": "users", "encoding": "none"}]}
    send(client, key, {"type": "page", "userId": "M1", "name": "菜单", "timestamp": ago(minutes=5), "context": landing})
    runtime.stitch_now()
    with runtime.db.session() as s:
        people = {m: lookup(s, ws, "member_id", m) for m in ("M1", "M2", "M3")}
    assert all(people.values())
    return people


def define(runtime, ws, **raw):
    with runtime.db.session() as s:
        return definitions.create_tag(s, ws, raw, actor="test").code


def holders(runtime, code: str, ws: int) -> dict[int, str | None]:
    with runtime.db.session() as s:
        tag = definitions.get_tag(s, ws, code)
        rows = s.execute(select(TagAssignment.super_id, TagAssignment.value).where(TagAssignment.tag_id == tag.id))
        return {r[0]: r[1] for r in rows}


def changes(runtime, code: str, ws: int) -> list[tuple]:
    with runtime.db.session() as s:
        tag = definitions.get_tag(s, ws, code)
        rows = s.scalars(select(TagHistory).where(TagHistory.tag_id == tag.id).order_by(TagHistory.id))
        return [(h.super_id, h.change, h.value, h.previous, h.cause, h.version) for h in rows]
