"""Demo customers for a fresh installation, so profiles, tags (标签) and segments (人群) show something real.

A small coffee brand's private domain, through the real pipeline: members and orders are imported
from CSV (siyu.imports), each member's browser identifies itself on the website (the tracking
ingester, with the short-link visitor cookie in `context.externalIds`), their short-link visits go
through `decide()` and the click enrichment like live ones, One ID stitches it all, and then a few
tag and segment definitions are computed. Model tags (churn risk, predicted value, …) come from the
customer-value demo that runs next (siyu.value.demo), through `set_model_tag_values`.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from siyu.clicks.enrich import enrich
from siyu.clicks.record import RawClick
from siyu.config import Settings
from siyu.db import Database
from siyu.demo import IPS, USER_AGENTS, _pick
from siyu.events.ingest import Sender
from siyu.imports.service import run_import
from siyu.links import decide as d
from siyu.links.models import ShortLink
from siyu.segments import service as segments
from siyu.sources import service as sources
from siyu.tags import definitions
from siyu.useragent import detect_platform, device_class, os_family
from siyu.workspaces.models import Workspace

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = (
    "芳",
    "伟",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
    "平",
    "刚",
    "婷",
    "浩",
    "琳",
    "雪",
)
CITIES = [(35, "上海"), (20, "北京"), (15, "杭州"), (15, "深圳"), (15, "成都")]
LEVELS = [(55, "普通"), (30, "银卡"), (15, "金卡")]
STORES = {"上海": "静安寺店", "北京": "三里屯店", "杭州": "西湖店", "深圳": "万象城店", "成都": "太古里店"}
PRODUCTS = [
    ("LATTE-M", "拿铁（中杯）", "咖啡", 32.0),
    ("AMERICANO", "美式咖啡", "咖啡", 26.0),
    ("POUR-OVER", "精品手冲 · 埃塞俄比亚", "咖啡", 58.0),
    ("OOLONG", "冷萃乌龙", "茶饮", 28.0),
    ("CROISSANT", "黄油可颂", "烘焙", 24.0),
    ("BEANS-250", "咖啡豆 250g", "咖啡豆", 128.0),
]

TAGS: list[dict[str, Any]] = [
    {"code": "city", "name": "城市", "name_en": "City", "kind": "fact", "trait": "address.city"},
    {"code": "member_level", "name": "会员等级", "name_en": "Member level", "kind": "fact", "trait": "level"},
    {
        "code": "coffee_lover",
        "name": "精品咖啡爱好者",
        "name_en": "Specialty coffee lover",
        "kind": "rule",
        "description": "近 30 天点击咖啡短链 3 次以上",
        "rule": {"type": "event", "event": "Short Link Clicked", "link_tag": "咖啡", "within_days": 30, "value": 3},
    },
    {
        "code": "repeat_buyer",
        "name": "复购客户",
        "name_en": "Repeat buyer",
        "kind": "rule",
        "description": "近 90 天下单 2 次以上",
        "rule": {"type": "event", "event": "Order Completed", "within_days": 90, "op": "gte", "value": 2},
    },
    {
        "code": "high_spender",
        "name": "高消费",
        "name_en": "High spender",
        "kind": "rule",
        "description": "近 180 天消费满 300 元",
        "rule": {"type": "event", "event": "Order Completed", "within_days": 180, "measure": "amount", "value": 300},
    },
    {
        "code": "dormant",
        "name": "沉睡用户",
        "name_en": "Dormant",
        "kind": "rule",
        "description": "下过单，但近 30 天没有任何访问",
        "rule": {
            "and": [
                {"type": "event", "event": "Order Completed"},
                {"not": {"type": "event", "event": "*", "within_days": 30}},
            ]
        },
    },
]
SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "上海咖啡爱好者（可营销）",
        "description": "上海的精品咖啡爱好者，且同意接收营销信息",
        "rule": {
            "and": [
                {"type": "tag", "tag": "city", "op": "eq", "value": "上海"},
                {"type": "tag", "tag": "coffee_lover"},
                {"type": "consent", "purpose": "marketing"},
            ]
        },
    },
    {
        "name": "高消费但近 30 天未下单",
        "description": "近半年消费满 300 元，最近 30 天却没有下单：召回重点",
        "rule": {
            "and": [
                {"type": "tag", "tag": "high_spender"},
                {"not": {"type": "event", "event": "Order Completed", "within_days": 30}},
            ]
        },
    },
    {
        "name": "复购会员（可投放广告）",
        "description": "复购客户，有手机号且同意数据共享：可导出人群包",
        "rule": {
            "and": [
                {"type": "tag", "tag": "repeat_buyer"},
                {"type": "identifier", "id_type": "phone"},
                {"type": "consent", "purpose": "data_sharing"},
            ]
        },
    },
    {
        "name": "金卡会员 · 近 30 天未访问",
        "rule": {
            "and": [
                {"type": "trait", "field": "level", "op": "eq", "value": "金卡"},
                {"not": {"type": "event", "event": "*", "within_days": 30}},
            ]
        },
    },
]


def _when(now: datetime, rng: random.Random, days: float) -> datetime:
    return now - timedelta(days=days * rng.random() ** 1.3, minutes=rng.randint(0, 600))


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _members(rng: random.Random, people: int, now: datetime) -> list[dict[str, Any]]:
    out = []
    for i in range(people):
        city = _pick(rng, CITIES)
        out.append(
            {
                "member_id": f"M{2001 + i}",
                "phone": f"139{rng.randint(10_000_000, 99_999_999)}",
                "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.5 else ""),
                "city": city,
                "level": _pick(rng, LEVELS),
                "points": rng.randint(0, 3000),
                "registered_at": (now - timedelta(days=rng.randint(60, 900))).strftime("%Y-%m-%d %H:%M:%S"),
                "store": STORES[city],
                "consent_marketing": "是" if rng.random() < 0.7 else "否",
                "consent_data_sharing": "是" if rng.random() < 0.45 else "否",
                "cookie": f"demo-{i:04d}-{rng.getrandbits(32):08x}",
                "active": rng.random(),  # how much they do: drives orders, visits and clicks
            }
        )
    return out


def _orders(rng: random.Random, members: list[dict[str, Any]], now: datetime) -> list[list[Any]]:
    rows = []
    n = 0
    for m in members:
        for _ in range(int(m["active"] * 6)):
            n += 1
            at = _when(now, rng, 170)
            items = rng.sample(PRODUCTS, rng.randint(1, 3))
            total = sum(p[3] for p in items)
            for k, (sku, name, category, price) in enumerate(items):
                head = [f"DEMO-{n:05d}", m["member_id"], "", at.strftime("%Y-%m-%d %H:%M:%S"), m["store"], "小程序"]
                head += ["CNY", f"{total:.2f}", "", "已完成"]
                rows.append(
                    (head if k == 0 else [f"DEMO-{n:05d}"] + [""] * 9) + [sku, name, category, 1, f"{price:.2f}"]
                )
    return rows


def _visits(rng: random.Random, members: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Each member's browser identifies itself once (cookie → member), then browses now and then."""
    batch: list[dict[str, Any]] = []
    for m in members:
        cookie = {
            "externalIds": [{"type": "visitor_cookie", "id": m["cookie"], "collection": "users", "encoding": "none"}]
        }
        first = now - timedelta(days=rng.randint(40, 120))
        batch.append(
            {
                "type": "identify",
                "userId": m["member_id"],
                "anonymousId": m["cookie"],
                "timestamp": first.isoformat(),
                "context": cookie,
            }
        )
        recent = m["active"] > 0.35
        for _ in range(int(m["active"] * 8)):
            at = _when(now, rng, 25 if recent else 120) if recent else now - timedelta(days=rng.randint(35, 120))
            name = rng.choice(["菜单", "新品", "会员中心", "门店"])
            batch.append(
                {
                    "type": "page",
                    "userId": m["member_id"],
                    "anonymousId": m["cookie"],
                    "name": name,
                    "timestamp": at.isoformat(),
                }
            )
            if rng.random() < 0.4:
                product = rng.choice(PRODUCTS)
                batch.append(
                    {
                        "type": "track",
                        "userId": m["member_id"],
                        "event": "Product Viewed",
                        "timestamp": at.isoformat(),
                        "properties": {"product_id": product[0], "name": product[1], "category": product[2]},
                    }
                )
    return batch


