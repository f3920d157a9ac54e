"""Consent records: record, read the current state, check, list the history, forget.

A record says granted, denied or withdrawn; withdrawn is not chosen by the caller but derived: a
denial recorded while the purpose was granted *is* a withdrawal (PIPL art. 15), and asking to
"withdraw" what was never granted records a plain denial. The current state of a purpose is the
latest record by the time the person said it (`recorded_at`, then insertion order), so consent
that arrives late (an import of last year's forms) does not override what the person said since.

Every function takes the caller's session and never commits.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.consent.models import ConsentRecord
from siyu.consent.persons import families, roots
from siyu.consent.purposes import Purpose, get_purpose, list_purposes
from siyu.db import utcnow
from siyu.errors import Conflict, FieldError, InvalidInput
from siyu.identity.service import current_super_id

STATUSES = ("granted", "denied", "withdrawn")
SOURCES = ("tracking", "import", "console", "api")
MAX_EVIDENCE = 500
MAX_ACTOR = 200
MAX_EVENT_ID = 200
FUTURE_SLACK = timedelta(minutes=5)
CHUNK = 500


@dataclass(frozen=True)
class Statement:
    """One thing a person said about one purpose, before it is settled into a record."""

    super_id: int  # a current super ID
    purpose: str
    granted: bool
    recorded_at: datetime
    source: str
    evidence: str = ""
    actor: str = ""
    event_id: str | None = None


def record(
    session: Session,
    workspace_id: int,
    super_id: object,
    purpose: object,
    status: object,
    *,
    source: object,
    evidence: object = "",
    actor: object = "",
    recorded_at: object = None,
    event_id: object = None,
) -> dict[str, Any]:
    """Append one consent record for a person (the current super ID of `super_id`) and return it."""
    root = current_super_id(session, workspace_id, super_id)
    found = get_purpose(session, workspace_id, purpose)
    errors: list[FieldError] = []
    if not found.enabled:
        errors.append(
            FieldError(
                "purpose",
                f"the purpose '{found.code}' is disabled",
                "consent_purpose_disabled",
                {"code": found.code},
            )
        )
    if status not in STATUSES:
        errors.append(_one_of("status", STATUSES))
    if source not in SOURCES:
        errors.append(_one_of("source", SOURCES))
    errors += _text_errors(("evidence", evidence, MAX_EVIDENCE), ("actor", actor, MAX_ACTOR))
    if event_id is not None:
        errors += _text_errors(("event_id", event_id, MAX_EVENT_ID))
    at, more = _time(recorded_at)
    errors += more
    if errors:
        raise InvalidInput(errors)
    statement = Statement(
        root,
        found.code,
        status == "granted",
        at,
        str(source),
        str(evidence).strip(),
        str(actor),
        event_id if isinstance(event_id, str) else None,
    )
    ledger = Ledger(session, workspace_id, [statement])
    row = ledger.add(statement, only_changes=False)
    if row is None:
        raise Conflict("event_id", f"the event '{event_id}' already recorded this purpose", code="consent_event_seen")
    ledger.flush()
    return _record_dict(row)


def record_statements(session: Session, workspace_id: int, statements: Sequence[Statement]) -> int:
    """Record what tracked events said, in time order; a statement that changes nothing (the same
    answer again, or an event already recorded) is skipped. Returns how many records were added."""
    if not statements:
        return 0
    ledger = Ledger(session, workspace_id, statements)
    added = sum(ledger.add(s, only_changes=True) is not None for s in sorted(statements, key=lambda s: s.recorded_at))
    ledger.flush()
    return added


def current_consents(session: Session, workspace_id: int, super_id: object) -> list[dict[str, Any]]:
    """Per purpose, the person's current consent: every enabled purpose (status None = never asked),
    and disabled ones the person has a record for."""
    root = current_super_id(session, workspace_id, super_id)
    latest = _latest(session, workspace_id, [root])
    out = []
    for p in list_purposes(session, workspace_id):
        row = latest.get((root, p.code))
        if row is None and not p.enabled:
            continue
        out.append(
            {
                "purpose": p.code,
                "name": p.name,
                "name_en": p.name_en,
                "enabled": p.enabled,
                "status": row.status if row else None,
                "granted": bool(row and row.status == "granted" and p.enabled),
                "source": row.source if row else None,
                "recorded_at": row.recorded_at if row else None,
                "evidence": row.evidence if row else None,
                "actor": row.actor if row else None,
            }
        )
    return out


def has_consent(session: Session, workspace_id: int, super_id: object, purpose: object) -> bool:
    """True only when the person's latest record for an enabled purpose is a grant.

    Never asked, denied, withdrawn, a disabled purpose, an unknown or erased person: False. An
    unknown purpose code is a mistake in the caller's configuration, so it raises InvalidInput.
    """
    found = get_purpose(session, workspace_id, purpose)
    if isinstance(super_id, bool) or not isinstance(super_id, int):
        raise InvalidInput("super_id", "must be a whole number", code="whole_number")
    if not found.enabled:
        return False
    root = roots(session, workspace_id, [super_id]).get(super_id)
    if root is None:
        return False
    return root in _granted(session, workspace_id, found, [root])


def with_consent(session: Session, workspace_id: int, purpose: object, super_ids: Iterable[int]) -> set[int]:
    """The given current super IDs whose consent to `purpose` is granted: `has_consent` for many at once."""
    found = get_purpose(session, workspace_id, purpose)
    wanted = {s for s in super_ids if isinstance(s, int) and not isinstance(s, bool)}
    if not found.enabled or not wanted:
        return set()
    return _granted(session, workspace_id, found, sorted(wanted))


def history(
    session: Session, workspace_id: int, super_id: object, purpose: object = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The person's records, newest first (by when they were said), optionally for one purpose."""
    root = current_super_id(session, workspace_id, super_id)
    code = get_purpose(session, workspace_id, purpose).code if purpose is not None else None
    members = list(families(session, workspace_id, [root]))
    q = select(ConsentRecord).where(ConsentRecord.workspace_id == workspace_id, ConsentRecord.super_id.in_(members))
    if code is not None:
        q = q.where(ConsentRecord.purpose == code)
    q = q.order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc()).limit(max(1, min(limit, 10_000)))
    return [_record_dict(r) for r in session.scalars(q)]


