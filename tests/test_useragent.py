"""How Siyu classifies user agents.

Each case is a real user-agent string as sent by the app or browser named in its id, with what the
redirect hot path decides about it: the in-app platform (drives 防红 guidance), the OS family and
device class (drive app-store / landing-page routing) and whether it is a bot (not a click).
"""

from __future__ import annotations

import time

import pytest

from siyu.useragent import (
    MAX_UA_LENGTH,
    PLATFORMS,
    UserAgentInfo,
    detect_platform,
    detect_platform_details,
    device_class,
    is_bot,
    is_wechat_mini_program,
    looks_like_bot,
    os_family,
    parse_user_agent,
)

# --- Real user agents ---------------------------------------------------------------------------

WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2c) NetType/WIFI Language/zh_CN"
)
WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110017 "
    "MMWEBSDK/20230805 MMWEBID/1234 MicroMessenger/8.0.42.2460(0x28002A58) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)
WECHAT_ANDROID_X5 = (  # older WeChat on Tencent's X5 kernel: note the MQQBrowser/TBS tokens
    "Mozilla/5.0 (Linux; Android 9; MI 8 Build/PKQ1.180729.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/66.0.3359.126 MQQBrowser/6.2 TBS/044705 Mobile "
    "Safari/537.36 MMWEBID/6950 MicroMessenger/7.0.4.1420(0x2700043A) Process/tools NetType/WIFI "
    "Language/zh_CN"
)
WECHAT_MINIPROGRAM_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.38(0x1800262c) NetType/WIFI Language/zh_CN "
    "miniProgram/wxd1a2b3c4d5e6f7a8"
)
WECHAT_MINIPROGRAM_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; M2102K1C Build/SKQ1.211006.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5061 "
    "MMWEBSDK/20230504 MMWEBID/9308 MicroMessenger/8.0.37.2380(0x2800255B) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64 MiniProgramEnv/android"
)
WINDOWS_WECHAT = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 "
    "Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309071d) "
    "XWEB/8461 Flue"
)
WINDOWS_WECHAT_4 = (  # WeChat 4.x for Windows
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.6261.95 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
    "UnifiedPCWindowsWechat(0xf2540621) XWEB/13487 Flue"
)
WINDOWS_WECHAT_QBCORE = (  # WeChat 3.x for Windows on the QBCore kernel: note "QQBrowser/"
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.116 "
    "Safari/537.36 QBCore/4.0.1301.400 QQBrowser/9.0.2524.400 Mozilla/5.0 (Windows NT 6.1; WOW64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2875.116 Safari/537.36 NetType/WIFI "
    "MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63010200)"
)
MAC_WECHAT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.5(0x13080510) XWEB/1227 Flue"
)
WECOM_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 wxwork/4.1.10 MicroMessenger/7.0.1 Language/zh ColorScheme/Light"
)
WECOM_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; PEDM00 Build/SKQ1.210216.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/89.0.4389.72 MQQBrowser/6.2 TBS/046237 Mobile "
    "Safari/537.36 wxwork/4.1.6 ColorScheme/Light MicroMessenger/7.0.1 NetType/WIFI Language/zh "
    "Lang/zh ColorScheme/Light"
)
WECOM_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.116 "
    "Safari/537.36 QBCore/4.0.1326.400 QQBrowser/9.0.2524.400 Mozilla/5.0 (Windows NT 6.1; WOW64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2875.116 Safari/537.36 NetType/WIFI "
    "MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63010200) wxwork/3.1.16 "
    "(MicroMessenger/6.2) WeChat/2.0.4"
)
QQ_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 QQ/8.9.78.614 V1_IPH_SQ_8.9.78_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 "
    "StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 QQTheme/1000 AppId/537175316 Core/WKWebView "
    "Device/Apple(iPhone 12) NetType/WIFI QBWebViewType/1 WKType/1"
)
QQ_ANDROID = (  # the QQ app runs on the X5 kernel, so it carries "MQQBrowser/6.2" too
    "Mozilla/5.0 (Linux; Android 12; V2055A Build/SP1A.210812.003; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/89.0.4389.72 MQQBrowser/6.2 TBS/046291 Mobile "
    "Safari/537.36 V1_AND_SQ_8.9.28_3700_YYB_D A_8092800 QQ/8.9.28.10155 NetType/WIFI WebP/0.3.0 "
    "AppId/537145372 Pixel/1080 StatusBarHeight/76 SimpleUISwitch/0 QQTheme/1000 InMagicWin/0 "
    "StudyMode/0 CurrentMode/0 CurrentFontScale/1.0 GlobalDensityScale/0.9 AllowLandscape/false "
    "InKidsMode/0"
)
QQBROWSER_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 12; zh-cn; PEDM00 Build/SKQ1.210216.001) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/13.8 Mobile Safari/537.36 "
    "COVC/046513"
)
QQBROWSER_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 14_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/14.0 MQQBrowser/11.3.3 Mobile/15E148 Safari/604.1 QBWebViewUA/2 QBWebViewType/1 WKType/1"
)
QQBROWSER_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/70.0.3538.25 Safari/537.36 Core/1.70.3877.400 QQBrowser/10.8.4506.400"
)
WEIBO_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Weibo (iPhone14,5__weibo__13.9.1__iphone__os16.6)"
)
WEIBO_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/108.0.5359.128 Mobile Safari/537.36 "
    "Weibo (Xiaomi-22081212C__weibo__13.8.3__android__android13)"
)
ALIPAY_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/20G75 ChannelId(1) Ariver/1.1.0 AliApp(AP/10.5.36.6000) Nebula WK RVKType(0) "
    "AlipayDefined(nt:WIFI,ws:390|780|3.0) AlipayClient/10.5.36.6000 Language/zh-Hans Region/CN "
    "NebulaX/1.0.0 XRiver/10.2.58.1"
)
ALIPAY_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2203A Build/TP1A.220624.014) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 Mobile Safari/537.36 "
    "UCBS/3.22.2.59_230817100713 ChannelId(0) NebulaSDK/1.8.100112 Nebula "
    "AlipayDefined(nt:WIFI,ws:393|0|2.75,ac:sp) AliApp(AP/10.5.26.8100) AlipayClient/10.5.26.8100 "
    "Language/zh-Hans useStatusBar/true isConcaveScreen/true Region/CNAriver/1.0.0 DTN/2.0"
)
DINGTALK_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 AliApp(DingTalk/7.0.40) com.laiwang.DingTalk/29977326 Channel/201200 "
    "language/zh-Hans-CN UT4Aplus/0.0.6 WK"
)
DINGTALK_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 12; zh-CN; M2012K11AC Build/SKQ1.211006.001) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.0.36 Mobile Safari/537.36 "
    "AliApp(DingTalk/6.5.50) com.alibaba.android.rimet/26284409 Channel/700159 language/zh-CN abi/64 "
    "UT4Aplus/0.2.25 colorScheme/light"
)
TAOBAO_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 AliApp(TB/10.26.20) WindVane/8.7.2 1170x2532 WK"
)
TAOBAO_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 12; zh-CN; 2201122C Build/SKQ1.211006.001) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UWS/3.22.2.57 Mobile Safari/537.36 "
    "AliApp(TB/10.25.10) UCBS/2.11.1.1 TTID/227200@taobao_android_10.25.10 WindVane/8.5.0 "
    "1080X2400 UT4Aplus/0.2.29"
)
DOUYIN_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 aweme_27.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/zh Region/CN "
    "AppTheme/light RevealType/Dialog WKWebView/1 BytedanceWebview/d8a21c6 FalconTag/"
)
DOUYIN_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/75.0.3770.156 Mobile Safari/537.36 aweme_270100 "
    "JsSdk/1.0 NetType/WIFI Channel/xiaomi_1128_64 app_version/27.1.0 ByteLocale/zh-CN Region/CN "
    "AppSkin/white AppTheme/light BytedanceWebview/d8a21c6 WebView/075113004008"
)
TOUTIAO_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 NewsArticle/9.3.8.40 JsSdk/2.0 NetType/WIFI (NewsLite 9.3.8 16.600000) "
    "WKWebView/1 BytedanceWebview/d8a21c6"
)
KUAISHOU_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Kwai/11.7.30.1035 ISLP/0 StatusHT/47 KDT/PHONE iosSCH/0 TitleHT/44 NetType/WIFI "
    "ISDM/0 ICFO/0 locale/zh-Hans CT/0 Yoda/3.2.2.1-rc2 ISLB/0 CoWB/0 WebViewType/WK BHT/102 "
    "AZPREFIX/az1"
)
KUAISHOU_LITE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; PEDM00 Build/SKQ1.210216.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/90.0.4430.226 KsWebView/1.8.90.593 (rel;r) Mobile "
    "Safari/537.36 Yoda/3.1.5-rc1 ksNebula/11.7.30.6089 OS_PRO_BIT/64 MAX_PHY_MEM/11598 KDT/PHONE "
    "AZPREFIX/az3 ICFO/0 StatusHT/32 TitleHT/44 NetType/WIFI ISLP/0 ISDM/0 ISLB/0 locale/zh-cn "
    "SHP/2206 SWP/1080 SD/2.75 CT/0 ISLM/0"
)
XIAOHONGSHU_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 discover/8.7 (iPhone; iOS 16.6; Scale/3.00) Resolution/1170*2532 Version/8.7 "
    "Build/8070497 Device/(Apple Inc.;iPhone14,5) NetType/WiFi"
)
XIAOHONGSHU_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/108.0.5359.128 Mobile Safari/537.36 "
    "XiaoHongShu/8.7.0 (Android 13) NetType/WIFI"
)
BAIDU_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 SP-engine/2.78.0 main%2F1.0 baiduboxapp/13.42.0.10 (Baidu; P2 16.6) NABar/1.0 "
    "themeUA=Theme/default"
)
BAIDU_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/97.0.4692.98 Mobile Safari/537.36 T7/13.42 "
    "SP-engine/2.80.0 baiduboxapp/13.42.0.10 (Baidu; P1 13) NABar/1.0"
)
FEISHU_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Lark/6.9.5 LarkLocale/zh_CN ChannelName/Feishu TTWebView/0"
)
LARK_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/104.0.5112.102 Safari/537.36 Lark/6.9.10 LarkLocale/en_US ChannelName/Lark"
)
BILIBILI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 BiliApp/75500100 mobi_app/iphone isNotchWindow/1 NotchHeight=47 "
    "mallVersion/75500100 mVersion/249 disable_rcmd/0 magent/BILI_H5_IOS_16.6_7.55.0_75500100"
)
ZHIHU_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/108.0.5359.128 Mobile Safari/537.36 ZhihuHybrid "
    "com.zhihu.android/Futureve/9.16.0"
)
UC_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 12; zh-CN; M2012K11AC Build/SKQ1.211006.001) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/15.5.0.1251 Mobile Safari/537.36"
)
UC_IOS = (  # UC on iOS carries an Alibaba "AliApp(" token that must NOT read as Alipay/Taobao
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 UCBrowser/15.5.6.1986 Mobile AliApp(TUnionSDK/0.1.20.4)"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1.2 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD_LEGACY = (
    "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/12.1.2 Mobile/15E148 Safari/604.1"
)
SAFARI_MAC = (  # also what iPadOS 13+ Safari sends: indistinguishable by UA
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/120.0.2210.91"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0"
HUAWEI_BROWSER_HARMONYOS = (  # HarmonyOS 2-4: Android-compatible, says both
    "Mozilla/5.0 (Linux; Android 10; HarmonyOS; NOH-AL00; HMSCore 6.11.0.302) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.0.322 Mobile Safari/537.36"
)
HUAWEI_BROWSER_HARMONYOS_NEXT = (  # HarmonyOS NEXT / 5: no Android at all
    "Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 "
    "Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
BAIDUSPIDER = "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"
BYTESPIDER = (
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)"
)
YISOUSPIDER = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/69.0.3497.81 YisouSpider/5.0 Safari/537.36"
)
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
TELEGRAMBOT = "TelegramBot (like TwitterBot)"
TWITTERBOT = "Twitterbot/1.0"
DISCORDBOT = "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"
WHATSAPP = "WhatsApp/2.23.20.0 A"
SKYPE = "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"
CURL = "curl/8.4.0"
WGET = "Wget/1.21.4"
PYTHON_REQUESTS = "python-requests/2.31.0"
GO_HTTP = "Go-http-client/1.1"


