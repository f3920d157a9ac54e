"""Orders with line items → Segment e-commerce tracks: 'Order Completed' (and 'Order Refunded' / 'Order Cancelled').

CSV has one row per line item; the rows of an order share its order_id and the order's own columns
(member, time, store, totals). A blank order column on a later row repeats the one above (exports
with merged cells look like that); a different value is an error on that row. JSONL has one order
per line, its line items in `items: [...]` (Segment's `product_id`/`name` are accepted for sku and
product_name there).

`status` says what became of the order, because CRM and ERP exports carry it and revenue figures
are wrong without it: completed (default) → 'Order Completed'; refunded → 'Order Completed' and
'Order Refunded' (it was bought, then returned: both facts matter for repurchase and value);
cancelled → 'Order Cancelled' only (never paid). `status_at` is when that happened (default: the
order time). An order's id is its order_id: importing it again changes nothing, and a later export
where it is refunded adds just the refund.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from siyu.imports import values
from siyu.imports.plan import Cells, Issues, Kind, Planned, compact, digest, track
from siyu.imports.reader import Record, as_cells

ORDER_COLUMNS = (
    "order_id",
    "member_id",
    "phone",
    "ordered_at",
    "store",
    "channel",
    "currency",
    "total",
    "discount",
    "status",
    "status_at",
)
ITEM_COLUMNS = ("sku", "product_name", "category", "quantity", "price")
ITEM_ALIASES = {"product_id": "sku", "name": "product_name"}  # Segment's names, in JSONL items
COLUMNS = ORDER_COLUMNS + ITEM_COLUMNS + ("items",)

STATUS_WORDS = {
    **dict.fromkeys(("completed", "complete", "paid", "已完成", "完成", "已支付", "已付款", "交易成功"), "completed"),
    **dict.fromkeys(("refunded", "refund", "returned", "已退款", "退款", "已退货", "退货"), "refunded"),
    **dict.fromkeys(("cancelled", "canceled", "已取消", "取消", "交易关闭"), "cancelled"),
}
_STATUS_REASON = "must be completed, refunded or cancelled (also 已完成/已退款/已取消)"


class OrderCells(Cells):
    """An order's own columns, merged from its CSV rows: a problem is reported on the row it came from."""

    def __init__(self, cells: dict[str, Any], rows: dict[str, int], row: int, issues: Issues):
        super().__init__(cells, row, issues)
        self.rows = rows

    def error(self, name: str, reason: str, code: str | None = None, params: dict | None = None) -> None:
        self.ok = False
        self.issues.error(self.rows.get(name, self.row), name, reason, code, params)


def _merge_rows(order_id: str, records: list[Record], issues: Issues) -> tuple[dict[str, Any], dict[str, int], bool]:
    merged: dict[str, Any] = {}
    origin: dict[str, int] = {}
    ok = True
    for record in records:
        for name in ORDER_COLUMNS:
            value = record.values.get(name, "")
            if value == "":
                continue
            if name not in merged:
                merged[name], origin[name] = value, record.row
            elif merged[name] != value:
                ok = False
                issues.error(
                    record.row,
                    name,
                    f"differs from row {origin[name]} of order {order_id} ('{merged[name]}' there)",
                    "import_order_mismatch",
                    {"row": origin[name], "order_id": order_id, "value": merged[name]},
                )
    return merged, origin, ok


def _item(cells: Cells) -> dict[str, Any] | None:
    if all(cells.raw(name) == "" for name in ITEM_COLUMNS):
        return None
    sku, name = cells.get("sku", values.ident), cells.get("product_name")
    item = compact(
        {
            "product_id": sku,
            "sku": sku,
            "name": name,
            "category": cells.get("category"),
            "price": cells.get("price", values.amount),
            "quantity": cells.get("quantity", lambda v: values.whole(v, 1)) or 1,
        }
    )
    if sku is None and name is None and cells.ok:
        cells.error("sku", "a line item needs a sku or a product_name", "import_item_product")
    return item if cells.ok else None


def _jsonl_items(record: Record, issues: Issues) -> tuple[list[dict[str, Any]], bool]:
    raw = record.values.get("items", "")
    if raw == "":
        return [], True
    if not isinstance(raw, list):
        issues.error(record.row, "items", "must be a list of line items", "import_items")
        return [], False
    items, ok = [], True
    for i, obj in enumerate(raw):
        if not isinstance(obj, dict):
            issues.error(record.row, f"items[{i}]", "must be a JSON object", "import_json_object")
            ok = False
            continue
        cells = {ITEM_ALIASES.get(k, k): v for k, v in as_cells(obj).items()}
        item_cells = Cells(cells, record.row, issues, f"items[{i}].")
        item = _item(item_cells)
        ok = ok and item_cells.ok
        if item is not None:
            items.append(item)
    return items, ok


