"""The links list (search, filters, sort, pages), bulk actions on checked rows, CSV export and import.

Filters live in the query string so a filtered list can be bookmarked, shared and exported; bulk
forms carry the same filters back as hidden fields, so the server rebuilds the return URL itself
instead of trusting one from the browser.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from sqlalchemy import func, select
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from siyu.db import utcnow
from siyu.errors import FieldError, InvalidInput
from siyu.errors_i18n import error_text, field_label
from siyu.events.store import ClickFilter
from siyu.i18n import register, t
from siyu.links import importer, service
from siyu.links.models import ShortLink, Tag
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.web.formatting import DEFAULT_TZ, zone
from siyu.workspaces.service import list_domains

register(
    {
        "links_list.title": ("短链", "Links"),
        "links_list.new": ("＋ 新建短链", "+ New link"),
        "links_list.import": ("批量导入", "Import CSV"),
        "links_list.export_all": ("导出当前筛选结果", "Export filtered list"),
        "links_list.search": ("搜索后缀、标题或网址", "Search slug, title or URL"),
        "links_list.filter": ("筛选", "Filter"),
        "links_list.reset": ("清除", "Reset"),
        "links_list.any_tag": ("全部标签", "All tags"),
        "links_list.any_domain": ("全部域名", "All domains"),
        "links_list.any_creator": ("全部创建人", "Everyone"),
        "links_list.expired_any": ("有效期：全部", "Expiry: any"),
        "links_list.expired_yes": ("已过期", "Expired"),
        "links_list.expired_no": ("未过期", "Not expired"),
        "links_list.archived_no": ("未归档", "Active"),
        "links_list.archived_yes": ("已归档", "Archived"),
        "links_list.archived_all": ("全部（含归档）", "All, with archived"),
        "links_list.sort": ("排序", "Sort"),
        "links_list.sort.created": ("最新创建", "Newest first"),
        "links_list.sort.-created": ("最早创建", "Oldest first"),
        "links_list.sort.title": ("标题", "Title"),
        "links_list.sort.slug": ("后缀", "Slug"),
        "links_list.count": ("共 {n} 条", "{n} links"),
        "links_list.empty": ("没有符合条件的短链", "No links match"),
        "links_list.col.link": ("短链", "Short link"),
        "links_list.col.title": ("标题", "Title"),
        "links_list.col.destination": ("目标网址", "Destination"),
        "links_list.col.tags": ("标签", "Tags"),
        "links_list.col.clicks": ("点击", "Clicks"),
        "links_list.col.created": ("创建时间", "Created"),
        "links_list.col.select": ("选择", "Select"),
        "links_list.select_all": ("全选本页", "Select all on this page"),
        "links_list.copy": ("复制", "Copy"),
        "links_list.edit": ("编辑", "Edit"),
        "links_list.badge.archived": ("已归档", "archived"),
        "links_list.badge.expired": ("已过期", "expired"),
        "links_list.bulk": ("对勾选的短链：", "With the checked links:"),
        "links_list.bulk_tag": ("标签名", "Tag name"),
        "links_list.bulk_add_tag": ("添加标签", "Add tag"),
        "links_list.bulk_archive": ("归档", "Archive"),
        "links_list.bulk_unarchive": ("取消归档", "Restore"),
        "links_list.bulk_export": ("导出 CSV", "Export CSV"),
        "links_list.bulk_export_hint": ("未勾选时导出当前筛选结果", "Exports the filtered list if none are checked"),
        "links_list.confirm_archive": (
            "确定归档勾选的短链吗？归档后访客将看到「链接不存在」。",
            "Archive the checked links? Visitors will get “link not found”.",
        ),
        "links_list.none_selected": ("请先勾选短链", "Check some links first"),
        "links_list.tag_required": ("请输入标签名", "Enter a tag name"),
        "links_list.done.tag": ("已为 {n} 条短链添加标签", "Tagged {n} links"),
        "links_list.done.archive": ("已归档 {n} 条短链", "Archived {n} links"),
        "links_list.done.unarchive": ("已恢复 {n} 条短链", "Restored {n} links"),
        "links_list.page_prev": ("上一页", "Previous"),
        "links_list.page_next": ("下一页", "Next"),
        "links_list.pages": ("分页", "Pages"),
        "links_list.import_title": ("批量导入短链（CSV）", "Import links from CSV"),
        "links_list.import_help": (
            "第一行是列名，必须包含 destination_url；可选列：{columns}。多个标签或平台用逗号分隔。"
            "支持 UTF-8 和 Excel 保存的 GBK 编码。重复导入同一文件不会重复创建。",
            "The first line names the columns and must include destination_url; optional: {columns}. "
            "Separate several tags or platforms with commas. UTF-8 or GBK (Excel). Importing a file again "
            "creates nothing twice.",
        ),
        "links_list.import_file": ("CSV 文件", "CSV file"),
        "links_list.import_dry_run": ("仅检查，不创建（试运行）", "Check only, create nothing (dry run)"),
        "links_list.import_submit": ("上传并导入", "Upload and import"),
        "links_list.import_template": ("下载模板", "Download a template"),
        "links_list.import_no_file": ("请选择一个 CSV 文件", "Choose a CSV file"),
        "links_list.import_too_big": ("文件太大（最大 {mb} MB），请拆分后再导入", "The file is over {mb} MB; split it"),
        "links_list.report": ("导入结果", "Import report"),
        "links_list.report_dry": ("试运行结果（未创建任何短链）", "Dry-run report (nothing was created)"),
        "links_list.report.row": ("行号", "Line"),
        "links_list.report.status": ("结果", "Result"),
        "links_list.report.field": ("字段", "Field"),
        "links_list.report.detail": ("说明", "Details"),
        "links_list.status.created": ("已创建", "created"),
        "links_list.status.skipped": ("已存在，跳过", "skipped"),
        "links_list.status.error": ("错误", "error"),
        "links_list.status.valid": ("可导入", "valid"),
        "links_list.report.skipped_as": ("已导入为短链 #{id}", "already imported as link {id}"),
    }
)

PAGE_SIZE = 50
MAX_IMPORT_BYTES = 20 * 1024 * 1024
EXPORT_LIMIT = 1000  # list_links' page limit; exports walk the pages
FILTER_KEYS = ("q", "tag", "domain", "created_by", "expired", "archived", "sort")
EXPORT_COLUMNS = (
    "id", "short_url", "domain", "slug", "destination_url", "title", "notes", "tags", "clicks", "redirect_status",
    "expires_at", "max_clicks", "fallback_url", "anti_block_platforms", "allowed_platforms", "blocked_platforms",
    "archived", "created_by", "created_at",
)  # fmt: skip


@dataclass
class Filters:
    """The list's state, read from the query string (or a bulk form's hidden fields)."""

    q: str = ""
    tag: str = ""
    domain: str = ""
    created_by: str = ""
    expired: str = ""  # "" | yes | no
    archived: str = "no"  # no | yes | all
    sort: str = "created"

    @classmethod
    def read(cls, params: Any) -> Filters:
        def get(name: str, default: str = "") -> str:
            value = params.get(name, default)
            return value.strip()[:200] if isinstance(value, str) else default

        f = cls(**{k: get(k) for k in ("q", "tag", "domain", "created_by")})
        f.expired = get("expired") if get("expired") in ("yes", "no") else ""
        f.archived = get("archived", "no") if get("archived", "no") in ("no", "yes", "all") else "no"
        f.sort = get("sort", "created") if get("sort", "created") in service.SORTS else "created"
        return f

    def query(self, offset: int = 0, limit: int = PAGE_SIZE) -> service.LinkQuery:
        return service.LinkQuery(
            search=self.q,
            tag=self.tag or None,
            domain=self.domain or None,
            created_by=self.created_by or None,
            archived={"no": False, "yes": True}.get(self.archived),
            expired={"yes": True, "no": False}.get(self.expired),
            sort=self.sort,
            limit=limit,
            offset=offset,
        )

    def params(self, **override: Any) -> dict[str, Any]:
        """Non-default values only, so URLs stay short."""
        data = {**asdict(self), **override}
        defaults = asdict(Filters())
        return {k: v for k, v in data.items() if v not in ("", None) and defaults.get(k) != v}

    def url(self, **override: Any) -> str:
        params = self.params(**override)
        return "/console/links" + (f"?{urlencode(params)}" if params else "")


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 10**6 else 1


def page_window(current: int, last: int) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 20: None marks a gap."""
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    out: list[int | None] = []
    for n in shown:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