# --- What the hot path decides -----------------------------------------------------------------

CASES = [
    # id, ua, platform, os_family, device_class, is_bot
    ("wechat-ios", WECHAT_IOS, "wechat", "ios", "mobile", False),
    ("wechat-android", WECHAT_ANDROID, "wechat", "android", "mobile", False),
    ("wechat-android-x5-kernel", WECHAT_ANDROID_X5, "wechat", "android", "mobile", False),
    ("wechat-miniprogram-ios", WECHAT_MINIPROGRAM_IOS, "wechat", "ios", "mobile", False),
    ("wechat-miniprogram-android", WECHAT_MINIPROGRAM_ANDROID, "wechat", "android", "mobile", False),
    ("wechat-windows", WINDOWS_WECHAT, "wechat", "windows", "desktop", False),
    ("wechat-windows-4x", WINDOWS_WECHAT_4, "wechat", "windows", "desktop", False),
    ("wechat-windows-qbcore", WINDOWS_WECHAT_QBCORE, "wechat", "windows", "desktop", False),
    ("wechat-mac", MAC_WECHAT, "wechat", "macos", "desktop", False),
    ("wecom-ios", WECOM_IOS, "wecom", "ios", "mobile", False),
    ("wecom-android", WECOM_ANDROID, "wecom", "android", "mobile", False),
    ("wecom-windows", WECOM_WINDOWS, "wecom", "windows", "desktop", False),
    ("qq-ios", QQ_IOS, "qq", "ios", "mobile", False),
    ("qq-android", QQ_ANDROID, "qq", "android", "mobile", False),
    ("qqbrowser-android", QQBROWSER_ANDROID, "qqbrowser", "android", "mobile", False),
    ("qqbrowser-ios", QQBROWSER_IOS, "qqbrowser", "ios", "mobile", False),
    ("qqbrowser-windows", QQBROWSER_WINDOWS, "qqbrowser", "windows", "desktop", False),
    ("weibo-ios", WEIBO_IOS, "weibo", "ios", "mobile", False),
    ("weibo-android", WEIBO_ANDROID, "weibo", "android", "mobile", False),
    ("alipay-ios", ALIPAY_IOS, "alipay", "ios", "mobile", False),
    ("alipay-android", ALIPAY_ANDROID, "alipay", "android", "mobile", False),
    ("dingtalk-ios", DINGTALK_IOS, "dingtalk", "ios", "mobile", False),
    ("dingtalk-android", DINGTALK_ANDROID, "dingtalk", "android", "mobile", False),
    ("taobao-ios", TAOBAO_IOS, "taobao", "ios", "mobile", False),
    ("taobao-android", TAOBAO_ANDROID, "taobao", "android", "mobile", False),
    ("douyin-ios", DOUYIN_IOS, "douyin", "ios", "mobile", False),
    ("douyin-android", DOUYIN_ANDROID, "douyin", "android", "mobile", False),
    ("toutiao-ios", TOUTIAO_IOS, "toutiao", "ios", "mobile", False),
    ("kuaishou-ios", KUAISHOU_IOS, "kuaishou", "ios", "mobile", False),
    ("kuaishou-lite-android", KUAISHOU_LITE_ANDROID, "kuaishou", "android", "mobile", False),
    ("xiaohongshu-ios", XIAOHONGSHU_IOS, "xiaohongshu", "ios", "mobile", False),
    ("xiaohongshu-android", XIAOHONGSHU_ANDROID, "xiaohongshu", "android", "mobile", False),
    ("baidu-ios", BAIDU_IOS, "baidu", "ios", "mobile", False),
    ("baidu-android", BAIDU_ANDROID, "baidu", "android", "mobile", False),
    ("feishu-ios", FEISHU_IOS, "feishu", "ios", "mobile", False),
    ("lark-mac", LARK_MAC, "feishu", "macos", "desktop", False),
    ("bilibili-ios", BILIBILI_IOS, "bilibili", "ios", "mobile", False),
    ("zhihu-android", ZHIHU_ANDROID, "zhihu", "android", "mobile", False),
    ("uc-android", UC_ANDROID, "uc", "android", "mobile", False),
    ("uc-ios", UC_IOS, "uc", "ios", "mobile", False),
    ("safari-iphone", SAFARI_IOS, "none", "ios", "mobile", False),
    ("safari-ipad-legacy", SAFARI_IPAD_LEGACY, "none", "ios", "tablet", False),
    ("safari-mac", SAFARI_MAC, "none", "macos", "desktop", False),
    ("chrome-android", CHROME_ANDROID, "none", "android", "mobile", False),
    ("chrome-android-tablet", CHROME_ANDROID_TABLET, "none", "android", "tablet", False),
    ("chrome-windows", CHROME_WINDOWS, "none", "windows", "desktop", False),
    ("edge-windows", EDGE_WINDOWS, "none", "windows", "desktop", False),
    ("firefox-windows", FIREFOX_WINDOWS, "none", "windows", "desktop", False),
    ("firefox-linux", FIREFOX_LINUX, "none", "linux", "desktop", False),
    ("firefox-android", FIREFOX_ANDROID, "none", "android", "mobile", False),
    ("huawei-browser-harmonyos", HUAWEI_BROWSER_HARMONYOS, "none", "harmonyos", "mobile", False),
    ("huawei-browser-harmonyos-next", HUAWEI_BROWSER_HARMONYOS_NEXT, "none", "harmonyos", "mobile", False),
    ("googlebot", GOOGLEBOT, "none", "other", "bot", True),
    ("googlebot-smartphone", GOOGLEBOT_SMARTPHONE, "none", "android", "bot", True),
    ("bingbot", BINGBOT, "none", "other", "bot", True),
    ("baiduspider-is-not-the-baidu-app", BAIDUSPIDER, "none", "other", "bot", True),
    ("bytespider-is-not-douyin", BYTESPIDER, "none", "android", "bot", True),
    ("yisouspider", YISOUSPIDER, "none", "windows", "bot", True),
    ("facebookexternalhit", FACEBOOK, "none", "other", "bot", True),
    ("slackbot", SLACKBOT, "none", "other", "bot", True),
    ("telegrambot", TELEGRAMBOT, "none", "other", "bot", True),
    ("twitterbot", TWITTERBOT, "none", "other", "bot", True),
    ("discordbot", DISCORDBOT, "none", "other", "bot", True),
    ("whatsapp-preview", WHATSAPP, "none", "other", "bot", True),
    ("skype-preview", SKYPE, "none", "windows", "bot", True),
    ("curl", CURL, "none", "other", "bot", True),
    ("wget", WGET, "none", "other", "bot", True),
    ("python-requests", PYTHON_REQUESTS, "none", "other", "bot", True),
    ("go-http-client", GO_HTTP, "none", "other", "bot", True),
]


