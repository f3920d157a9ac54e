"""The small JSON summaries a run keeps for charts and overviews (RFM grid, pyramid, CLV distributions,
clusters, repurchase categories, fission trees): computed once per run, read by every page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.value import clv, rfm
from siyu.value.clusters import Clustering
from siyu.value.repurchase import STATUSES, Cycles
from siyu.value.social import Fission
from siyu.value.tags import CHURN_RISK, PREDICTED_VALUE, PURCHASE_INTENT

TREES_SHOWN = 20


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits) if np.isfinite(value) else 0.0


def rfm_grid(result: rfm.RFMResult) -> list[dict[str, Any]]:
    """The eight segments (RFM 八类客户), always all eight: customers, revenue and their shares, averages."""
    total_people = max(len(result.person), 1)
    total_revenue = float(result.monetary.sum())
    cells = []
    for i, seg in enumerate(rfm.SEGMENTS):
        mine = result.segment == i
        n = int(mine.sum())
        revenue = float(result.monetary[mine].sum())
        cells.append(
            {
                "segment": seg.code,
                "name_zh": seg.zh,
                "name_en": seg.en,
                "r_high": seg.r_high,
                "f_high": seg.f_high,
                "m_high": seg.m_high,
                "customers": n,
                "customer_share": _round(n / total_people),
                "revenue": _round(revenue, 2),
                "revenue_share": _round(revenue / total_revenue) if total_revenue > 0 else 0.0,
                "avg_recency_days": _round(result.recency_days[mine].mean(), 1) if n else None,
                "avg_frequency": _round(result.frequency[mine].mean(), 2) if n else None,
                "avg_monetary": _round(result.monetary[mine].mean(), 2) if n else None,
            }
        )
    return cells


def pyramid(tiers: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
    rows = rfm.pyramid_summary(tiers, values).to_pylist()
    names = {t.code: t for t in rfm.TIERS}
    return [
        {
            **{k: _round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
            "name_zh": names[row["tier"]].zh,
            "name_en": names[row["tier"]].en,
        }
        for row in rows
    ]


def _histogram(values: np.ndarray, bins: np.ndarray) -> list[dict[str, Any]]:
    counts, edges = np.histogram(values, bins=bins)
    return [
        {"low": _round(edges[i], 2), "high": _round(edges[i + 1], 2), "count": int(c)} for i, c in enumerate(counts)
    ]


def _counts(codes: np.ndarray, labels) -> list[dict[str, Any]]:
    return [
        {"code": label.code, "name_zh": label.zh, "name_en": label.en, "count": int((codes == label.code).sum())}
        for label in labels
    ]


def clv_summary(
    bg: clv.BetaGeo, gg: clv.GammaGamma, predictions: clv.Predictions, tags: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Fitted parameters and the distributions the CLV/churn charts show."""
    value = predictions.clv[np.isfinite(predictions.clv)]
    top = float(np.quantile(value, 0.99)) if len(value) else 0.0
    bins = np.linspace(0.0, max(top, 1.0), 13)
    clipped = np.minimum(value, bins[-1])
    return {
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "converged": bool(bg.fit and bg.fit.converged)},
        "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v, "converged": bool(gg.fit and gg.fit.converged)},
        "people": int(len(predictions.person)),
        "total_clv": _round(value.sum(), 2),
        "mean_clv": _round(value.mean(), 2) if len(value) else 0.0,
        "mean_p_alive": _round(predictions.p_alive.mean()),
        "expected_purchases_30d": _round(predictions.purchases_30d.sum(), 2),
        "expected_purchases_90d": _round(predictions.purchases_90d.sum(), 2),
        "clv_histogram": _histogram(clipped, bins),
        "p_alive_histogram": _histogram(predictions.p_alive, np.linspace(0.0, 1.0, 11)),
        "churn_risk": _counts(tags[CHURN_RISK.code], CHURN_RISK.values),
        "predicted_value": _counts(tags[PREDICTED_VALUE.code], PREDICTED_VALUE.values),
        "purchase_intent": _counts(tags[PURCHASE_INTENT.code], PURCHASE_INTENT.values),
    }


def clusters_summary(result: Clustering) -> dict[str, Any]:
    return {
        "k": result.k,
        "features": list(result.features),
        "silhouettes": {str(k): _round(v) for k, v in result.silhouettes.items()},
        "clusters": [
            {
                "cluster": c.index,
                "size": c.size,
                "share": _round(c.share),
                "name_zh": c.zh,
                "name_en": c.en,
                "means": {k: _round(v, 2) for k, v in c.means.items()},
                "z": {k: _round(v, 2) for k, v in c.z_scores.items()},
            }
            for c in result.clusters
        ],
    }


def repurchase_summary(cycles: Cycles) -> dict[str, Any]:
    categories: list[dict[str, Any]] = []
    if cycles.categories is not None:
        for row in cycles.categories.to_pylist():
            categories.append(
                {
                    "category": row["category"],
                    "interval_days": _round(row["interval_days"], 1) if row["interval_days"] is not None else None,
                    "people": int(row["people"]),
                }
            )
        categories.sort(key=lambda r: (-r["people"], r["category"]))
    return {
        "statuses": [
            {"code": s.code, "name_zh": s.zh, "name_en": s.en, "count": int((cycles.status == i).sum())}
            for i, s in enumerate(STATUSES)
        ],
        "categories": categories,
    }


def social_summary(tree: Fission | None, edges: pa.Table) -> dict[str, Any]:
    if tree is None:
        return {"referrals": 0, "referrers": 0, "trees": 0, "largest_trees": []}
    trees = tree.trees().sort_by([("size", "descending"), ("root", "ascending")])
    big = trees.filter(pc.greater(trees["size"], 1))
    return {
        "referrals": edges.num_rows,
        "referrers": int((tree.direct > 0).sum()),
        "trees": big.num_rows,
        "deepest": int(tree.depth.max()) if len(tree.depth) else 0,
        "largest_trees": big.slice(0, TREES_SHOWN).to_pylist(),
    }