def clicks_by_link(request: Request, workspace_id: int, link_count: int) -> dict[int, int]:
    """Total clicks per link id, in one grouped query (limit = every link the workspace has)."""
    if link_count == 0:
        return {}
    rows = runtime_of(request).store.top_links(ClickFilter(workspace_id), limit=link_count)
    return {link_id: clicks for link_id, clicks, _ in rows}


def list_data(request: Request, viewer: Viewer, filters: Filters, page_no: int) -> dict[str, Any]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    with rt.db.session() as db:
        links, total = service.list_links(db, ws, filters.query((page_no - 1) * PAGE_SIZE))
        last = max(1, math.ceil(total / PAGE_SIZE))
        if page_no > last:
            page_no = last
            links, total = service.list_links(db, ws, filters.query((page_no - 1) * PAGE_SIZE))
        link_count = db.scalar(select(func.count(ShortLink.id)).where(ShortLink.workspace_id == ws)) or 0
        tags = list(db.scalars(select(Tag.name).where(Tag.workspace_id == ws).order_by(Tag.name)))
        by_creator = select(ShortLink.created_by).where(ShortLink.workspace_id == ws).distinct()
        creators = list(db.scalars(by_creator.order_by(ShortLink.created_by)))
        domains = [d.hostname for d in list_domains(db, ws)]
    clicks = clicks_by_link(request, ws, link_count)
    now = utcnow()
    rows = [
        {
            "link": link,
            "short_url": service.short_url(link, rt.scheme),
            "clicks": clicks.get(link.id, 0),
            "expired": link.expires_at is not None and link.expires_at <= now,
        }
        for link in links
    ]
    return {
        "rows": rows,
        "total": total,
        "page_no": page_no,
        "last_page": last,
        "pages": page_window(page_no, last),
        "tags": tags,
        "creators": [c for c in creators if c],
        "domains": domains,
        "filters": filters,
        "sorts": list(service.SORTS),
    }


