"""What an import says back: counts, and every problem as (row, field, reason).

`row` is the line in the file as the operator sees it (the CSV header is row 1); 0 means the file as
a whole. `reason` is English (the API and CLI show it); `code` and `params` let the console say it in
Chinese (see siyu.errors_i18n), exactly like `siyu.errors.FieldError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    row: int
    field: str
    reason: str
    code: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "field": self.field, "reason": self.reason}
        if self.code:
            out["code"] = self.code
        return out


@dataclass
class ImportResult:
    """The outcome of one import (or dry run). Nothing is written unless `errors` is empty."""

    kind: str
    file_name: str
    format: str = ""
    dry_run: bool = False
    status: str = "pending"  # completed | rejected | dry_run
    rows: int = 0  # data rows (lines) read
    events: int = 0  # events the rows make (an order of several line items is one)
    imported: int = 0  # events written now (dry run: that would be written)
    unchanged: int = 0  # events already stored by an earlier import, or repeated in the file
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    errors_truncated: bool = False
    source: dict[str, Any] | None = None  # {id, name, kind, created}; id None on a dry run that would create it
    run_id: int | None = None
    store_checked: bool = True  # False when a dry run could not read the event store (the server holds it)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file_name": self.file_name,
            "format": self.format,
            "dry_run": self.dry_run,
            "status": self.status,
            "counts": {
                "rows": self.rows,
                "events": self.events,
                "imported": self.imported,
                "unchanged": self.unchanged,
                "errors": len(self.errors),
                "warnings": len(self.warnings),
            },
            "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.errors_truncated,
            "warnings": [w.as_dict() for w in self.warnings],
            "source": self.source,
            "run_id": self.run_id,
            "store_checked": self.store_checked,
        }
