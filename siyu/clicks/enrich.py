"""Turn a batch of raw clicks into an Arrow table in the event store's shape.

It runs in the enricher child process under `siyu serve` (see `siyu.clicks.enricher`), and in the
writer thread of the serving process otherwise (tests, CLI, or while the child restarts), where it
holds the GIL and every microsecond is taken from the redirect's event loop. It is columnar: the batch is
transposed once (``zip(*batch)``), the costly derivations (user-agent parsing, geo, IP privacy,
referrer and UTM parsing) run once per *distinct* value in the batch — traffic repeats the same
few hundred user agents, IPs and query strings — and click ids and timestamps are built in bulk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from siyu.clicks.record import RawClick
from siyu.events.store import CLICK_SCHEMA
from siyu.geo import default_lookup, store_ip
from siyu.useragent import MAX_UA_LENGTH, is_bot, parse_user_agent

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# workspace_id -> (ip_mode, salt bytes)
PrivacyLookup = Callable[[int], tuple[str, bytes]]

# RFC 4122 version-4 bits, applied to random bytes with bytes.translate (what uuid.uuid4() does).
_UUID_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_UUID_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
# Arrow scalars made once: a Python number passed to a compute function is converted on every call,
# and without pandas installed that conversion retries `import pandas` (a sys.path search) each time.
_MICROS_F = pa.scalar(1e6, pa.float64())
_MICROS_I = pa.scalar(1_000_000, pa.int64())


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


def click_ids(n: int) -> list[str]:
    """n random UUID4 hex strings (same format as ``uuid.uuid4().hex``) from one urandom call."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = raw[6::16].translate(_UUID_VERSION)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    text = raw.hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def timestamps(epoch_seconds: Sequence[float]) -> pa.Array:
    """Epoch seconds -> naive-UTC microsecond timestamps, rounded exactly like
    ``datetime.fromtimestamp(ts, UTC)`` (fraction to microseconds, half to even), but vectorised."""
    f = pa.array(epoch_seconds, pa.float64())
    whole = pc.floor(f)
    micros = pc.round(pc.multiply(pc.subtract(f, whole), _MICROS_F), round_mode="half_to_even")
    total = pc.add(pc.multiply(pc.cast(whole, pa.int64()), _MICROS_I), pc.cast(micros, pa.int64()))
    return total.cast(pa.timestamp("us"))


def _grouped(keys: Sequence[str], derive: Callable[[str], tuple], types: Sequence[pa.DataType]) -> list[pa.Array]:
    """Columns derived from string ``keys``: ``derive`` runs once per distinct key; finding the
    distinct keys and gathering the rows happens in Arrow (C++), not in a Python dict per click."""
    encoded = pc.dictionary_encode(pa.array(keys, pa.string()))
    rows = [derive(k) for k in encoded.dictionary.to_pylist()]
    if not rows:
        return [pa.nulls(len(keys), t) for t in types]
    return [pc.take(pa.array(col, t), encoded.indices) for col, t in zip(zip(*rows, strict=True), types, strict=True)]


def _grouped_pairs(
    keys: Iterable[Hashable], derive: Callable[[Any], tuple], types: Sequence[pa.DataType]
) -> list[pa.Array]:
    """`_grouped` for composite keys (a Python dict finds the distinct ones)."""
    keys = list(keys)
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    indices = pa.array(list(map(ids.__getitem__, keys)), pa.int32())
    rows = [derive(k) for k in ids]  # dicts keep insertion order: row i belongs to id i
    return [pc.take(pa.array(col, t), indices) for col, t in zip(zip(*rows, strict=True), types, strict=True)]


def _user_agent_row(ua: str) -> tuple:
    """`_user_agent_row_memo`, except for oversized junk headers (kept out of the memo)."""
    return _user_agent_row_memo(ua) if len(ua) <= MAX_UA_LENGTH else _user_agent_row_memo.__wrapped__(ua)


