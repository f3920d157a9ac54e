"""Test data for customer value: a small coffee shop's members and orders as Segment messages.

The messages go in through the real tracking ingestion (`POST /v1/batch`, or the runtime's ingestor
that the endpoint calls), the runtime's stitcher links them, a value run reads them back from the
event store. The shop is deterministic, so tests can say exactly what the models must find:

- loyal members `L00`… buy coffee beans with filter paper every 20 days since their first order;
- occasional members `O00`… buy drip bags every 60 days, with a mug every other time;
- one-time buyers `T00`… bought one mug, long ago;
- `BEANS-ONLY` bought beans twice and never filter paper (basket rules recommend it to them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)
PRODUCTS = {
    "B01": ("耶加雪菲咖啡豆", "咖啡豆", 88.0),
    "F01": ("V60 滤纸", "滤纸", 25.0),
    "D01": ("经典挂耳", "挂耳咖啡", 49.0),
    "G03": ("马克杯", "器具", 59.0),
}
LOYAL_EVERY = 20


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def identify(member: str, days_ago: float, name: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "userId": member,
        "traits": {"name": name},
        "timestamp": at(days_ago),
    }
    if context:
        message["context"] = context
    return message


def order(member: str, number: int, days_ago: float, products: list[str]) -> dict[str, Any]:
    items = [
        {"product_id": p, "name": PRODUCTS[p][0], "category": PRODUCTS[p][1], "price": PRODUCTS[p][2], "quantity": 1}
        for p in products
    ]
    return {
        "type": "track",
        "userId": member,
        "event": "Order Completed",
        "properties": {"order_id": f"{member}-{number}", "products": items, "currency": "CNY"},
        "timestamp": at(days_ago),
    }


def loyal_days(i: int) -> list[int]:
    """Days ago of loyal member i's orders: every 20 days from their first, up to today."""
    return list(range(300 - 4 * i, -1, -LOYAL_EVERY))


def shop(loyal: int = 20, occasional: int = 20, one_time: int = 20) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i in range(loyal):
        member = f"L{i:02d}"
        messages.append(identify(member, 301 - 4 * i, f"忠诚{i}"))
        for n, days in enumerate(loyal_days(i)):
            messages.append(order(member, n, days, ["B01", "F01"]))
    for i in range(occasional):
        member = f"O{i:02d}"
        messages.append(identify(member, 241 - 3 * i, f"偶尔{i}"))
        for n, days in enumerate(range(240 - 3 * i, -1, -60)):
            messages.append(order(member, n, days, ["D01", "G03"] if n % 2 else ["D01"]))
    for i in range(one_time):
        member = f"T{i:02d}"
        messages.append(identify(member, 331 - i, f"一次{i}"))
        messages.append(order(member, 0, 330 - i, ["G03"]))
    messages.append(identify("BEANS-ONLY", 101, "只买豆子"))
    messages += [order("BEANS-ONLY", 0, 100, ["B01"]), order("BEANS-ONLY", 1, 50, ["B01"])]
    return messages


def chunks(messages: list[dict[str, Any]], size: int = 100):
    for i in range(0, len(messages), size):
        yield messages[i : i + size]
