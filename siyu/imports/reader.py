"""An uploaded file → records, each with the row number the operator sees (the file's line, header = 1).

CSV: a header row, then one record per row; UTF-8, UTF-8 with BOM or GBK (Chinese Excel); comma,
semicolon or tab separated (whatever the header uses). Cells are stripped, Excel's `="0123"` guard
for long numbers is undone, blank rows are skipped. JSONL: one JSON object per line; scalars become
text like CSV cells, so one set of parsers serves both; lists and objects stay as they are (an order's
`items`). File-level problems (empty, too large, too many rows, not text, an Excel workbook) raise
`InvalidInput` naming `file`; a bad line is a record with a problem, reported with the others.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import orjson

from siyu.errors import InvalidInput
from siyu.imports.report import Issue
from siyu.textfiles import decode_text

FORMATS = ("csv", "jsonl")
MAX_ROWS = 100_000
MAX_FILE_BYTES = 32 * 1024 * 1024  # a local file (CLI): room for MAX_ROWS rows of a wide member export
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # an upload (API, console): under the HTTP body limit, so this is what it says


@dataclass
class Record:
    row: int
    values: dict[str, Any]
    problem: Issue | None = None  # the line could not be read as a record at all


@dataclass
class ParsedFile:
    format: str
    columns: list[str]
    records: list[Record] = field(default_factory=list)


def guess_format(file_name: str | None, text: str) -> str:
    name = (file_name or "").lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def read_file(
    data: bytes,
    file_name: str | None = None,
    format: str | None = None,
    encoding: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_rows: int = MAX_ROWS,
) -> ParsedFile:
    check_size(len(data), max_bytes)
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput("file", "is an Excel workbook: save it as CSV (UTF-8) first", code="import_workbook")
    if format is not None and format not in FORMATS:
        raise InvalidInput(
            "format", f"must be one of {', '.join(FORMATS)}", code="one_of", params={"choices": "csv, jsonl"}
        )
    text = decode_text(data, encoding)
    if "\x00" in text:
        raise InvalidInput("file", "contains NUL characters: is it a binary file?", code="import_binary")
    if not text.strip():
        raise InvalidInput("file", "is empty", code="import_empty")
    fmt = format or guess_format(file_name, text)
    parsed = _read_jsonl(text, max_rows) if fmt == "jsonl" else _read_csv(text, max_rows)
    if not parsed.records:
        raise InvalidInput("file", "has no data rows (only a header?)", code="import_no_rows")
    return parsed


def check_size(size: int, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Refuse a file over the cap (the CLI asks before reading it: a huge file is not read to be refused)."""
    if size > max_bytes:
        raise InvalidInput(
            "file",
            f"is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB: split the file",
            code="import_too_large",
            params={"size": f"{size / 2**20:.1f}", "max": f"{max_bytes / 2**20:.0f}"},
        )


def _too_many(max_rows: int) -> InvalidInput:
    return InvalidInput(
        "file", f"more than {max_rows} rows; split the file", code="import_too_many_rows", params={"max": max_rows}
    )


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def _cell(value: str) -> str:
    value = value.strip()
    if value.startswith('="') and value.endswith('"') and len(value) >= 3:  # Excel's guard for long numbers
        value = value[2:-1].strip()
    return value


def _read_csv(text: str, max_rows: int) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.split("\n", 1)[0]))
    header: list[str] | None = None
    parsed = ParsedFile("csv", [])
    line = 0  # the last line the reader consumed; a record starts on the line after the previous one ended
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lstrip("\ufeff").lower() for c in cells]
                parsed.columns = header
                _check_header(header)
                continue
            if len(parsed.records) >= max_rows:
                raise _too_many(max_rows)
            record = Record(start, {})
            for i, value in enumerate(cells):
                if i >= len(header):
                    if value.strip():
                        record.problem = Issue(start, "", "more values than columns", "import_extra_values")
                    continue
                if header[i]:
                    record.values[header[i]] = _cell(value)
            parsed.records.append(record)
    except csv.Error as exc:
        raise InvalidInput(
            "file",
            f"line {line + 1}: not valid CSV ({exc})",
            code="import_csv",
            params={"row": line + 1, "detail": str(exc)},
        ) from None
    if header is None:
        raise InvalidInput("file", "is empty", code="import_empty")
    return parsed


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise InvalidInput(
                "file", f"the column '{name}' appears twice", code="import_duplicate_column", params={"column": name}
            )
        seen.add(name)


def scalar(value: Any) -> Any:
    """JSON values as CSV would carry them: text, '' for null, lists and objects unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def as_cells(obj: dict) -> dict[str, Any]:
    return {str(k).strip().lower(): scalar(v) for k, v in obj.items()}


def _read_jsonl(text: str, max_rows: int) -> ParsedFile:
    parsed = ParsedFile("jsonl", [])
    seen: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(parsed.records) >= max_rows:
            raise _too_many(max_rows)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            detail = str(exc).split(":", 1)[0]
            problem = Issue(number, "", f"not valid JSON ({detail})", "import_json", {"detail": detail})
            parsed.records.append(Record(number, {}, problem))
            continue
        if not isinstance(obj, dict):
            parsed.records.append(Record(number, {}, Issue(number, "", "must be a JSON object", "import_json_object")))
            continue
        values = as_cells(obj)
        seen.update(dict.fromkeys(values))
        parsed.records.append(Record(number, values))
    parsed.columns = list(seen)
    return parsed
