"""Texts of the visitor-facing pages (guidance, not allowed, expired, password, not found)."""

from siyu.i18n import register

register(
    {
        "page.guidance.title": ("请在浏览器中打开", "Open in your browser"),
        "page.guidance.lead": (
            "{platform}内无法直接打开此链接，请按下面的步骤在浏览器中打开。",
            "This link can't be opened inside {platform}. Follow these steps to open it in your browser.",
        ),
        "page.guidance.ios": (
            "点击右上角的「···」，选择「在 Safari 中打开」",
            "Tap “···” at the top right, then choose “Open in Safari”",
        ),
        "page.guidance.android": (
            "点击右上角的「···」，选择「在浏览器中打开」",
            "Tap “···” at the top right, then choose “Open in Browser”",
        ),
        "page.guidance.desktop": (
            "复制下面的链接，粘贴到电脑浏览器的地址栏中打开",
            "Copy the link below and paste it into your computer's browser",
        ),
        "page.guidance.other": (
            "复制下面的链接，在手机浏览器中打开",
            "Copy the link below and open it in your phone's browser",
        ),
        "page.guidance.copy": ("复制链接", "Copy link"),
        "page.guidance.copied": ("已复制", "Copied"),
        "page.guidance.destination": ("目标网址", "Destination"),
        "page.not_allowed.title": ("此处无法访问", "Not available here"),
        "page.not_allowed.lead": (
            "该链接仅限在指定的平台或设备上打开。",
            "This link can only be opened on certain platforms or devices.",
        ),
        "page.not_allowed.hint": ("当前环境：{platform}", "You are using: {platform}"),
        "page.expired.title": ("链接已失效", "This link has expired"),
        "page.expired.lead": ("该链接已过期或已达到访问次数上限。", "It has passed its date or click limit."),
        "page.not_found.title": ("链接不存在", "Link not found"),
        "page.not_found.lead": ("请检查链接是否完整。", "Check that the link is complete."),
        "page.password.title": ("此链接受密码保护", "This link is password protected"),
        "page.password.label": ("访问密码", "Password"),
        "page.password.submit": ("打开", "Open"),
        "page.password.wrong": ("密码不正确", "Wrong password"),
        "page.password.locked": (
            "尝试次数过多，请 {minutes} 分钟后再试",
            "Too many attempts. Try again in {minutes} minutes",
        ),
        "platform.browser": ("浏览器", "a browser"),
        "platform.desktop": ("电脑", "a computer"),
    }
)
