"""Model tags (模型标签) from the CLV predictions: churn risk, predicted value, purchase intent.

Operators segment on words, not probabilities: these functions turn P(alive), expected purchases
and CLV into a few tag values with thresholds the operator sets. Values are indexes into the
tag's `values` labels (code for storage, zh-CN and English names for people).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from siyu.value.checks import choice, invalid, positive
from siyu.value.clv import Predictions
from siyu.value.rfm import Label

LEVELS = (Label("high", "高", "High"), Label("medium", "中", "Medium"), Label("low", "低", "Low"))


@dataclass(frozen=True)
class Tag:
    code: str
    zh: str
    en: str
    values: tuple[Label, ...]


CHURN_RISK = Tag("churn_risk", "流失风险", "Churn risk", LEVELS)
PREDICTED_VALUE = Tag("predicted_value", "预测价值", "Predicted value", LEVELS)
PURCHASE_INTENT = Tag(
    "purchase_intent",
    "近期购买意向",
    "Purchase intent",
    (Label("likely", "可能复购", "Likely to buy"), Label("unlikely", "暂无复购迹象", "Unlikely to buy")),
)


def _two_cuts(cuts: Sequence[float], field: str, low: float, high: float) -> tuple[float, float]:
    c = np.asarray(cuts, dtype=float)
    if c.shape != (2,) or not np.isfinite(c).all() or c.min() < low or c.max() > high or c[0] >= c[1]:
        raise invalid(field, f"must be two increasing numbers between {low:g} and {high:g}")
    return float(c[0]), float(c[1])


def churn_risk(p_alive: np.ndarray, cuts: Sequence[float] = (0.3, 0.7)) -> np.ndarray:
    """高 (high) below the first cut of P(alive), 中 (medium) below the second, 低 (low) otherwise."""
    low, high = _two_cuts(cuts, "cuts", 0.0, 1.0)
    p = np.asarray(p_alive, dtype=float)
    return np.where(p < low, 0, np.where(p < high, 1, 2)).astype(np.int8)


def predicted_value(clv: np.ndarray, method: str = "quantile", cuts: Sequence[float] = (0.5, 0.8)) -> np.ndarray:
    """高/中/低 predicted value.

    "quantile": cuts are shares of people (default: the top 20 % high, the next 30 % medium, the
    bottom half low); "amount": cuts are CLV amounts in yuan (medium from the first, high from the
    second).
    """
    choice(method, "method", ("quantile", "amount"))
    v = np.asarray(clv, dtype=float)
    if method == "quantile":
        low, high = _two_cuts(cuts, "cuts", 0.0, 1.0)
        if len(v) == 0:
            return np.empty(0, dtype=np.int8)
        low, high = np.quantile(v, [low, high])
    else:
        low, high = _two_cuts(cuts, "cuts", 0.0, np.inf)
    return np.where(v >= high, 0, np.where(v >= low, 1, 2)).astype(np.int8)


def purchase_intent(expected_purchases: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """可能复购 (likely, 0) when the expected purchases in the horizon reach `threshold`, else 1."""
    positive(threshold, "threshold")
    return np.where(np.asarray(expected_purchases, dtype=float) >= threshold, 0, 1).astype(np.int8)


def _coded(values: np.ndarray, tag: Tag) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(values, pa.int8()), pa.array([v.code for v in tag.values]))


def model_tags(
    predictions: Predictions,
    *,
    churn_cuts: Sequence[float] = (0.3, 0.7),
    value_method: str = "quantile",
    value_cuts: Sequence[float] = (0.5, 0.8),
    intent_threshold: float = 0.5,
) -> pa.Table:
    """One row per person: churn_risk, predicted_value and purchase_intent (next 30 days) codes."""
    return pa.table(
        {
            "person": predictions.person,
            CHURN_RISK.code: _coded(churn_risk(predictions.p_alive, churn_cuts), CHURN_RISK),
            PREDICTED_VALUE.code: _coded(predicted_value(predictions.clv, value_method, value_cuts), PREDICTED_VALUE),
            PURCHASE_INTENT.code: _coded(purchase_intent(predictions.purchases_30d, intent_threshold), PURCHASE_INTENT),
        }
    )
