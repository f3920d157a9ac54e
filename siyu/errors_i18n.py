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
    # -- text files (siyu.textfiles) and bulk data imports (siyu.imports) ---------------------------
    "encoding_unknown": ("未知的编码「{name}」", "unknown encoding '{name}'"),
    "encoding_mismatch": (
        "文件不是有效的 {encoding} 文本（第 {offset} 字节）",
        "not valid {encoding} text (byte {offset})",
    ),
    "import_too_large": (
        "文件大小 {size} MB，超过上限 {max} MB，请拆分后再导入",
        "is {size} MB; the limit is {max} MB: split the file",
    ),
    "import_workbook": (
        "这是 Excel 工作簿，请先另存为 CSV（UTF-8）",
        "is an Excel workbook: save it as CSV (UTF-8) first",
    ),
    "import_binary": ("文件包含 NUL 字符，可能不是文本文件", "contains NUL characters: is it a binary file?"),
    "import_empty": ("文件是空的", "is empty"),
    "import_no_rows": ("文件没有数据行（只有表头？）", "has no data rows (only a header?)"),
    "import_csv": ("第 {row} 行不是有效的 CSV（{detail}）", "line {row}: not valid CSV ({detail})"),
    "import_duplicate_column": ("列「{column}」出现了两次", "the column '{column}' appears twice"),
    "import_missing_columns": ("缺少必填列：{columns}", "missing required column(s): {columns}"),
    "import_unknown_column": ("未知的列，已忽略（可用的列：{known}）", "unknown column, ignored (known: {known})"),
    "import_json": ("不是有效的 JSON（{detail}）", "not valid JSON ({detail})"),
    "import_json_object": ("必须是 JSON 对象", "must be a JSON object"),
    "import_json_value": ("必须是单个值，不能是列表或对象", "must be a single value, not a list or object"),
    "import_required": ("必填", "is required"),
    "import_placeholder": ("「{value}」是占位值，不是真实的值", "'{value}' is a placeholder, not a real value"),
    "import_placeholder_dropped": ("「{value}」是占位值，已忽略", "'{value}' is a placeholder: left out"),
    "import_amount": ("必须是金额，例如 12.30", "must be an amount such as 12.30"),
    "import_minutes": ("必须是分钟数，例如 45 或 12.5", "must be a number of minutes such as 45 or 12.5"),
    "import_time": (
        "不是有效的时间：请使用 2024-05-01 14:30:00、2024/05/01 14:30 或 ISO 8601；未注明时区时按北京时间",
        "not a date-time: use 2024-05-01 14:30:00, 2024/05/01 14:30 or ISO 8601; China time unless an offset is given",
    ),
    "import_future": ("时间在未来", "is in the future"),
    "import_date": ("不是有效的日期，请使用 1990-05-01", "not a date: use 1990-05-01"),
    "import_phone": ("不是有效的电话号码（大陆手机号为 1 开头的 11 位数字）", "{detail}"),
    "import_consent": (
        "必须是同意或拒绝（也可用 1/0、是/否、true/false）",
        "must be granted or denied (also 1/0, 是/否, true/false)",
    ),
    "import_gender": ("必须是男或女（也可用 male/female、1/2）", "must be male or female (also 男/女, 1/2)"),
    "import_currency": ("必须是三位字母的币种代码，例如 CNY", "must be a 3-letter currency code such as CNY"),
    "import_consent_column": (
        "不是授权列：应为 consent_ 加用途代码（小写字母、数字、_）",
        "is not a consent purpose column: consent_ then a purpose code (lower-case letters, digits, _)",
    ),
    "import_consent_purpose": (
        "不是用途代码（小写字母、数字、_）",
        "is not a purpose code (lower-case letters, digits, _)",
    ),
    "import_consent_object": ("必须是「用途: 同意/拒绝」的对象", "must be an object of purpose: granted/denied"),
    "import_consent_unknown": (
        "未知的授权用途「{code}」；已有用途：{known}",
        "unknown consent purpose '{code}'; known purposes: {known}",
    ),
    "import_openid_appid": (
        "填写 openid 时必须填写 appid：openid 只在所属公众号/小程序内唯一",
        "is required with openid: an openid is only unique within its app",
    ),
    "import_order_mismatch": (
        "与订单 {order_id} 第 {row} 行的值不同（那里是「{value}」）",
        "differs from row {row} of order {order_id} ('{value}' there)",
    ),
    "import_item_product": ("商品明细需要 sku 或 product_name", "a line item needs a sku or a product_name"),
    "import_items": ("必须是商品明细列表", "must be a list of line items"),
    "import_order_status": (
        "必须是 completed、refunded 或 cancelled（也可用 已完成/已退款/已取消）",
        "must be completed, refunded or cancelled (also 已完成/已退款/已取消)",
    ),
    "import_order_person": ("请填写 member_id 或 phone：这是谁的订单？", "give member_id or phone: whose order is it?"),
    "import_order_discount": ("优惠金额大于商品明细合计", "is larger than the line items' sum"),
    "import_order_total": ("商品明细没有单价时，订单金额必填", "is required when the line items have no price"),
    "import_follow_event": (
        "必须是 follow 或 unfollow（也可用 subscribe/unsubscribe、关注/取消关注）",
        "must be follow or unfollow (also subscribe/unsubscribe, 关注/取消关注)",
    ),
    "import_visit_person": (
        "请填写 member_id、phone 或 unionid：是谁到店？",
        "give member_id, phone or unionid: who visited?",
    ),
    "import_duplicate": (
        "「{key}」在第 {row} 行也有，但内容不同：请只保留一行",
        "'{key}' is also on row {row} with different values: keep one",
    ),
    "import_event_too_large": (
        "生成的事件有 {size} KB，单个事件最大 {max} KB",
        "makes an event of {size} KB; an event may be at most {max} KB",
    ),
    "import_source_unknown": ("本工作区没有数据源「{ref}」", "no source '{ref}' in this workspace"),
    "import_source_disabled": ("数据源「{name}」已停用", "the source '{name}' is disabled"),
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
    "pass_visitor_id": ("传递访客 ID", "Pass visitor id"),
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
    # bulk import columns (siyu.imports; docs/import.md)
    "member_id": ("会员号", "Member ID"),
    "phone": ("手机号", "Phone"),
    "gender": ("性别", "Gender"),
    "birthday": ("生日", "Birthday"),
    "city": ("城市", "City"),
    "level": ("会员等级", "Level"),
    "points": ("积分", "Points"),
    "registered_at": ("注册时间", "Registered at"),
    "store": ("门店", "Store"),
    "updated_at": ("更新时间", "Updated at"),
    "consent_evidence": ("授权凭证", "Consent evidence"),
    "order_id": ("订单号", "Order ID"),
    "ordered_at": ("下单时间", "Ordered at"),
    "channel": ("渠道", "Channel"),
    "currency": ("币种", "Currency"),
    "total": ("订单金额", "Order total"),
    "discount": ("优惠金额", "Discount"),
    "status": ("状态", "Status"),
    "status_at": ("状态时间", "Status time"),
    "product_name": ("商品名称", "Product name"),
    "category": ("品类", "Category"),
    "quantity": ("数量", "Quantity"),
    "price": ("单价", "Price"),
    "items": ("商品明细", "Line items"),
    "event": ("事件", "Event"),
    "at": ("时间", "Time"),
    "scene": ("关注场景", "Scene"),
    "qr_scene": ("二维码场景值", "QR scene"),
    "store_id": ("门店编号", "Store ID"),
    "visited_at": ("到店时间", "Visited at"),
    "duration": ("停留时长（分钟）", "Duration (minutes)"),
    "staff": ("接待员工", "Staff"),
    "encoding": ("编码", "Encoding"),
    "format": ("格式", "Format"),
    "kind": ("类型", "Kind"),
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
