"""Run an import: read and validate the whole file, then write every event in one transaction, or nothing.

    result = run_import(db, store, workspace_id, "members", data, file_name="members.csv", actor="cli")

1. Read: decode, split into records (file-level problems raise InvalidInput naming `file`).
2. Validate: each kind's builder turns records into planned events, noting every problem against its
   row and column; rows repeating an event of the same file are counted unchanged, conflicting ones
   are errors. Any error: nothing is written, the run is recorded as rejected.
3. Write: the events get deterministic message ids (see siyu.imports.plan), and the event store appends
   those it does not hold yet, in one DuckDB transaction; the rest count as unchanged. Only the process
   that owns the store (the Runtime) may do this; the CLI opens its own Runtime, the server uses its.
4. Record the run in SQL (who, when, kind, file, source, counts).

Events are attributed to a source: the one named, or a default source of the kind's touchpoint
('CRM 导入' for members and orders, '公众号导入' for follows, '门店导入' for store visits), created on first
use. `received_at` is the import time, so anything that follows newly stored events (the identity
stitcher) sees imported history too, whatever its `timestamp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.errors import Conflict, InvalidInput
from siyu.events.messages import MAX_EVENT_BYTES, to_us
from siyu.events.store import EVENT_INPUT_SCHEMA, EventStore
from siyu.imports import follows, members, orders, visits
from siyu.imports.models import ImportRun
from siyu.imports.plan import Issues, Kind, Planned, TooManyErrors, message_id
from siyu.imports.reader import MAX_FILE_BYTES, MAX_ROWS, ParsedFile, read_file
from siyu.imports.report import ImportResult, Issue
from siyu.sources import service as sources
from siyu.sources.models import Source

KINDS: dict[str, Kind] = {k.name: k for k in (members.SPEC, orders.SPEC, follows.SPEC, visits.SPEC)}
Progress = Callable[[str, int, int], None]  # (phase, done, total): phases 'validate' and 'write'


def get_kind(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        shown = ", ".join(KINDS)
        raise InvalidInput("kind", f"must be one of {shown}", code="one_of", params={"choices": shown})
    return kind


def run_import(
    db: Database,
    store: EventStore | None,
    workspace_id: int,
    kind: str,
    data: bytes,
    *,
    file_name: str = "",
    format: str | None = None,
    encoding: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
    actor: str = "",
    progress: Progress | None = None,
    now: datetime | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_rows: int = MAX_ROWS,
) -> ImportResult:
    """Import one file. `store` None is allowed for a dry run only (validation without the stored check)."""
    spec = get_kind(kind)
    started = datetime.now(UTC)
    now = now or started
    parsed = read_file(data, file_name, format, encoding, max_bytes, max_rows)
    result = ImportResult(spec.name, file_name[:255], parsed.format, dry_run, rows=len(parsed.records))
    with db.session() as session:  # a named source must exist before anything is validated
        found, result.source = resolve_source(session, workspace_id, spec, source, create=False)
        purposes = known_purposes(session, workspace_id) if spec is members.SPEC else None
    planned = validate(spec, parsed, result, now, progress, purposes)
    if result.errors:
        result.status = "rejected"
    elif dry_run:
        result.status = "dry_run"
        _count_dry_run(store, workspace_id, spec, planned, result)
    else:
        if store is None:
            raise ValueError("an import needs the event store")
        if found is None:
            with db.session() as session:
                _, result.source = resolve_source(session, workspace_id, spec, source, create=True)
        assert result.source is not None
        written = write_events(store, workspace_id, result.source["id"], spec, planned, progress)
        result.imported = written
        result.unchanged += len(planned) - written
        result.status = "completed"
    if not dry_run:
        with db.session() as session:
            result.run_id = record_run(session, workspace_id, result, actor, started)
    return result


# -- validation ------------------------------------------------------------------------------------------
def validate(
    spec: Kind,
    parsed: ParsedFile,
    result: ImportResult,
    now: datetime,
    progress: Progress | None = None,
    purposes: set[str] | None = None,
) -> list[Planned]:
    """Every problem of the file into `result.errors`/`warnings`; the distinct events to write.
    `purposes`: the workspace's consent purpose codes, when consent is checked against them."""
    issues = Issues()
    planned: list[Planned] = []
    try:
        _check_columns(spec, parsed, issues, purposes)
        records = []
        for record in parsed.records:
            if record.problem is not None:
                issues.add(record.problem)
            else:
                records.append(record)
        planned = _in_chunks(spec, records, issues, now, parsed.format, progress)
        planned = _distinct(spec, planned, issues, result)
        for p in planned:
            _check_size(p, issues)
            if purposes is not None:
                _check_purposes(p, purposes, parsed.columns, issues)
    except TooManyErrors:
        result.errors_truncated = True
    result.errors = sorted(issues.errors, key=lambda i: (i.row, i.field))
    result.warnings = sorted(issues.warnings, key=lambda i: (i.row, i.field))
    result.events = len(planned) + result.unchanged
    return [] if result.errors else planned


