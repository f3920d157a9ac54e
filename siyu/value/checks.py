"""Input checks shared by the models: each failure is an `InvalidInput` naming the parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from siyu.errors import InvalidInput


def invalid(field: str, reason: str) -> InvalidInput:
    return InvalidInput(field, reason)


def as_array(values: Any, field: str, dtype: Any | None = None) -> np.ndarray:
    """A 1-d numpy array from a list, numpy array, Arrow array or chunked array (no nulls allowed)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if values.null_count:
            raise invalid(field, f"{values.null_count} missing values")
        values = values.to_numpy(zero_copy_only=False)
    try:
        out = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise invalid(field, f"cannot be read as {np.dtype(dtype).name if dtype else 'an array'}") from exc
    if out.ndim != 1:
        raise invalid(field, "must be one-dimensional")
    return out


def finite(values: np.ndarray, field: str) -> np.ndarray:
    if values.size and not np.isfinite(values).all():
        raise invalid(field, "must be finite numbers (no NaN or infinity)")
    return values


def non_negative(values: np.ndarray, field: str) -> np.ndarray:
    finite(values, field)
    if values.size and values.min() < 0:
        raise invalid(field, f"must not be negative (found {values.min():g})")
    return values


def same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        name = next(n for n, length in lengths.items() if length != next(iter(lengths.values())))
        raise invalid(name, "must have the same length as " + ", ".join(n for n in lengths if n != name))
    return next(iter(lengths.values()), 0)


def not_empty(n: int, field: str) -> None:
    if n == 0:
        raise invalid(field, "is empty: there is nothing to compute")


def positive(value: float, field: str) -> float:
    if not isinstance(value, int | float | np.integer | np.floating) or not np.isfinite(value) or value <= 0:
        raise invalid(field, f"must be a positive number (got {value!r})")
    return value


def in_range(value: float, field: str, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and np.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        raise invalid(field, f"must be between {low:g} and {high:g} (got {value!r})")
    return value


def weights(values: Sequence[float], field: str, count: int | None = None) -> np.ndarray:
    """Non-negative weights with a positive sum, normalised to sum to 1."""
    w = np.asarray(values, dtype=float)
    if w.ndim != 1 or (count is not None and len(w) != count):
        raise invalid(field, f"must be {count} numbers" if count else "must be a list of numbers")
    if not np.isfinite(w).all() or (w < 0).any():
        raise invalid(field, "must be non-negative numbers")
    if w.sum() <= 0:
        raise invalid(field, "must sum to a positive number")
    return w / w.sum()


def choice(value: str, field: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise invalid(field, f"must be one of {', '.join(allowed)} (got {value!r})")
    return value
