"""Translations of domain errors: one template pair per error code, and the helpers the console uses.

Domain code raises `FieldError(field, reason, code=..., params=...)` (and `QrError` with `.code` and
`.params`). `reason` stays English for the REST API and the CLI; the console shows
`error_text(error, locale)`, which fills the template `error.<code>` with the error's params and
falls back to the English reason for errors without a code or template. The English templates
repeat the domain's reasons word for word (tests/test_error_i18n.py checks this), so an English
console and the API say the same thing.

Templates are always run through `str.format` here (even without params), so literal braces are
written `{{` `}}`. Field names get the same treatment through `field_label`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from siyu.i18n import CATALOG, DEFAULT_LOCALE, register

ERRORS: dict[str, tuple[str, str]] = {
    # -- generic, shared by many fields ------------------------------------------------------------
    "not_text": ("必须是文本", "must be text"),
    "not_bool": ("必须是 true 或 false", "must be true or false"),
    "max_length": ("最多 {max} 个字符", "at most {max} characters"),
    "min_length": ("至少 {min} 个字符", "must be at least {min} characters"),
    "length_range": ("长度须为 {min} 到 {max} 个字符", "must be {min} to {max} characters"),
    "text_max_length": ("须为文本，最多 {max} 个字符", "must be text of at most {max} characters"),
    "text_nul": ("不能包含 NUL（空）字符", "must not contain NUL characters"),
    "one_of": ("只能是以下之一：{choices}", "must be one of {choices}"),
    "whole_number": ("必须是整数", "must be a whole number"),
    "integer_required": ("必须是整数", "must be an integer"),
    "int_min": ("必须是不小于 {min} 的整数", "must be a whole number of at least {min}"),
    "int_range": ("必须是 {min} 到 {max} 之间的整数", "must be a whole number from {min} to {max}"),
    "number_range": ("必须在 {min} 到 {max} 之间", "must be between {min} and {max}"),
    "out_of_range": ("必须在 {min} 到 {max} 之间（当前为 {value}）", "must be between {min} and {max}, got {value}"),
    "not_negative": ("不能小于 0", "must be 0 or more"),
    "field_unknown": ("未知字段", "unknown field"),
    "field_create_only": ("创建后不能修改", "cannot be changed after creation"),
    # -- dates -------------------------------------------------------------------------------------
    "datetime_format": (
        "不是有效的日期时间（例如 2026-12-31T23:59:00+08:00）",
        "not an ISO 8601 date-time (e.g. 2026-12-31T23:59:00+08:00)",
    ),
    "datetime_type": ("必须是 ISO 8601 格式的日期时间文本", "must be an ISO 8601 date-time string"),
    "year_range": ("年份须在 {min} 到 {max} 之间", "must be between the years {min} and {max}"),
    # -- URLs and UTM ------------------------------------------------------------------------------
    "url_required": ("请填写网址", "a URL is required"),
    "url_too_long": ("网址太长，最多 {max} 个字符", "longer than {max} characters"),
    "url_spaces": ("网址中不能有空格或控制字符", "contains spaces or control characters"),
    "url_malformed": ("网址格式不正确（{detail}）", "malformed URL ({detail})"),
    "url_scheme": (
        "只支持 http 和 https 开头的网址（当前为 {scheme}）",
        "only http and https URLs are allowed (scheme: {scheme})",
    ),
    "url_no_scheme": (
        "只支持 http 和 https 开头的网址，请以 http:// 或 https:// 开头",
        "only http and https URLs are allowed (scheme: {scheme})",
    ),
    "url_no_host": ("网址缺少域名", "the URL has no host"),
    "url_own_domain": (
        "不能指向本平台自己的短链域名（会造成循环跳转）",
        "points at one of our own short-link domains (redirect loop)",
    ),
    "url_bad_ip": ("网址中的 IP 地址格式不正确", "malformed IP address in URL"),
    "url_bad_host": ("网址中的域名无效", "the host name is not valid"),
    "utm_not_object": (
        "必须是包含 source/medium/campaign/term/content 的对象",
        "must be an object with source/medium/campaign/term/content",
    ),
    "utm_unknown": ("未知的 UTM 参数；可用：{known}", "unknown UTM field; use {known}"),
    # -- slugs, tags, link options -----------------------------------------------------------------
    "slug_chars": ("只能包含字母、数字、_ 和 -", "may only contain letters, digits, '_' and '-'"),
    "slug_reserved": ("「{slug}」是系统保留词，不能使用", "'{slug}' is reserved"),
    "slug_taken": ("「{slug}」在 {host} 上已被使用", "'{slug}' is already used on {host}"),
    "slug_exhausted": (
        "找不到可用的随机后缀，请自定义后缀",
        "could not find a free random slug; try a custom slug",
    ),
    "tags_not_list": ("必须是标签名列表", "must be a list of tag names"),
    "tag_invalid": (
        "每个标签须为 1 到 {max} 个字符，且不含 NUL 字符",
        "must be text of 1 to {max} characters, without NUL",
    ),
    "tags_too_many": ("最多 {max} 个标签", "at most {max} tags"),
    "domain_not_ours": ("「{host}」不是本工作区的域名", "'{host}' is not a domain of this workspace"),
    "no_domain": ("本工作区还没有域名，请先添加一个", "this workspace has no domain yet: add one first"),
    # -- platforms, rules, A/B variants ------------------------------------------------------------
    "platforms_not_list": ("必须是平台代码列表", "must be a list of platform codes"),
    "platform_unknown": ("未知的平台 {value!r}；可用：{known}", "unknown platform {value!r}; known: {known}"),
    "rules_not_list": ("必须是规则列表（每条包含条件和网址）", "must be a list of {{when, url}} objects"),
    "rules_too_many": ("最多 {max} 条规则", "at most {max} rules"),
    "rule_not_object": ("每条规则须包含条件（when）和网址（url）", "must be an object with 'when' and 'url'"),
    "rule_when_empty": ("请至少设置一个条件，可用：{keys}", "must be a non-empty object with any of {keys}"),
    "rule_condition_unknown": ("未知的条件；可用：{keys}", "unknown condition; use {keys}"),
    "rule_values_empty": ("取值不能为空", "must be a non-empty list of strings"),
    "rule_country": ("请使用两位字母的国家/地区代码，例如 CN", "use two-letter ISO country codes such as CN"),
    "rule_values_unknown": ("未知的取值 {values}；可用：{known}", "unknown value(s) {values}; use {known}"),
    "variants_not_list": ("必须是网址与权重的列表", "must be a list of {{url, weight}} objects"),
    "variants_count": ("A/B 测试需要 {min} 到 {max} 个网址", "an A/B test needs {min} to {max} destinations"),
    "variant_not_object": ("每组须包含网址（url）和权重（weight）", "must be an object with 'url' and 'weight'"),
    # -- CSV import --------------------------------------------------------------------------------
    "file_encoding": ("文件不是 UTF-8 或 GBK 编码的文本", "not UTF-8 or GBK text"),
    "import_header": (
        "第一行必须是列名，且包含 destination_url",
        "the first line must name the columns and include destination_url",
    ),
    "import_columns": ("未知的列：{columns}；可用的列：{known}", "unknown column(s) {columns}; known: {known}"),
    "import_too_many_rows": ("超过 {max} 行，请拆分文件后再导入", "more than {max} rows; split the file"),
    "import_extra_values": ("这一行的值比列名多", "more values than columns"),
    # -- workspaces, domains, users, keys, invitations, webhooks -----------------------------------
    "hostname_not_text": ("必须是域名，例如 s.example.com", "must be a host name such as s.example.com"),
    "hostname_not_bare": (
        "只填写域名，不要包含 http:// 或路径（例如 s.example.com）",
        "give the host name only, without scheme or path (e.g. s.example.com)",
    ),
    "hostname_port": ("端口必须是 1 到 {max} 之间的数字", "port must be a number between 1 and {max}"),
    "hostname_invalid": ("不是有效的域名", "not a valid host name"),
    "domain_taken": ("域名「{host}」已被使用", "domain '{host}' is already registered"),
    "workspace_slug": ("只能使用小写字母、数字和 -", "use lowercase letters, digits and '-'"),
    "workspace_exists": ("工作区「{slug}」已存在", "workspace '{slug}' already exists"),
    "email_invalid": ("邮箱格式不正确", "not a valid e-mail address"),
    "email_taken": ("该邮箱已有账号", "a user with this e-mail already exists"),
    "already_member": ("此人已是本工作区成员", "this person is already a member of the workspace"),
    "invitation_other_email": ("这个邀请是发给另一个邮箱的", "this invitation is for another e-mail address"),
    "scopes_unknown": ("未知的权限：{scopes}；可用：{known}", "unknown scope(s) {scopes}; known: {known}"),
    "events_choose": ("请从以下事件中选择：{known}", "choose from {known}"),
    # -- QR codes (QrError.code) -------------------------------------------------------------------
    "colour_not_text": ("必须是颜色值，例如 #000000", "must be a colour string such as '#000000'"),
    "colour_transparent": ("前景色不能是透明", "dark modules cannot be transparent"),
    "colour_format": ("{value!r} 不是 #RRGGBB 或 #RGB 格式的颜色", "{value!r} is not a #RRGGBB or #RGB colour"),
    "colour_inverted": (
        "前景色必须比背景色深；很多手机扫码软件识别不了反色二维码",
        "must be darker than light; many phone scanners skip inverted codes",
    ),
    "colour_contrast": (
        "与背景色的对比度只有 {ratio}:1，至少需要 {min}:1",
        "contrast with light is {ratio}:1; at least {min}:1 is needed",
    ),
    "logo_empty": ("必须是非空的 PNG、JPEG 或 WebP 图片", "must be non-empty PNG, JPEG or WebP bytes"),
    "data_empty": ("内容不能为空", "must be a non-empty string"),
    "data_too_long": (
        "内容太长，容错级别 {level} 的二维码放不下",
        "too long to fit in a QR code at error level {level}",
    ),
    "data_invalid": ("内容无法编码为二维码", "{detail}"),
    "size_too_small": (
        "{size} 像素太小，放不下这些内容；至少需要 {min} 像素",
        "{size}px is too small for this content; needs at least {min}px",
    ),
    "qr_format": ("只能是 png 或 svg", "must be png or svg"),
    # -- the console's own checks (never reach the API) -----------------------------------------------
    "password_required": ("请输入新密码", "Enter the new password"),
    # QrDecodeError codes (uploads and logos); the English reasons vary in detail, the templates do not.
    "too_large": ("文件太大，最大 {max} MB", "file is {size} bytes; the limit is {max} MB"),
    "too_many_pixels": ("图片像素太多（超过 {max} 百万像素）", "image has more than {max} megapixels"),
    "unsupported_format": ("只支持 PNG、JPEG 和 WebP 图片", "only PNG, JPEG and WebP images are accepted"),
    "corrupt": ("图片已损坏或无法读取", "the image is damaged or cannot be read"),
    "no_code_found": ("图片中没有识别到二维码", "no QR code could be read in this image"),
}

FIELDS: dict[str, tuple[str, str]] = {
    "destination_url": ("目标网址", "Destination URL"),
    "slug": ("后缀", "Slug"),
    "domain": ("域名", "Domain"),
    "hostname": ("域名", "Host name"),
    "title": ("标题", "Title"),
    "notes": ("备注", "Notes"),
    "tags": ("标签", "Tags"),
    "redirect_status": ("跳转状态码", "Redirect status"),
    "forward_query": ("转发参数", "Forward query"),
    "utm": ("UTM 参数", "UTM parameters"),
    "source": ("来源", "Source"),
    "medium": ("媒介", "Medium"),
    "campaign": ("活动", "Campaign"),
    "term": ("关键词", "Term"),
    "content": ("内容", "Content"),
    "expires_at": ("过期时间", "Expiry"),
    "max_clicks": ("最多点击次数", "Maximum clicks"),
    "fallback_url": ("失效后跳转网址", "Fallback URL"),
    "password": ("访问密码", "Password"),
    "rules": ("分流规则", "Rules"),
    "when": ("条件", "Conditions"),
    "url": ("网址", "URL"),
    "os": ("操作系统", "OS"),
    "device": ("设备类型", "Device"),
    "platform": ("App / 平台", "App / platform"),
    "country": ("国家/地区", "Country"),
    "province": ("省份", "Province"),
    "variants": ("A/B 测试", "A/B test"),
    "weight": ("权重", "Weight"),
    "anti_block_platforms": ("防红", "Anti-block"),
    "allowed_platforms": ("仅允许", "Only allow"),
    "blocked_platforms": ("禁止", "Block"),
    "person_ref": ("专属成员标识", "Member reference"),
    "archived": ("归档", "Archived"),
    "file": ("文件", "File"),
    "email": ("邮箱", "E-mail"),
    "name": ("名称", "Name"),
    "role": ("角色", "Role"),
    "scopes": ("权限", "Scopes"),
    "events": ("事件", "Events"),
    "ip_mode": ("IP 保存方式", "IP storage"),
}

register({f"error.{code}": pair for code, pair in ERRORS.items()})
register({f"field.{name}": pair for name, pair in FIELDS.items()})


class CodedError(Protocol):
    """A FieldError, a Conflict or a QrError: anything with a reason and, optionally, a code and params."""

    reason: str


def _template(key: str, locale: str) -> str | None:
    entry = CATALOG.get(key)
    return None if entry is None else entry.get(locale) or entry[DEFAULT_LOCALE]


def error_text(error: CodedError, locale: str = DEFAULT_LOCALE) -> str:
    """The error's sentence in `locale`; its English `reason` when it has no code or no template."""
    code: str | None = getattr(error, "code", None)
    params: Mapping[str, Any] = getattr(error, "params", None) or {}
    template = _template(f"error.{code}", locale) if code else None
    if template is None:
        return error.reason
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):  # a template asking for a param this raise did not give
        return error.reason


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_label(name: str, locale: str = DEFAULT_LOCALE) -> str:
    """A field path as people read it: `rules[0].url` → "分流规则 1 · 网址", `utm.utm_source` → "UTM 参数 · 来源".

    Unknown names are shown as they are (a CSV column someone misspelt is best shown verbatim).
    """
    parts: list[str] = []
    for word, index in _SEGMENT.findall(name):
        if index:
            if parts:
                parts[-1] += f" {int(index) + 1}"
            continue
        label = _template(f"field.{word.removeprefix('utm_')}", locale) if word else None
        parts.append(label or word)
    return " · ".join(parts) or name
