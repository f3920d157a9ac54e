"""Console: /console/import — upload members, orders, follows or store visits; preview (dry run); per-row report.

Same engine as the CLI and the API (siyu.imports.service), through the server's own Runtime, which
owns the event store. Owners and admins only (`settings:write`): an import writes customer data.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from siyu.errors import InvalidInput
from siyu.errors_i18n import error_text, field_label
from siyu.i18n import register
from siyu.imports import service as imports
from siyu.imports.reader import MAX_UPLOAD_BYTES
from siyu.imports.report import ImportResult, Issue
from siyu.sources import service as sources
from siyu.web.context import Viewer, page, render, runtime_of

SHOWN_ISSUES = 1000  # a page can show this many; the CLI's --report or the API has them all

register(
    {
        "nav.import": ("数据导入", "Import"),
        "imports.title": ("数据导入", "Import data"),
        "imports.intro": (
            "上传 CSV（UTF-8 或 GBK，第一行为列名）或 JSONL 文件，导入会员、订单、公众号关注和到店记录。"
            "整份文件先校验：只要有一行出错，就一行都不写入，并逐行列出问题。同一文件重复导入不会产生重复数据。",
            "Upload a CSV (UTF-8 or GBK, column names on the first line) or JSONL file of members, orders, "
            "official-account follows or store visits. The whole file is checked first: if any row has a problem, "
            "nothing is written and every problem is listed. Importing the same file again adds nothing.",
        ),
        "imports.kind": ("数据类型", "Kind of data"),
        "imports.kind.members": ("会员", "Members"),
        "imports.kind.orders": ("订单（含商品明细）", "Orders (with line items)"),
        "imports.kind.follows": ("公众号关注", "Official-account follows"),
        "imports.kind.store-visits": ("到店记录", "Store visits"),
        "imports.file": ("文件（最大 {mb} MB）", "File (at most {mb} MB)"),
        "imports.source": ("数据源", "Source"),
        "imports.source_default": ("默认（按类型自动创建）", "Default (created per kind)"),
        "imports.encoding": ("编码", "Encoding"),
        "imports.encoding_auto": ("自动识别（UTF-8 / GBK）", "Detect (UTF-8 / GBK)"),
        "imports.preview": ("预览（不写入）", "Preview (write nothing)"),
        "imports.submit": ("导入", "Import"),
        "imports.no_file": ("请选择要导入的文件", "Choose a file to import"),
        "imports.columns": ("各类型的列", "Columns per kind"),
        "imports.required": ("必填", "required"),
        "imports.template": ("下载模板", "Download template"),
        "imports.result.completed": ("导入完成", "Imported"),
        "imports.result.rejected": (
            "未导入：文件中有错误，一行都没有写入",
            "Not imported: the file has errors, nothing was written",
        ),
        "imports.result.dry_run": ("预览结果（尚未写入）", "Preview (nothing written yet)"),
        "imports.count.rows": ("行数", "Rows"),
        "imports.count.events": ("事件", "Events"),
        "imports.count.imported": ("新增", "New"),
        "imports.count.imported_dry": ("将新增", "Would add"),
        "imports.count.unchanged": ("未变（已导入过）", "Unchanged (already imported)"),
        "imports.count.errors": ("错误", "Errors"),
        "imports.count.warnings": ("提醒", "Warnings"),
        "imports.source_used": ("数据源：{name}", "Source: {name}"),
        "imports.source_new": ("（新建）", " (new)"),
        "imports.report.row": ("行", "Row"),
        "imports.report.field": ("列", "Column"),
        "imports.report.severity": ("级别", "Level"),
        "imports.report.reason": ("原因", "Reason"),
        "imports.severity.error": ("错误", "Error"),
        "imports.severity.warning": ("提醒", "Warning"),
        "imports.more": (
            "还有 {n} 条未显示，请用命令行 --report 或 API 获取完整报告",
            "{n} more not shown: use the CLI's --report or the API",
        ),
        "imports.truncated": (
            "错误太多，已停止检查；请先修正这些问题",
            "Too many errors: checking stopped; fix these first",
        ),
        "imports.whole_file": ("整个文件", "whole file"),
        "imports.runs": ("最近的导入", "Recent imports"),
        "imports.runs.empty": ("还没有导入记录", "No imports yet"),
        "imports.runs.when": ("时间", "When"),
        "imports.runs.file": ("文件", "File"),
        "imports.runs.who": ("操作人", "By"),
        "imports.runs.status": ("结果", "Result"),
        "imports.status.completed": ("已导入", "Imported"),
        "imports.status.rejected": ("已拒绝", "Rejected"),
    }
)


def _columns() -> list[dict[str, Any]]:
    return [
        {
            "kind": kind.name,
            "required": list(kind.required),
            "optional": [c for c in kind.columns if c not in kind.required],
        }
        for kind in imports.KINDS.values()
    ]


def _context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with runtime_of(request).db.session() as db:
        runs, _ = imports.list_runs(db, viewer.workspace.id, limit=20)
        workspace_sources = [(s.id, s.name) for s in sources.list_sources(db, viewer.workspace.id) if s.enabled]
    return {
        "kinds": list(imports.KINDS),
        "columns": _columns(),
        "sources": workspace_sources,
        "runs": [imports.run_as_dict(r) | {"started": r.started_at} for r in runs],
        "max_mb": MAX_UPLOAD_BYTES >> 20,
    }


def _issue_rows(result: ImportResult, locale: str) -> list[dict[str, Any]]:
    issues: list[tuple[str, Issue]] = [("error", i) for i in result.errors] + [("warning", i) for i in result.warnings]
    return [
        {
            "row": issue.row,
            "field": issue.field,
            "label": field_label(issue.field, locale) if issue.field else "",
            "severity": severity,
            "text": error_text(issue, locale),
        }
        for severity, issue in issues[:SHOWN_ISSUES]
    ]


@page("settings:write")
async def import_page(request: Request, viewer: Viewer) -> Response:
    ctx = await anyio.to_thread.run_sync(_context, request, viewer)
    form_values = {"kind": request.query_params.get("kind", "members"), "source": "", "encoding": ""}
    if request.method == "GET":
        return render(request, "import.html", viewer, result=None, error="", form=form_values, **ctx)
    form = await request.form()
    form_values = {k: str(form.get(k, "") or "") for k in ("kind", "source", "encoding")}
    dry_run = form.get("action") == "preview"
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = viewer.t("imports.no_file")
        return render(request, "import.html", viewer, 422, result=None, error=error, form=form_values, **ctx)
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    rt = runtime_of(request)

    def run() -> ImportResult:
        return imports.run_import(
            rt.db,
            rt.store,
            viewer.workspace.id,
            form_values["kind"],
            data,
            file_name=upload.filename or "",
            encoding=form_values["encoding"] or None,
            source=form_values["source"] or None,
            dry_run=dry_run,
            actor=f"user:{viewer.user.email}",
            max_bytes=MAX_UPLOAD_BYTES,
        )

    try:
        result = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        error = "; ".join(f"{field_label(e.field, viewer.locale)}: {error_text(e, viewer.locale)}" for e in exc.errors)
        return render(request, "import.html", viewer, 422, result=None, error=error, form=form_values, **ctx)
    ctx = await anyio.to_thread.run_sync(_context, request, viewer)  # the new run is listed
    return render(
        request,
        "import.html",
        viewer,
        422 if result.errors else 200,
        result=result,
        issues=_issue_rows(result, viewer.locale),
        more=max(0, len(result.errors) + len(result.warnings) - SHOWN_ISSUES),
        error="",
        form=form_values,
        **ctx,
    )


@page("settings:write")
async def template(request: Request, viewer: Viewer) -> Response:
    """An empty CSV with the kind's columns (UTF-8 with BOM, so Excel opens the Chinese right)."""
    kind = imports.KINDS.get(request.path_params["kind"])
    if kind is None:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    buffer = io.StringIO()
    columns = [c for c in kind.columns if c not in ("items", "consent")]
    if kind.name == "members":
        columns[columns.index("consent_evidence") : columns.index("consent_evidence")] = [
            "consent_marketing",
            "consent_personalization",
        ]
    csv.writer(buffer).writerow(columns)
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{kind.name}-template.csv"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/import", import_page, methods=["GET", "POST"]),
        Route("/import/template/{kind}", template, methods=["GET"]),
    ]
