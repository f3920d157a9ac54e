"""DuckDB SQL that builds the models' inputs from the event store.

Orders are Segment `Order Completed` tracks in `events` (properties `order_id`, `revenue` or
`total`, `products [{product_id | sku, name, category, price, quantity}]`); `event_persons`
(workspace_id, event_id = events.message_id, kind 'event' | 'click', super_id, ts) says whose each
event is. Anonymous orders (no super_id yet) are left out until identity resolution claims them.

Rules, each visible in the SQL below:
- an order is counted once per `order_id` (a client and a server both reporting it, a retried
  send): the first report wins; without an `order_id` the event itself is the order;
- revenue is `revenue`, else `total`, else Σ price × quantity of the products, else 0 (the order
  still counts for frequency); negative amounts are left out (refunds are `Order Refunded`);
- times are shifted from UTC to the brand's local time (`utc_offset_hours`, China: +8, no DST),
  so "days" and "weeks" start at local midnight; `start` and `end` (both inclusive) are local times too.

Every function takes a connection or cursor on the store (the Runtime's process owns writes;
these only read) and returns an Arrow table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from siyu.value.checks import in_range
from siyu.value.transactions import to_datetime64

ORDER_EVENT = "Order Completed"
# The contract this SQL reads (the identity stitcher owns and fills the real table); tests and
# the benchmark create it with this statement to stand in for it.
EVENT_PERSONS_CONTRACT = (
    "CREATE TABLE IF NOT EXISTS event_persons "
    "(workspace_id INTEGER, event_id VARCHAR, kind VARCHAR, super_id BIGINT, ts TIMESTAMP)"
)
_PRODUCT_SHAPE = (
    '[{"product_id": "VARCHAR", "sku": "VARCHAR", "name": "VARCHAR", "category": "VARCHAR", '
    '"price": "DOUBLE", "quantity": "DOUBLE"}]'
)

_PRODUCTS = f"json_transform(e.properties->'$.products', '{_PRODUCT_SHAPE}')"


def _orders_cte(products: bool) -> str:
    """One row per order: who, when (local), revenue — and the parsed products when asked for.

    Carrying the products through the de-duplication costs about as much as the rest of the
    query (measured on 2.2 M orders), so `orders()` does without; coalesce() only parses them
    for orders that have neither revenue nor total.
    """
    carry = f"{_PRODUCTS} AS products," if products else ""
    keep = ", arg_min(products, ts) AS products" if products else ""
    return f"""
WITH reported AS (
    SELECT ep.super_id,
           coalesce(e.properties->>'$.order_id', e.message_id) AS order_id,
           e."timestamp" + to_minutes(CAST($offset_minutes AS BIGINT)) AS ts,
           {carry}
           coalesce(
               TRY_CAST(e.properties->>'$.revenue' AS DOUBLE),
               TRY_CAST(e.properties->>'$.total' AS DOUBLE),
               list_sum(list_transform({_PRODUCTS}, lambda p: p.price * coalesce(p.quantity, 1)))
           ) AS revenue
    FROM events e
    JOIN event_persons ep
      ON ep.workspace_id = e.workspace_id AND ep.event_id = e.message_id AND ep.kind = 'event'
    WHERE e.workspace_id = $workspace_id AND e.type = 'track' AND e.event = '{ORDER_EVENT}'
      AND ep.super_id IS NOT NULL
),
orders AS (
    SELECT order_id,
           arg_min(super_id, ts) AS super_id,
           min(ts) AS ts,
           arg_min(coalesce(revenue, 0.0), ts) AS revenue
           {keep}
    FROM reported
    WHERE ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts <= $end)
    GROUP BY order_id
)
"""


ORDERS_SQL = (
    _orders_cte(products=False)
    + """
SELECT super_id, order_id, ts, revenue FROM orders WHERE revenue >= 0 ORDER BY super_id, ts, order_id
"""
)

LINE_ITEMS_SQL = (
    _orders_cte(products=True)
    + """
SELECT super_id, order_id, ts,
       coalesce(item.product_id, item.sku, item.name) AS product_id,
       item.name AS name,
       coalesce(item.category, item.name, item.product_id, item.sku) AS category,
       item.price AS price,
       coalesce(item.quantity, 1.0) AS quantity
