"""Demo customers for a fresh installation: a coffee brand's members, orders and share-link referrals,
so every customer-value page (RFM grid, pyramid, CLV, clusters, repurchase, basket, KOCs and fission
trees, lookalike) shows something meaningful on the first start.

Everything goes through the real pipeline: identify and `Order Completed` events from a demo source
and share-link clicks land in the event store, the identity stitcher links them (a referred visitor's
click becomes theirs once their landing-page identify names the visitor cookie), then one value run
computes and stores the results, the tag worker refreshes tags and segments, and one lookalike audience
is built from a seed segment. About 300 people and 1,500 orders: a few seconds.

Orders follow the models' own story — each person buys at their own rate and may drop out after any
purchase — with baskets that have real patterns (beans with filters, a grinder with beans, drip bags
with a mug) and categories that are rebought on their own cycles.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import func, select

from siyu.clicks.enrich import enrich
from siyu.clicks.record import RawClick
from siyu.config import Settings
from siyu.demo import IPS, USER_AGENTS
from siyu.errors import SiyuError
from siyu.events.store import EVENT_INPUT_SCHEMA
from siyu.identity import service as identity
from siyu.links.service import Context
from siyu.segments import service as segments
from siyu.sources import service as sources
from siyu.value import audiences, config, service, share
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.value")

SHARE_URL = "https://example.com/invite"
SOURCE_NAME = "演示商城 Demo shop"
# (product id, name, category, price, how often a person of that category rebuys: days)
PRODUCTS = {
    "B01": ("耶加雪菲咖啡豆 250g", "咖啡豆", 88.0),
    "B02": ("曼特宁咖啡豆 250g", "咖啡豆", 78.0),
    "B03": ("意式拼配豆 500g", "咖啡豆", 128.0),
    "D01": ("经典挂耳 10 包", "挂耳咖啡", 49.0),
    "D02": ("冷萃挂耳 10 包", "挂耳咖啡", 59.0),
    "F01": ("V60 滤纸 100 张", "滤纸", 25.0),
    "G01": ("手冲壶", "器具", 199.0),
    "G02": ("磨豆机", "器具", 299.0),
    "G03": ("马克杯", "器具", 59.0),
    "T01": ("冷泡茶 12 袋", "茶饮", 45.0),
}
# what tends to go into the same basket: anchor → (companion, probability)
COMPANIONS = {
    "B01": (("F01", 0.55), ("G02", 0.08)),
    "B02": (("F01", 0.45),),
    "B03": (("G02", 0.15), ("F01", 0.2)),
    "D01": (("G03", 0.35), ("D02", 0.2)),
    "D02": (("G03", 0.3),),
    "G02": (("B01", 0.6), ("B03", 0.3)),
    "G01": (("F01", 0.7), ("B01", 0.4)),
    "T01": (("G03", 0.15),),
}
# personas: share of people, purchase rate (orders / 30 days), dropout after each purchase, favourite anchors
PERSONAS = (
    (0.22, 1.4, 0.03, ("B01", "B02", "B03")),  # bean lovers: frequent, loyal
    (0.28, 0.8, 0.08, ("D01", "D02", "T01")),  # office drinkers: drip bags and tea
    (0.30, 0.35, 0.25, ("D01", "B02", "T01")),  # occasional
    (0.20, 0.2, 0.6, ("G01", "G02", "G03")),  # gear buyers: one or two orders
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("子涵", "欣怡", "浩然", "梓轩", "雨桐", "一诺", "思远", "佳琪", "宇航", "诗涵", "俊杰", "晓雯", "明轩", "可欣")
CITIES = ("上海", "北京", "杭州", "深圳", "广州", "成都", "南京", "苏州", "武汉", "西安")


@dataclass
class DemoReport:
    people: int
    orders: int
    referrals: int
    run_status: str
    lookalike_segment: int | None


class _Builder:
    """Collects events and clicks of the demo (UTC, naive) before one append each."""

    def __init__(self, workspace_id: int, source_id: int, rng: random.Random):
        self.ws, self.source, self.rng = workspace_id, source_id, rng
        self.events: list[dict[str, Any]] = []
        self.clicks: list[RawClick] = []
        self.orders = 0

    def event(self, kind: str, at: datetime, raw: dict[str, Any]) -> None:
        ts = at.astimezone(UTC).replace(tzinfo=None)
        self.events.append(
            {
                "message_id": f"demo-{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
                "workspace_id": self.ws,
                "source_id": self.source,
                "type": kind,
                "timestamp": ts,
                "original_timestamp": ts,
                "sent_at": None,
                "received_at": ts,
                "ip": None,
                "batch_context": None,
                "raw": orjson.dumps({"type": kind, **raw}).decode(),
            }
        )

    def click(self, at: datetime, link, visitor: str) -> None:
        ua = self.rng.choices([u for _, u in USER_AGENTS[:-1]], [w for w, _ in USER_AGENTS[:-1]])[0]
        ip = self.rng.choices([i for _, i in IPS], [w for w, _ in IPS])[0]
        self.clicks.append(
            RawClick(
                at.timestamp(),
                link.id,
                link.workspace_id,
                link.hostname,
                link.slug,
                visitor,
                True,
                ip,
                ua,
                "GET",
                "https://mp.weixin.qq.com/",
                "link",
                "redirected",
                "",
                link.destination_url,
                None,
                "wechat",
                None,
            )
        )

    def basket(self, persona: tuple) -> list[dict[str, Any]]:
        anchor = self.rng.choice(persona[3])
        chosen = [anchor]
        for companion, p in COMPANIONS.get(anchor, ()):
            if self.rng.random() < p and companion not in chosen:
                chosen.append(companion)
        if self.rng.random() < 0.1:  # an impulse extra
            extra = self.rng.choice(list(PRODUCTS))
            if extra not in chosen:
                chosen.append(extra)
        return [
            {
                "product_id": pid,
                "sku": pid,
                "name": PRODUCTS[pid][0],
                "category": PRODUCTS[pid][1],
                "price": PRODUCTS[pid][2],
                "quantity": 1 if pid[0] == "G" else self.rng.choice((1, 1, 1, 2)),
            }
            for pid in chosen
        ]

    def customer(self, number: int, persona: tuple, since: datetime, now: datetime, visitor: str | None) -> None:
        member = member_id(number)
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
        context = {}
        if visitor:  # the landing page names the share link's visitor cookie (sy_vid)
            context = {
                "externalIds": [{"type": "visitor_cookie", "id": visitor, "collection": "users", "encoding": "none"}]
            }
        traits = {
            "name": name,
            "phone": f"+86139{self.rng.randrange(10**8):08d}",
            "city": self.rng.choice(CITIES),
            "member_level": self.rng.choice(("普卡", "普卡", "银卡", "金卡")),
        }
        self.event("identify", since + timedelta(minutes=3), {"userId": member, "traits": traits, "context": context})
        rate = persona[1] * self.rng.gammavariate(2.0, 0.5) / 30.0  # orders per day
        at = since + timedelta(minutes=10)
        for k in range(40):
            if at > now:
                break
            items = self.basket(persona)
            revenue = round(sum(i["price"] * i["quantity"] for i in items), 2)
            props = {"order_id": f"{member}-{k + 1:03d}", "revenue": revenue, "currency": "CNY", "products": items}
            self.event("track", at, {"userId": member, "event": "Order Completed", "properties": props})
            self.orders += 1
            if self.rng.random() < persona[2]:
                break
            at += timedelta(days=self.rng.expovariate(max(rate, 1e-3)) + 1)


def _persona(rng: random.Random) -> tuple:
    return rng.choices(PERSONAS, [p[0] for p in PERSONAS])[0]


def member_id(number: int) -> str:
    return f"DEMO{number:05d}"


@dataclass(frozen=True)
class _Link:
    id: int
    workspace_id: int
    hostname: str
    slug: str
    destination_url: str


def generate_customers(settings: Settings, customers: int = 300, seed: int = 11) -> DemoReport | None:
    """Add the demo customers to the first workspace and compute its value once (first run only)."""
    from siyu.runtime import Runtime

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    runtime = Runtime.create(settings, migrate=False)
    try:
        with runtime.db.session() as session:
            ws = session.scalar(select(func.min(Workspace.id)))
            if ws is None:
                return None
            source = sources.create_source(session, ws, SOURCE_NAME, "website").source.id
            config.save(session, ws, {"share_url": SHARE_URL}, actor="demo")
        # who joins when, and who brought whom (a referred customer may share in turn: multi-level trees)
        plan: list[tuple[int, datetime, tuple, int | None]] = []
        sharers: list[int] = []
        for number in range(1, customers + 1):
            since = now - timedelta(days=540 * (1 - (number / customers) ** 0.8) + rng.uniform(0, 5))
            referrer = None
            if sharers and number > customers * 0.3 and rng.random() < 0.35:
                referrer = rng.choice(sharers[-60:])
            plan.append((number, since, _persona(rng), referrer))
            if rng.random() < 0.2:
                sharers.append(number)
        links = _share_links(runtime, ws, sorted({r for *_, r in plan if r is not None}))
        build = _Builder(ws, source, rng)
        for number, since, persona, referrer in plan:
            visitor = None
            if referrer is not None:
                visitor = f"demo-v-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"
                build.click(since, links[referrer], visitor)
            build.customer(number, persona, since, now, visitor)
        runtime.store.append_events(pa.Table.from_pylist(_sorted(build.events), schema=EVENT_INPUT_SCHEMA))
        build.clicks.sort(key=lambda c: c.ts)
        runtime.store.append_clicks(enrich(build.clicks, lambda _ws: ("none", b"")))
        runtime.stitch_now()
        result = service.run(runtime.db, runtime.store, ws, cause="demo", actor="demo", now=now)
        runtime.tags.recompute(ws, cause="model")
        segment = _lookalike(runtime, ws) if result["status"] == "succeeded" else None
        return DemoReport(customers, build.orders, len(build.clicks), result["status"], segment)
    finally:
        runtime.close()


def _sorted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["received_at"], e["message_id"]))


def _share_links(runtime, ws: int, numbers: list[int]) -> dict[int, _Link]:
    """Share links of the sharers. They must be persons first: their member ids are resolved now (as the
    identify API would), and their identify events find the same person when stitched."""
    ctx = Context(workspace_id=ws, actor="demo", base_host=runtime.settings.base_host)
    out = {}
    with runtime.db.session() as session:
        for number in numbers:
            person = identity.resolve(session, ws, [("member_id", member_id(number))])
            link = share.get_or_create(session, ctx, person).link
            out[number] = _Link(link.id, link.workspace_id, link.hostname, link.slug, link.destination_url)
    return out


def _lookalike(runtime, ws: int) -> int | None:
    """A seed segment of the VIP and high-value tiers, and a lookalike audience of 40 from it."""
    try:
        with runtime.db.session() as session:
            seed = segments.create_segment(
                session,
                ws,
                {
                    "name": "高价值客户 High-value customers",
                    "description": "价值金字塔 VIP 与高价值层 / VIP and high tiers of the value pyramid",
                    "rule": {"type": "tag", "tag": "value_tier", "op": "in", "value": ["vip", "high"]},
                },
                actor="demo",
            ).id
        runtime.tags.recompute(ws, cause="model")
        made = audiences.create(
            runtime.db, ws, {"seed_segment_id": seed, "top_n": 40}, actor="demo", refresh=runtime.tags.recompute
        )
        return made["segment_id"]
    except SiyuError:  # the demo must never stop a first start
        log.exception("demo lookalike audience failed")
        return None
