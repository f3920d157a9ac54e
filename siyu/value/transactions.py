"""The order input every value model starts from: person, time and amount per order.

`Transactions` is validated once here (same lengths, no missing values, amounts ≥ 0, real
timestamps) so the models can trust it. Times are naive `datetime64[us]` in the brand's local time
(see `siyu.value.inputs`: days are counted from local midnight, not UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from siyu.value.checks import as_array, invalid, non_negative, same_length

DAY = np.timedelta64(86_400_000_000, "us")


def to_datetime64(value: Any, field: str) -> np.datetime64:
    """A point in time as `datetime64[us]` from a datetime, date, ISO string or datetime64."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        raise invalid(field, "must be a naive local time (convert it to the workspace's local time first)")
    if isinstance(value, datetime | date | str | np.datetime64):
        try:
            out = np.datetime64(value, "us")
        except ValueError as exc:
            raise invalid(field, f"is not a date or time: {value!r}") from exc
        if not np.isnat(out):
            return out
    raise invalid(field, f"must be a date or time (got {value!r})")


def days(delta: np.ndarray | np.timedelta64) -> np.ndarray:
    """Timedeltas as float days."""
    return np.asarray(delta / DAY, dtype=float)


def _times(values: Any, field: str) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array) and pa.types.is_timestamp(values.type):
        if values.type.tz is not None:
            raise invalid(field, "must be naive local times, not time-zone aware")
        values = values.cast(pa.timestamp("us"))
    out = as_array(values, field)
    if out.dtype.kind != "M":
        try:
            out = out.astype("datetime64[us]")
        except (TypeError, ValueError) as exc:
            raise invalid(field, "must be timestamps") from exc
    out = out.astype("datetime64[us]")
    if np.isnat(out).any():
        raise invalid(field, "has missing timestamps")
    return out


@dataclass(frozen=True)
class Transactions:
    """One row per order. `person` is the super ID (int64), `amount` the order's revenue (≥ 0)."""

    person: np.ndarray
    when: np.ndarray
    amount: np.ndarray

    @classmethod
    def of(cls, person: Any, when: Any, amount: Any) -> Transactions:
        p = as_array(person, "person")
        if p.size and p.dtype.kind not in "iu":
            raise invalid("person", "must be integer person ids (super_id)")
        p = p.astype(np.int64, copy=False)
        t = _times(when, "when")
        a = non_negative(as_array(amount, "amount", float), "amount")
        same_length(person=p, when=t, amount=a)
        return cls(p, t, a)

    @classmethod
    def from_arrow(cls, table: pa.Table, person: str = "super_id", when: str = "ts", amount: str = "revenue"):
        """From an Arrow table such as `siyu.value.inputs.orders()` returns."""
        for field in (person, when, amount):
            if field not in table.column_names:
                raise invalid(field, f"no column {field!r} in the input table")
        return cls.of(table[person], table[when], table[amount])

    def __len__(self) -> int:
        return len(self.person)

    def until(self, end: np.datetime64, start: np.datetime64 | None = None) -> Transactions:
        """The orders in (start, end]: the model's observation window."""
        keep = self.when <= end
        if start is not None:
            keep &= self.when > start
        if keep.all():
            return self
        return Transactions(self.person[keep], self.when[keep], self.amount[keep])