FROM (SELECT super_id, order_id, ts, unnest(products) AS item FROM orders WHERE revenue >= 0)
WHERE coalesce(item.product_id, item.sku, item.name) IS NOT NULL
ORDER BY super_id, ts, order_id
"""
)

# Per person, as of a date: the RFM numbers plus tenure, breadth of basket and other activity.
PERSON_FEATURES_SQL = (
    _orders_cte(products=True)
    + """,
valid AS (SELECT * FROM orders WHERE revenue >= 0),
per_person AS (
    SELECT super_id,
           date_diff('second', max(ts), $as_of) / 86400.0 AS recency_days,
           count(*) AS frequency,
           sum(revenue) AS monetary,
           avg(revenue) AS average_order_value,
           date_diff('second', min(ts), $as_of) / 86400.0 AS tenure_days
    FROM valid GROUP BY super_id
),
breadth AS (
    SELECT super_id, count(DISTINCT coalesce(item.category, item.name, item.product_id, item.sku)) AS categories
    FROM (SELECT super_id, unnest(products) AS item FROM valid) GROUP BY super_id
),
activity AS (
    SELECT ep.super_id,
           count(DISTINCT CAST(ep.ts + to_minutes(CAST($offset_minutes AS BIGINT)) AS DATE)) AS active_days
    FROM event_persons ep
    WHERE ep.workspace_id = $workspace_id AND ep.super_id IS NOT NULL
      AND ep.ts + to_minutes(CAST($offset_minutes AS BIGINT)) <= $as_of
      AND ($start IS NULL OR ep.ts + to_minutes(CAST($offset_minutes AS BIGINT)) >= $start)
    GROUP BY ep.super_id
)
SELECT p.super_id, p.recency_days, p.frequency, p.monetary, p.average_order_value, p.tenure_days,
       coalesce(b.categories, 0) AS categories, coalesce(a.active_days, 0) AS active_days
FROM per_person p
LEFT JOIN breadth b USING (super_id)
LEFT JOIN activity a USING (super_id)
ORDER BY p.super_id
"""
)


def _params(workspace_id: int, start: Any, end: Any, utc_offset_hours: float) -> dict[str, Any]:
    in_range(utc_offset_hours, "utc_offset_hours", -14, 14)
    return {
        "workspace_id": int(workspace_id),
        "offset_minutes": round(utc_offset_hours * 60),
        "start": None if start is None else _local(start, "start"),
        "end": None if end is None else _local(end, "end"),
    }


def _local(value: Any, field: str) -> datetime:
    return to_datetime64(value, field).astype(datetime)


def orders(
    con: duckdb.DuckDBPyConnection,
    workspace_id: int,
    *,
    start: Any = None,
    end: Any = None,
    utc_offset_hours: float = 8.0,
) -> pa.Table:
    """super_id, order_id, ts (local), revenue: one row per order from `start` to `end` (inclusive).

    `Transactions.from_arrow(orders(...))` is the input of RFM, CLV and repurchase cycles.
    """
    return con.sql(ORDERS_SQL, params=_params(workspace_id, start, end, utc_offset_hours)).to_arrow_table()


def line_items(
    con: duckdb.DuckDBPyConnection,
    workspace_id: int,
    *,
    start: Any = None,
    end: Any = None,
    utc_offset_hours: float = 8.0,
) -> pa.Table:
    """super_id, order_id, ts, product_id, name, category, price, quantity — for basket and repurchase.

    `product_id` falls back to the SKU, then the name; `category` to the name, so a product
    without a category is its own category for repurchase cycles.
    """
    return con.sql(LINE_ITEMS_SQL, params=_params(workspace_id, start, end, utc_offset_hours)).to_arrow_table()


def person_features(
    con: duckdb.DuckDBPyConnection,
    workspace_id: int,
    as_of: Any,
    *,
    start: Any = None,
    utc_offset_hours: float = 8.0,
) -> pa.Table:
    """Per buyer up to `as_of` (from `start`): recency_days, frequency, monetary, average_order_value,
    tenure_days, categories (distinct) and active_days (local days with any event or click).

    The features for clusters and lookalike, named as `siyu.value.clusters.FEATURE_WORDS` knows them.
    """
    params = _params(workspace_id, start, None, utc_offset_hours)
    params["end"] = params["as_of"] = _local(as_of, "as_of")
    return con.sql(PERSON_FEATURES_SQL, params=params).to_arrow_table()
