"""The DuckDB SQL that builds the models' inputs, against the real `events` schema and the
`event_persons` contract (workspace_id, event_id = message_id, kind, super_id, ts), in a
temporary DuckDB file.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pyarrow as pa
import pytest

from siyu.errors import InvalidInput
from siyu.events.event_sql import CREATE_EVENTS
from siyu.value import inputs
from siyu.value.rfm import rfm
from siyu.value.transactions import Transactions

ORDER = "Order Completed"
# message_id, workspace, event name, UTC time, properties, super_id (None: anonymous, "-": not stitched)
EVENTS = [
    ("m1", 1, ORDER, "2026-01-01 02:00", {"order_id": "A", "revenue": 120.5,
        "products": [{"product_id": "p1", "name": "Shampoo", "category": "hair", "price": 60.25, "quantity": 2}]}, 100),
    ("m2", 1, ORDER, "2026-01-01 02:05", {"order_id": "A", "revenue": 120.5}, 100),  # the server reports A again
    ("m3", 1, ORDER, "2026-01-01 17:30", {"order_id": "B", "total": 80,
        "products": [{"sku": "s9", "name": "Tea", "price": 40, "quantity": 2}]}, 100),  # 01:30 on Jan 2 in Beijing
    ("m4", 1, ORDER, "2026-01-05 00:00", {"order_id": "C",
        "products": [{"product_id": "p1", "price": 10, "quantity": 3}, {"product_id": "p2", "price": 5}]}, 200),
    ("m5", 1, ORDER, "2026-01-05 00:00", {"order_id": "D", "revenue": 999}, None),  # anonymous
    ("m6", 2, ORDER, "2026-01-05 00:00", {"order_id": "E", "revenue": 999}, 300),  # another workspace
    ("m7", 1, "Product Viewed", "2026-01-06 00:00", {"product_id": "p2"}, 200),
    ("m8", 1, ORDER, "2026-01-07 00:00", {"order_id": "F", "revenue": -10}, 200),  # negative: left out
    ("m9", 1, ORDER, "2026-01-10 00:00", {"revenue": "abc"}, 100),  # no order_id, unreadable revenue
    ("m10", 1, ORDER, "2026-01-11 00:00", {"order_id": "H", "revenue": 50}, "-"),  # not stitched yet
]  # fmt: skip


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "events.duckdb"))
    con.execute(CREATE_EVENTS)
    con.execute(inputs.EVENT_PERSONS_CONTRACT)
    rows = pa.table(
        {
            "message_id": [e[0] for e in EVENTS],
            "workspace_id": pa.array([e[1] for e in EVENTS], pa.int32()),
            "event": [e[2] for e in EVENTS],
            "ts": pa.array([datetime.fromisoformat(e[3]) for e in EVENTS], pa.timestamp("us")),
            "properties": [orjson.dumps(e[4]).decode() for e in EVENTS],
        }
    )
    con.register("new_events", rows)
    con.execute(
        'INSERT INTO events (message_id, workspace_id, type, event, "timestamp", properties) '
        "SELECT message_id, workspace_id, 'track', event, ts, properties::JSON FROM new_events"
    )
    people = [e for e in EVENTS if e[5] != "-"]
    persons = pa.table(
        {
            "workspace_id": pa.array([e[1] for e in people] + [1], pa.int32()),
            "event_id": [e[0] for e in people] + ["c1"],
            "kind": ["event"] * len(people) + ["click"],
            "super_id": pa.array([e[5] for e in people] + [200], pa.int64()),
            "ts": pa.array([datetime.fromisoformat(e[3]) for e in people] + [datetime(2026, 1, 8)], pa.timestamp("us")),
        }
    )
    con.register("new_persons", persons)
    con.execute("INSERT INTO event_persons SELECT * FROM new_persons")
    yield con
    con.close()


def test_orders_once_each_with_revenue_fallbacks_in_local_time(con):
    table = inputs.orders(con, 1).to_pylist()
    assert [(r["super_id"], r["order_id"], r["revenue"]) for r in table] == [
        (100, "A", 120.5),  # reported twice, counted once
        (100, "B", 80.0),  # `total` when there is no `revenue`
        (100, "m9", 0.0),  # no order_id: the event is the order; unreadable revenue counts 0
        (200, "C", 35.0),  # Σ price × quantity (quantity 1 when missing)
    ]
    assert table[0]["ts"] == datetime(2026, 1, 1, 10, 0)  # the first report, 02:00 UTC = 10:00 in Beijing
    assert table[1]["ts"] == datetime(2026, 1, 2, 1, 30)
    utc = inputs.orders(con, 1, utc_offset_hours=0).to_pylist()
    assert utc[1]["ts"] == datetime(2026, 1, 1, 17, 30)


def test_start_and_end_are_local_and_inclusive(con):
    table = inputs.orders(con, 1, start="2026-01-02", end="2026-01-05 08:00")
    assert table["order_id"].to_pylist() == ["B", "C"]
    assert inputs.orders(con, 2)["order_id"].to_pylist() == ["E"]
    assert inputs.orders(con, 3).num_rows == 0


def test_line_items_unnest_products_with_fallbacks(con):
    rows = [
        (r["order_id"], r["product_id"], r["category"], r["price"], r["quantity"])
        for r in inputs.line_items(con, 1).to_pylist()
    ]
    assert rows == [
        ("A", "p1", "hair", 60.25, 2.0),
        ("B", "s9", "Tea", 40.0, 2.0),  # the SKU stands for the id, the name for the category
        ("C", "p1", "p1", 10.0, 3.0),
        ("C", "p2", "p2", 5.0, 1.0),
    ]


def test_person_features(con):
    table = inputs.person_features(con, 1, "2026-01-31").to_pylist()
    assert [r["super_id"] for r in table] == [100, 200]
    first, second = table
    assert (first["frequency"], first["monetary"], first["categories"], first["active_days"]) == (3, 200.5, 2, 3)
    assert first["recency_days"] == pytest.approx(21 - 8 / 24)  # m9 at 08:00 on Jan 10, local
    assert first["tenure_days"] == pytest.approx(30 - 10 / 24)
    # 200: order C, a product view, the refused negative order and a short-link click: four days
    assert (second["frequency"], second["average_order_value"], second["active_days"]) == (1, 35.0, 4)
    assert second["recency_days"] == pytest.approx(26 - 8 / 24)


def test_the_orders_feed_the_models(con):
    tx = Transactions.from_arrow(inputs.orders(con, 1))
    result = rfm(tx, "2026-01-31", window_days=90)
    assert result.person.tolist() == [100, 200]
    assert result.frequency.tolist() == [3, 1]


def test_bad_input_names_the_parameter(con):
    with pytest.raises(InvalidInput) as error:
        inputs.orders(con, 1, utc_offset_hours=20)
    assert error.value.errors[0].field == "utc_offset_hours"
    with pytest.raises(InvalidInput) as error:
        inputs.orders(con, 1, start="soon")
    assert error.value.errors[0].field == "start"
    with pytest.raises(InvalidInput) as error:
        Transactions.from_arrow(inputs.orders(con, 1), amount="total")
    assert error.value.errors[0].field == "total"
