"""QR tools: scan an uploaded QR image (a poster photo, a competitor's flyer) and turn what it points at into a
tracked short link with its own QR code.

Works as plain form posts; `static/qr_tools.js` adds drag-and-drop, a preview and in-page results.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route

from siyu import qr
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register
from siyu.links import service as links
from siyu.links.models import ShortLink
from siyu.web.context import Viewer, page, render, runtime_of
from siyu.workspaces.models import Domain

log = logging.getLogger("siyu.web.qr")

register(
    {
        "qr.title": ("二维码工具", "QR tools"),
        "qr.intro": (
            "上传一张含二维码的图片（海报照片、截图等），查看其中的内容，并一键生成可追踪的短链和新二维码。",
            "Upload a picture with a QR code (a poster photo, a screenshot) to see what it contains, "
            "then turn it into a tracked short link with a new QR code in one click.",
        ),
        "qr.drop": ("把图片拖到这里，或", "Drop a picture here, or"),
        "qr.choose": ("选择图片", "Choose a picture"),
        "qr.camera": ("拍照扫码", "Take a photo"),
        "qr.formats": ("支持 PNG、JPEG、WebP，最大 {mb} MB", "PNG, JPEG or WebP, up to {mb} MB"),
        "qr.decode": ("识别二维码", "Read QR code"),
        "qr.decoding": ("正在识别…", "Reading…"),
        "qr.preview": ("预览", "Preview"),
        "qr.results": ("识别结果", "What we found"),
        "qr.found": ("找到 {n} 个二维码", "{n} QR code(s) found"),
        "qr.content": ("内容", "Content"),
        "qr.format": ("类型", "Type"),
        "qr.make_link": ("生成可追踪短链", "Make a tracked short link"),
        "qr.not_url": (
            "这不是网址（可能是文字、名片或 Wi-Fi 信息），不能生成短链。",
            "This is not a web address (it may be text, a contact card or Wi-Fi details), so it cannot "
            "become a short link.",
        ),
        "qr.ours": ("这已经是本工作区的短链：", "This is already a short link of this workspace:"),
        "qr.ours_other": (
            "这是本系统的短链域名，不能再生成短链。",
            "This points at one of our own short-link domains, so it cannot become a short link.",
        ),
        "qr.existing": ("已有指向该网址的短链：", "Existing short link to this address:"),
        "qr.read_only": (
            "你的角色只能查看，不能创建短链。",
            "Your role can read codes but not create short links.",
        ),
        "qr.created": ("短链已创建", "Short link created"),
        "qr.short_url": ("短链", "Short link"),
        "qr.destination": ("目标网址", "Destination"),
        "qr.copy": ("复制", "Copy"),
        "qr.details": ("查看详情与数据", "Details and stats"),
        "qr.download": ("下载二维码", "Download QR code"),
        "qr.scan_hint": (
            "新二维码通过短链跳转，扫码次数会计入数据统计。",
            "The new code goes through the short link, so every scan is counted.",
        ),
        "qr.link_title": ("扫码转换", "From a scanned QR code"),
        "qr.error.no_file": ("请先选择一张图片。", "Choose a picture first."),
        "qr.error.no_code_found": (
            "图片里没有找到二维码。请确认二维码清晰、完整、未过度倾斜后再试。",
            "No QR code was found in this picture. Make sure the code is sharp, whole and not too tilted.",
        ),
        "qr.error.unsupported_format": (
            "不支持该文件格式，请上传 PNG、JPEG 或 WebP 图片。",
            "This file type is not supported; upload a PNG, JPEG or WebP picture.",
        ),
        "qr.error.corrupt": (
            "图片已损坏或无法读取，请换一张再试。",
            "The picture is damaged or unreadable; try another one.",
        ),
        "qr.error.too_large": ("文件太大，最大 {mb} MB。", "The file is too large; the limit is {mb} MB."),
        "qr.error.too_many_pixels": (
            "图片分辨率过高，请缩小后再上传。",
            "The picture has too many pixels; scale it down and try again.",
        ),
        "qr.error.not_url": (
            "只能为 http:// 或 https:// 网址生成短链。",
            "Only http:// and https:// addresses can become short links.",
        ),
        "qr.error.own_domain": (
            "该网址指向本系统的短链域名，不能再生成短链（会形成循环跳转）。",
            "This address points at one of our own short-link domains (it would loop).",
        ),
        "qr.error.no_domain": (
            "工作区还没有短链域名，请先在「设置」中添加。",
            "This workspace has no short-link domain yet; add one in Settings first.",
        ),
        "qr.error.invalid": ("无法为该网址生成短链：", "This address cannot become a short link:"),
    }
)

MAX_MB = qr.MAX_UPLOAD_BYTES // (1024 * 1024)
DECODE_ERRORS = ("no_code_found", "unsupported_format", "too_large", "too_many_pixels", "corrupt")


@dataclass
class ScanResult:
    """One decoded code, with what the page can offer for it."""

    text: str
    format: str
    url: str | None
    bbox: tuple[int, int, int, int]
    ours: ShortLink | None = None  # the URL is already one of this workspace's short links
    ours_other: bool = False  # the URL is on one of our hosts, but not a link of this workspace
    existing: ShortLink | None = None  # a link of this workspace already redirects to this URL


def _error(viewer: Viewer, code: str) -> str:
    return viewer.t(f"qr.error.{code}", mb=MAX_MB)


def _qr_page(request: Request, viewer: Viewer, status: int = 200, **context: object) -> Response:
    values: dict[str, object] = {"results": None, "error": "", "created": None, "max_mb": MAX_MB}
    values.update(context)
    return render(request, "qr_tools.html", viewer, status, **values)


@page("links:read")
async def qr_page(request: Request, viewer: Viewer) -> Response:
    created = None
    raw_id = request.query_params.get("created", "")
    if raw_id.isdigit():
        created = await anyio.to_thread.run_sync(_created_card, request, viewer, int(raw_id))
    return _qr_page(request, viewer, created=created)


def _created_card(request: Request, viewer: Viewer, link_id: int) -> dict[str, object] | None:
    """What the page shows for a just-created link: short URL, destination and its QR image."""
    if not 0 < link_id < 2**62:
        return None
    rt = runtime_of(request)
    try:
        with rt.db.session() as db:
            link = links.get_link(db, viewer.workspace.id, link_id)
    except NotFound:
        return None
    short = links.short_url(link, rt.scheme)
    return {
        "id": link.id,
        "short_url": short,
        "destination_url": link.destination_url,
        "qr_src": _qr_src(request, link.id, short + "/q"),
    }


def _qr_src(request: Request, link_id: int, data: str) -> str:
    """The detail page's QR image when that route exists; else the PNG inline, so this page stands alone."""
    path = f"/links/{link_id}/qr.png"
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(scope)[0] == Match.FULL:
            return "/console" + path
    png = qr.render_png(data, qr.QrOptions(size=320))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


