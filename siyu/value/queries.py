"""Reading the stored value results: what the API, the console and the CLI show.

Everything here reads SQL only (the last successful run's tables and summary), so it answers while
a run is in progress and from the CLI while the server holds the event store. Lists are paged
(`limit` 1–200) and filters are checked against the known codes, each problem naming its field.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from siyu.errors import FieldError, InvalidInput, NotFound
from siyu.i18n import register
from siyu.segments.service import names_of
from siyu.value import rfm
from siyu.value.models import (
    Referral,
    ValuePerson,
    ValueProduct,
    ValueRecommendation,
    ValueRepurchase,
    ValueRule,
    ValueRun,
)
from siyu.value.persons import current_persons
from siyu.value.service import run_dict
from siyu.value.share import share_link_of
from siyu.value.tags import CHURN_RISK, PREDICTED_VALUE, PURCHASE_INTENT

MAX_LIMIT = 200
register({"error.value_product_empty": ("请选择商品", "must not be empty")})
MAX_TREE_NODES = 500
SORTS = {
    "value_score": ValuePerson.value_score.desc(),
    "clv": ValuePerson.clv.desc(),
    "revenue": ValuePerson.revenue.desc(),
    "monetary": ValuePerson.monetary.desc(),
    "recency": ValuePerson.recency_days.asc(),
    "p_alive": ValuePerson.p_alive.asc(),
    "referrals": ValuePerson.descendants.desc(),
}
FILTERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "segment": (ValuePerson.rfm_segment, tuple(s.code for s in rfm.SEGMENTS)),
    "tier": (ValuePerson.value_tier, tuple(t.code for t in rfm.TIERS)),
    "churn_risk": (ValuePerson.churn_risk, tuple(v.code for v in CHURN_RISK.values)),
    "predicted_value": (ValuePerson.predicted_value, tuple(v.code for v in PREDICTED_VALUE.values)),
    "purchase_intent": (ValuePerson.purchase_intent, tuple(v.code for v in PURCHASE_INTENT.values)),
    "repurchase": (ValuePerson.repurchase_status, ("not_yet", "due", "overdue", "unknown")),
}
DUE_STATUSES = ("due", "overdue")
PERSON_FIELDS = [c.name for c in ValuePerson.__table__.columns if c.name != "workspace_id"]


def page(limit: object, offset: object) -> tuple[int, int]:
    errors = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        errors.append(
            FieldError(
                "limit", f"must be a whole number from 1 to {MAX_LIMIT}", "int_range", {"min": 1, "max": MAX_LIMIT}
            )
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        errors.append(FieldError("offset", "must be a whole number of at least 0", "int_min", {"min": 0}))
    if errors:
        raise InvalidInput(errors)
    return limit, offset  # type: ignore[return-value]


def _text(field: str, value: str | None) -> str | None:
    """A product or category name from a query: refused when it holds NUL (PostgreSQL cannot take it)."""
    if value is not None and (not isinstance(value, str) or "\x00" in value or len(value) > 200):
        raise InvalidInput(field, "must be text of at most 200 characters", code="text_max_length", params={"max": 200})
    return value


def _one_of(field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        shown = ", ".join(allowed)
        raise InvalidInput(field, f"must be one of {shown}", code="one_of", params={"choices": shown})
    return value  # type: ignore[return-value]


# --- runs ------------------------------------------------------------------------------------------------------


def last_success(session: Session, workspace_id: int) -> ValueRun | None:
    return session.scalar(
        select(ValueRun)
        .where(ValueRun.workspace_id == workspace_id, ValueRun.status == "succeeded")
        .order_by(ValueRun.id.desc())
        .limit(1)
    )


def status(session: Session, workspace_id: int) -> dict[str, Any]:
    """The latest run, the last successful one (whose results are shown), and whether one is pending."""
    latest = session.scalar(
        select(ValueRun).where(ValueRun.workspace_id == workspace_id).order_by(ValueRun.id.desc()).limit(1)
    )
    pending = session.scalar(
        select(func.count())
        .select_from(ValueRun)
        .where(ValueRun.workspace_id == workspace_id, ValueRun.status.in_(("queued", "running")))
    )
    success = last_success(session, workspace_id)
    return {
        "latest": run_dict(latest) if latest else None,
        "last_success": run_dict(success) if success else None,
        "pending": bool(pending),
    }


def runs(session: Session, workspace_id: int, limit: int = 20) -> list[dict[str, Any]]:
    limit, _ = page(limit, 0)
    rows = session.scalars(
        select(ValueRun).where(ValueRun.workspace_id == workspace_id).order_by(ValueRun.id.desc()).limit(limit)
    )
    return [run_dict(r) for r in rows]


def _summary(session: Session, workspace_id: int) -> tuple[ValueRun | None, dict[str, Any]]:
    run = last_success(session, workspace_id)
    return run, (run.summary or {}) if run else {}


def _meta(run: ValueRun | None, summary: Mapping[str, Any], model: str) -> dict[str, Any]:
    return {
        "run_id": run.id if run else None,
        "computed_at": run.finished_at if run else None,
        "as_of": summary.get("as_of"),
        "note": (summary.get("notes") or {}).get(model) if run else "no value run yet",
    }


def overview(session: Session, workspace_id: int) -> dict[str, Any]:
    """RFM grid, pyramid, CLV summary and counts of the last run: the value page's first screen."""
    run, summary = _summary(session, workspace_id)
    return {
        **_meta(run, summary, "rfm"),
        "persons": summary.get("persons", 0),
        "buyers": summary.get("buyers", 0),
        "orders": summary.get("orders", 0),
        "rfm": summary.get("rfm"),
        "pyramid": summary.get("pyramid"),
        "clv": summary.get("clv"),
        "notes": summary.get("notes", {}),
        "settings": summary.get("settings"),
    }


