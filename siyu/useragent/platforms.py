"""Which app's embedded browser (in-app webview) a user agent comes from.

The answer drives 防红 (anti-block) guidance — e.g. "open in browser" overlays inside WeChat — and
links' allowed-platform settings, so the codes in :data:`PLATFORMS` are stable ids stored in the
database: never rename one. Detection is a short, ordered list of lower-cased substring checks
(no regex), because it runs on every redirect.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from siyu.useragent._text import normalize_ua
from siyu.useragent.device import os_family


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """Display data for a platform code; ``in_app`` means an embedded webview where anti-block
    guidance applies (as opposed to a standalone browser)."""

    code: str
    name_zh: str
    name_en: str
    in_app: bool


PLATFORMS: dict[str, PlatformInfo] = {
    p.code: p
    for p in (
        PlatformInfo("wechat", "微信", "WeChat", True),
        PlatformInfo("wecom", "企业微信", "WeCom", True),
        PlatformInfo("qq", "QQ", "QQ", True),
        PlatformInfo("weibo", "微博", "Weibo", True),
        PlatformInfo("alipay", "支付宝", "Alipay", True),
        PlatformInfo("dingtalk", "钉钉", "DingTalk", True),
        PlatformInfo("douyin", "抖音", "Douyin", True),
        PlatformInfo("kuaishou", "快手", "Kuaishou", True),
        PlatformInfo("xiaohongshu", "小红书", "Xiaohongshu", True),
        PlatformInfo("baidu", "百度", "Baidu App", True),
        PlatformInfo("feishu", "飞书", "Feishu / Lark", True),
        PlatformInfo("taobao", "淘宝", "Taobao", True),
        PlatformInfo("toutiao", "今日头条", "Toutiao", True),
        PlatformInfo("bilibili", "哔哩哔哩", "Bilibili", True),
        PlatformInfo("zhihu", "知乎", "Zhihu", True),
        PlatformInfo("uc", "UC浏览器", "UC Browser", False),
        PlatformInfo("qqbrowser", "QQ浏览器", "QQ Browser", False),
        PlatformInfo("none", "普通浏览器", "Regular browser", False),
    )
}


@dataclass(frozen=True, slots=True)
class _Rule:
    """``platform`` matches when any ``any_of`` token occurs and no ``none_of`` token does.

    Tokens are lower-case and matched against ``" " + ua.lower()``, so a leading space in a token
    means "starts a whitespace-separated word".
    """

    platform: str
    any_of: tuple[str, ...]
    none_of: tuple[str, ...] = ()


#: First match wins, so ORDER MATTERS. Hosts that embed another app's token come first.
RULES: tuple[_Rule, ...] = (
    # WeCom UAs also carry "MicroMessenger/7.0.1" (and, on desktop, "WindowsWechat").
    _Rule("wecom", ("wxwork",)),
    # Old Android WeChat also carries "MQQBrowser/6.2 TBS/"; desktop WeChat 3.x carries "QQBrowser/".
    _Rule("wechat", ("micromessenger", "windowswechat", "macwechat")),
    # The QQ app: "QQ/8.9.78" as its own word plus the "V1_IPH_SQ_" / "V1_AND_SQ_" build marker.
    # Must precede qqbrowser because Android QQ runs on the X5 "MQQBrowser/6.2" kernel.
    _Rule("qq", ("v1_iph_sq_", "v1_and_sq_", "v1_ipd_sq_", " qq/")),
    # Feishu/Lark is a ByteDance webview; check it before douyin/toutiao.
    _Rule("feishu", (" lark/", "feishu")),
    # "AliApp(DingTalk/x)" would otherwise look like any Alibaba-family app.
    _Rule("dingtalk", ("aliapp(dingtalk", "dingtalk")),
    # Only Alipay's own markers: a bare "AliApp(" is also Taobao, Tmall, UC's TUnionSDK, etc.
    _Rule("alipay", ("alipayclient", "aliapp(ap/")),
    _Rule("taobao", ("aliapp(tb/", "@taobao_")),
    _Rule("weibo", ("__weibo__", "weibo")),
    # Douyin: "aweme_27.1.0" (iOS), "aweme_270100" / "app_name/aweme" (Android), next to BytedanceWebview.
    _Rule("douyin", ("aweme",)),
    _Rule("toutiao", ("newsarticle", "news_article")),
    # "ksNebula" is 快手极速版 (Kuaishou Lite).
    _Rule("kuaishou", ("kwai", "ksnebula")),
    # iOS Xiaohongshu identifies itself only as "discover/8.7 (iPhone; ...)".
    _Rule("xiaohongshu", ("xiaohongshu", "xhsminiapp", " discover/")),
    _Rule("baidu", ("baiduboxapp",)),
    _Rule("bilibili", ("biliapp", "bilibili")),
    # "osee2unifiedRelease" is the Zhihu iOS app; Android says "ZhihuHybrid com.zhihu.android".
    _Rule("zhihu", ("zhihuhybrid", "com.zhihu.", "osee2unifiedrelease")),
    _Rule("uc", ("ucbrowser",)),
    # Standalone QQ Browser only: "MQQBrowser/6.2 TBS/..." is the X5 webview embedded in countless
    # third-party Android apps, and "QBCore/" is the same kernel embedded in Windows apps.
    _Rule("qqbrowser", ("qqbrowser/",), ("tbs/", "qbcore/")),
)

_DESKTOP_WECHAT_TOKENS = ("windowswechat", "macwechat")
_DESKTOP_OS = frozenset({"windows", "macos", "linux"})


@dataclass(frozen=True, slots=True)
class PlatformMatch:
    """``detect_platform`` plus flags that change the guidance we show.

    ``mini_program``: a WeChat mini-program ``<web-view>`` (links can't be "opened in browser").
    ``desktop_client``: the in-app browser of a desktop client (Windows/Mac WeChat, WeCom, …),
    where the right guidance is "copy the link" rather than the mobile "⋯ → open in browser".
    """

    platform: str
    mini_program: bool = False
    desktop_client: bool = False


def _match(low: str) -> str:
    for rule in RULES:
        if any(t in low for t in rule.any_of) and not any(t in low for t in rule.none_of):
            return rule.platform
    return "none"


@lru_cache(maxsize=4096)
def _detect(ua: str) -> PlatformMatch:
    low = " " + ua.lower()
    platform = _match(low)
    if platform == "none":
        return PlatformMatch("none")
    mini_program = platform == "wechat" and "miniprogram" in low
    desktop = any(t in low for t in _DESKTOP_WECHAT_TOKENS) or (
        PLATFORMS[platform].in_app and os_family(ua) in _DESKTOP_OS
    )
    return PlatformMatch(platform, mini_program, desktop)


def detect_platform_details(ua: str) -> PlatformMatch:
    """Platform code plus the mini-program / desktop-client flags (memoised)."""
    return _detect(normalize_ua(ua))


def detect_platform(ua: str) -> str:
    """Return the platform code (a key of :data:`PLATFORMS`) for ``ua``; ``"none"`` for a normal
    browser. Cheap and memoised: safe for the redirect hot path."""
    return _detect(normalize_ua(ua)).platform


def is_wechat_mini_program(ua: str) -> bool:
    """True inside a WeChat mini-program web-view (``miniProgram`` / ``MiniProgramEnv`` token)."""
    return _detect(normalize_ua(ua)).mini_program
