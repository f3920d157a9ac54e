"""Destination URL validation: http/https only, well-formed, and never one of our own short links."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from siyu.errors import InvalidInput

MAX_URL_LENGTH = 4096
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
UTM_KEYS = ("source", "medium", "campaign", "term", "content")


def validate_url(raw: object, field: str, own_hosts: set[str] | frozenset[str] = frozenset()) -> str:
    """Return the normalised URL or raise InvalidInput naming `field` and the reason."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(field, "a URL is required", code="url_required")
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            field, f"longer than {MAX_URL_LENGTH} characters", code="url_too_long", params={"max": MAX_URL_LENGTH}
        )
    if _CONTROL.search(url):
        raise InvalidInput(field, "contains spaces or control characters", code="url_spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(field, f"malformed URL ({exc})", code="url_malformed", params={"detail": str(exc)}) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "none"
        raise InvalidInput(
            field,
            f"only http and https URLs are allowed (scheme: {shown})",
            code="url_scheme" if scheme else "url_no_scheme",
            params={"scheme": shown},
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput(field, "the URL has no host", code="url_no_host")
    host = _normalize_host(host, field)
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    if host in own_hosts or netloc.rpartition("@")[2] in own_hosts:
        raise InvalidInput(field, "points at one of our own short-link domains (redirect loop)", code="url_own_domain")
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def _normalize_host(host: str, field: str) -> str:
    if host.startswith("[") or ":" in host:  # IPv6 literal
        return f"[{host.strip('[]')}]"
    if re.fullmatch(r"[0-9.]+", host):
        octets = host.split(".")
        if len(octets) != 4 or any(not o or int(o) > 255 for o in octets):
            raise InvalidInput(field, "malformed IP address in URL", code="url_bad_ip")
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidInput(field, "the host name is not valid", code="url_bad_host") from exc
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or any(not _HOST_LABEL.match(label) for label in labels):
        raise InvalidInput(field, "the host name is not valid", code="url_bad_host")
    return ascii_host


def validate_utm(raw: object, field: str = "utm") -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput(field, "must be an object with source/medium/campaign/term/content", code="utm_not_object")
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).removeprefix("utm_")
        if name not in UTM_KEYS:
            known = ", ".join(UTM_KEYS)
            raise InvalidInput(
                f"{field}.{key}", f"unknown UTM field; use {known}", code="utm_unknown", params={"known": known}
            )
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise InvalidInput(
                f"{field}.{key}", "must be text of at most 200 characters", code="text_max_length", params={"max": 200}
            )
        out[name] = value
    return out


def build_destination(base_url: str, utm: dict[str, str], incoming_query: str = "", forward_query: bool = True) -> str:
    """Merge UTM parameters and (optionally) the visitor's query string into the destination."""
    if not utm and not (forward_query and incoming_query):
        return base_url
    parts = urlsplit(base_url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    override: dict[str, str] = {f"utm_{k}": v for k, v in utm.items()}
    if forward_query and incoming_query:
        for key, value in parse_qsl(incoming_query, keep_blank_values=True):
            override[key] = value
    if override:
        params = [(k, v) for k, v in params if k not in override] + list(override.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params, doseq=False), parts.fragment))