@pytest.mark.parametrize(
    ("ua", "platform", "os", "device", "bot"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_hot_path_classification(ua: str, platform: str, os: str, device: str, bot: bool) -> None:
    assert detect_platform(ua) == platform
    assert os_family(ua) == os
    assert device_class(ua) == device
    assert is_bot(ua) is bot


@pytest.mark.parametrize(
    ("ua", "platform", "os", "device", "bot"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_full_parse_agrees_with_hot_path(ua: str, platform: str, os: str, device: str, bot: bool) -> None:
    info = parse_user_agent(ua)
    assert isinstance(info, UserAgentInfo)
    assert (info.platform, info.os_family, info.device_type, info.is_bot) == (platform, os, device, bot)


# --- Platform table ----------------------------------------------------------------------------


def test_platform_codes_are_the_stable_product_ids() -> None:
    assert set(PLATFORMS) == {
        "wechat", "wecom", "qq", "weibo", "alipay", "dingtalk", "douyin", "kuaishou", "xiaohongshu",
        "baidu", "feishu", "taobao", "toutiao", "bilibili", "zhihu", "uc", "qqbrowser", "none",
    }  # fmt: skip
    assert all(code == info.code for code, info in PLATFORMS.items())
    assert PLATFORMS["wechat"].name_zh == "微信"
    assert PLATFORMS["wecom"].name_zh == "企业微信"


def test_only_embedded_webviews_get_anti_block_guidance() -> None:
    assert PLATFORMS["wechat"].in_app and PLATFORMS["douyin"].in_app
    assert not PLATFORMS["none"].in_app
    # UC and QQ Browser are standalone browsers: a user there can already open any link.
    assert not PLATFORMS["uc"].in_app and not PLATFORMS["qqbrowser"].in_app


def test_every_detected_code_is_in_the_table() -> None:
    assert {detect_platform(case[1]) for case in CASES} <= set(PLATFORMS)


# --- Ordering rules ----------------------------------------------------------------------------


def test_wecom_wins_over_wechat_when_ua_has_both_tokens() -> None:
    ua = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 wxwork/4.1.10 MicroMessenger/7.0.1"
    assert detect_platform(ua) == "wecom"


def test_dingtalk_aliapp_is_dingtalk_not_alipay() -> None:
    ua = "Mozilla/5.0 (iPhone) Mobile/15E148 AliApp(DingTalk/7.0.40) AlipayClient/10.5.36"
    assert detect_platform(ua) == "dingtalk"
    assert detect_platform(DINGTALK_IOS) == "dingtalk"


def test_qq_app_versus_standalone_qq_browser() -> None:
    # Android QQ app and old WeChat embed the X5 kernel, whose UA says "MQQBrowser/6.2 TBS/...".
    assert detect_platform(QQ_ANDROID) == "qq"
    assert detect_platform(WECHAT_ANDROID_X5) == "wechat"
    assert detect_platform(QQBROWSER_ANDROID) == "qqbrowser"
    # A random third-party app on the X5 webview is not QQ Browser.
    x5_webview = (
        "Mozilla/5.0 (Linux; Android 10; V1981A Build/QP1A.190711.020; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/77.0.3865.120 MQQBrowser/6.2 TBS/045811 Mobile Safari/537.36"
    )
    assert detect_platform(x5_webview) == "none"


def test_case_does_not_matter() -> None:
    assert detect_platform(WECHAT_IOS.replace("MicroMessenger", "micromessenger")) == "wechat"


# --- Flags that change the guidance ------------------------------------------------------------


@pytest.mark.parametrize("ua", [WECHAT_MINIPROGRAM_IOS, WECHAT_MINIPROGRAM_ANDROID])
def test_wechat_mini_program_webview_is_wechat_with_a_flag(ua: str) -> None:
    match = detect_platform_details(ua)
    assert (match.platform, match.mini_program, match.desktop_client) == ("wechat", True, False)
    assert is_wechat_mini_program(ua)
    assert parse_user_agent(ua).mini_program


def test_plain_wechat_is_not_a_mini_program() -> None:
    assert not is_wechat_mini_program(WECHAT_IOS)
    assert not detect_platform_details(WECHAT_ANDROID).mini_program


@pytest.mark.parametrize(
    "ua", [WINDOWS_WECHAT, WINDOWS_WECHAT_4, WINDOWS_WECHAT_QBCORE, MAC_WECHAT, WECOM_WINDOWS]
)
def test_desktop_clients_are_flagged_because_guidance_is_copy_the_link(ua: str) -> None:
    assert detect_platform_details(ua).desktop_client
    assert parse_user_agent(ua).desktop_client


@pytest.mark.parametrize("ua", [WECHAT_IOS, WECHAT_ANDROID, WECOM_IOS, CHROME_WINDOWS])
def test_mobile_apps_and_plain_browsers_are_not_desktop_clients(ua: str) -> None:
    assert not detect_platform_details(ua).desktop_client


# --- Bots and previews -------------------------------------------------------------------------


def test_head_requests_are_always_previews() -> None:
    # WeChat (and iMessage, Slack...) probe a pasted link with HEAD using a normal-looking UA.
    assert is_bot(WECHAT_IOS, method="HEAD")
    assert is_bot(SAFARI_IOS, method="head")
    assert not is_bot(WECHAT_IOS, method="GET")


def test_wechat_spider_is_a_bot() -> None:
    assert is_bot("Mozilla/5.0 (compatible; WeChat-Spider)")


def test_cheap_check_never_flags_what_the_full_check_does_not() -> None:
    for _, ua, *_ in CASES:
        if looks_like_bot(ua):
            assert is_bot(ua), ua


def test_cubot_phones_are_not_bots() -> None:
    cubot = (
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30 Build/QP1A.190711.020) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
    )
    assert not is_bot(cubot)
    assert device_class(cubot) == "mobile"


# --- Full parser -------------------------------------------------------------------------------


def test_parse_wechat_ios() -> None:
    info = parse_user_agent(WECHAT_IOS)
    assert info.browser == "WeChat Browser"
    assert info.browser_version == "8.0.44"
    assert (info.os, info.os_version) == ("iOS", "17.1")
    assert (info.device_brand, info.device_model) == ("Apple", "iPhone")
    assert (info.device_type, info.platform, info.is_bot) == ("mobile", "wechat", False)


def test_parse_desktop_edge() -> None:
    info = parse_user_agent(EDGE_WINDOWS)
    assert (info.browser, info.browser_version) == ("Edge", "120.0.2210")
    assert (info.os, info.os_version) == ("Windows", "10")
    assert info.device_type == "desktop"


def test_parse_reports_harmonyos_not_the_android_it_imitates() -> None:
    assert parse_user_agent(HUAWEI_BROWSER_HARMONYOS).os == "HarmonyOS"
    next_info = parse_user_agent(HUAWEI_BROWSER_HARMONYOS_NEXT)
    assert (next_info.os, next_info.os_version) == ("HarmonyOS", "5.0")


def test_parse_googlebot() -> None:
    info = parse_user_agent(GOOGLEBOT)
    assert (info.browser, info.device_type, info.is_bot) == ("Googlebot", "bot", True)


def test_parse_result_is_immutable_and_memoised() -> None:
    info = parse_user_agent(CHROME_ANDROID)
    assert parse_user_agent(CHROME_ANDROID) is info
    with pytest.raises(AttributeError):
        info.browser = "x"  # type: ignore[misc]


def test_ua_parser_uses_the_rust_resolver() -> None:
    import ua_parser
    from ua_parser import regex

    assert ua_parser.BestAvailableResolver is regex.Resolver


# --- Hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize("ua", ["", "   ", None])
def test_empty_ua_is_a_bot_and_a_normal_browser_platform(ua: str) -> None:
    assert detect_platform(ua) == "none"
    assert os_family(ua) == "other"
    assert device_class(ua) == "bot"
    assert is_bot(ua)
    info = parse_user_agent(ua)
    assert (info.browser, info.os, info.device_type, info.is_bot) == ("Other", "Other", "bot", True)


GARBAGE = [
    "\x00\x01\x02\xff\xfe",
    "\udcff\udc80 lone surrogates from surrogateescape",
    bytes(range(256)).decode("latin-1"),
    "🙂" * 50 + " 微信 MicroMessenger",
    "(((((((((((((((((((((((((((((((((",
    "Mozilla/5.0 (" + ";" * 500,
]


@pytest.mark.parametrize("ua", GARBAGE)
def test_garbage_never_crashes(ua: str) -> None:
    assert detect_platform(ua) in PLATFORMS
    assert os_family(ua) in {"ios", "android", "harmonyos", "windows", "macos", "linux", "other"}
    assert device_class(ua) in {"mobile", "tablet", "desktop", "bot", "other"}
    assert isinstance(is_bot(ua), bool)
    assert isinstance(parse_user_agent(ua), UserAgentInfo)


def test_unicode_around_tokens_is_fine() -> None:
    assert detect_platform("🙂" * 50 + " 微信 MicroMessenger") == "wechat"


def test_10kb_ua_is_fast_and_only_its_prefix_counts() -> None:
    padding = "x" * 10_240
    huge_wechat = WECHAT_IOS + " " + padding
    start = time.perf_counter()
    for i in range(50):  # unique strings: defeat the caches
        ua = huge_wechat + str(i)
        assert detect_platform(ua) == "wechat"
        assert os_family(ua) == "ios"
        assert device_class(ua) == "mobile"
        assert not is_bot(ua)
        assert parse_user_agent(ua).platform == "wechat"
    assert time.perf_counter() - start < 2.0
    # Tokens past MAX_UA_LENGTH are ignored: bounded work and bounded cache memory.
    assert detect_platform(padding[:MAX_UA_LENGTH] + " MicroMessenger/8.0") == "none"


def test_detect_platform_is_cheap_enough_for_the_redirect_path() -> None:
    uas = [case[1] + f" n/{i}" for i in range(200) for case in CASES[:10]]  # 2,000 uncached UAs
    start = time.perf_counter()
    for ua in uas:
        detect_platform(ua)
    per_call = (time.perf_counter() - start) / len(uas)
    assert per_call < 200e-6  # generous bound; typically a few microseconds


@pytest.mark.parametrize("unit", ["a1", "a-", "a_", "A.", "é"])
def test_crawlerdetect_pathological_input_is_defused(unit: str) -> None:
    # Undefused, 2 KB of "a1a1…" costs crawlerdetect ~0.5 s (a quadratic "[a-z0-9\-_]*bot" pattern).
    start = time.perf_counter()
    for i in range(5):
        assert not is_bot(f"Mozilla/5.0 {i} " + unit * (10_000 // len(unit)))
    assert time.perf_counter() - start < 1.0


def test_long_words_still_reveal_a_bot_suffix() -> None:
    assert is_bot("Mozilla/5.0 (compatible; " + "x" * 100 + "validator)")
