"""The dashboard: clicks today / 7 / 30 days, top links, platforms, provinces and a trend chart."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from siyu.events.store import ClickFilter
from siyu.links.service import links_by_ids
from siyu.redirect.pages import platform_name
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.formatting import zone


def _midnight(now: datetime, tz: str = "Asia/Shanghai") -> datetime:
    local = now.astimezone(zone(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard_data(request: Request, viewer: Viewer) -> dict:
    rt = runtime_of(request)
    store = rt.store
    now = datetime.now(zone("Asia/Shanghai"))
    ws = viewer.workspace.id
    periods = {
        "today": ClickFilter(ws, since=_midnight(now), until=now + timedelta(seconds=1)),
        "7d": ClickFilter(ws, since=now - timedelta(days=7), until=now + timedelta(seconds=1)),
        "30d": ClickFilter(ws, since=now - timedelta(days=30), until=now + timedelta(seconds=1)),
    }
    summaries = {k: store.summary(f) for k, f in periods.items()}
    month = periods["30d"]
    top = store.top_links(month, 10)
    with rt.db.session() as db:
        by_id = {link.id: link for link in links_by_ids(db, ws, [i for i, _, _ in top])}
    series = store.timeseries(month, "day")
    return {
        "summaries": summaries,
        "top_links": [(by_id[i], c, u) for i, c, u in top if i in by_id],
        "platforms": [(platform_name(k, viewer.locale), c) for k, c, _ in store.breakdown(month, "platform", 10)],
        "provinces": [(k or viewer.t("common.none"), c) for k, c, _ in store.breakdown(month, "province", 10)],
        "trend": {
            "x": [t.astimezone(zone("Asia/Shanghai")).strftime("%m-%d") for t, _, _ in series],
            "clicks": [c for _, c, _ in series],
            "unique": [u for _, _, u in series],
        },
    }


@page("analytics:read")
async def dashboard(request: Request, viewer: Viewer) -> Response:
    data = await anyio.to_thread.run_sync(dashboard_data, request, viewer)
    return render(request, "dashboard.html", viewer, **data)
