"""Value results as model tags (模型标签), written through the tags package's public API.

Each run writes the tags below with `siyu.tags.compute.set_model_tag_values(..., replace=True)`: the
definition is created on first use (kind "model", with its declared values), people gain, change or
lose their value, and the tag history records it with cause "model". Segments then read them like any
other tag ({"type": "tag", "tag": "churn_risk", "op": "eq", "value": "high"}).

An operator may disable one of these tags (it is then left alone) or may have a tag of another kind
under the same code (reported in the run's notes, never overwritten).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from siyu.errors import InvalidInput, NotFound
from siyu.tags import compute as tag_compute
from siyu.tags import definitions
from siyu.value import rfm
from siyu.value.persons import current_persons
from siyu.value.tags import CHURN_RISK, PREDICTED_VALUE, PURCHASE_INTENT, Tag

ACTOR = "customer-value"


@dataclass(frozen=True)
class ModelTag:
    code: str
    name: str
    name_en: str
    description: str
    column: str  # the value_persons column it comes from
    values: tuple[tuple[str, str, str], ...]  # (code, zh, en)
    only: frozenset[str] | None = None  # column values that give the tag (others: no tag)


def _from(tag: Tag, description: str) -> ModelTag:
    return ModelTag(tag.code, tag.zh, tag.en, description, tag.code, tuple((v.code, v.zh, v.en) for v in tag.values))


TAGS: tuple[ModelTag, ...] = (
    ModelTag(
        "rfm_segment",
        "RFM 客户分类",
        "RFM segment",
        "RFM 八类客户（窗口内有订单的客户）/ The eight RFM segments of customers who ordered in the window",
        "rfm_segment",
        tuple((s.code, s.zh, s.en) for s in rfm.SEGMENTS),
    ),
    ModelTag(
        "value_tier",
        "价值分层",
        "Value tier",
        "价值金字塔：VIP / 高 / 中 / 低 / Value pyramid: VIP, high, medium, low",
        "value_tier",
        tuple((t.code, t.zh, t.en) for t in rfm.TIERS),
    ),
    _from(CHURN_RISK, "按 P(alive) 划分（BG/NBD）/ From P(alive) of the BG/NBD model"),
    _from(PREDICTED_VALUE, "按预测 CLV 划分 / From the predicted customer lifetime value"),
    _from(PURCHASE_INTENT, "未来 30 天预期购买次数 ≥ 0.5 / Expected purchases in the next 30 days ≥ 0.5"),
    ModelTag(
        "repurchase_due",
        "复购提醒",
        "Repurchase due",
        "按个人或品类复购周期，已到或已过预计复购日 / Due or past the expected repurchase date of a category",
        "repurchase_status",
        (("due", "待复购", "Due"), ("overdue", "已逾期", "Overdue")),
        frozenset({"due", "overdue"}),
    ),
    ModelTag(
        "koc",
        "KOC 关键意见消费者",
        "KOC",
        "带来新客且综合价值分最高的人 / People who brought others in, with the best value scores",
        "is_koc",
        (("koc", "KOC", "KOC"),),
    ),
)


def cluster_tag(names: Sequence[tuple[str, str]]) -> ModelTag:
    """The cluster tag, its values named in words by this run's clusters (c0 is the largest)."""
    values = tuple((f"c{i}", f"{i + 1}. {zh}"[:100], f"{i + 1}. {en}"[:100]) for i, (zh, en) in enumerate(names))
    return ModelTag(
        "value_cluster",
        "客户分群",
        "Customer cluster",
        "k-means 客户分群，按特征用文字描述 / k-means clusters, described in words",
        "cluster",
        values or (("c0", "1", "1"),),
    )


def tag_codes() -> list[str]:
    return [t.code for t in TAGS] + ["value_cluster"]


def _value(tag: ModelTag, raw: Any) -> str | None:
    if raw is None or raw is False:
        return None
    if tag.column == "is_koc":
        return "koc"
    if tag.column == "cluster":
        return f"c{int(raw)}"
    text = str(raw)
    if tag.only is not None and text not in tag.only:
        return None
    return text


def _ensure(session: Session, workspace_id: int, tag: ModelTag) -> str | None:
    """Create or update the definition; the reason when it must be left alone."""
    values = [{"code": c, "name": zh, "name_en": en} for c, zh, en in tag.values]
    try:
        existing = definitions.get_tag(session, workspace_id, tag.code)
    except NotFound:
        definitions.create_tag(
            session,
            workspace_id,
            {
                "code": tag.code,
                "name": tag.name,
                "name_en": tag.name_en,
                "description": tag.description,
                "kind": "model",
                "values": values,
            },
            actor=ACTOR,
        )
        return None
    if existing.kind != "model":
        return f"a {existing.kind} tag named '{tag.code}' exists: left alone"
    if not existing.enabled:
        return "disabled by an operator: left alone"
    if existing.spec.get("values") != values:
        definitions.update_tag(session, workspace_id, tag.code, {"values": values}, actor=ACTOR)
    return None


def write_tags(
    session: Session,
    workspace_id: int,
    persons: pa.Table,
    cluster_names: Sequence[tuple[str, str]] = (),
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write the value tags (every one, or `only` those) from the run's person table; {code: counts or
    the reason it was skipped}."""
    ids = persons["super_id"].to_pylist()
    current = current_persons(session, workspace_id, ids)
    out: dict[str, Any] = {}
    for tag in (*TAGS, cluster_tag(cluster_names)):
        if only is not None and tag.code not in only:
            continue
        if tag.column not in persons.column_names:
            out[tag.code] = "not computed in this run"
            values: Mapping[int, str | None] = {}
        else:
            values = {
                current[i]: v
                for i, raw in zip(ids, persons[tag.column].to_pylist(), strict=True)
                if i in current and (v := _value(tag, raw)) is not None
            }
        try:
            reason = _ensure(session, workspace_id, tag)
            if reason is not None:
                out[tag.code] = reason
                continue
            result = tag_compute.set_model_tag_values(session, workspace_id, tag.code, values, replace=True)
        except InvalidInput as exc:
            out[tag.code] = str(exc)
            continue
        out[tag.code] = {k: getattr(result, k) for k in ("members", "gained", "lost", "changed")}
    return out