def _in_chunks(
    spec: Kind, records: list, issues: Issues, now: datetime, fmt: str, progress: Progress | None
) -> list[Planned]:
    """The kind's builder over the records, in chunks so a progress bar can move (orders: whole groups)."""
    if progress is None or spec is orders.SPEC:
        planned = spec.build(records, issues, now, fmt)
        if progress is not None:
            progress("validate", len(records), len(records))
        return planned
    planned = []
    step = max(1000, len(records) // 100)
    for start in range(0, len(records), step):
        planned.extend(spec.build(records[start : start + step], issues, now, fmt))
        progress("validate", min(start + step, len(records)), len(records))
    return planned


def _check_columns(spec: Kind, parsed: ParsedFile, issues: Issues, purposes: set[str] | None = None) -> None:
    """CSV: required columns present (else the file is refused outright); unknown columns are warnings;
    a consent column for a purpose the workspace does not have is an error, once, on the header."""
    if parsed.format == "csv":
        missing = [c for c in spec.required if c not in parsed.columns]
        if missing:
            columns = ", ".join(missing)
            raise InvalidInput(
                "file",
                f"missing required column(s): {columns}",
                code="import_missing_columns",
                params={"columns": columns},
            )
    first_row = _first_rows(parsed)
    known = ", ".join(c for c in spec.columns if c != "items" or spec is orders.SPEC)
    for column in parsed.columns:
        if not column or column in spec.columns:
            continue
        verdict = spec.column_check(column) if spec.column_check else False
        code = column.removeprefix(members.CONSENT_PREFIX)
        if verdict is True and purposes is not None and code not in purposes:
            verdict = _unknown_purpose(first_row.get(column, 1), code, purposes)
        if isinstance(verdict, Issue):
            issues.add(Issue(first_row.get(column, 1), verdict.field, verdict.reason, verdict.code, verdict.params))
        elif verdict is False:
            issues.warn(
                first_row.get(column, 1),
                column,
                f"unknown column, ignored (known: {known})",
                "import_unknown_column",
                {"known": known},
            )


def _first_rows(parsed: ParsedFile) -> dict[str, int]:
    """The row a column first appears on: 1 (the header) for CSV, the first line having the key for JSONL."""
    if parsed.format == "csv":
        return {}
    first: dict[str, int] = {}
    for record in parsed.records:
        for key in record.values:
            first.setdefault(key, record.row)
    return first


def _distinct(spec: Kind, planned: list[Planned], issues: Issues, result: ImportResult) -> list[Planned]:
    """One event per (event, key): an exact repeat counts as unchanged, a different one is an error."""
    seen: dict[tuple[str, str], Planned] = {}
    out: list[Planned] = []
    for p in planned:
        first = seen.get((p.name, p.key))
        if first is None:
            seen[(p.name, p.key)] = p
            out.append(p)
        elif first.digest == p.digest:
            result.unchanged += 1
        elif first.row != p.row:
            label = " / ".join(part for part in p.key.split("\x1f") if part)
            issues.error(
                p.row,
                spec.key_column,
                f"'{label}' is also on row {first.row} with different values: keep one",
                "import_duplicate",
                {"key": label, "row": first.row},
            )
    return out


def _check_size(p: Planned, issues: Issues) -> None:
    size = len(orjson.dumps(p.message)) + 64  # the message id is added when written
    if size > MAX_EVENT_BYTES:
        issues.error(
            p.row,
            "",
            f"makes an event of {size / 1024:.1f} KB; an event may be at most {MAX_EVENT_BYTES // 1024} KB",
            "import_event_too_large",
            {"size": f"{size / 1024:.1f}", "max": MAX_EVENT_BYTES // 1024},
        )


def known_purposes(session: Session, workspace_id: int) -> set[str] | None:
    """The workspace's consent purposes (siyu.consent), so a misspelt consent column is caught here rather
    than dropped later; None when consent management is not installed."""
    try:
        from siyu.consent.purposes import purposes_by_code
    except ImportError:  # pragma: no cover - the consent package ships with siyu
        return None
    return set(purposes_by_code(session, workspace_id))


def _unknown_purpose(row: int, code: str, purposes: set[str]) -> Issue:
    known = ", ".join(sorted(purposes))
    return Issue(
        row,
        members.CONSENT_PREFIX + code,
        f"unknown consent purpose '{code}'; known purposes: {known}",
        "import_consent_unknown",
        {"code": code, "known": known},
    )


def _check_purposes(p: Planned, purposes: set[str], columns: list[str], issues: Issues) -> None:
    """JSONL `consent` objects name purposes per line (columns were checked once, in _check_columns)."""
    preferences = p.message.get("context", {}).get("consent", {}).get("categoryPreferences", {})
    for code in preferences:
        if code not in purposes and members.CONSENT_PREFIX + code not in columns:
            issues.add(_unknown_purpose(p.row, code, purposes))


def _count_dry_run(
    store: EventStore | None, workspace_id: int, spec: Kind, planned: list[Planned], result: ImportResult
) -> None:
    if store is None:
        result.store_checked = False
        result.imported = len(planned)
        return
    ids = [message_id(workspace_id, spec.name, p) for p in planned]
    stored = store.stored_message_ids(workspace_id, ids)
    result.imported = len(planned) - len(stored)
    result.unchanged += len(stored)


# -- writing ---------------------------------------------------------------------------------------------
def events_table(
    workspace_id: int, source_id: int, spec: Kind, planned: list[Planned], received_at: float | None = None
) -> pa.Table:
    """The planned events as EVENT_INPUT_SCHEMA rows (server-side: no IP, no batch context)."""
    received_us = round((time.time() if received_at is None else received_at) * 1_000_000)
    ids, types, stamps, raws = [], [], [], []
    for p in planned:
        mid = message_id(workspace_id, spec.name, p)
        ids.append(mid)
        types.append(p.message["type"])
        stamps.append(to_us(p.timestamp))
        raws.append(orjson.dumps({"messageId": mid, **p.message}).decode())
    n = len(planned)
    columns = {
        "message_id": ids,
        "workspace_id": [workspace_id] * n,
        "source_id": [source_id] * n,
        "type": types,
        "timestamp": stamps,
        "original_timestamp": stamps,
        "sent_at": [None] * n,
        "received_at": [received_us] * n,
        "ip": [None] * n,
        "batch_context": [None] * n,
        "raw": raws,
    }
    return pa.Table.from_arrays(
        [pa.array(columns[f.name], type=f.type) for f in EVENT_INPUT_SCHEMA], schema=EVENT_INPUT_SCHEMA
    )


def write_events(
    store: EventStore,
    workspace_id: int,
    source_id: int,
    spec: Kind,
    planned: list[Planned],
    progress: Progress | None = None,
) -> int:
    """All planned events not stored yet, in one transaction; returns how many were written."""
    if progress is not None:
        progress("write", 0, len(planned))
    written = store.append_new_events(events_table(workspace_id, source_id, spec, planned))
    if progress is not None:
        progress("write", len(planned), len(planned))
    return written


# -- sources and runs ------------------------------------------------------------------------------------
def resolve_source(
    session: Session, workspace_id: int, spec: Kind, ref: str | None, create: bool
) -> tuple[Source | None, dict[str, Any]]:
    """The source named by id or name, or the kind's default source (created when `create`)."""
    if ref is not None and ref.strip():
        ref = ref.strip()
        query = select(Source).where(Source.workspace_id == workspace_id)
        by_id = ref.isascii() and ref.isdigit() and int(ref) < 2**62
        found = session.scalar(query.where(Source.id == int(ref))) if by_id else None
        found = found or session.scalar(query.where(Source.name == ref))
        if found is None:
            raise InvalidInput(
                "source",
                f"no source '{ref[:80]}' in this workspace",
                code="import_source_unknown",
                params={"ref": ref[:80]},
            )
        if not found.enabled:
            raise InvalidInput(
                "source",
                f"the source '{found.name}' is disabled",
                code="import_source_disabled",
                params={"name": found.name},
            )
        return found, _source_dict(found, created=False)
    default = select(Source).where(Source.workspace_id == workspace_id, Source.name == spec.default_source)
    found = session.scalar(default)
    if found is not None:
        return found, _source_dict(found, created=False)
    if not create:
        return None, {"id": None, "name": spec.default_source, "kind": spec.source_kind, "created": True}
    try:
        with session.begin_nested():
            issued = sources.create_source(session, workspace_id, spec.default_source, spec.source_kind)
    except (IntegrityError, Conflict):  # another import created it a moment ago
        found = session.scalar(default)
        if found is None:
            raise
        return found, _source_dict(found, created=False)
    return issued.source, _source_dict(issued.source, created=True)


def _source_dict(source: Source, created: bool) -> dict[str, Any]:
    return {"id": source.id, "name": source.name, "kind": source.kind, "created": created}


def record_run(session: Session, workspace_id: int, result: ImportResult, actor: str, started: datetime) -> int:
    run = ImportRun(
        workspace_id=workspace_id,
        kind=result.kind,
        file_name=result.file_name or "-",
        format=result.format,
        source_id=(result.source or {}).get("id"),
        actor=(actor or "-")[:200],
        status=result.status,
        rows=result.rows,
        events=result.events,
        imported=result.imported,
        unchanged=result.unchanged,
        errors=len(result.errors),
        warnings=len(result.warnings),
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    session.add(run)
    session.flush()
    return run.id


def list_runs(session: Session, workspace_id: int, limit: int = 50, offset: int = 0) -> tuple[list[ImportRun], int]:
    query = select(ImportRun).where(ImportRun.workspace_id == workspace_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ImportRun.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def run_as_dict(run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "file_name": run.file_name,
        "format": run.format,
        "source_id": run.source_id,
        "actor": run.actor,
        "status": run.status,
        "counts": {
            "rows": run.rows,
            "events": run.events,
            "imported": run.imported,
            "unchanged": run.unchanged,
            "errors": run.errors,
            "warnings": run.warnings,
        },
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
