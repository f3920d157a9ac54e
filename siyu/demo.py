"""Demo click history, so a fresh installation's dashboard and charts show something meaningful.

Visits are synthetic but run through the real pipeline: each visitor (a real user-agent string and
an IP from a real Chinese network) goes through `decide()` for its link, and the resulting raw
clicks are enriched and appended exactly like live ones.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from sqlalchemy import select

from siyu.clicks.enrich import enrich
from siyu.clicks.record import RawClick
from siyu.db import Database
from siyu.events.store import EventStore
from siyu.links import decide as d
from siyu.links.models import ShortLink
from siyu.useragent import detect_platform, device_class, os_family
from siyu.workspaces.models import Workspace

USER_AGENTS = [
    (
        30,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    ),
    (
        25,
        "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 "
        "MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    ),
    (
        12,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    (
        10,
        "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
    ),
    (
        8,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        6,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 QQ/9.0.8.612 V1_IPH_SQ_9.0.8_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 "
        "StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 QQTheme/1000 Core/WKWebView Device/Apple(iPhone 13) "
        "NetType/WIFI QBWebViewType/1 WKType/1",
    ),
    (
        5,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Weibo (iPhone14,5__weibo__13.11.1__iphone__os17.1)",
    ),
    (
        4,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Safari/605.1.15",
    ),
    (2, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
]
IPS = [
    (20, "202.96.134.133"),  # 广东 深圳
    (15, "114.114.114.114"),  # 江苏 南京
    (15, "223.5.5.5"),  # 浙江 杭州
    (12, "180.76.76.76"),  # 北京
    (10, "61.139.2.69"),  # 四川 成都
    (8, "1.2.4.8"),  # 北京
    (5, "8.8.8.8"),  # 美国
]
REFERRERS = [
    (60, ""),
    (20, "https://mp.weixin.qq.com/s/abc"),
    (10, "https://weibo.com/"),
    (10, "https://www.baidu.com/"),
]


def _pick(rng: random.Random, weighted: list[tuple[int, str]]) -> str:
    return rng.choices([v for _, v in weighted], weights=[w for w, _ in weighted])[0]


def generate_clicks(db: Database, store: EventStore, days: int = 30, visits: int = 2500, seed: int = 7) -> int:
    """Append `visits` demo clicks spread over the last `days` days; returns how many were written."""
    rng = random.Random(seed)
    with db.session() as session:
        links = [d.CompiledLink.from_model(link) for link in session.scalars(select(ShortLink))]
        privacy = {ws.id: (ws.ip_mode, bytes.fromhex(ws.ip_salt)) for ws in session.scalars(select(Workspace))}
    if not links:
        return 0
    now = time.time()
    visitors = [f"demo{rng.getrandbits(48):012x}" for _ in range(visits // 3)]
    batch: list[RawClick] = []
    for _ in range(visits):
        link = rng.choices(links, weights=[5, 2, 3, 2][: len(links)] + [1] * max(0, len(links) - 4))[0]
        ua = _pick(rng, USER_AGENTS)
        visitor_id = rng.choice(visitors)
        ts = now - days * 86400 * (rng.random() ** 1.6)  # recent days get more traffic
        visitor = d.Visitor(detect_platform(ua), os_family(ua), device_class(ua), visitor_id)
        query = "utm_source=wechat_group" if rng.random() < 0.2 else ""
        decision = d.decide(link, visitor, datetime.fromtimestamp(ts, UTC), 0, query)
        trigger = "qr" if rng.random() < 0.3 else "link"
        batch.append(
            RawClick(
                ts,
                link.id,
                link.workspace_id,
                link.hostname,
                link.slug,
                visitor_id,
                False,
                _pick(rng, IPS),
                ua,
                "GET",
                _pick(rng, REFERRERS),
                trigger,
                decision.outcome,
                query,
                decision.url or "",
                decision.variant,
                visitor.platform,
                link.person_ref,
            )
        )
    batch.sort(key=lambda c: c.ts)
    store.append_clicks(enrich(batch, lambda ws: privacy.get(ws, ("truncated", b"demo"))))
    return len(batch)
