"""CSV import of links with a report per row; importing the same file again changes nothing.

A row is "skipped" when its link already exists: same slug on the same domain with the same
destination, or (without a slug) a live link to the same destination.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from siyu.errors import Conflict, FieldError, InvalidInput, NotFound
from siyu.links import service
from siyu.links.urls import validate_url
from siyu.textfiles import decode_text
from siyu.workspaces.service import normalize_hostname

COLUMNS = (
    "destination_url",
    "slug",
    "domain",
    "title",
    "notes",
    "tags",
    "expires_at",
    "max_clicks",
    "redirect_status",
    "anti_block_platforms",
    "allowed_platforms",
    "blocked_platforms",
)
LIST_COLUMNS = ("tags", "anti_block_platforms", "allowed_platforms", "blocked_platforms")
INT_COLUMNS = ("max_clicks", "redirect_status")
MAX_ROWS = 100_000


@dataclass
class RowResult:
    """One line's verdict. `message` is the English text the CLI prints; for errors, `errors` holds the
    same problems as FieldErrors (with codes, so the console can translate them; field "" = the row)."""

    row: int
    status: str  # created | skipped | error | valid
    message: str = ""
    link_id: int | None = None
    errors: list[FieldError] = field(default_factory=list)

    @classmethod
    def failed(cls, row: int, errors: list[FieldError]) -> RowResult:
        message = "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in errors)
        return cls(row, "error", message, errors=list(errors))


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no rows"


def import_csv(
    session: Session,
    workspace_id: int,
    data: bytes,
    base_host: str = "",
    dry_run: bool = False,
    scheme: str = "https",
) -> ImportReport:
    reader = csv.DictReader(io.StringIO(decode_text(data)))
    header = [h.strip() for h in reader.fieldnames or []]
    if "destination_url" not in header:
        raise InvalidInput(
            "file", "the first line must name the columns and include destination_url", code="import_header"
        )
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        columns, known = ", ".join(unknown), ", ".join(COLUMNS)
        raise InvalidInput(
            "file",
            f"unknown column(s) {columns}; known: {known}",
            code="import_columns",
            params={"columns": columns, "known": known},
        )
    ctx = service.Context(workspace_id, actor="import", base_host=base_host)
    report = ImportReport()
    for count, raw in enumerate(reader, start=1):
        number = reader.line_num  # the file's line, as a spreadsheet shows it (blank lines are skipped)
        if count > MAX_ROWS:
            reason = f"more than {MAX_ROWS} rows; split the file"
            too_many = FieldError("", reason, code="import_too_many_rows", params={"max": MAX_ROWS})
            report.rows.append(RowResult.failed(number, [too_many]))
            break
        report.rows.append(_import_row(session, ctx, number, raw, dry_run, scheme))
    return report


def _fields(raw: dict) -> dict:
    fields: dict = {}
    for key, value in raw.items():
        if key is None or value is None:
            continue
        key, value = key.strip(), value.strip()
        if not value:
            continue
        if key in LIST_COLUMNS:
            fields[key] = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
        elif key in INT_COLUMNS:
            if not value.isdigit():
                raise InvalidInput(key, "must be a whole number", code="whole_number")
            fields[key] = int(value)
        else:
            fields[key] = value
    return fields


def _import_row(
    session: Session, ctx: service.Context, number: int, raw: dict, dry_run: bool, scheme: str = "https"
) -> RowResult:
    if None in raw:
        return RowResult.failed(number, [FieldError("", "more values than columns", code="import_extra_values")])
    try:
        fields = _fields(raw)
        existing = _existing(session, ctx.workspace_id, fields)
        if existing is not None:
            return RowResult(number, "skipped", f"already imported as link {existing.id}", existing.id)
        with session.begin_nested() as savepoint:
            link = service.create_link(session, ctx, fields)
            link_id = link.id
            if dry_run:
                savepoint.rollback()
                return RowResult(number, "valid")
        return RowResult(number, "created", service.short_url(link, scheme), link_id)
    except InvalidInput as exc:
        return RowResult.failed(number, exc.errors)
    except Conflict as exc:
        return RowResult.failed(number, [exc.field_error()])


def _existing(session: Session, workspace_id: int, fields: dict):
    # Compare with what was stored: the normalised URL and host (e.g. 'HTTPS://Example.COM' → 'https://example.com').
    try:
        url = validate_url(fields["destination_url"], "destination_url") if fields.get("destination_url") else None
        domain = normalize_hostname(fields["domain"], "domain") if fields.get("domain") else None
    except InvalidInput:
        return None  # create_link reports the problem
    slug = fields.get("slug")
    if slug:
        try:
            link = service.get_link_by_slug(session, workspace_id, slug, domain)
        except NotFound:
            return None
        return link if link.destination_url.rstrip("/") == str(url or "").rstrip("/") else None
    return service.find_by_destination(session, workspace_id, url) if url else None