def rfm_grid(session: Session, workspace_id: int) -> dict[str, Any]:
    run, summary = _summary(session, workspace_id)
    return {**_meta(run, summary, "rfm"), "rfm": summary.get("rfm"), "pyramid": summary.get("pyramid")}


def clv_summary(session: Session, workspace_id: int) -> dict[str, Any]:
    run, summary = _summary(session, workspace_id)
    return {**_meta(run, summary, "clv"), "clv": summary.get("clv")}


def clusters(session: Session, workspace_id: int) -> dict[str, Any]:
    run, summary = _summary(session, workspace_id)
    return {**_meta(run, summary, "clusters"), **(summary.get("clusters") or {"k": 0, "clusters": []})}


# --- people ------------------------------------------------------------------------------------------------------


def _person_row(row: ValuePerson, name: str = "") -> dict[str, Any]:
    out = {f: getattr(row, f) for f in PERSON_FIELDS}
    out["name"] = name
    return out


def people(
    session: Session,
    workspace_id: int,
    filters: Mapping[str, Any] | None = None,
    sort: str = "value_score",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """People with their value, filtered by segment, tier, tags, cluster or KOC; best first."""
    limit, offset = page(limit, offset)
    _one_of("sort", sort, tuple(SORTS))
    conditions = [ValuePerson.workspace_id == workspace_id]
    shown: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        if value in (None, ""):
            continue
        if key in FILTERS:
            column, allowed = FILTERS[key]
            conditions.append(column == _one_of(key, value, allowed))
        elif key == "cluster":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 100:
                raise InvalidInput(
                    "cluster", "must be a whole number from 0 to 99", code="int_range", params={"min": 0, "max": 99}
                )
            conditions.append(ValuePerson.cluster == value)
        elif key == "koc":
            if not isinstance(value, bool):
                raise InvalidInput("koc", "must be true or false", code="not_bool")
            conditions.append(ValuePerson.is_koc == value)
        else:
            raise InvalidInput(str(key)[:40], "unknown field", code="field_unknown")
        shown[key] = value
    where = and_(*conditions)
    total = session.scalar(select(func.count()).select_from(ValuePerson).where(where)) or 0
    order = SORTS[sort]
    rows = list(
        session.scalars(
            select(ValuePerson)
            .where(where)
            .order_by(order.nulls_last(), ValuePerson.super_id)
            .limit(limit)
            .offset(offset)
        )
    )
    names = names_of(session, [r.super_id for r in rows])
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "filters": shown,
        "sort": sort,
        "items": [_person_row(r, names.get(r.super_id, "")) for r in rows],
    }


def _products(session: Session, workspace_id: int, ids: set[str]) -> dict[str, ValueProduct]:
    if not ids:
        return {}
    rows = session.scalars(
        select(ValueProduct).where(ValueProduct.workspace_id == workspace_id, ValueProduct.product_id.in_(sorted(ids)))
    )
    return {p.product_id: p for p in rows}


def _product_dict(product_id: str, known: Mapping[str, ValueProduct]) -> dict[str, Any]:
    p = known.get(product_id)
    return {"product_id": product_id, "name": p.name if p else "", "category": p.category if p else ""}


