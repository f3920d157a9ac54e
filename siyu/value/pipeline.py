"""One value computation for a workspace: read the inputs from the event store, run every model, and
return per-person columns, per-category cycles, rules, recommendations, referral edges and summaries.

Nothing is written here (siyu.value.service persists the result). A model that cannot run on the
data it gets — no orders in the RFM window, nobody with a repeat purchase for the CLV fit, too few
buyers to cluster, no referrals yet — is skipped with its reason in `notes`; the rest go on, so a
young workspace still gets what its data supports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.errors import InvalidInput
from siyu.value import basket, clusters, clv, inputs, referrals, repurchase, rfm, social, summaries, tags
from siyu.value.config import Config
from siyu.value.transactions import Transactions

log = logging.getLogger("siyu.value")

PENALIZER = 0.001  # a little L2 keeps the fits finite on small or lopsided workspaces (lifetimes' advice)
MIN_CLUSTER_PEOPLE = 20
MAX_CLUSTERS = 6
MIN_SUPPORT = 0.01
MIN_RULE_ORDERS = 3  # on small workspaces 1 % of the orders is one or two baskets: not a pattern
MIN_CONFIDENCE = 0.1
MAX_RULES = 2000
RECOMMENDATIONS = 5
# A person's overall repurchase status: the most pressing of their categories.
STATUS_PRIORITY = (repurchase.DUE, repurchase.OVERDUE, repurchase.NOT_YET, repurchase.UNKNOWN)
STATUS_CODES = np.array([s.code for s in repurchase.STATUSES], dtype=object)


class Columns:
    """Per-person columns over one sorted id index, filled model by model (vectorised joins)."""

    def __init__(self, ids: np.ndarray):
        self.ids = ids
        self.data: dict[str, np.ndarray] = {}

    def at(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))

    def put(self, name: str, ids: np.ndarray, values: Any, fill: Any = None, dtype: Any = object) -> None:
        column = self.data.get(name)
        if column is None:
            column = np.full(len(self.ids), fill, dtype=dtype)
            self.data[name] = column
        column[self.at(ids)] = np.asarray(values)

    def table(self) -> pa.Table:
        columns: dict[str, Any] = {"super_id": self.ids}
        for name, values in self.data.items():
            if values.dtype == object:
                columns[name] = pa.array(values.tolist())
            elif values.dtype.kind == "f":
                columns[name] = pa.array(values, mask=np.isnan(values))
            else:
                columns[name] = values
        return pa.table(columns)


@dataclass
class Computed:
    as_of: datetime  # local time the run is "as of"
    computed_at: datetime  # UTC
    persons: pa.Table
    repurchase: pa.Table
    products: pa.Table
    rules: pa.Table
    recommendations: pa.Table
    referrals: pa.Table
    orders: int
    summary: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _notes(notes: dict[str, str], model: str, exc: Exception) -> None:
    if isinstance(exc, InvalidInput):
        notes[model] = str(exc)
    else:  # a numerical failure on odd data must not stop the other models
        log.exception("value model %s failed", model)
        notes[model] = f"{type(exc).__name__}: {exc}"


def compute(
    con: duckdb.DuckDBPyConnection, workspace_id: int, cfg: Config, owners: Mapping[int, int], now: datetime
) -> Computed:
    """Everything a run stores, as of `now` (UTC); `owners` maps share-link ids to their owners."""
    now_utc = now.astimezone(UTC).replace(tzinfo=None)
    as_of = now_utc + timedelta(hours=cfg.utc_offset_hours)
    offset = cfg.utc_offset_hours
    notes: dict[str, str] = {}
    summary: dict[str, Any] = {"as_of": as_of.isoformat(timespec="seconds"), "settings": cfg.as_dict()}

    order_rows = inputs.orders(con, workspace_id, end=as_of, utc_offset_hours=offset)
    features = inputs.person_features(con, workspace_id, as_of, utc_offset_hours=offset)
    items = inputs.line_items(con, workspace_id, end=as_of, utc_offset_hours=offset)
    edges = referrals.edges(con, workspace_id, owners, now_utc)

    buyer_ids = features["super_id"].to_numpy().astype(np.int64)
    ids = np.union1d(buyer_ids, np.r_[edges["referrer"].to_numpy(), edges["referred"].to_numpy()].astype(np.int64))
    cols = Columns(ids)
    _features(cols, features)
    tx = Transactions.from_arrow(order_rows) if order_rows.num_rows else None
    summary["orders"] = order_rows.num_rows
    summary["buyers"] = len(buyer_ids)

    if tx is None:
        notes["rfm"] = notes["clv"] = "no orders yet"
    else:
        try:
            _rfm(cols, tx, as_of, cfg, summary)
        except Exception as exc:  # noqa: BLE001 - recorded in notes, the other models go on
            _notes(notes, "rfm", exc)
        try:
            _clv(cols, tx, as_of, summary)
        except Exception as exc:  # noqa: BLE001
            _notes(notes, "clv", exc)

    try:
        cycles = _repurchase(cols, items, as_of, summary)
    except Exception as exc:  # noqa: BLE001
        _notes(notes, "repurchase", exc)
        cycles = _empty_cycles()
    try:
        products, rules, recommendations = _basket(items, summary)
    except Exception as exc:  # noqa: BLE001
        _notes(notes, "basket", exc)
        products, rules, recommendations = _empty_basket()

    _social(cols, edges, cfg, summary, notes)
    try:
        _clusters(cols, buyer_ids, summary)
    except Exception as exc:  # noqa: BLE001
        _notes(notes, "clusters", exc)

    summary["persons"] = len(ids)
    summary["notes"] = notes
    return Computed(
        as_of=as_of,
        computed_at=now.astimezone(UTC),
        persons=cols.table(),
        repurchase=cycles,
        products=products,
        rules=rules,
        recommendations=recommendations,
        referrals=edges,
        orders=order_rows.num_rows,
        summary=summary,
        notes=notes,
    )


# --- per model ---------------------------------------------------------------------------------------------


def _features(cols: Columns, features: pa.Table) -> None:
    ids = features["super_id"].to_numpy()
    cols.put("orders", ids, features["frequency"].to_numpy(), 0, np.int64)
    cols.put("revenue", ids, features["monetary"].to_numpy(), 0.0, float)
    cols.put("average_order_value", ids, features["average_order_value"].to_numpy(), 0.0, float)
    cols.put("days_since_order", ids, features["recency_days"].to_numpy(), np.nan, float)
    cols.put("tenure_days", ids, features["tenure_days"].to_numpy(), np.nan, float)
    cols.put("categories", ids, features["categories"].to_numpy(), 0, np.int64)
    cols.put("active_days", ids, features["active_days"].to_numpy(), 0, np.int64)


def _rfm(cols: Columns, tx: Transactions, as_of: datetime, cfg: Config, summary: dict[str, Any]) -> None:
    result = rfm.rfm(tx, as_of, cfg.window_days)
    tiers = rfm.value_pyramid(result.monetary, cfg.pyramid_method, scores=result.score)
    ids = result.person
    cols.put("recency_days", ids, result.recency_days, np.nan, float)
    cols.put("frequency", ids, result.frequency)
    cols.put("monetary", ids, result.monetary, np.nan, float)
    for name in ("r_score", "f_score", "m_score"):
        cols.put(name, ids, getattr(result, name).astype(np.int64))
    cols.put("rfm_segment", ids, result.segment_codes())
    cols.put("value_tier", ids, np.array([t.code for t in rfm.TIERS], dtype=object)[tiers])
    summary["rfm"] = {"window_days": cfg.window_days, "customers": len(ids), "grid": summaries.rfm_grid(result)}
    summary["pyramid"] = {"method": cfg.pyramid_method, "tiers": summaries.pyramid(tiers, result.monetary)}


def _clv(cols: Columns, tx: Transactions, as_of: datetime, summary: dict[str, Any]) -> None:
    _, bg, gg, predictions = clv.fit_and_predict(tx, as_of, penalizer=PENALIZER)
    ids = predictions.person
    for name in ("p_alive", "purchases_30d", "purchases_90d", "expected_order_value", "clv"):
        cols.put(name, ids, getattr(predictions, name), np.nan, float)
    table = tags.model_tags(predictions)
    codes: dict[str, np.ndarray] = {}
    for tag in (tags.CHURN_RISK, tags.PREDICTED_VALUE, tags.PURCHASE_INTENT):
        codes[tag.code] = np.asarray(table[tag.code].cast(pa.string()).to_pylist(), dtype=object)
        cols.put(tag.code, ids, codes[tag.code])
    summary["clv"] = summaries.clv_summary(bg, gg, predictions, codes)


def _empty_cycles() -> pa.Table:
    return pa.table(
        {
            "super_id": pa.array([], pa.int64()),
            "category": pa.array([], pa.string()),
            "purchases": pa.array([], pa.int64()),
            "last_purchase": pa.array([], pa.date32()),
            "interval_days": pa.array([], pa.float64()),
            "interval_source": pa.array([], pa.string()),
            "next_expected": pa.array([], pa.date32()),
            "status": pa.array([], pa.string()),
        }
    )


def _repurchase(cols: Columns, items: pa.Table, as_of: datetime, summary: dict[str, Any]) -> pa.Table:
    if items.num_rows == 0:
        summary["repurchase"] = {"statuses": [], "categories": []}
        return _empty_cycles()
    cycles = repurchase.repurchase_cycles(items["super_id"], items["ts"], as_of, items["category"])
    summary["repurchase"] = summaries.repurchase_summary(cycles)
    # the most pressing status per person, and that category's next expected date
    priority = np.empty(len(repurchase.STATUSES), dtype=np.int64)
    priority[list(STATUS_PRIORITY)] = np.arange(len(STATUS_PRIORITY))
    rank = priority[cycles.status]
    next_day = cycles.next_expected.astype("datetime64[D]").astype(np.int64)
    next_day = np.where(np.isnat(cycles.next_expected), np.iinfo(np.int64).max, next_day)
    order = np.lexsort((next_day, rank, cycles.person))
    first = order[np.r_[True, cycles.person[order][1:] != cycles.person[order][:-1]]]
    cols.put("repurchase_status", cycles.person[first], STATUS_CODES[cycles.status[first]])
    dates = cycles.next_expected[first].astype("datetime64[D]").astype(object)
    cols.put("next_purchase", cycles.person[first], np.array(dates, dtype=object))
    table = cycles.to_arrow()
    return table.rename_columns(["super_id", *table.column_names[1:]]).select(_empty_cycles().column_names)


def _empty_basket() -> tuple[pa.Table, pa.Table, pa.Table]:
    products = pa.table(
        {
            "product_id": pa.array([], pa.string()),
            "name": pa.array([], pa.string()),
            "category": pa.array([], pa.string()),
            "orders": pa.array([], pa.int64()),
        }
    )
    rules = pa.table(
        {
            "rank": pa.array([], pa.int64()),
            "first": pa.array([], pa.string()),
            "second": pa.array([], pa.string()),
            "consequent": pa.array([], pa.string()),
            "orders": pa.array([], pa.int64()),
            "support": pa.array([], pa.float64()),
            "confidence": pa.array([], pa.float64()),
            "lift": pa.array([], pa.float64()),
        }
    )
    recommendations = pa.table(
        {
            "super_id": pa.array([], pa.int64()),
            "rank": pa.array([], pa.int64()),
            "product_id": pa.array([], pa.string()),
            "score": pa.array([], pa.float64()),
        }
    )
    return products, rules, recommendations


def _basket(items: pa.Table, summary: dict[str, Any]) -> tuple[pa.Table, pa.Table, pa.Table]:
    products, rules_table, recs_table = _empty_basket()
    if items.num_rows == 0:
        summary["basket"] = {"orders": 0, "products": 0, "rules": 0}
        return products, rules_table, recs_table
    grouped = items.group_by("product_id").aggregate(
        [("name", "min"), ("category", "min"), ("order_id", "count_distinct")]
    )
    products = pa.table(
        {
            "product_id": grouped["product_id"],
            "name": pc.fill_null(grouped["name_min"], ""),
            "category": pc.fill_null(grouped["category_min"], ""),
            "orders": grouped["order_id_count_distinct"].cast(pa.int64()),
        }
    ).sort_by([("orders", "descending"), ("product_id", "ascending")])
    n_orders = len(pc.unique(items["order_id"]))
    min_support = min(1.0, max(MIN_SUPPORT, MIN_RULE_ORDERS / n_orders))
    mined = basket.association_rules(
        items["order_id"], items["product_id"], min_support=min_support, min_confidence=MIN_CONFIDENCE
    )
    keep = min(len(mined), MAX_RULES)
    names = mined.products.astype(object)
    second = mined.second[:keep]
    rules_table = pa.table(
        {
            "rank": np.arange(1, keep + 1, dtype=np.int64),
            "first": pa.array(names[mined.first[:keep]].tolist(), pa.string()),
            "second": pa.array([names[s] if s >= 0 else None for s in second.tolist()], pa.string()),
            "consequent": pa.array(names[mined.consequent[:keep]].tolist(), pa.string()),
            "orders": mined.count[:keep].astype(np.int64),
            "support": mined.support[:keep],
            "confidence": mined.confidence[:keep],
            "lift": mined.lift[:keep],
        }
    )
    if len(mined):
        recs = basket.recommend(mined, items["super_id"], items["product_id"], top=RECOMMENDATIONS)
        person = recs["person"].to_numpy()
        start = np.r_[True, person[1:] != person[:-1]] if len(person) else np.zeros(0, bool)
        first_of = np.maximum.accumulate(np.where(start, np.arange(len(person)), 0)) if len(person) else person
        recs_table = pa.table(
            {
                "super_id": person.astype(np.int64),
                "rank": (np.arange(len(person)) - first_of + 1).astype(np.int64),
                "product_id": recs["product"],
                "score": recs["score"],
            }
        )
    summary["basket"] = {
        "orders": n_orders,
        "products": products.num_rows,
        "rules": len(mined),
        "rules_kept": keep,
        "min_support": round(min_support, 4),
        "min_confidence": MIN_CONFIDENCE,
        "recommended_people": len(np.unique(recs_table["super_id"].to_numpy())),
    }
    return products, rules_table, recs_table


def _social(cols: Columns, edges: pa.Table, cfg: Config, summary: dict[str, Any], notes: dict[str, str]) -> None:
    """Fission trees, PageRank influence and the weighted value score (商业 × 社交) for everyone."""
    n = len(cols.ids)
    influence = np.zeros(n)
    direct = np.zeros(n, dtype=np.int64)
    descendants = np.zeros(n, dtype=np.int64)
    tree = None
    if edges.num_rows:
        graph = social.referral_graph(edges["referrer"].to_numpy(), edges["referred"].to_numpy())
        tree = social.fission(graph)
        at = cols.at(graph.persons)
        influence[at] = social.pagerank(graph)
        direct[at], descendants[at] = tree.direct, tree.descendants
        has_parent = tree.parent >= 0
        cols.put("referrer", graph.persons[has_parent], graph.persons[tree.parent[has_parent]])
        cols.put("depth", graph.persons, tree.depth)
    else:
        notes["social"] = "no referrals yet: nobody has arrived through a share link and identified"
    cols.put("direct_referrals", cols.ids, direct, 0, np.int64)
    cols.put("descendants", cols.ids, descendants, 0, np.int64)
    cols.put("pagerank", cols.ids, influence, 0.0, float)
    # commercial value: predicted CLV where the fit ran, else spend so far
    if "clv" in cols.data:
        commercial = np.nan_to_num(cols.data["clv"], nan=0.0)
    else:
        commercial = cols.data.get("revenue", np.zeros(n)).astype(float)
    score = social.value_score(commercial, influence, cfg.weights) if n else np.zeros(0)
    cols.put("commercial_value", cols.ids, commercial, 0.0, float)
    cols.put("commercial_score", cols.ids, social.scale_0_100(commercial), 0.0, float)
    cols.put("social_score", cols.ids, social.scale_0_100(influence), 0.0, float)
    cols.put("value_score", cols.ids, score, 0.0, float)
    cols.put("is_koc", cols.ids, koc_mask(score, direct, cfg.koc_top), False, bool)
    summary["social"] = summaries.social_summary(tree, edges)
    summary["social"]["kocs"] = int(cols.data["is_koc"].sum())


def koc_mask(score: np.ndarray, direct: np.ndarray, top: int) -> np.ndarray:
    """KOCs (关键意见消费者): the `top` best value scores among people who brought at least one person in."""
    candidates = np.flatnonzero(direct > 0)
    best = candidates[np.lexsort((candidates, -score[candidates]))][:top]
    mask = np.zeros(len(score), dtype=bool)
    mask[best] = True
    return mask


def _clusters(cols: Columns, buyer_ids: np.ndarray, summary: dict[str, Any]) -> None:
    if len(buyer_ids) < MIN_CLUSTER_PEOPLE:
        raise InvalidInput("clusters", f"needs at least {MIN_CLUSTER_PEOPLE} buyers (got {len(buyer_ids)})")
    at = cols.at(buyer_ids)
    names = ["days_since_order", "orders", "revenue", "average_order_value", "tenure_days", "categories", "active_days"]
    feature_names = ["recency_days", "frequency", "monetary", "average_order_value", "tenure_days", "categories"]
    feature_names.append("active_days")
    columns = [np.nan_to_num(cols.data[name][at].astype(float)) for name in names]
    if "clv" in cols.data:
        columns.append(np.nan_to_num(cols.data["clv"][at].astype(float)))
        feature_names.append("clv")
    if cols.data["direct_referrals"][at].any():
        columns.append(cols.data["direct_referrals"][at].astype(float))
        feature_names.append("referrals")
    x = np.column_stack(columns)
    k_high = min(MAX_CLUSTERS, len(buyer_ids) - 1)
    result = clusters.cluster(x, feature_names, k_range=(2, k_high))
    cols.put("cluster", buyer_ids, result.labels.astype(np.int64))
    summary["clusters"] = summaries.clusters_summary(result)
