"""RFM: recency, frequency and monetary value per person, quintile scores, segments and pyramid.

Scores are quintiles (1–5) by the share of people with a strictly worse value: score =
1 + ⌊5 · worse / n⌋. Equal values always get equal scores (no arbitrary tie-breaking by row order),
the worst value always scores 1, and with many ties (most people bought once) the tied group shares
the lower score instead of being split across two. R is high when recent (few days since the last
order), F and M when large.

The eight classic segments (RFM 八类客户) put R, F and M each "high" when strictly above its mean
(for recency: strictly fewer days than the mean), on the scores by default — the raw amounts are
so skewed that a few big spenders would drag the M mean above almost everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from siyu.value.checks import choice, invalid, not_empty, positive, weights
from siyu.value.transactions import Transactions, days, to_datetime64


@dataclass(frozen=True)
class Label:
    """A stable code for machines and storage, with its Chinese and English names for people."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class Segment(Label):
    r_high: bool = False
    f_high: bool = False
    m_high: bool = False


SEGMENTS: tuple[Segment, ...] = (
    Segment("important_value", "重要价值客户", "Important value", True, True, True),
    Segment("important_development", "重要发展客户", "Important development", True, False, True),
    Segment("important_retention", "重要保持客户", "Important retention", False, True, True),
    Segment("important_winback", "重要挽留客户", "Important win-back", False, False, True),
    Segment("general_value", "一般价值客户", "General value", True, True, False),
    Segment("general_development", "一般发展客户", "General development", True, False, False),
    Segment("general_retention", "一般保持客户", "General retention", False, True, False),
    Segment("general_winback", "一般挽留客户", "General win-back", False, False, False),
)
# Index into SEGMENTS by the bits r_high·4 + f_high·2 + m_high.
_SEGMENT_BY_BITS = np.zeros(8, dtype=np.int8)
for _i, _s in enumerate(SEGMENTS):
    _SEGMENT_BY_BITS[_s.r_high * 4 + _s.f_high * 2 + _s.m_high] = _i

TIERS: tuple[Label, ...] = (
    Label("vip", "VIP 客户", "VIP"),
    Label("high", "高价值客户", "High value"),
    Label("medium", "中价值客户", "Medium value"),
    Label("low", "低价值客户", "Low value"),
)
PYRAMID_METHODS = ("revenue_share", "customer_share", "score")
DEFAULT_SHARES = {"revenue_share": (0.2, 0.3, 0.3, 0.2), "customer_share": (0.05, 0.15, 0.3, 0.5)}
DEFAULT_SCORE_CUTS = (13, 10, 7)  # R+F+M (3–15) at least 13 → VIP, 10 → high, 7 → medium, else low


@dataclass(frozen=True)
class RFMResult:
    """One row per person who ordered in the window; `segment` indexes `SEGMENTS`."""

    person: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    r_score: np.ndarray
    f_score: np.ndarray
    m_score: np.ndarray
    segment: np.ndarray

    @property
    def score(self) -> np.ndarray:
        """R + F + M, 3–15."""
        return self.r_score.astype(np.int16) + self.f_score + self.m_score

    def segment_codes(self) -> np.ndarray:
        return np.array([s.code for s in SEGMENTS], dtype=object)[self.segment]

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "person": self.person,
                "recency_days": self.recency_days,
                "frequency": self.frequency,
                "monetary": self.monetary,
                "r_score": self.r_score,
                "f_score": self.f_score,
                "m_score": self.m_score,
                "rfm_score": self.score,
                "segment": pa.DictionaryArray.from_arrays(
                    pa.array(self.segment, pa.int8()), pa.array([s.code for s in SEGMENTS])
                ),
            }
        )


