"""Repurchase cycles (复购周期): how often each person rebuys (per product category), and who is due.

A person's interval is the median gap between their distinct purchase days (the median, so one
long holiday break does not move it), once they have at least `min_purchases` purchase days. With
fewer, the category's typical interval stands in — the median over people of each person's median
gap — so a one-time buyer of a 30-day product still comes up as due after about 30 days.

As of a date, someone is "due" (待复购) when the next expected date is within `tolerance_days`
either side, "overdue" (已逾期) past that, "not yet" (未到期) before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from siyu.value.checks import as_array, in_range, invalid, not_empty
from siyu.value.groups import factorize, group_median
from siyu.value.rfm import Label
from siyu.value.transactions import DAY, to_datetime64

STATUSES = (
    Label("not_yet", "未到期", "Not yet"),
    Label("due", "待复购", "Due"),
    Label("overdue", "已逾期", "Overdue"),
    Label("unknown", "周期未知", "Unknown"),
)
SOURCES = (Label("person", "个人周期", "Own interval"), Label("category", "品类周期", "Category interval"))
NOT_YET, DUE, OVERDUE, UNKNOWN = range(4)


@dataclass(frozen=True)
class Cycles:
    """One row per (person, category) with a purchase up to `as_of` (category is None overall)."""

    person: np.ndarray
    category: np.ndarray | None
    purchases: np.ndarray  # distinct purchase days
    last_purchase: np.ndarray  # datetime64[D]
    interval_days: np.ndarray  # NaN when unknown
    interval_source: np.ndarray  # index into SOURCES, -1 when unknown
    next_expected: np.ndarray  # datetime64[D], NaT when unknown
    status: np.ndarray  # index into STATUSES
    categories: pa.Table | None = None  # per category: typical interval_days and the people behind it

    @property
    def due(self) -> np.ndarray:
        return self.status == DUE

    def to_arrow(self) -> pa.Table:
        columns: dict[str, Any] = {"person": self.person}
        if self.category is not None:
            columns["category"] = pa.array(self.category, pa.string())
        columns |= {
            "purchases": self.purchases,
            "last_purchase": self.last_purchase,
            "interval_days": pa.array(self.interval_days, from_pandas=True),
            "interval_source": pa.array(
                np.array([s.code for s in SOURCES] + [None], dtype=object)[self.interval_source], pa.string()
            ),
            "next_expected": pa.array(self.next_expected, pa.date32(), mask=np.isnat(self.next_expected)),
            "status": pa.array(np.array([s.code for s in STATUSES], dtype=object)[self.status], pa.string()),
        }
        return pa.table(columns)


def repurchase_cycles(
    person: Any,
    when: Any,
    as_of: Any,
    category: Any = None,
    *,
    min_purchases: int = 3,
    tolerance_days: float = 7.0,
    category_fallback: bool = True,
) -> Cycles:
    """Repurchase interval, next expected date and status per person (and category if given).

    `person`, `when` (local times) and optionally `category` are parallel arrays: orders, or
    order line items when `category` is given (a product with no category can pass its name).
    """
    if not isinstance(min_purchases, int | np.integer) or min_purchases < 2:
        raise invalid("min_purchases", "must be a whole number of at least 2 (one gap needs two purchases)")
    in_range(tolerance_days, "tolerance_days", 0, 3650)
    end = to_datetime64(as_of, "as_of")
    p = as_array(person, "person")
    if p.size and p.dtype.kind not in "iu":
        raise invalid("person", "must be integer person ids (super_id)")
    t = as_array(when, "when").astype("datetime64[us]")
    if np.isnat(t).any():
        raise invalid("when", "has missing timestamps")
    if len(t) != len(p):
        raise invalid("when", "must have the same length as person")
    if category is not None:
        labels = category if isinstance(category, pa.Array | pa.ChunkedArray) else pa.array(category, pa.string())
        if labels.null_count:
            raise invalid("category", f"{labels.null_count} missing categories (pass the product name instead)")
        cat_codes, cat_values = factorize(labels, "category")
        if len(cat_codes) != len(p):
            raise invalid("category", "must have the same length as person")
    else:
        cat_codes, cat_values = np.zeros(len(p), dtype=np.int64), None
    not_empty(len(p), "person")
    keep = t <= end
    p, cat_codes = p[keep].astype(np.int64), cat_codes[keep]
    day = t[keep].view(np.int64) // (DAY // np.timedelta64(1, "us"))
    not_empty(len(p), "as_of")

    # distinct (person, category, day), sorted
    order = np.lexsort((day, cat_codes, p))
    p, c, d = p[order], cat_codes[order], day[order]
    fresh = np.r_[True, (p[1:] != p[:-1]) | (c[1:] != c[:-1]) | (d[1:] != d[:-1])]
    p, c, d = p[fresh], c[fresh], d[fresh]
    new_group = np.r_[True, (p[1:] != p[:-1]) | (c[1:] != c[:-1])]
    group = np.cumsum(new_group) - 1
    n_groups = int(group[-1]) + 1
    first = np.flatnonzero(new_group)
    last = np.r_[first[1:], len(d)] - 1
    purchases = np.diff(np.r_[first, len(d)])

    # gaps within each group, and their median per group
    same = ~new_group[1:]
    gaps = (d[1:] - d[:-1])[same].astype(float)
    gap_group = group[1:][same]
    own, _ = group_median(gap_group, gaps, n_groups)
    interval = np.where(purchases >= min_purchases, own, np.nan)
    source = np.where(np.isfinite(interval), 0, -1)

    # the category's typical interval: median over people (with at least one gap) of their own median
    group_cat = c[first]
    n_cats = len(cat_values) if cat_values is not None else 1
    has_gap = np.isfinite(own)
    typical, people = group_median(group_cat[has_gap], own[has_gap], n_cats)
    categories = None
    if cat_values is not None:
        categories = pa.table(
            {"category": pa.array(cat_values, pa.string()), "interval_days": typical, "people": people}
        )
    if category_fallback:
        use = ~np.isfinite(interval) & np.isfinite(typical[group_cat])
        interval = np.where(use, typical[group_cat], interval)
        source = np.where(use, 1, source)

    end_day = end.astype("datetime64[D]").astype(np.int64)
    last_day = d[last]
    known = np.isfinite(interval)
    next_day = np.where(known, last_day + np.round(np.nan_to_num(interval)), 0).astype(np.int64)
    status = np.full(n_groups, UNKNOWN, dtype=np.int8)
    status[known & (end_day < next_day - tolerance_days)] = NOT_YET
    status[known & (np.abs(end_day - next_day) <= tolerance_days)] = DUE
    status[known & (end_day > next_day + tolerance_days)] = OVERDUE
    next_expected = next_day.astype("datetime64[D]")
    next_expected[~known] = np.datetime64("NaT")
    return Cycles(
        person=p[first],
        category=None if cat_values is None else cat_values[c[first]],
        purchases=purchases,
        last_purchase=last_day.astype("datetime64[D]"),
        interval_days=interval,
        interval_source=source.astype(np.int8),
        next_expected=next_expected,
        status=status,
        categories=categories,
    )
