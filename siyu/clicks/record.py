"""The raw click the redirect records: a plain tuple, cheap to build in the hot path.

`RawClick` names the fields; the redirect itself queues plain tuples in this order (see
`siyu.redirect.app`), because a plain tuple of atoms leaves the cyclic GC's bookkeeping at its
first collection and a namedtuple never does. Everything downstream accepts either. Everything
expensive (user-agent parsing, geo, IP privacy, referrer parsing) happens later, on whole batches.
"""

from __future__ import annotations

from typing import NamedTuple


class RawClick(NamedTuple):
    ts: float  # epoch seconds, UTC
    link_id: int
    workspace_id: int
    hostname: str
    slug: str
    visitor_id: str
    new_visitor: bool
    ip: str
    user_agent: str
    method: str
    referrer: str
    trigger: str  # "link" or "qr"
    outcome: str
    query: str
    destination: str
    variant: int | None
    platform: str
    person_ref: str | None