def count_records(session: Session, workspace_id: int, super_ids: Sequence[int]) -> int:
    total = 0
    for start in range(0, len(super_ids), CHUNK):
        total += session.scalar(
            select(func.count())
            .select_from(ConsentRecord)
            .where(
                ConsentRecord.workspace_id == workspace_id, ConsentRecord.super_id.in_(super_ids[start : start + CHUNK])
            )
        )
    return total


def erase_records(session: Session, workspace_id: int, super_id: int) -> int:
    """Delete every record of a person's family (an erasure; the audit log keeps the count)."""
    members = sorted(families(session, workspace_id, [super_id]))
    deleted = 0
    for start in range(0, len(members), CHUNK):
        result = session.execute(
            delete(ConsentRecord)
            .where(
                ConsentRecord.workspace_id == workspace_id, ConsentRecord.super_id.in_(members[start : start + CHUNK])
            )
            .execution_options(synchronize_session=False)
        )
        deleted += result.rowcount or 0
    return deleted


# --- the ledger: histories of a few persons, loaded once, appended to in time order -------------------------


class Ledger:
    """The records of the persons and purposes a batch of statements touches, read once.

    Each (root, purpose) keeps its history sorted by (recorded_at, id); a new statement is settled
    against the record in effect at its own time, so out-of-order arrivals are judged correctly.
    """

    def __init__(self, session: Session, workspace_id: int, statements: Sequence[Statement]):
        self.session = session
        self.ws = workspace_id
        self.rows: list[ConsentRecord] = []
        rooted = {s.super_id for s in statements}
        self.root_of = families(session, workspace_id, rooted)
        purposes = sorted({s.purpose for s in statements})
        self.history: dict[tuple[int, str], list[tuple[datetime, int, str]]] = {}
        self.seen_events: set[tuple[str, str]] = set()
        members = sorted(self.root_of)
        for start in range(0, len(members), CHUNK):
            q = select(
                ConsentRecord.super_id,
                ConsentRecord.purpose,
                ConsentRecord.recorded_at,
                ConsentRecord.id,
                ConsentRecord.status,
                ConsentRecord.event_id,
            ).where(
                ConsentRecord.workspace_id == workspace_id,
                ConsentRecord.super_id.in_(members[start : start + CHUNK]),
                ConsentRecord.purpose.in_(purposes),
            )
            for sid, purpose, at, rid, status, event_id in session.execute(q):
                self.history.setdefault((self.root_of[sid], purpose), []).append((at, rid, status))
                if event_id is not None:
                    self.seen_events.add((event_id, purpose))
        for h in self.history.values():
            h.sort()

    def add(self, s: Statement, only_changes: bool) -> ConsentRecord | None:
        if s.event_id is not None and (s.event_id, s.purpose) in self.seen_events:
            return None
        history = self.history.setdefault((self.root_of.get(s.super_id, s.super_id), s.purpose), [])
        before = _in_effect(history, s.recorded_at)
        granted_before = before is not None and before == "granted"
        if only_changes and before is not None and granted_before == s.granted:
            return None
        status = "granted" if s.granted else ("withdrawn" if granted_before else "denied")
        row = ConsentRecord(
            workspace_id=self.ws,
            super_id=s.super_id,
            purpose=s.purpose,
            status=status,
            source=s.source,
            recorded_at=s.recorded_at,
            evidence=s.evidence[:MAX_EVIDENCE],
            actor=s.actor[:MAX_ACTOR],
            event_id=s.event_id,
            created_at=utcnow(),
        )
        # A provisional id that sorts after every stored row said at the same time.
        insort(history, (s.recorded_at, 2**62 + len(self.rows), status))
        if s.event_id is not None:
            self.seen_events.add((s.event_id, s.purpose))
        self.rows.append(row)
        return row

    def flush(self) -> None:
        if self.rows:
            self.session.add_all(self.rows)
            self.session.flush()


