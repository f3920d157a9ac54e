"""Customer clusters (客户分群): k-means on standardised features, k by silhouette, described in words.

Value features are heavy-tailed (one big spender is worth a thousand ordinary ones), so the
known skewed ones are log-transformed (log1p) before standardising; otherwise k-means spends its
clusters on outliers. k is the one with the best silhouette over `k_range`, the silhouette
estimated on a random sample for big inputs (it is quadratic in the rows), and k-means itself is
fitted on a sample of at most `fit_rows` rows before every row is assigned to its nearest centre.

Each cluster is described by the features whose cluster mean lies at least `threshold` standard
deviations from the overall mean (z-scores on the transformed scale), strongest first, with the
operator's words for "high" and "low" of each feature: e.g. "高频 · 高客单价 · 近期活跃".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from siyu.value.checks import invalid, positive
from siyu.value.features import feature_matrix
from siyu.value.threads import limited_threads


@dataclass(frozen=True)
class Words:
    """How to say a feature is high or low, in Chinese and English."""

    zh_high: str
    zh_low: str
    en_high: str
    en_low: str


FEATURE_WORDS: dict[str, Words] = {
    "recency_days": Words("久未购买", "近期活跃", "long inactive", "recently active"),
    "frequency": Words("高频", "低频", "frequent", "infrequent"),
    "monetary": Words("高消费", "低消费", "high spend", "low spend"),
    "average_order_value": Words("高客单价", "低客单价", "high order value", "low order value"),
    "tenure_days": Words("老客", "新客", "long-standing", "new"),
    "p_alive": Words("活跃稳定", "流失风险高", "likely active", "at risk"),
    "clv": Words("高预测价值", "低预测价值", "high predicted value", "low predicted value"),
    "categories": Words("品类广", "品类单一", "broad basket", "narrow basket"),
    "referrals": Words("爱分享", "少分享", "shares a lot", "rarely shares"),
    "visits": Words("高互动", "低互动", "engaged", "little engagement"),
    "active_days": Words("高活跃", "低活跃", "often active", "rarely active"),
    "discount_share": Words("价格敏感", "少用优惠", "deal-seeker", "pays full price"),
}
SKEWED = frozenset({"frequency", "monetary", "average_order_value", "clv", "referrals", "visits", "active_days"})
AVERAGE = ("各项接近平均", "close to average on every feature")


@dataclass(frozen=True)
class Cluster:
    index: int
    size: int
    share: float
    zh: str
    en: str
    z_scores: dict[str, float]
    means: dict[str, float]  # in the original units


@dataclass(frozen=True)
class Clustering:
    """`labels` per row (0 = the largest cluster), the chosen k and every k's silhouette."""

    k: int
    labels: np.ndarray
    silhouettes: dict[int, float]
    features: tuple[str, ...]
    clusters: tuple[Cluster, ...]

    def summary(self) -> pa.Table:
        return pa.table(
            {
                "cluster": [c.index for c in self.clusters],
                "size": [c.size for c in self.clusters],
                "share": [c.share for c in self.clusters],
                "name_zh": [c.zh for c in self.clusters],
                "name_en": [c.en for c in self.clusters],
                **{f"z_{f}": [c.z_scores[f] for c in self.clusters] for f in self.features},
                **{f"mean_{f}": [c.means[f] for c in self.clusters] for f in self.features},
            }
        )


def describe(z: np.ndarray, names: Sequence[str], words: Mapping[str, Words], threshold: float, top: int):
    """Chinese and English names of one cluster from its z-scores."""
    order = np.argsort(-np.abs(z), kind="stable")
    picked = [i for i in order if abs(z[i]) >= threshold][:top]
    if not picked:
        return AVERAGE
    zh, en = [], []
    for i in picked:
        w = words.get(names[i]) or Words(f"{names[i]}高", f"{names[i]}低", f"high {names[i]}", f"low {names[i]}")
        zh.append(w.zh_high if z[i] > 0 else w.zh_low)
        en.append(w.en_high if z[i] > 0 else w.en_low)
    return " · ".join(zh), " · ".join(en)


def cluster(
    features: Any,
    names: Sequence[str] | None = None,
    *,
    k_range: tuple[int, int] = (2, 8),
    log_features: Sequence[str] | None = None,
    words: Mapping[str, Words] | None = None,
    threshold: float = 0.5,
    top: int = 3,
    silhouette_rows: int = 10_000,
    fit_rows: int = 200_000,
    random_state: int = 0,
) -> Clustering:
    """Cluster rows (people) of `features` (Arrow table, or array with `names`)."""
    x, names = feature_matrix(features, names)
    n = len(x)
    if (
        len(k_range) != 2
        or not all(isinstance(k, int | np.integer) for k in k_range)
        or k_range[0] < 2
        or k_range[1] < k_range[0]
    ):
        raise invalid("k_range", "must be two whole numbers (lowest, highest k) with 2 ≤ lowest ≤ highest")
    if k_range[1] >= n:
        raise invalid("k_range", f"the highest k must be below the number of rows ({n})")
    positive(threshold, "threshold")
    logged = SKEWED.intersection(names) if log_features is None else set(log_features)
    for name in logged - set(names):
        raise invalid("log_features", f"{name!r} is not a feature")
    t = x.copy()
    for i, name in enumerate(names):
        if name in logged:
            if (x[:, i] < 0).any():
                raise invalid("log_features", f"{name!r} has negative values and cannot be log-transformed")
            t[:, i] = np.log1p(x[:, i])
    mean, std = t.mean(axis=0), t.std(axis=0)
    z = (t - mean) / np.where(std > 0, std, 1.0)

    rng = np.random.default_rng(random_state)
    fit_x = z[rng.choice(n, fit_rows, replace=False)] if n > fit_rows else z
    sample = rng.choice(len(fit_x), min(silhouette_rows, len(fit_x)), replace=False)
    silhouettes: dict[int, float] = {}
    models: dict[int, KMeans] = {}
    with limited_threads():
        for k in range(k_range[0], k_range[1] + 1):
            model = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(fit_x)
            labels = model.labels_[sample]
            if len(np.unique(labels)) < 2:
                silhouettes[k] = -1.0
            else:
                silhouettes[k] = float(silhouette_score(fit_x[sample], labels))
            models[k] = model
        best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
        raw_labels = models[best].predict(z)

    # number clusters by size, largest first, so the output does not depend on k-means' numbering
    sizes = np.bincount(raw_labels, minlength=best)
    rank = np.empty(best, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(best)
    labels = rank[raw_labels]
    words = {**FEATURE_WORDS, **(words or {})}
    clusters = []
    for j in range(best):
        members = labels == j
        zj = z[members].mean(axis=0)
        zh, en = describe(zj, names, words, threshold, top)
        clusters.append(
            Cluster(
                index=j,
                size=int(members.sum()),
                share=float(members.mean()),
                zh=zh,
                en=en,
                z_scores={name: float(v) for name, v in zip(names, zj, strict=True)},
                means={name: float(v) for name, v in zip(names, x[members].mean(axis=0), strict=True)},
            )
        )
    return Clustering(best, labels, silhouettes, names, tuple(clusters))
