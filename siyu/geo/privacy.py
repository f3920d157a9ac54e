"""What of a visitor's IP we keep, per the workspace's ``ip_mode`` privacy setting.

Modes:

* ``full`` - the canonical address (``ipaddress`` normalisation, IPv4-mapped IPv6 unwrapped).
* ``truncated`` - network part only: IPv4 /24 (last octet zeroed), IPv6 /48.
* ``hashed`` - HMAC-SHA256 keyed with the workspace's secret salt, hex, first 32 chars. Stable
  per workspace (unique-visitor counts still work), not joinable across workspaces, and not
  reversible without the salt (without a key, all 2^32 IPv4s are trivially brute-forced).
* ``none`` - nothing is stored.

Order matters: geo lookup (:mod:`siyu.geo.lookup`) needs the FULL address, so resolve geography
first and only then pass the IP through :func:`store_ip`; a /24 or a hash cannot be geolocated.

Anything that does not parse as an IP is never stored (it usually comes from a client-controlled
header), whatever the mode.
"""

import hashlib
import hmac
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from siyu.geo.ipaddr import parse_ip

IpMode = Literal["full", "truncated", "hashed", "none"]
IP_MODES: frozenset[str] = frozenset({"full", "truncated", "hashed", "none"})

IPV4_TRUNCATE_PREFIX = 24
IPV6_TRUNCATE_PREFIX = 48
HASH_HEX_CHARS = 32  # 128 bits: collision-free in practice, half the width of a full digest


def validate_ip_mode(mode: object) -> IpMode:
    """Return ``mode`` if valid, else raise ValueError naming the ``ip_mode`` setting."""
    if not isinstance(mode, str) or mode not in IP_MODES:
        raise ValueError(f"ip_mode: unknown IP storage mode {mode!r}; expected one of {sorted(IP_MODES)}")
    return mode  # type: ignore[return-value]


def truncate_ip(ip: str) -> str | None:
    """Zero the host part: ``1.2.3.4`` → ``1.2.3.0``, ``2001:db8:1:2::3`` → ``2001:db8:1::``."""
    addr = parse_ip(ip)
    if addr is None:
        return None
    if addr.version == 4:
        return str(IPv4Network((addr, IPV4_TRUNCATE_PREFIX), strict=False).network_address)
    return str(IPv6Network((addr, IPV6_TRUNCATE_PREFIX), strict=False).network_address)


def hash_ip(ip: str, salt: bytes) -> str | None:
    """Keyed hash of the canonical address text, so ``::FFFF:1.2.3.4`` and ``1.2.3.4`` agree."""
    if not salt:
        raise ValueError("ip_mode 'hashed' needs a non-empty per-workspace salt")
    addr = parse_ip(ip)
    if addr is None:
        return None
    digest = hmac.new(salt, str(addr).encode("ascii"), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_CHARS]


def store_ip(ip: str, mode: str, salt: bytes) -> str | None:
    """The value to persist for ``ip`` under ``mode``; None when nothing should be stored.

    Raises ValueError (message starts with ``ip_mode``) for an unknown mode, checked before the
    IP so a misconfigured workspace fails loudly rather than silently storing nothing.
    """
    mode = validate_ip_mode(mode)
    if mode == "none":
        return None
    if mode == "hashed":
        return hash_ip(ip, salt)
    if mode == "truncated":
        return truncate_ip(ip)
    addr = parse_ip(ip)
    return None if addr is None else str(addr)