async def _list_page(request: Request, viewer: Viewer, filters: Filters, page_no: int, **extra: Any) -> Response:
    data = await anyio.to_thread.run_sync(list_data, request, viewer, filters, page_no)
    status = extra.pop("status", 200)
    return render(request, "links_list.html", viewer, status, **data, **extra)


@page("links:read")
async def links_page(request: Request, viewer: Viewer) -> Response:
    filters = Filters.read(request.query_params)
    done = request.query_params.get("done", "")
    count = request.query_params.get("n", "0")
    message = ""
    if done in ("tag", "archive", "unarchive") and count.isdigit():
        message = viewer.t(f"links_list.done.{done}", n=int(count))
    return await _list_page(
        request, viewer, filters, _page_number(request.query_params.get("page")), message=message, error=""
    )


# --- bulk actions and export --------------------------------------------------------------------


def _selected_ids(form: Any) -> list[int]:
    ids = []
    for value in form.getlist("ids"):
        if isinstance(value, str) and value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    return ids[:1000]


def _apply_bulk(request: Request, viewer: Viewer, action: str, ids: list[int], tag: str) -> int:
    rt = runtime_of(request)
    ctx = rt.link_context(viewer.workspace.id, viewer.user.email)
    with rt.db.session() as db:
        links = service.links_by_ids(db, viewer.workspace.id, ids)
        for link in links:
            if action == "tag":
                names = [t.name for t in link.tags]
                if tag not in names:
                    service.update_link(db, ctx, link.id, {"tags": [*names, tag]})
            else:
                service.update_link(db, ctx, link.id, {"archived": action == "archive"})
        return len(links)