def _clicks(
    rng: random.Random, members: list[dict[str, Any]], links: list[d.CompiledLink], privacy, now: datetime
) -> list[RawClick]:
    coffee = [link for link in links if link.slug == "coffee"] or links
    clicks = []
    for m in members:
        if m["active"] < 0.35:
            continue
        ua = _pick(rng, USER_AGENTS[:-1])  # no crawlers
        visitor = d.Visitor(detect_platform(ua), os_family(ua), device_class(ua), m["cookie"])
        n = rng.randint(3, 6) if m["active"] > 0.6 else rng.randint(0, 2)
        for _ in range(n):
            link = rng.choice(coffee) if rng.random() < 0.8 else rng.choice(links)
            ts = (now - timedelta(days=25 * rng.random(), minutes=rng.randint(0, 600))).timestamp()
            decision = d.decide(link, visitor, datetime.fromtimestamp(ts, UTC), 0, "")
            clicks.append(
                RawClick(
                    ts,
                    link.id,
                    link.workspace_id,
                    link.hostname,
                    link.slug,
                    m["cookie"],
                    False,
                    _pick(rng, IPS),
                    ua,
                    "GET",
                    "https://mp.weixin.qq.com/s/demo",
                    "link",
                    decision.outcome,
                    "",
                    decision.url or "",
                    decision.variant,
                    visitor.platform,
                    link.person_ref,
                )
            )
    clicks.sort(key=lambda c: c.ts)
    return enrich(clicks, privacy)


