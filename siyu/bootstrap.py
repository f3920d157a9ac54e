"""First run: a workspace, its default domain, an owner account, an API key and a few demo links.

Secrets are printed once by the caller and never stored in clear.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select

from siyu.config import Settings
from siyu.db import Database
from siyu.links import service as links
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

ADMIN_EMAIL = "admin@siyu.local"

DEMO_LINKS = [
    {
        "slug": "coffee",
        "destination_url": "https://example.com/coffee?from=poster",
        "title": "精品咖啡新品 · Coffee launch",
        "tags": ["咖啡", "demo"],
        "utm": {"source": "poster", "medium": "offline", "campaign": "coffee-launch"},
        "anti_block_platforms": ["wechat", "qq", "weibo", "dingtalk", "douyin"],
    },
    {
        "slug": "wx-only",
        "destination_url": "https://example.com/member-day",
        "title": "会员日（仅限微信内打开）· Member day, WeChat only",
        "tags": ["demo"],
        "allowed_platforms": ["wechat", "wecom"],
    },
    {
        "slug": "get-app",
        "destination_url": "https://example.com/download",
        "title": "App 下载（按系统分流）· App download by OS",
        "tags": ["demo"],
        "rules": [
            {"when": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id000000"},
            {"when": {"os": ["android", "harmonyos"]}, "url": "https://example.com/download/app.apk"},
        ],
        "blocked_platforms": ["qq"],
    },
    {
        "slug": "ab-test",
        "destination_url": "https://example.com/landing",
        "title": "落地页 A/B 测试 · Landing page A/B",
        "tags": ["demo"],
        "variants": [
            {"url": "https://example.com/landing-a", "weight": 50},
            {"url": "https://example.com/landing-b", "weight": 50},
        ],
    },
]


@dataclass
class FirstRun:
    workspace: str
    domain: str
    email: str
    password: str
    api_key: str


def initialize(settings: Settings, db: Database, demo: bool = True, demo_clicks: bool = False) -> FirstRun | None:
    """Create the first workspace when there is none; None when the installation already exists.

    With `demo_clicks`, a month of synthetic visits is added so every chart has something to show
    (only the CLI asks for it: it runs before the server opens the event store).
    """
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(Workspace)):
            return None
        ws = workspaces.create_workspace(session, "默认工作区 Default", slug="default")
        host = urlsplit(settings.base_url).netloc.lower() or "localhost:8000"
        workspaces.add_domain(session, ws.id, host, is_default=True)
        password = secrets.token_urlsafe(12)
        user = workspaces.create_user(session, ADMIN_EMAIL, password, "Admin")
        workspaces.add_member(session, ws.id, user.id, "owner")
        issued = workspaces.create_api_key(session, ws.id, "first key", created_by=user.id)
        if demo:
            ctx = links.Context(workspace_id=ws.id, actor=ADMIN_EMAIL, base_host=settings.base_host)
            for data in DEMO_LINKS:
                links.create_link(session, ctx, data)
        info = FirstRun(ws.slug, host, ADMIN_EMAIL, password, issued.secret)
    if demo and demo_clicks:
        from siyu.demo import generate_clicks
        from siyu.events.duckdb_store import DuckDBEventStore

        store = DuckDBEventStore(settings.events_path)
        try:
            generate_clicks(db, store)
        finally:
            store.close()
        from siyu.demo_customers import generate_customers

        generate_customers(settings, db)  # members, orders, visits; demo tags and segments, computed
        from siyu.value.demo import generate_customers as generate_value_demo

        generate_value_demo(settings)  # shop customers, share-link referrals; customer value computed once
    return info
