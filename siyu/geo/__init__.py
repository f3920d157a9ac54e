"""Offline IP geolocation and privacy-preserving IP storage for click ingestion.

Typical ingest order: ``geo = default_lookup().lookup(ip)`` on the full address, then
``store_ip(ip, workspace.ip_mode, workspace.ip_salt)`` for what gets persisted.
"""

from siyu.geo.ipaddr import is_public, parse_ip
from siyu.geo.lookup import EMPTY, PRIVATE, GeoInfo, GeoLookup, default_lookup
from siyu.geo.privacy import IP_MODES, IpMode, hash_ip, store_ip, truncate_ip, validate_ip_mode

__all__ = [
    "EMPTY",
    "IP_MODES",
    "PRIVATE",
    "GeoInfo",
    "GeoLookup",
    "IpMode",
    "default_lookup",
    "hash_ip",
    "is_public",
    "parse_ip",
    "store_ip",
    "truncate_ip",
    "validate_ip_mode",
]