def _order(
    order_id: str,
    head: Cells,
    items: list[dict[str, Any]],
    rows: list[int],
    now: datetime,
    items_ok: bool = True,
) -> list[Planned]:
    """The order's events; `items_ok` False when a line item was refused (then no total is worked out)."""
    member_id = head.get("member_id", values.identifier)
    phone = head.get("phone", values.phone)
    ordered_at = head.get("ordered_at", lambda v: values.moment(v, now), required=True)
    currency = head.get("currency", values.currency) or "CNY"
    total, discount = head.get("total", values.amount), head.get("discount", values.amount)
    status = head.get("status", lambda v: values.choice(v, STATUS_WORDS, _STATUS_REASON, "import_order_status"))
    status_at = head.get("status_at", lambda v: values.moment(v, now))
    store, channel = head.get("store"), head.get("channel")
    if member_id is None and phone is None and head.ok:
        head.error("member_id", "give member_id or phone: whose order is it?", "import_order_person")
    if total is None and head.ok and items_ok:
        if items and all("price" in item for item in items):
            total = round(sum(item["price"] * item["quantity"] for item in items) - (discount or 0), 2)
            if total < 0:
                head.error("discount", "is larger than the line items' sum", "import_order_discount")
        else:
            head.error("total", "is required when the line items have no price", "import_order_total")
    if not head.ok or ordered_at is None or total is None:  # (total is None only with a refused line item)
        return []
    properties = compact(
        {
            "order_id": order_id,
            "total": total,
            "revenue": total,
            "discount": discount,
            "currency": currency,
            "store": store,
            "channel": channel,
            "products": items or None,
        }
    )
    identifiers = compact({"phone": phone})
    content = digest({"p": properties, "at": ordered_at.isoformat(), "who": [member_id, phone], "s": status})
    status = status or "completed"
    out = []
    if status in ("completed", "refunded"):
        out.append(("Order Completed", ordered_at, properties))
    if status != "completed":
        event = "Order Refunded" if status == "refunded" else "Order Cancelled"
        out.append((event, status_at or ordered_at, properties))
    return [
        Planned(rows[0], order_id, track(event, at, props, member_id, identifiers), at, content, order_id, rows)
        for event, at, props in out
    ]


def build(records: list[Record], issues: Issues, now: datetime, fmt: str) -> list[Planned]:
    return _build_jsonl(records, issues, now) if fmt == "jsonl" else _build_grouped(records, issues, now)


def _build_grouped(records: list[Record], issues: Issues, now: datetime) -> list[Planned]:
    """CSV: rows grouped by order_id (they need not be adjacent)."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        order_id = Cells(record.values, record.row, issues).get("order_id", values.identifier, required=True)
        if order_id is not None:
            groups.setdefault(order_id, []).append(record)
    planned: list[Planned] = []
    for order_id, group in groups.items():
        merged, origin, consistent = _merge_rows(order_id, group, issues)
        items: list[dict[str, Any]] = []
        for record in group:
            cells = Cells(record.values, record.row, issues)
            item = _item(cells)
            consistent = consistent and cells.ok
            if item is not None:
                items.append(item)
        head = OrderCells(merged, origin, group[0].row, issues)
        events = _order(order_id, head, items, [r.row for r in group], now, consistent)
        if consistent:
            planned.extend(events)
    return planned


def _build_jsonl(records: list[Record], issues: Issues, now: datetime) -> list[Planned]:
    planned: list[Planned] = []
    for record in records:
        head = Cells(record.values, record.row, issues)
        order_id = head.get("order_id", values.identifier, required=True)
        items, items_ok = _jsonl_items(record, issues)
        if order_id is None:
            continue
        events = _order(order_id, head, items, [record.row], now, items_ok)
        if items_ok:
            planned.extend(events)
    return planned


SPEC = Kind(
    name="orders",
    source_kind="crm",
    default_source="CRM 导入",
    columns=COLUMNS,
    required=("order_id", "ordered_at"),
    build=build,
    key_column="order_id",
)
