"""Consent carried by tracked events, recorded for the person each event resolves to.

Segment's consent spec puts the visitor's choices on every message:

    "context": {"consent": {"categoryPreferences": {"marketing": true, "data_sharing": false},
                            "evidence": "banner v3, 2026-11-01"}}

The stitcher (siyu.identity.stitch) calls `events_stitched` with each batch once its events have a
super ID; this listener turns the preferences into consent records (source `tracking`, or `import`
for member files imported by siyu.imports, which arrive the same way; the event's time; its id as
the reference). Banners repeat the same preferences on every event, so only a
change is recorded, and replaying an event records nothing twice. Codes match purposes ignoring
case; unknown or disabled codes and non-boolean values are counted as issues (siyu.consent.issues),
never turned into purposes. Anonymous events (no super ID yet) carry no one to record for.

Merges and unmerges need no work here: consent is read over the identity family (see
siyu.consent.persons). An erasure deletes the person's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session

from siyu.consent import issues
from siyu.consent import service as consent
from siyu.consent.persons import roots
from siyu.consent.purposes import Purpose, purposes_by_code
from siyu.db import utcnow
from siyu.identity.listeners import StitchedEvent
from siyu.imports.plan import LIBRARY as IMPORT_LIBRARY


class ConsentListener:
    """A `PersonListener` (siyu.identity.listeners)."""

    def events_stitched(self, session: Session, events: Sequence[StitchedEvent]) -> None:
        by_workspace: dict[int, list[tuple[StitchedEvent, dict[str, Any]]]] = {}
        for ev in events:
            consent_ctx = ev.context.get("consent") if ev.super_id is not None and ev.context else None
            prefs = consent_ctx.get("categoryPreferences") if isinstance(consent_ctx, dict) else None
            if isinstance(prefs, dict) and prefs:
                by_workspace.setdefault(ev.workspace_id, []).append((ev, consent_ctx))  # type: ignore[arg-type]
        for ws, items in by_workspace.items():
            self._record(session, ws, items)

    def _record(self, session: Session, ws: int, items: list[tuple[StitchedEvent, dict[str, Any]]]) -> None:
        purposes = purposes_by_code(session, ws)
        current = roots(session, ws, {ev.super_id for ev, _ in items if ev.super_id is not None})
        statements: list[consent.Statement] = []
        seen: dict[tuple[str, str], tuple[int, str | None]] = {}
        now = utcnow()
        for ev, ctx in items:
            root = current.get(ev.super_id)  # type: ignore[arg-type]
            if root is None:  # erased meanwhile
                continue
            evidence = _evidence(ctx.get("evidence"))
            library = ev.context.get("library")
            imported = isinstance(library, dict) and library.get("name") == IMPORT_LIBRARY["name"]
            for raw_code, value in ctx["categoryPreferences"].items():
                code = str(raw_code).strip().lower()
                purpose: Purpose | None = purposes.get(code)
                problem = (
                    "unknown"
                    if purpose is None
                    else "disabled"
                    if not purpose.enabled
                    else "not_boolean"
                    if not isinstance(value, bool)
                    else None
                )
                if problem is not None:
                    times = seen.get((str(raw_code), problem), (0, None))[0]
                    seen[(str(raw_code), problem)] = (times + 1, ev.event_id)
                    continue
                statements.append(
                    consent.Statement(
                        super_id=root,
                        purpose=code,
                        granted=value,
                        recorded_at=min(ev.timestamp, now),
                        source="import" if imported else "tracking",
                        evidence=evidence,
                        actor=f"source:{ev.source_id}" if ev.source_id is not None else ev.kind,
                        event_id=ev.event_id[: consent.MAX_EVENT_ID],
                    )
                )
        consent.record_statements(session, ws, statements)
        issues.report(session, ws, seen)

    def persons_merged(self, session: Session, workspace_id: int, survivor: int, absorbed: int) -> None:
        """Nothing to move: the survivor's consent is read over its family, so per purpose it is the
        most recent record of either person."""

    def person_split(self, session: Session, workspace_id: int, kept: int, restored: int) -> None:
        """Nothing to move: each record stays with the super ID it was recorded for."""

    def person_erased(self, session: Session, workspace_id: int, super_id: int) -> None:
        consent.erase_records(session, workspace_id, super_id)


def _evidence(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text.replace("\x00", "").strip()[: consent.MAX_EVIDENCE]
