"""Feature matrices for the models that learn from per-person features (clusters, lookalike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from siyu.value.checks import invalid


def feature_matrix(features: Any, names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows × features as floats, with names: from an Arrow table (its columns) or an array."""
    if isinstance(features, pa.Table):
        names = tuple(features.column_names) if names is None else tuple(names)
        for n in names:
            if n not in features.column_names:
                raise invalid("names", f"no column {n!r} in the feature table")
            if features[n].null_count:
                raise invalid("features", f"column {n!r} has missing values")
        x = np.column_stack([features[n].to_numpy().astype(float) for n in names]) if names else np.empty((0, 0))
    else:
        x = np.asarray(features, dtype=float)
        if x.ndim != 2:
            raise invalid("features", "must be a table or a two-dimensional array (rows × features)")
        names = tuple(names) if names is not None else tuple(f"feature_{i}" for i in range(x.shape[1]))
        if len(names) != x.shape[1]:
            raise invalid("names", f"must name each of the {x.shape[1]} features")
    if x.shape[1] == 0:
        raise invalid("features", "needs at least one feature")
    if not np.isfinite(x).all():
        raise invalid("features", "must be finite numbers (no NaN or infinity)")
    return x, names