def _in_effect(history: list[tuple[datetime, int, str]], at: datetime) -> str | None:
    status = None
    for when, _, st in history:
        if when > at:
            break
        status = st
    return status


def _latest(session: Session, workspace_id: int, roots_: Sequence[int], purpose: str | None = None):
    """(root, purpose) → the latest record, over each root's family."""
    owner = families(session, workspace_id, roots_)
    members = sorted(owner)
    best: dict[tuple[int, str], ConsentRecord] = {}
    for start in range(0, len(members), CHUNK):
        q = select(ConsentRecord).where(
            ConsentRecord.workspace_id == workspace_id, ConsentRecord.super_id.in_(members[start : start + CHUNK])
        )
        if purpose is not None:
            q = q.where(ConsentRecord.purpose == purpose)
        for row in session.scalars(q):
            key = (owner[row.super_id], row.purpose)
            held = best.get(key)
            if held is None or (row.recorded_at, row.id) > (held.recorded_at, held.id):
                best[key] = row
    return best


def _granted(session: Session, workspace_id: int, purpose: Purpose, roots_: Sequence[int]) -> set[int]:
    latest = _latest(session, workspace_id, roots_, purpose.code)
    return {root for (root, _), row in latest.items() if row.status == "granted"}


def _record_dict(row: ConsentRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "super_id": row.super_id,
        "purpose": row.purpose,
        "status": row.status,
        "source": row.source,
        "recorded_at": row.recorded_at,
        "evidence": row.evidence,
        "actor": row.actor,
        "event_id": row.event_id,
        "created_at": row.created_at,
    }


def _one_of(field_name: str, choices: Sequence[str]) -> FieldError:
    shown = ", ".join(choices)
    return FieldError(field_name, f"must be one of {shown}", "one_of", {"choices": shown})


def _text_errors(*checks: tuple[str, object, int]) -> list[FieldError]:
    errors = []
    for name, value, limit in checks:
        if not isinstance(value, str) or len(value) > limit:
            errors.append(
                FieldError(name, f"must be text of at most {limit} characters", "text_max_length", {"max": limit})
            )
        elif "\x00" in value:
            errors.append(FieldError(name, "must not contain NUL characters", "text_nul"))
    return errors


def _time(value: object) -> tuple[datetime, list[FieldError]]:
    now = utcnow()
    if value is None:
        return now, []
    if not isinstance(value, datetime):
        return now, [FieldError("recorded_at", "must be a date-time", "consent_time")]
    if value.tzinfo is None:
        value = value.replace(tzinfo=now.tzinfo)
    if value > now + FUTURE_SLACK:
        return now, [FieldError("recorded_at", "must not be in the future", "consent_time_future")]
    return value, []
