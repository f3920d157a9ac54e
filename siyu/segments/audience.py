"""Audience export (人群包) for advertising platforms: hashed phone numbers or device ids, one per line.

Tencent Ads (腾讯广告 DMP), Ocean Engine (巨量引擎 云图/DMP) and Alibaba (阿里妈妈 达摩盘) take an uploaded
file of identifiers hashed with MD5 or SHA-256, one per line, no header, as lower-case hex:

* phone: the 11-digit mainland mobile number without +86 or separators ('13800138000'), hashed.
  Numbers outside mainland China are left out (the platforms match mainland numbers only).
* device_id: the device id as One ID keeps it (trimmed, lower-case; IMEI, OAID, Android ID or IDFA),
  hashed. Platforms that want IDFA upper-case before hashing need a file made for them.

Only people whose current consent to `data_sharing` (数据共享, a separate consent under PIPL art. 23)
is granted are exported; the others are counted as refused. Every export is logged
(`audience_exports`: who, what, how hashed, how many people in, refused, exported).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.consent.service import with_consent
from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.i18n import register
from siyu.identity.models import IdentityIdentifier, IdentityPerson
from siyu.identity.store import root_of
from siyu.segments.models import AudienceExport, SegmentMember
from siyu.segments.service import get_segment, get_snapshot, snapshot_members

HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}
ID_TYPES = ("phone", "device_id")
PURPOSE = "data_sharing"
CHUNK = 500

register({"error.audience_source": ("请指定一个人群或一个快照", "name either a segment or a snapshot")})


@dataclass
class Export:
    lines: list[str]
    log: dict[str, Any]

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def national_mobile(e164: str) -> str | None:
    """'+8613800138000' -> '13800138000'; None for anything but a mainland mobile number."""
    if e164.startswith("+86") and len(e164) == 14 and e164[3] == "1" and e164[3:].isdigit():
        return e164[3:]
    return None


def hashed(value: str, algorithm: str) -> str:
    return HASHES[algorithm](value.encode()).hexdigest()


def _roots(session: Session, workspace_id: int, ids: Sequence[int]) -> set[int]:
    """Current, not erased super IDs of these ids (snapshot members may have been merged since)."""
    out: set[int] = set()
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), CHUNK):
        for pid, ws, merged_into, erased in session.execute(
            select(
                IdentityPerson.id, IdentityPerson.workspace_id, IdentityPerson.merged_into, IdentityPerson.erased_at
            ).where(IdentityPerson.id.in_(ordered[i : i + CHUNK]))
        ):
            if ws != workspace_id or erased is not None:
                continue
            root = pid if merged_into is None else root_of(session, merged_into)
            out.add(root)
    return out


def _values(session: Session, workspace_id: int, id_type: str, persons: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    I = IdentityIdentifier  # noqa: E741
    for i in range(0, len(persons), CHUNK):
        for pid, value in session.execute(
            select(I.person_id, I.value).where(
                I.workspace_id == workspace_id,
                I.id_type == id_type,
                I.quarantined.is_(False),
                I.person_id.in_(persons[i : i + CHUNK]),
            )
        ):
            out.setdefault(pid, []).append(value)
    return out


def export_audience(
    session: Session,
    workspace_id: int,
    *,
    segment_id: int | None = None,
    snapshot_id: int | None = None,
    id_type: str = "phone",
    hash: str = "md5",
    actor: str = "",
) -> Export:
    """The hashed identifiers of a segment's current members (or a snapshot's) who consented to data
    sharing, and the log entry of the export (the caller commits)."""
    errors = []
    if id_type not in ID_TYPES:
        errors.append(("id_type", ID_TYPES))
    if hash not in HASHES:
        errors.append(("hash", tuple(HASHES)))
    if errors:
        raise InvalidInput(
            [FieldError(f, f"must be one of {', '.join(c)}", "one_of", {"choices": ", ".join(c)}) for f, c in errors]
        )
    if (segment_id is None) == (snapshot_id is None):
        raise InvalidInput("segment_id", "name either a segment or a snapshot", code="audience_source")
    if snapshot_id is not None:
        snap = get_snapshot(session, workspace_id, snapshot_id)
        name, seg_ref, ids = snap.name, snap.segment_id, snapshot_members(session, snap.id)
    else:
        seg = get_segment(session, workspace_id, segment_id)
        name, seg_ref = seg.name, seg.id
        ids = list(session.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == seg.id)))
    people = sorted(_roots(session, workspace_id, ids))
    allowed = sorted(with_consent(session, workspace_id, PURPOSE, people))
    lines: dict[str, None] = {}
    exported = 0
    for values in _values(session, workspace_id, id_type, allowed).values():
        before = len(lines)
        for value in values:
            plain = national_mobile(value) if id_type == "phone" else value.strip().lower()
            if plain:
                lines.setdefault(hashed(plain, hash))
        exported += len(lines) > before
    row = AudienceExport(
        workspace_id=workspace_id,
        segment_id=seg_ref,
        snapshot_id=snapshot_id,
        name=name[:100],
        id_type=id_type,
        hash=hash,
        members=len(people),
        refused=len(people) - len(allowed),
        exported=exported,
        rows=len(lines),
        actor=actor[:200],
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return Export(sorted(lines), export_dict(row))


def export_dict(row: AudienceExport) -> dict[str, Any]:
    return {
        "id": row.id,
        "segment_id": row.segment_id,
        "snapshot_id": row.snapshot_id,
        "name": row.name,
        "id_type": row.id_type,
        "hash": row.hash,
        "members": row.members,
        "refused": row.refused,
        "exported": row.exported,
        "rows": row.rows,
        "actor": row.actor,
        "created_at": row.created_at,
    }


def export_log(session: Session, workspace_id: int, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AudienceExport)
        .where(AudienceExport.workspace_id == workspace_id)
        .order_by(AudienceExport.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    return [export_dict(r) for r in rows]
