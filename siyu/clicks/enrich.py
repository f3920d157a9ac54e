"""Turn a batch of raw clicks into an Arrow table in the event store's shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa

from siyu.clicks.record import RawClick
from siyu.events.store import CLICK_SCHEMA
from siyu.geo import default_lookup, store_ip
from siyu.useragent import is_bot, parse_user_agent

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# workspace_id -> (ip_mode, salt bytes)
PrivacyLookup = Callable[[int], tuple[str, bytes]]


@lru_cache(maxsize=8192)
def referrer_domain(referrer: str) -> str:
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _utm(query: str) -> dict[str, str]:
    if "utm_" not in query:
        return {}
    return {k: v[:200] for k, v in parse_qsl(query, keep_blank_values=False) if k in UTM_FIELDS}


def enrich(batch: Sequence[RawClick], privacy: PrivacyLookup) -> pa.Table:
    geo = default_lookup()
    columns: dict[str, list] = {name: [] for name in CLICK_SCHEMA.names}
    for c in batch:
        ua = parse_user_agent(c.user_agent)
        where = geo.lookup(c.ip)
        mode, salt = privacy(c.workspace_id)
        utm = _utm(c.query)
        row = {
            "click_id": uuid.uuid4().hex,
            "ts": datetime.fromtimestamp(c.ts, UTC).replace(tzinfo=None),
            "workspace_id": c.workspace_id,
            "link_id": c.link_id,
            "hostname": c.hostname,
            "slug": c.slug,
            "visitor_id": c.visitor_id,
            "new_visitor": c.new_visitor,
            "person_ref": c.person_ref,
            "ip": store_ip(c.ip, mode, salt),
            "user_agent": c.user_agent[:1000],
            "method": c.method,
            "referrer": c.referrer[:2000],
            "referrer_domain": referrer_domain(c.referrer[:2000]),
            "trigger": c.trigger,
            "outcome": c.outcome,
            "destination": c.destination,
            "variant": c.variant,
            "platform": c.platform,
            "browser": ua.browser,
            "browser_version": ua.browser_version,
            "os": ua.os,
            "os_version": ua.os_version,
            "device_type": ua.device_type,
            "device_brand": ua.device_brand,
            "device_model": ua.device_model,
            "is_bot": is_bot(c.user_agent, c.method),
            "country": where.country,
            "country_code": where.country_code,
            "province": where.province,
            "city": where.city,
            "isp": where.isp,
            "query": c.query[:2000],
            **{f: utm.get(f) for f in UTM_FIELDS},
        }
        for name, value in row.items():
            columns[name].append(value)
    return pa.table(columns, schema=CLICK_SCHEMA)
