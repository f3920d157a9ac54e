"""Referral edges (推荐关系) from share-link clicks: sharer → the new person they brought in.

A share link's clicks are ordinary clicks: the stitcher gives each to whoever its visitor cookie
belongs to, as soon as that browser identifies itself (including the clicks made before). So a
person P was brought in by sharer S when P's **first touch** — the earliest event or click the
stitcher filed under P — is a click on one of S's share links:

    clicks on share links  ×  event_persons (the click's person, once known)
                           ×  first-touch time per person (min ts over all of P's events and clicks)

A person who was already known before the click (an earlier order, a visit on another device that
merged into them) was not brought in; someone clicking their own link is not a referral either. One
edge per referred person, so the edges form the fission trees (裂变树) directly. Bots are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa

FIRST_TOUCH_SQL = """
WITH touches AS (
    SELECT ep.super_id AS referred, c.link_id, c.ts
    FROM clicks c
    JOIN event_persons ep ON ep.workspace_id = c.workspace_id AND ep.kind = 'click' AND ep.event_id = c.click_id
    WHERE c.workspace_id = $workspace_id AND NOT c.is_bot AND ep.super_id IS NOT NULL
      AND list_contains($links, c.link_id) AND c.ts <= $until
),
first_share AS (
    SELECT referred, arg_min(link_id, ts) AS link_id, min(ts) AS ts FROM touches GROUP BY referred
),
first_seen AS (
    SELECT ep.super_id, min(ep.ts) AS ts
    FROM event_persons ep JOIN first_share s ON s.referred = ep.super_id
    WHERE ep.workspace_id = $workspace_id
    GROUP BY ep.super_id
)
SELECT s.referred, s.link_id, s.ts
FROM first_share s JOIN first_seen f ON f.super_id = s.referred
WHERE s.ts <= f.ts
ORDER BY s.ts, s.referred
"""

EDGE_SCHEMA = pa.schema(
    [("referrer", pa.int64()), ("referred", pa.int64()), ("link_id", pa.int64()), ("ts", pa.timestamp("us"))]
)


def edges(con: duckdb.DuckDBPyConnection, workspace_id: int, owners: Mapping[int, int], until) -> pa.Table:
    """referrer, referred, link_id, ts (UTC) per referred person, in time order.

    `owners` maps share-link ids to their owner's current super ID (siyu.value.share.owners); `until`
    (naive UTC) ignores later clicks, so a run is reproducible for its as-of time.
    """
    if not owners:
        return EDGE_SCHEMA.empty_table()
    found = con.sql(
        FIRST_TOUCH_SQL, params={"workspace_id": int(workspace_id), "links": sorted(owners), "until": until}
    ).to_arrow_table()
    if found.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    link_ids = found["link_id"].to_numpy()
    referrer = np.array([owners[int(i)] for i in link_ids], dtype=np.int64)
    referred = found["referred"].to_numpy().astype(np.int64)
    keep = referrer != referred
    return pa.table(
        {
            "referrer": referrer[keep],
            "referred": referred[keep],
            "link_id": link_ids[keep].astype(np.int64),
            "ts": found["ts"].cast(pa.timestamp("us")).filter(pa.array(keep)),
        },
        schema=EDGE_SCHEMA,
    )
