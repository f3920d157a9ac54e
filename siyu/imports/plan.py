"""The shared machinery of the four kinds: typed cell access that records problems, and planned events.

A kind's builder walks its records through `Cells`, which parses each cell and notes any problem
against the row and column instead of raising, so one pass reports every problem in the file. What
the builder makes is a `Planned` event: a Segment message plus the natural key that identifies it.
The message id is a hash of the workspace, the kind, the event and that key (for members also the
content), so importing the same row again yields the same id and is recognised as already stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from siyu import __version__
from siyu.imports import values
from siyu.imports.report import Issue

MAX_ERRORS = 10_000
LIBRARY = {"name": "siyu-import", "version": __version__}


class TooManyErrors(Exception):
    """Stop reading: the report already holds MAX_ERRORS problems; fixing those comes first."""


class Issues:
    def __init__(self, max_errors: int | None = None):
        self.max_errors = max_errors or MAX_ERRORS
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, row: int, field: str, reason: str, code: str | None = None, params: Mapping | None = None) -> None:
        self.errors.append(Issue(row, field, reason, code, dict(params or {})))
        if len(self.errors) >= self.max_errors:
            raise TooManyErrors

    def warn(self, row: int, field: str, reason: str, code: str | None = None, params: Mapping | None = None) -> None:
        self.warnings.append(Issue(row, field, reason, code, dict(params or {})))

    def add(self, issue: Issue) -> None:
        self.error(issue.row, issue.field, issue.reason, issue.code, issue.params)


Parser = Callable[[str], Any]


class Cells:
    """One record's cells (or one order line item's, with `prefix` 'items[2].'), read through parsers."""

    def __init__(self, cells: Mapping[str, Any], row: int, issues: Issues, prefix: str = ""):
        self.cells = cells
        self.row = row
        self.issues = issues
        self.prefix = prefix
        self.ok = True

    def error(self, name: str, reason: str, code: str | None = None, params: Mapping | None = None) -> None:
        self.ok = False
        self.issues.error(self.row, self.prefix + name, reason, code, params)

    def raw(self, name: str) -> str:
        value = self.cells.get(name, "")
        return value if isinstance(value, str) else ""

    def get(self, name: str, parse: Parser = values.text, required: bool = False) -> Any:
        value = self.cells.get(name, "")
        if not isinstance(value, str):
            self.error(name, "must be a single value, not a list or object", "import_json_value")
            return None
        if value == "":
            if required:
                self.error(name, "is required", "import_required")
            return None
        try:
            return parse(value)
        except values.Placeholder:
            shown = value[:40]
            if required:
                self.error(
                    name, f"'{shown}' is a placeholder, not a real value", "import_placeholder", {"value": shown}
                )
            else:
                self.issues.warn(
                    self.row,
                    self.prefix + name,
                    f"'{shown}' is a placeholder: left out",
                    "import_placeholder_dropped",
                    {"value": shown},
                )
            return None
        except values.CellError as exc:
            self.error(name, exc.reason, exc.code, exc.params)
            return None


@dataclass
class Planned:
    """One event to store. `key` identifies it among the file's events of the same name (a second row
    with the same key is a repeat if `digest` matches, a conflict if not); `id_basis` is what the
    message id hashes besides workspace, kind and event name."""

    row: int
    key: str
    message: dict[str, Any]
    timestamp: datetime
    digest: str = ""
    id_basis: str = ""
    rows: list[int] = field(default_factory=list)  # every row that went into it (an order's line items)

    @property
    def name(self) -> str:
        return self.message.get("event") or self.message["type"]


def digest(content: Any) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def message_id(workspace_id: int, kind: str, planned: Planned) -> str:
    basis = "\x1f".join((str(workspace_id), kind, planned.name, planned.id_basis or planned.key))
    return "imp_" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def anonymous_id(identifiers: Mapping[str, Any]) -> str:
    """For rows without a member id: Segment wants userId or anonymousId. A stable hash of the row's
    strongest identifier, so one person's imported rows share it and no identifier is spelled out in
    it (the identifiers themselves travel in context.traits, where identity resolution reads them)."""
    for name in ("unionid", "phone", "email", "openid"):
        value = identifiers.get(name)
        if value:
            if name == "openid":
                value = f"{identifiers.get('appid', '')}:{value}"
            return "imp-" + hashlib.sha256(f"{name}:{value}".encode()).hexdigest()[:24]
    raise ValueError("no identifier to derive an anonymous id from")


def track(
    event: str,
    timestamp: datetime,
    properties: dict[str, Any],
    user_id: str | None,
    identifiers: dict[str, Any],
) -> dict[str, Any]:
    """A Segment track: the member id as userId, the other identifiers in context.traits."""
    msg: dict[str, Any] = {"type": "track", "event": event}
    if user_id:
        msg["userId"] = user_id
    else:
        msg["anonymousId"] = anonymous_id(identifiers)
    msg["timestamp"] = values.iso(timestamp)
    msg["properties"] = properties
    context: dict[str, Any] = {"library": LIBRARY}
    if identifiers:
        context["traits"] = identifiers
    msg["context"] = context
    return msg


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Leave out what a row did not say (None), so an empty cell never overwrites a known trait."""
    return {k: v for k, v in mapping.items() if v is not None}


Builder = Callable[[list, Issues, datetime, str], list[Planned]]  # (records, issues, now, format)


@dataclass(frozen=True)
class Kind:
    """One importable kind: its columns and how its records become events."""

    name: str  # as in the CLI and the URL: members, orders, follows, store-visits
    source_kind: str  # the kind of source its events are attributed to by default
    default_source: str  # that source's name, created on first use
    columns: tuple[str, ...]
    required: tuple[str, ...]
    build: Builder
    key_column: str  # the column a conflicting repeat is reported on
    # Column families such as consent_<purpose>: True = one of them, an Issue = one of them but malformed.
    column_check: Callable[[str], bool | Issue] | None = None
