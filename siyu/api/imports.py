"""REST endpoints for bulk imports (scope `sources:write`: an import adds events on behalf of a source).

POST /imports/{kind}   multipart: `file` (CSV or JSONL) and optional `format`, `encoding`, `source`, `dry_run`.
                       200 with counts and the per-row report; 422 with the same body plus `error` when rows
                       are refused (nothing is written); 422 naming `file` when the file itself is unusable.
GET  /imports          the workspace's import runs, newest first.

The server's own Runtime owns the event store, so an import through the API works while it runs (the
CLI cannot, then). Schemas: docs/import.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from siyu.api.auth import Caller, require_caller, runtime_of
from siyu.imports import service as imports
from siyu.imports.reader import MAX_UPLOAD_BYTES, check_size

router = APIRouter(prefix="/imports", tags=["imports"])
CallerDep = Annotated[Caller, Depends(require_caller)]
KindName = Annotated[
    Literal["members", "orders", "follows", "store-visits"],
    Path(description="members, orders (with line items), follows (official account) or store-visits"),
]


@router.post("/{kind}", summary="Import a CSV or JSONL file: all rows or none, with a per-row report")
async def create_import(
    request: Request,
    caller: CallerDep,
    kind: KindName,
    file: Annotated[UploadFile, File(description=f"CSV or JSONL, at most {MAX_UPLOAD_BYTES >> 20} MB")],
    format: Annotated[Literal["csv", "jsonl"] | None, Form(description="default: from the file name")] = None,
    encoding: Annotated[str | None, Form(max_length=40, description="e.g. gbk; default UTF-8, else GBK")] = None,
    source: Annotated[str | None, Form(max_length=200, description="source id or name")] = None,
    dry_run: Annotated[bool, Form(description="validate and count only")] = False,
) -> Any:
    caller.require("sources:write")
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    check_size(max(len(data), file.size or 0), MAX_UPLOAD_BYTES)
    rt = runtime_of(request)
    result = await anyio.to_thread.run_sync(
        lambda: imports.run_import(
            rt.db,
            rt.store,
            caller.workspace_id,
            kind,
            data,
            file_name=file.filename or "",
            format=format,
            encoding=encoding,
            source=source,
            dry_run=dry_run,
            actor=f"key:{caller.key_name}",
            max_bytes=MAX_UPLOAD_BYTES,
        )
    )
    body = result.as_dict()
    if result.errors:
        message = f"{len(result.errors)} row error(s): nothing was imported"
        fields = [e.as_dict() for e in result.errors[:20]]  # all of them are in body["errors"]
        body["error"] = {"code": "import_rejected", "message": message, "fields": fields}
        return JSONResponse(body, status_code=422)
    return body


@router.get("", summary="Import runs of the workspace, newest first")
def list_imports(
    request: Request,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    caller.require("sources:write")
    with runtime_of(request).db.session() as session:
        runs, total = imports.list_runs(session, caller.workspace_id, limit, offset)
        return {"total": total, "limit": limit, "offset": offset, "runs": [imports.run_as_dict(r) for r in runs]}