@lru_cache(maxsize=16384)
def _user_agent_row_memo(ua: str) -> tuple:
    """user_agent, browser, browser_version, os, os_version, device_type, device_brand, device_model,
    and whether the user agent is a bot's (a HEAD request is one whatever it says: see `enrich`).
    Memoised across batches: traffic repeats a few hundred user agents for hours."""
    info = parse_user_agent(ua)
    return (
        ua[:1000],
        info.browser,
        info.browser_version,
        info.os,
        info.os_version,
        info.device_type,
        info.device_brand,
        info.device_model,
        is_bot(ua, "GET"),
    )


def _ip_row_factory(privacy: PrivacyLookup) -> Callable[[tuple[str, int]], tuple]:
    geo = default_lookup()
    modes: dict[int, tuple[str, bytes]] = {}  # asked once per workspace per batch

    def row(key: tuple[str, int]) -> tuple:
        """ip (as stored under the workspace's privacy mode), country, country_code, province, city, isp."""
        ip, workspace_id = key
        where = geo.lookup(ip)  # the full address: geo first, privacy after
        if workspace_id not in modes:
            modes[workspace_id] = privacy(workspace_id)
        mode, salt = modes[workspace_id]
        return store_ip(ip, mode, salt), where.country, where.country_code, where.province, where.city, where.isp

    return row


def _referrer_row(referrer: str) -> tuple[str, str]:
    cut = referrer[:2000]
    return cut, referrer_domain(cut)


def _query_row(query: str) -> tuple[str | None, ...]:
    utm = _utm(query)
    return (query[:2000], *(utm.get(f) for f in UTM_FIELDS))


def _types(*names: str) -> list[pa.DataType]:
    return [CLICK_SCHEMA.field(n).type for n in names]


_UA_COLUMNS = (
    "user_agent",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device_type",
    "device_brand",
    "device_model",
    "is_bot",
)
_IP_COLUMNS = ("ip", "country", "country_code", "province", "city", "isp")
_REFERRER_COLUMNS = ("referrer", "referrer_domain")
_QUERY_COLUMNS = ("query", *UTM_FIELDS)
_AS_RECORDED = (
    "workspace_id",
    "link_id",
    "hostname",
    "slug",
    "visitor_id",
    "new_visitor",
    "person_ref",
    "method",
    "trigger",
    "outcome",
    "destination",
    "variant",
    "platform",
)


def enrich(batch: Sequence[RawClick], privacy: PrivacyLookup) -> pa.Table:
    if not batch:
        return CLICK_SCHEMA.empty_table()
    raw = dict(zip(RawClick._fields, zip(*batch, strict=True), strict=True))
    columns: dict[str, pa.Array] = {
        "click_id": pa.array(click_ids(len(batch)), pa.string()),
        "ts": timestamps(raw["ts"]),
    }
    ua_columns = _grouped(raw["user_agent"], _user_agent_row, _types(*_UA_COLUMNS))
    methods = pa.array(raw["method"], pa.string())
    ua_columns[-1] = pc.or_(ua_columns[-1], pc.equal(pc.utf8_upper(methods), "HEAD"))  # is_bot(ua, method)
    columns.update(zip(_UA_COLUMNS, ua_columns, strict=True))
    ip_row = _ip_row_factory(privacy)
    workspaces = set(raw["workspace_id"])
    if len(workspaces) == 1:  # the usual batch: one workspace, so the IP alone is the key
        (workspace_id,) = workspaces
        ip_columns = _grouped(raw["ip"], lambda ip: ip_row((ip, workspace_id)), _types(*_IP_COLUMNS))
    else:
        ip_keys = zip(raw["ip"], raw["workspace_id"], strict=True)
        ip_columns = _grouped_pairs(ip_keys, ip_row, _types(*_IP_COLUMNS))
    columns.update(zip(_IP_COLUMNS, ip_columns, strict=True))
    columns.update(
        zip(_REFERRER_COLUMNS, _grouped(raw["referrer"], _referrer_row, _types(*_REFERRER_COLUMNS)), strict=True)
    )
    columns.update(zip(_QUERY_COLUMNS, _grouped(raw["query"], _query_row, _types(*_QUERY_COLUMNS)), strict=True))
    for name in _AS_RECORDED:
        columns[name] = pa.array(raw[name], CLICK_SCHEMA.field(name).type)
    return pa.Table.from_arrays([columns[name] for name in CLICK_SCHEMA.names], schema=CLICK_SCHEMA)