def recommendations(session: Session, workspace_id: int, super_id: int) -> list[dict[str, Any]]:
    rows = list(
        session.scalars(
            select(ValueRecommendation)
            .where(ValueRecommendation.workspace_id == workspace_id, ValueRecommendation.super_id == super_id)
            .order_by(ValueRecommendation.rank)
        )
    )
    known = _products(session, workspace_id, {r.product_id for r in rows})
    return [{**_product_dict(r.product_id, known), "rank": r.rank, "score": r.score} for r in rows]


def person(session: Session, workspace_id: int, super_id: int, scheme: str = "https") -> dict[str, Any]:
    """One person's value: scores and tags, repurchase per category, recommendations, who referred them
    and whom they referred, their share link. A merged-away super ID answers for its current person."""
    from siyu.links.service import short_url

    current = current_persons(session, workspace_id, [super_id]).get(super_id)
    if current is None:
        raise NotFound(f"person {super_id}")
    row = session.get(ValuePerson, (workspace_id, current))
    cycles = session.scalars(
        select(ValueRepurchase)
        .where(ValueRepurchase.workspace_id == workspace_id, ValueRepurchase.super_id == current)
        .order_by(ValueRepurchase.next_expected.nulls_last(), ValueRepurchase.category)
    )
    referred = list(
        session.scalars(
            select(Referral)
            .where(Referral.workspace_id == workspace_id, Referral.referrer == current)
            .order_by(Referral.at)
            .limit(MAX_LIMIT)
        )
    )
    link = share_link_of(session, workspace_id, current)
    names = names_of(
        session, [current, *(r.referred for r in referred), *([row.referrer] if row and row.referrer else [])]
    )
    return {
        "super_id": current,
        "name": names.get(current, ""),
        "computed": row is not None,
        "value": _person_row(row) if row else None,
        "referrer_name": names.get(row.referrer, "") if row and row.referrer else None,
        "repurchase": [
            {
                "category": c.category,
                "purchases": c.purchases,
                "last_purchase": c.last_purchase,
                "interval_days": c.interval_days,
                "interval_source": c.interval_source,
                "next_expected": c.next_expected,
                "status": c.status,
            }
            for c in cycles
        ],
        "recommendations": recommendations(session, workspace_id, current),
        "referred": [{"super_id": r.referred, "name": names.get(r.referred, ""), "at": r.at} for r in referred],
        "share_link": None if link is None else {"link_id": link.id, "short_url": short_url(link, scheme)},
    }


# --- repurchase ----------------------------------------------------------------------------------------------------


