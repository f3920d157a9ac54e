"""Consent the tracking API could not record, counted per code: shown on the privacy page and in the API.

Purposes are configured by people, never invented from what an SDK happens to send: a typo in a
website's consent banner shows up here (with how often and the last event that carried it) until
someone adds the purpose or fixes the banner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.consent.models import ConsentIssue
from siyu.db import utcnow

PROBLEMS = ("unknown", "disabled", "not_boolean")
MAX_CODE = 64


def report(session: Session, workspace_id: int, seen: Mapping[tuple[str, str], tuple[int, str | None]]) -> None:
    """Add counts: {(code, problem): (times, last event id)}."""
    if not seen:
        return
    now = utcnow()
    codes = sorted({code[:MAX_CODE] for code, _ in seen})
    rows = {
        (r.code, r.problem): r
        for r in session.scalars(
            select(ConsentIssue).where(ConsentIssue.workspace_id == workspace_id, ConsentIssue.code.in_(codes))
        )
    }
    for (code, problem), (times, event_id) in seen.items():
        key = (code[:MAX_CODE], problem)
        row = rows.get(key)
        if row is None:
            row = rows[key] = ConsentIssue(
                workspace_id=workspace_id, code=key[0], problem=problem, count=0, first_seen=now
            )
            session.add(row)
        row.count += times
        row.last_seen = now
        row.last_event_id = event_id[:200] if event_id else None
    session.flush()


def list_issues(session: Session, workspace_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ConsentIssue).where(ConsentIssue.workspace_id == workspace_id).order_by(ConsentIssue.last_seen.desc())
    )
    return [_as_dict(r) for r in rows]


def _as_dict(row: ConsentIssue) -> dict[str, Any]:
    last_seen: datetime = row.last_seen
    return {
        "code": row.code,
        "problem": row.problem,
        "count": row.count,
        "last_event_id": row.last_event_id,
        "first_seen": row.first_seen,
        "last_seen": last_seen,
    }
