"""Strict IP parsing shared by geo lookup and IP storage, so both agree on what an IP is."""

from ipaddress import IPv4Address, IPv6Address, ip_address

IPAddress = IPv4Address | IPv6Address

# Longest real textual form is 45 chars ("ffff:…:255.255.255.255"); leave room for a zone id
# ("fe80::1%eth0") but refuse to parse - or cache - arbitrarily long header junk.
MAX_IP_TEXT = 64


def parse_ip(value: object) -> IPAddress | None:
    """Parse a client IP or return None; never raises.

    Accepts only canonical notation (``ipaddress`` rejects ``"127.1"``, ``"010.0.0.1"`` …,
    which ``socket.inet_aton``-based libraries would silently accept) and unwraps IPv4-mapped
    IPv6 (``::ffff:1.2.3.4``, what dual-stack sockets report) to plain IPv4.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_IP_TEXT:
        return None
    try:
        addr = ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_public(addr: IPAddress) -> bool:
    """True for globally routable unicast (Python 3.11's ``is_global`` still admits multicast)."""
    return addr.is_global and not addr.is_multicast