@page("links:write")
async def bulk(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    filters = Filters.read(form)
    action = str(form.get("action", ""))
    ids = _selected_ids(form)
    if action == "export":
        return await anyio.to_thread.run_sync(export_response, request, viewer, filters, ids or None)
    error = ""
    if action not in ("tag", "archive", "unarchive"):
        error = viewer.t("error.forbidden")
    elif not ids:
        error = viewer.t("links_list.none_selected")
    tag = str(form.get("new_tag", "")).strip()
    if not error and action == "tag" and not tag:
        error = viewer.t("links_list.tag_required")
    if not error:
        try:
            count = await anyio.to_thread.run_sync(_apply_bulk, request, viewer, action, ids, tag)
        except InvalidInput as exc:
            error = errors_text(exc.errors, viewer.locale)
        else:
            return RedirectResponse(filters.url(done=action, n=count), status_code=303)
    return await _list_page(request, viewer, filters, 1, message="", error=error, status=422, bulk_tag=tag)


def _cell(value: Any) -> str:
    """Spreadsheet-safe text: a title starting with = + - @ would otherwise run as a formula in Excel."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(request: Request, viewer: Viewer, filters: Filters, ids: list[int] | None) -> list[list[str]]:
    rt = runtime_of(request)
    ws = viewer.workspace.id
    with rt.db.session() as db:
        if ids is not None:
            order = {link_id: i for i, link_id in enumerate(ids)}
            links = sorted(service.links_by_ids(db, ws, ids), key=lambda link: order[link.id])
        else:
            links, offset = [], 0
            while True:
                batch, total = service.list_links(db, ws, filters.query(offset, EXPORT_LIMIT))
                links.extend(batch)
                offset += EXPORT_LIMIT
                if offset >= total or not batch:
                    break
        link_count = db.scalar(select(func.count(ShortLink.id)).where(ShortLink.workspace_id == ws)) or 0
        dicts = [service.link_as_dict(link, rt.scheme) for link in links]
    clicks = clicks_by_link(request, ws, link_count)
    rows = []
    for item in dicts:
        item["clicks"] = clicks.get(item["id"], 0)
        for key in ("tags", "anti_block_platforms", "allowed_platforms", "blocked_platforms"):
            item[key] = ",".join(item[key])
        rows.append([_cell(item[c]) for c in EXPORT_COLUMNS])
    return rows


def export_response(request: Request, viewer: Viewer, filters: Filters, ids: list[int] | None) -> Response:
    rows = export_rows(request, viewer, filters, ids)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # the BOM makes Excel read UTF-8 Chinese correctly
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = utcnow().astimezone(zone(DEFAULT_TZ)).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="links-{stamp}.csv"', "cache-control": "no-store"},
    )


@page("links:read")
async def export(request: Request, viewer: Viewer) -> Response:
    """The filtered list as CSV: reading, so analysts may export too."""
    filters = Filters.read(request.query_params)
    return await anyio.to_thread.run_sync(export_response, request, viewer, filters, None)


# --- CSV import ---------------------------------------------------------------------------------


def errors_text(errors: list[FieldError], locale: str) -> str:
    """Field errors in one line for a notice: "标签 1: 最多 64 个字符; …" (the field's name translated)."""
    return "; ".join(
        f"{field_label(e.field, locale)}: {error_text(e, locale)}" if e.field else error_text(e, locale) for e in errors
    )


def report_details(r: importer.RowResult, locale: str) -> list[dict[str, str]]:
    """What the report shows for one line: per problem the column (as typed, and its translated name) and the
    translated reason; for other rows the short link or a note."""
    if r.status == "error" and r.errors:
        return [
            {"field": e.field, "label": field_label(e.field, locale) if e.field else "", "text": error_text(e, locale)}
            for e in r.errors
        ]
    if r.status == "skipped" and r.link_id is not None:
        return [{"field": "", "label": "", "text": t("links_list.report.skipped_as", locale, id=r.link_id)}]
    return [{"field": "", "label": "", "text": r.message}]


def run_import(request: Request, viewer: Viewer, data: bytes, dry_run: bool) -> importer.ImportReport:
    rt = runtime_of(request)
    with rt.db.session() as db:
        return importer.import_csv(db, viewer.workspace.id, data, rt.settings.base_host, dry_run, rt.scheme)


def _report_rows(report: importer.ImportReport, locale: str) -> list[dict[str, Any]]:
    rows = []
    for r in report.rows:
        details = report_details(r, locale)
        rows.append({"row": r.row, "status": r.status, "details": details, "link_id": r.link_id})
    return rows


def _import_context(viewer: Viewer) -> dict[str, Any]:
    optional = ", ".join(c for c in importer.COLUMNS if c != "destination_url")
    return {"columns": optional, "max_mb": MAX_IMPORT_BYTES >> 20}


@page("links:write")
async def import_page(request: Request, viewer: Viewer) -> Response:
    ctx = _import_context(viewer)
    if request.method == "GET":
        return render(request, "links_import.html", viewer, report=None, error="", dry_run=False, **ctx)
    form = await request.form()
    dry_run = bool(form.get("dry_run"))
    upload = form.get("file")
    error = ""
    data = b""
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = viewer.t("links_list.import_no_file")
    else:
        data = await upload.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            error = viewer.t("links_list.import_too_big", mb=ctx["max_mb"])
        elif not data.strip():
            error = viewer.t("links_list.import_no_file")
    if error:
        return render(request, "links_import.html", viewer, 422, report=None, error=error, dry_run=dry_run, **ctx)
    try:
        report = await anyio.to_thread.run_sync(run_import, request, viewer, data, dry_run)
    except InvalidInput as exc:
        error = "; ".join(error_text(e, viewer.locale) for e in exc.errors)
        return render(request, "links_import.html", viewer, 422, report=None, error=error, dry_run=dry_run, **ctx)
    counts: dict[str, int] = {}
    for r in report.rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return render(
        request,
        "links_import.html",
        viewer,
        report=_report_rows(report, viewer.locale),
        counts=counts,
        error="",
        dry_run=dry_run,
        **ctx,
    )


@page("links:write")
async def import_template(request: Request, viewer: Viewer) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(importer.COLUMNS)
    writer.writerow(
        ["https://example.com/sale", "sale-2026", "", "双十一活动", "", "活动,海报", "2026-12-31T23:59:00+08:00", "",
         "302", "wechat,qq", "", ""]
    )  # fmt: skip
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="links-template.csv"'},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/links", links_page, methods=["GET"]),
        Route("/links/bulk", bulk, methods=["POST"]),
        Route("/links/export", export, methods=["GET"]),
        Route("/links/import", import_page, methods=["GET", "POST"]),
        Route("/links/import/template", import_template, methods=["GET"]),
    ]