def quintile_scores(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """1–5 by the share of values strictly worse than each one (ties share a score)."""
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.int8)
    ordered = np.sort(values)
    if higher_is_better:
        worse = np.searchsorted(ordered, values, side="left")
    else:
        worse = n - np.searchsorted(ordered, values, side="right")
    return (1 + (5 * worse) // n).astype(np.int8)


def per_person(tx: Transactions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Persons (sorted), their order count, total amount and last order time."""
    persons, codes = np.unique(tx.person, return_inverse=True)
    frequency = np.bincount(codes, minlength=len(persons)).astype(np.int64)
    monetary = np.bincount(codes, weights=tx.amount, minlength=len(persons))
    last = np.full(len(persons), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, codes, tx.when.view(np.int64))
    return persons, frequency, monetary, last.view("datetime64[us]")


def rfm(
    tx: Transactions,
    as_of: Any,
    window_days: float | None = 365,
    *,
    monetary: str = "total",
    basis: str = "score",
) -> RFMResult:
    """RFM of every person with an order in (as_of − window_days, as_of].

    `monetary`: "total" spend in the window, or "average" order value. `basis`: compare each
    person's "score"s (default) or raw "value"s with the mean to place them in a segment.
    `window_days=None` takes all history up to `as_of`.
    """
    end = to_datetime64(as_of, "as_of")
    choice(monetary, "monetary", ("total", "average"))
    choice(basis, "basis", ("score", "value"))
    not_empty(len(tx), "transactions")
    start = None
    if window_days is not None:
        positive(window_days, "window_days")
        start = end - np.timedelta64(round(window_days * 86_400_000_000), "us")
    window = tx.until(end, start)
    if len(window) == 0:
        raise invalid("window_days", f"no orders in the {window_days}-day window ending {end}")
    persons, frequency, total, last = per_person(window)
    recency = days(end - last)
    money = total if monetary == "total" else total / frequency
    r = quintile_scores(recency, higher_is_better=False)
    f = quintile_scores(frequency.astype(float))
    m = quintile_scores(money)
    if basis == "score":
        r_high, f_high, m_high = r > r.mean(), f > f.mean(), m > m.mean()
    else:
        r_high, f_high, m_high = recency < recency.mean(), frequency > frequency.mean(), money > money.mean()
    bits = r_high.astype(np.int8) * 4 + f_high.astype(np.int8) * 2 + m_high.astype(np.int8)
    return RFMResult(persons, recency, frequency, money, r, f, m, _SEGMENT_BY_BITS[bits])


def value_pyramid(
    values: np.ndarray,
    method: str = "revenue_share",
    shares: Sequence[float] | None = None,
    *,
    scores: np.ndarray | None = None,
    score_cuts: Sequence[float] = DEFAULT_SCORE_CUTS,
) -> np.ndarray:
    """Tier index into `TIERS` (0 = VIP … 3 = low) per person.

    - "revenue_share" (default 20/30/30/20): rank people by value, highest first; the people who
      together bring the first 20 % of revenue are VIP, the next 30 % high, the next 30 % medium,
      the last 20 % low. A person's tier is set by the revenue share *before* them, so the top
      spender is always VIP, and equal values share the tier of the first of them.
    - "customer_share" (default 5/15/30/50): the same, but by share of people rather than revenue.
    - "score": by the RFM score (R+F+M, 3–15) passed as `scores`, against `score_cuts` (VIP ≥ 13,
      high ≥ 10, medium ≥ 7 by default).
    """
    choice(method, "method", PYRAMID_METHODS)
    if method == "score":
        if scores is None:
            raise invalid("scores", "the score method needs the RFM scores")
        cuts = np.asarray(score_cuts, dtype=float)
        if cuts.shape != (3,) or not np.isfinite(cuts).all() or (np.diff(cuts) >= 0).any():
            raise invalid("score_cuts", "must be three strictly decreasing numbers (VIP, high, medium)")
        s = np.asarray(scores, dtype=float)
        return (3 - (s[:, None] >= cuts[None, :]).sum(axis=1)).astype(np.int8)
    w = weights(shares if shares is not None else DEFAULT_SHARES[method], "shares", count=4)
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return np.empty(0, dtype=np.int8)
    if not np.isfinite(v).all() or (v < 0).any():
        raise invalid("values", "must be non-negative finite numbers")
    ascending = np.sort(v)
    above = n - np.searchsorted(ascending, v, side="right")  # people strictly above: the first of equal values
    if method == "customer_share":
        before = above / n
    else:
        total = ascending.sum()
        if total == 0:
            return np.full(n, 3, dtype=np.int8)
        cumulative = np.r_[0.0, np.cumsum(ascending[::-1])]
        before = cumulative[above] / total
    bounds = np.cumsum(w)[:3]
    return np.searchsorted(bounds, before, side="right").astype(np.int8)


def pyramid_summary(tiers: np.ndarray, values: np.ndarray) -> pa.Table:
    """Per tier: people, their value, and the shares of people and of value — the pyramid chart."""
    count = np.bincount(tiers, minlength=4)
    value = np.bincount(tiers, weights=np.asarray(values, dtype=float), minlength=4)
    return pa.table(
        {
            "tier": [t.code for t in TIERS],
            "customers": count,
            "value": value,
            "customer_share": count / max(count.sum(), 1),
            "value_share": value / value.sum() if value.sum() > 0 else np.zeros(4),
        }
    )
