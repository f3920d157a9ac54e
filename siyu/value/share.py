"""Personal share links (专属分享链接): every person can get one, and it names them as the referrer.

How a link names its owner: in `value_share_links` (person → link), **not** in the link's
`person_ref`. A personal link's `person_ref` makes every click on it the member's own click (the
stitcher attributes it to them), which is right for a link sent *to* a member, and wrong for one a
member passes *on*: their friends' visits would become the sharer's activity, and a person without a
member id could not have one. A share link's clicks stay ordinary clicks — each belongs to whoever
its visitor cookie turns out to be — so the visitor's first touch can be traced to the sharer
(siyu.value.referrals). The link passes the visitor id on (`sy_vid`), so the landing page can
identify the visitor with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.errors import InvalidInput, NotFound
from siyu.i18n import register
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.segments.service import names_of
from siyu.value import config
from siyu.value.models import ShareLink
from siyu.value.persons import current_persons

SHARE_TAG = "share"
UTM = {"source": "share", "medium": "referral", "campaign": "personal-share"}

register(
    {
        "error.value_share_url": (
            "请先在客户价值设置中填写分享落地页，或在此填写目标网址",
            "set the share landing page in the value settings (share_url) or give destination_url",
        ),
    }
)


@dataclass(frozen=True)
class Shared:
    super_id: int
    link: ShortLink
    created: bool


def share_link_of(session: Session, workspace_id: int, super_id: int) -> ShortLink | None:
    """The person's active share link (the newest not archived), if they have one."""
    return session.scalar(
        select(ShortLink)
        .join(ShareLink, ShareLink.link_id == ShortLink.id)
        .where(ShareLink.workspace_id == workspace_id, ShareLink.super_id == super_id, ~ShortLink.archived)
        .order_by(ShareLink.id.desc())
        .limit(1)
    )


def get_or_create(session: Session, ctx: links.Context, super_id: int, destination_url: str | None = None) -> Shared:
    """The person's share link, created on first request (to `destination_url`, else the workspace's
    share landing page). A merged-away super ID gets its current person's link."""
    ws = ctx.workspace_id
    person = current_persons(session, ws, [super_id]).get(super_id) if isinstance(super_id, int) else None
    if person is None:
        raise NotFound(f"person {super_id}")
    existing = share_link_of(session, ws, person)
    if existing is not None:
        return Shared(person, existing, False)
    url = destination_url if destination_url not in (None, "") else config.load(session, ws).share_url
    if not url:
        raise InvalidInput(
            "destination_url",
            "set the share landing page in the value settings (share_url) or give destination_url",
            code="value_share_url",
        )
    name = names_of(session, [person]).get(person) or f"#{person}"
    link = links.create_link(
        session,
        ctx,
        {
            "destination_url": url,
            "title": f"分享 · Share: {name}"[:200],
            "tags": [SHARE_TAG],
            "utm": UTM,
            "pass_visitor_id": True,
        },
    )
    session.add(ShareLink(workspace_id=ws, super_id=person, link_id=link.id, created_by=ctx.actor[:200]))
    session.flush()
    return Shared(person, link, True)


def owners(session: Session, workspace_id: int) -> dict[int, int]:
    """{link id: the current super ID of its owner} for every share link of the workspace (archived ones
    too: visitors who came through them were still referred)."""
    rows = session.execute(
        select(ShareLink.link_id, ShareLink.super_id).where(ShareLink.workspace_id == workspace_id)
    ).all()
    current = current_persons(session, workspace_id, [owner for _, owner in rows])
    return {link_id: current[owner] for link_id, owner in rows if owner in current}
