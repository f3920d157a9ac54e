"""The data map page (数据地图): how many users do I really have, and where?

Head counts first (people, and how many of them we know by something personal rather than a
cookie), then per touchpoint: volume over 30 days, reach, the identifiers it carries, and the gaps
in the graph as sentences an operator can act on.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from siyu.i18n import register, t
from siyu.profiles import datamap
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.profiles import id_type_label, kind_label

register(
    {
        "nav.data_map": ("数据地图", "Data map"),
        "data_map.title": ("数据地图", "Data map"),
        "data_map.question": ("我到底有多少用户？他们在哪里？", "How many users do I really have, and where?"),
        "data_map.profiles": ("用户（去重后）", "People (after One ID)"),
        "data_map.personal": ("有个人标识", "Known personally"),
        "data_map.personal_note": ("会员号、手机号、邮箱或微信", "member id, phone, e-mail or WeChat"),
        "data_map.device_only": ("仅设备 / Cookie", "Only a device or cookie"),
        "data_map.anonymous_share": ("匿名事件占比", "Anonymous events"),
        "data_map.anonymous_note": ("{n} 条事件未关联到任何人", "{n} events belong to nobody yet"),
        "data_map.daily": ("各触点事件量（近 30 天，北京时间）", "Events per touchpoint (30 days, Beijing time)"),
        "data_map.sources": ("触点", "Touchpoints"),
        "data_map.col.source": ("触点", "Touchpoint"),
        "data_map.col.events": ("事件", "Events"),
        "data_map.col.anonymous": ("匿名占比", "Anonymous"),
        "data_map.col.profiles": ("触达用户", "People reached"),
        "data_map.col.only_here": ("仅在此出现", "Seen only here"),
        "data_map.col.identifiers": ("携带的身份标识", "Identifiers carried"),
        "data_map.no_source": ("未标注来源", "Without a source"),
        "data_map.types": ("身份标识类型", "Identifier types"),
        "data_map.col.type": ("类型", "Type"),
        "data_map.col.values": ("标识数", "Values"),
        "data_map.col.type_profiles": ("用户数", "People"),
        "data_map.col.alone": ("仅有此标识", "Only this"),
        "data_map.linked": ("已打通", "Linked"),
        "data_map.not_linked": ("未打通", "Not linked"),
        "data_map.unused": ("未采集", "Not collected"),
        "data_map.gaps": ("图谱缺口", "Gaps in the graph"),
        "data_map.no_gaps": ("没有发现明显缺口", "No gaps found"),
        "data_map.empty": (
            "还没有事件：接入触点后这里会显示用户分布",
            "No events yet: connect a touchpoint to see where your people are",
        ),
        "data_map.sources_link": ("触点管理", "Sources"),
        "data_map.gap.anonymous_source": (
            "{source}：{share} 的事件仍是匿名的（{n} 条），可在此触点采集手机号、会员号或 UnionID",
            "{source}: {share} of its events stay anonymous ({n}); collect a phone, member id or UnionID there",
        ),
        "data_map.gap.island_source": (
            "{source}：{share} 的用户（{n} 人）只在这里出现过，没有与其他触点打通",
            "{source}: {share} of its people ({n}) were seen on no other touchpoint",
        ),
        "data_map.gap.no_identifiers": ("{source} 的事件不带任何身份标识", "{source}'s events carry no identifier"),
        "data_map.gap.silent_source": ("{source} 还没有发送任何事件", "{source} has not sent any event yet"),
        "data_map.gap.never_linked_type": (
            "{type} 已采集（{n} 人），但从未与其他标识关联",
            "{type} is collected ({n} people) but never linked to another identifier",
        ),
        "data_map.gap.unused_type": ("还没有采集 {type}", "No {type} collected yet"),
        "data_map.gap.pending": ("{n} 条事件等待身份识别", "{n} events are waiting to be stitched"),
    }
)


def source_label(entry: dict[str, Any], locale: str) -> str:
    if entry.get("name"):
        return entry["name"]
    if entry.get("kind"):
        return kind_label(entry["kind"], locale)
    return t("data_map.no_source", locale)


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def gap_sentence(gap: dict[str, Any], locale: str) -> str:
    kind = gap["kind"]
    fields: dict[str, Any] = {"n": gap.get("events", gap.get("profiles", ""))}
    if "share" in gap:
        fields["share"] = percent(gap["share"])
    if "type" in gap:
        fields["type"] = id_type_label(gap["type"], locale)
    if kind.endswith("_source") or kind == "no_identifiers":
        fields["source"] = source_label({"name": gap["name"], "kind": gap["source_kind"]}, locale)
    return t(f"data_map.gap.{kind}", locale, **fields)


@page("analytics:read")
async def data_map_page(request: Request, viewer: Viewer) -> Response:
    rt = runtime_of(request)

    def build() -> dict[str, Any]:
        with rt.db.session() as session:
            return datamap.data_map(session, rt.store, viewer.workspace.id)

    data = await anyio.to_thread.run_sync(build)
    locale = viewer.locale
    chart = {
        "x": [d[5:] for d in data["days"]],
        "series": [{"name": source_label(s, locale), "data": s["daily"]} for s in data["sources"] if any(s["daily"])],
    }
    return render(
        request,
        "data_map.html",
        viewer,
        data=data,
        chart=chart,
        gaps=[gap_sentence(g, locale) for g in data["gaps"]],
        source_label=source_label,
        percent=percent,
        kind_label=kind_label,
        id_type_label=id_type_label,
    )


def routes() -> list[BaseRoute]:
    return [Route("/data-map", data_map_page, methods=["GET"])]