async def _uploaded_bytes(request: Request) -> bytes | None:
    """The first non-empty file among the form's `image` inputs (file picker or camera)."""
    form = await request.form()
    for item in form.getlist("image"):
        if isinstance(item, UploadFile):
            data = await item.read(qr.MAX_UPLOAD_BYTES + 1)  # one byte over is enough to say "too large"
            await item.close()
            if data:
                return data
    return None


@page("links:read")
async def decode(request: Request, viewer: Viewer) -> Response:
    data = await _uploaded_bytes(request)
    if data is None:
        return _qr_page(request, viewer, 422, error=_error(viewer, "no_file"))
    try:
        codes = await anyio.to_thread.run_sync(qr.decode_image, data)
    except qr.QrError as exc:
        code = exc.code if exc.code in DECODE_ERRORS else "corrupt"
        return _qr_page(request, viewer, 422, error=_error(viewer, code))
    except Exception:  # an image library crash on hostile input must still be a clear 422, never a 500
        log.exception("QR decode failed unexpectedly")
        return _qr_page(request, viewer, 422, error=_error(viewer, "corrupt"))
    results = await anyio.to_thread.run_sync(_annotate, request, viewer, codes)
    return _qr_page(request, viewer, results=results)


def _annotate(request: Request, viewer: Viewer, codes: list[qr.DecodedCode]) -> list[ScanResult]:
    """Spot codes that already are our short links, or whose target already has one."""
    results = [ScanResult(c.text, c.format, c.url, c.bbox) for c in codes]
    with runtime_of(request).db.session() as db:
        own_hosts = set(db.scalars(select(Domain.hostname)))
        for result in results:
            if result.url is None:
                continue
            parts = urlsplit(result.url)
            if parts.netloc.lower() in own_hosts or (parts.hostname or "") in own_hosts:
                slug = parts.path.strip("/").removesuffix("/q")
                link = links.find_for_redirect(db, parts.netloc.lower(), slug) if slug else None
                if link is not None and link.workspace_id == viewer.workspace.id:
                    result.ours = link
                else:
                    result.ours_other = True
            else:
                result.existing = links.find_by_destination(db, viewer.workspace.id, result.url)
    return results


@page("links:write")
async def create(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    raw = form.get("url")
    url = qr.extract_url(raw) if isinstance(raw, str) else None
    if url is None:
        return _qr_page(request, viewer, 422, error=_error(viewer, "not_url"))
    try:
        link_id = await anyio.to_thread.run_sync(_create_link, request, viewer, url)
    except InvalidInput as exc:
        return _qr_page(request, viewer, 422, error=_create_error(viewer, exc))
    except Conflict:  # only possible for custom slugs, which this page never sends
        return _qr_page(request, viewer, 422, error=_error(viewer, "invalid"))
    return RedirectResponse(f"/console/qr?created={link_id}", status_code=303)


def _create_link(request: Request, viewer: Viewer, url: str) -> int:
    rt = runtime_of(request)
    with rt.db.session() as db:
        link = links.create_link(
            db,
            rt.link_context(viewer.workspace.id, viewer.user.email),
            {"destination_url": url, "title": viewer.t("qr.link_title")},
        )
        return link.id


def _create_error(viewer: Viewer, exc: InvalidInput) -> str:
    if any(e.code == "url_own_domain" for e in exc.errors):
        return _error(viewer, "own_domain")
    if any(e.field == "domain" for e in exc.errors):
        return _error(viewer, "no_domain")
    return f"{_error(viewer, 'invalid')} {' '.join(error_text(e, viewer.locale) for e in exc.errors)}"


def routes() -> list[BaseRoute]:
    return [
        Route("/qr", qr_page, methods=["GET"]),
        Route("/qr/decode", decode, methods=["POST"]),
        Route("/qr/create", create, methods=["POST"]),
    ]
