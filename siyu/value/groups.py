"""Vectorised group-by helpers on sorted numpy arrays (no pandas, no Python loop over rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.value.checks import invalid


def factorize(values: Any, field: str = "values") -> tuple[np.ndarray, np.ndarray]:
    """Dense int64 codes and the unique values (sorted), for ints, strings, Arrow or numpy input.

    Arrow's hash-based dictionary encoding is used for strings: `np.unique` on millions of Python
    strings is an order of magnitude slower.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if values.null_count:
            raise invalid(field, f"{values.null_count} missing values")
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = values.to_numpy(zero_copy_only=False)
    if not isinstance(values, pa.Array):
        values = np.asarray(values)
        if values.dtype.kind in "iufMmb":
            uniques, codes = np.unique(values, return_inverse=True)
            return codes.astype(np.int64, copy=False), uniques
        try:
            values = pa.array(values.astype(object), pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise invalid(field, "must be all numbers or all text") from exc
        if values.null_count:
            raise invalid(field, f"{values.null_count} missing values")
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary.to_numpy(zero_copy_only=False)
    raw = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(dictionary, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[raw], dictionary[order]


def sort_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Row order by (major, minor) integer keys.

    One stable argsort of a combined int64 key when the value ranges allow it: on 7 M orders it
    took 0.5 s where `np.lexsort` took 5.7 s.
    """
    if len(major) == 0:
        return np.empty(0, dtype=np.int64)
    major_low, minor_low = int(major.min()), int(minor.min())
    span = int(minor.max()) - minor_low + 1
    if (int(major.max()) - major_low + 1) * span < 2**62:
        return np.argsort((major - major_low) * span + (minor - minor_low), kind="stable")
    return np.lexsort((minor, major))


def starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first row of each run of equal keys in a sorted array."""
    if len(sorted_keys) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def group_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of `values` per group code in [0, n_groups) and the count; NaN where a group is empty."""
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    median = np.full(n_groups, np.nan)
    has = counts > 0
    lo = offsets[has] + (counts[has] - 1) // 2
    hi = offsets[has] + counts[has] // 2
    median[has] = (v[lo] + v[hi]) / 2.0
    del g
    return median, counts
