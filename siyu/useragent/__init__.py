"""User-agent classification: in-app platform (防红), OS/device routing, bots, full parsing.

Hot path (per redirect): :func:`detect_platform`, :func:`os_family`, :func:`device_class`,
:func:`is_bot`. Off the hot path (click ingestion): :func:`parse_user_agent`.
"""

from siyu.useragent._text import MAX_UA_LENGTH
from siyu.useragent.bots import BOT_MARKERS, is_bot, looks_like_bot
from siyu.useragent.device import DeviceClass, OsFamily, device_class, os_family
from siyu.useragent.parse import UserAgentInfo, parse_user_agent
from siyu.useragent.platforms import (
    PLATFORMS,
    PlatformInfo,
    PlatformMatch,
    detect_platform,
    detect_platform_details,
    is_wechat_mini_program,
)

__all__ = [
    "BOT_MARKERS",
    "MAX_UA_LENGTH",
    "PLATFORMS",
    "DeviceClass",
    "OsFamily",
    "PlatformInfo",
    "PlatformMatch",
    "UserAgentInfo",
    "detect_platform",
    "detect_platform_details",
    "device_class",
    "is_bot",
    "is_wechat_mini_program",
    "looks_like_bot",
    "os_family",
    "parse_user_agent",
]