def generate_customers(settings: Settings, db: Database, people: int = 120, seed: int = 11) -> dict[str, int]:
    """Import demo members and orders, their visits and clicks, stitch them, define and compute demo tags
    and segments. Needs the event store to itself (runs before the server starts). Returns counts."""
    from siyu.runtime import Runtime

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rt = Runtime.create(settings, migrate=False)
    try:
        with rt.db.session() as session:
            ws = session.scalar(select(Workspace.id).order_by(Workspace.id))
            links = [d.CompiledLink.from_model(link) for link in session.scalars(select(ShortLink))]
            website = sources.create_source(session, ws, "官网（演示）", "website").source.id
            salt = {w.id: (w.ip_mode, bytes.fromhex(w.ip_salt)) for w in session.scalars(select(Workspace))}
        members = _members(rng, people, now)
        header = ["member_id", "phone", "name", "city", "level", "points", "registered_at", "store"]
        header += ["consent_marketing", "consent_data_sharing"]
        run_import(
            rt.db,
            rt.store,
            ws,
            "members",
            _csv(header, [[m[h] for h in header] for m in members]),
            file_name="demo-members.csv",
            actor="demo",
        )
        order_header = ["order_id", "member_id", "phone", "ordered_at", "store", "channel", "currency", "total"]
        order_header += ["discount", "status", "sku", "product_name", "category", "quantity", "price"]
        run_import(
            rt.db,
            rt.store,
            ws,
            "orders",
            _csv(order_header, _orders(rng, members, now)),
            file_name="demo-orders.csv",
            actor="demo",
        )
        rt.ingestor.ingest_batch(Sender(ws, website, device_side=True), {"batch": _visits(rng, members, now)})
        if links:
            rt.store.append_clicks(_clicks(rng, members, links, lambda w: salt.get(w, ("truncated", b"demo")), now))
        rt.stitch_now()
        with rt.db.session() as session:
            for raw in TAGS:
                definitions.create_tag(session, ws, raw, actor="demo")
            for raw in SEGMENTS:
                segments.create_segment(session, ws, raw, actor="demo")
        report = rt.tags.recompute(ws, full_events=True, cause="manual")[0]
        return {"people": people, "tags": len(report.tags), "segments": len(report.segments)}
    finally:
        rt.close()
