"""Official-account follows (公众号关注) → 'Official Account Followed' / 'Official Account Unfollowed' tracks.

The follower is known by openid (unique only within its app, hence `appid`) and, when the account
is bound to an open platform, unionid: both travel in `context.traits`, where identity resolution
reads them. `at` accepts WeChat's `subscribe_time` (Unix seconds) as it comes from the API. A row
without `at` stands for "follows now": importing the follower list again changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from siyu.imports import values
from siyu.imports.plan import Cells, Issues, Kind, Planned, compact, digest, track
from siyu.imports.reader import Record

COLUMNS = ("appid", "openid", "unionid", "event", "at", "scene", "qr_scene")
EVENT_WORDS = {
    **dict.fromkeys(("follow", "subscribe", "关注", "已关注", "followed"), "Official Account Followed"),
    **dict.fromkeys(
        ("unfollow", "unsubscribe", "取消关注", "取关", "已取关", "unfollowed"), "Official Account Unfollowed"
    ),
}
_EVENT_REASON = "must be follow or unfollow (also subscribe/unsubscribe, 关注/取消关注)"


def build(records: list[Record], issues: Issues, now: datetime, fmt: str) -> list[Planned]:
    planned: list[Planned] = []
    for record in records:
        c = Cells(record.values, record.row, issues)
        appid = c.get("appid", values.ident, required=True)
        openid = c.get("openid", values.identifier, required=True)
        unionid = c.get("unionid", values.identifier)
        event = c.get("event", lambda v: values.choice(v, EVENT_WORDS, _EVENT_REASON, "import_follow_event"))
        at = c.get("at", lambda v: values.moment(v, now))
        properties = compact({"appid": appid, "scene": c.get("scene"), "qr_scene": c.get("qr_scene")})
        if not c.ok:
            continue
        event = event or "Official Account Followed"
        identifiers = compact({"openid": openid, "appid": appid, "unionid": unionid})
        message = track(event, at or now, properties, None, identifiers)
        key = "\x1f".join((str(appid), str(openid), values.iso(at) if at else ""))
        content = digest({"p": properties, "id": identifiers})
        planned.append(Planned(record.row, key, message, at or now, content, key, [record.row]))
    return planned


SPEC = Kind(
    name="follows",
    source_kind="official_account",
    default_source="公众号导入",
    columns=COLUMNS,
    required=("appid", "openid"),
    build=build,
    key_column="openid",
)