def repurchase_due(
    session: Session,
    workspace_id: int,
    status: str = "due",
    category: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """People due (待复购) or overdue (已逾期) to rebuy a category, soonest expected date first."""
    limit, offset = page(limit, offset)
    _one_of("status", status, DUE_STATUSES)
    _text("category", category)
    where = [ValueRepurchase.workspace_id == workspace_id, ValueRepurchase.status == status]
    if category:
        where.append(ValueRepurchase.category == category)
    total = session.scalar(select(func.count()).select_from(ValueRepurchase).where(*where)) or 0
    rows = list(
        session.scalars(
            select(ValueRepurchase)
            .where(*where)
            .order_by(ValueRepurchase.next_expected, ValueRepurchase.super_id, ValueRepurchase.category)
            .limit(limit)
            .offset(offset)
        )
    )
    names = names_of(session, sorted({r.super_id for r in rows}))
    run, summary = _summary(session, workspace_id)
    return {
        **_meta(run, summary, "repurchase"),
        "status": status,
        "category": category,
        "total": total,
        "limit": limit,
        "offset": offset,
        "categories": (summary.get("repurchase") or {}).get("categories", []),
        "statuses": (summary.get("repurchase") or {}).get("statuses", []),
        "items": [
            {
                "super_id": r.super_id,
                "name": names.get(r.super_id, ""),
                "category": r.category,
                "purchases": r.purchases,
                "last_purchase": r.last_purchase,
                "interval_days": r.interval_days,
                "interval_source": r.interval_source,
                "next_expected": r.next_expected,
            }
            for r in rows
        ],
    }


# --- basket --------------------------------------------------------------------------------------------------------


def rules(
    session: Session, workspace_id: int, product: str | None = None, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Association rules, best lift first; with `product`, those with it on the left side."""
    limit, offset = page(limit, offset)
    _text("product", product)
    where = [ValueRule.workspace_id == workspace_id]
    if product:
        where.append(or_(ValueRule.first == product, ValueRule.second == product))
    total = session.scalar(select(func.count()).select_from(ValueRule).where(*where)) or 0
    rows = list(session.scalars(select(ValueRule).where(*where).order_by(ValueRule.rank).limit(limit).offset(offset)))
    known = _products(
        session, workspace_id, {p for r in rows for p in (r.first, r.second, r.consequent) if p is not None}
    )
    run, summary = _summary(session, workspace_id)
    return {
        **_meta(run, summary, "basket"),
        "basket": summary.get("basket"),
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [
            {
                "rank": r.rank,
                "antecedent": [_product_dict(p, known) for p in (r.first, r.second) if p is not None],
                "consequent": _product_dict(r.consequent, known),
                "orders": r.orders,
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
            }
            for r in rows
        ],
    }


def products(session: Session, workspace_id: int, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    limit, offset = page(limit, offset)
    where = ValueProduct.workspace_id == workspace_id
    total = session.scalar(select(func.count()).select_from(ValueProduct).where(where)) or 0
    rows = session.scalars(
        select(ValueProduct)
        .where(where)
        .order_by(ValueProduct.orders.desc(), ValueProduct.product_id)
        .limit(limit)
        .offset(offset)
    )
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [
            {"product_id": p.product_id, "name": p.name, "category": p.category, "orders": p.orders} for p in rows
        ],
    }


def bought_together(session: Session, workspace_id: int, product: str, limit: int = 10) -> dict[str, Any]:
    """Products most often bought with `product` (its one-item rules), by confidence."""
    limit, _ = page(limit, 0)
    if not isinstance(product, str) or not product.strip():
        raise InvalidInput("product", "must not be empty", code="value_product_empty")
    _text("product", product)
    known = _products(session, workspace_id, {product})
    if product not in known:
        raise NotFound(f"product {product[:100]}")
    rows = list(
        session.scalars(
            select(ValueRule)
            .where(ValueRule.workspace_id == workspace_id, ValueRule.first == product, ValueRule.second.is_(None))
            .order_by(ValueRule.confidence.desc(), ValueRule.lift.desc(), ValueRule.consequent)
            .limit(limit)
        )
    )
    known.update(_products(session, workspace_id, {r.consequent for r in rows}))
    return {
        "product": _product_dict(product, known),
        "orders": known[product].orders,
        "items": [
            {**_product_dict(r.consequent, known), "confidence": r.confidence, "lift": r.lift, "orders": r.orders}
            for r in rows
        ],
    }


# --- social ---------------------------------------------------------------------------------------------------------


def kocs(session: Session, workspace_id: int, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """KOCs (关键意见消费者), best value score first, with the weights that scored them."""
    result = people(session, workspace_id, {"koc": True}, "value_score", limit, offset)
    run, summary = _summary(session, workspace_id)
    return {**_meta(run, summary, "social"), "social": summary.get("social"), **result}


def tree(session: Session, workspace_id: int, root: int, max_nodes: int = MAX_TREE_NODES) -> dict[str, Any]:
    """The fission tree (裂变树) below `root`, breadth first, at most `max_nodes` people."""
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or not 1 <= max_nodes <= 5000:
        raise InvalidInput(
            "max_nodes", "must be a whole number from 1 to 5000", code="int_range", params={"min": 1, "max": 5000}
        )
    top = current_persons(session, workspace_id, [root]).get(root)
    if top is None:
        raise NotFound(f"person {root}")
    nodes: dict[int, dict[str, Any]] = {top: {"super_id": top, "children": []}}
    queue, truncated = deque([top]), False
    while queue:
        batch = [queue.popleft() for _ in range(min(len(queue), 200))]
        edges = session.execute(
            select(Referral.referrer, Referral.referred, Referral.at)
            .where(Referral.workspace_id == workspace_id, Referral.referrer.in_(batch))
            .order_by(Referral.at, Referral.referred)
        ).all()
        for referrer, referred, at in edges:
            if referred in nodes:
                continue
            if len(nodes) >= max_nodes:
                truncated = True
                break
            nodes[referred] = {"super_id": referred, "at": at, "children": []}
            nodes[referrer]["children"].append(nodes[referred])
            queue.append(referred)
        if truncated:
            break
    names = names_of(session, list(nodes))
    for pid, node in nodes.items():
        node["name"] = names.get(pid, "")
    return {"root": nodes[top], "size": len(nodes), "truncated": truncated}


def trees(session: Session, workspace_id: int) -> dict[str, Any]:
    """The largest fission trees of the last run, with their roots' names."""
    run, summary = _summary(session, workspace_id)
    social = summary.get("social") or {}
    largest = social.get("largest_trees", [])
    names = names_of(session, [t["root"] for t in largest])
    return {
        **_meta(run, summary, "social"),
        "social": social,
        "trees": [{**t, "name": names.get(t["root"], "")} for t in largest],
    }
