"""Lookalike audiences (相似人群扩展) saved as segments: pick a seed segment, train, score everyone else.

The features are the people's stored value (the last run's `value_persons`): recency, orders, spend,
order value, tenure, categories, active days, predicted CLV and P(alive), referrals — so a lookalike
needs a value run, but no event-store access of its own. The model (siyu.value.lookalike) is trained
seed vs everyone else with out-of-fold scores; it reports the held-out AUC (a floor: some "others"
are lookalikes) and the features that drive the score.

The audience becomes a segment through the tags package's public API — the adapter this module is:
a model tag `lookalike_<id>` holds the audience, and a new segment's rule is "has that tag". The
tag/segment worker then computes the segment's members like any other (`refresh`), so it can be
previewed, exported and snapshotted the usual way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.errors import FieldError, InvalidInput, NotFound
from siyu.i18n import register
from siyu.segments import service as segments
from siyu.segments.models import SegmentMember
from siyu.tags import compute as tag_compute
from siyu.tags import definitions
from siyu.value import lookalike as model
from siyu.value.models import Lookalike, ValuePerson
from siyu.value.persons import current_persons

FIELDS = {"seed_segment_id", "top_n", "threshold", "name", "model"}
MAX_TOP = 1_000_000
ACTOR = "customer-value"
# value_persons column → feature name (the words siyu.value.clusters knows), and what a missing value means
FEATURES: dict[str, tuple[str, float]] = {
    "days_since_order": ("recency_days", 3650.0),
    "orders": ("frequency", 0.0),
    "revenue": ("monetary", 0.0),
    "average_order_value": ("average_order_value", 0.0),
    "tenure_days": ("tenure_days", 0.0),
    "categories": ("categories", 0.0),
    "active_days": ("active_days", 0.0),
    "clv": ("clv", 0.0),
    "p_alive": ("p_alive", 0.0),
    "direct_referrals": ("referrals", 0.0),
}

register(
    {
        "error.value_seed_unknown": ("本工作区没有人群 {id}", "no segment {id} in this workspace"),
        "error.value_no_run": (
            "还没有客户价值数据：请先运行一次价值计算",
            "there are no value results yet: run the value computation first",
        ),
        "error.value_seed_small": (
            "种子人群中有价值数据的只有 {n} 人，至少需要 {min} 人",
            "only {n} seed people have value data; at least {min} are needed",
        ),
        "error.value_lookalike_model": ("只能是以下之一：{choices}", "must be one of {choices}"),
        "error.value_threshold": ("必须是 0 到 1 之间的数", "must be a number from 0 to 1"),
    }
)


def _checked(raw: Mapping[str, Any]) -> dict[str, Any]:
    errors = [FieldError(str(k)[:40], "unknown field", "field_unknown") for k in raw if k not in FIELDS]
    seed = raw.get("seed_segment_id")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 1 <= seed <= 2**62:
        errors.append(FieldError("seed_segment_id", "must be a segment id (a whole number)", "whole_number"))
    top = raw.get("top_n")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP):
        errors.append(
            FieldError("top_n", f"must be a whole number from 1 to {MAX_TOP}", "int_range", {"min": 1, "max": MAX_TOP})
        )
    threshold = raw.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not 0 <= threshold <= 1
    ):
        errors.append(FieldError("threshold", "must be a number from 0 to 1", "value_threshold"))
    kind = raw.get("model") or "logistic"
    if kind not in ("logistic", "gbdt"):
        errors.append(
            FieldError("model", "must be one of logistic, gbdt", "value_lookalike_model", {"choices": "logistic, gbdt"})
        )
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or len(name.strip()) > segments.MAX_NAME or "\x00" in name):
        errors.append(
            FieldError(
                "name",
                f"must be text of 1 to {segments.MAX_NAME} characters",
                "segment_name",
                {"max": segments.MAX_NAME},
            )
        )
    if errors:
        raise InvalidInput(errors)
    return {"seed": seed, "top_n": top, "threshold": threshold, "model": kind, "name": (name or "").strip()}


def _population(session: Session, workspace_id: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    columns = [getattr(ValuePerson, c) for c in FEATURES]
    rows = session.execute(
        select(ValuePerson.super_id, *columns)
        .where(ValuePerson.workspace_id == workspace_id)
        .order_by(ValuePerson.super_id)
    ).all()
    if not rows:
        raise InvalidInput(
            "seed_segment_id", "there are no value results yet: run the value computation first", code="value_no_run"
        )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    fills = [fill for _, fill in FEATURES.values()]
    x = np.array([[fill if v is None else float(v) for v, fill in zip(r[1:], fills, strict=True)] for r in rows])
    keep = [j for j in range(x.shape[1]) if x[:, j].std() > 0]  # a constant feature says nothing
    names = [name for name, _ in FEATURES.values()]
    return ids, x[:, keep], [names[j] for j in keep]


def lookalike_dict(row: Lookalike) -> dict[str, Any]:
    return {
        "id": row.id,
        "seed_segment_id": row.seed_segment_id,
        "seed_name": row.seed_name,
        "segment_id": row.segment_id,
        "tag_code": row.tag_code,
        "model": row.model,
        "top_n": row.top_n,
        "threshold": row.threshold,
        "seeds": row.seeds,
        "candidates": row.candidates,
        "audience": row.audience,
        "auc": row.auc,
        "features": row.features,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def list_lookalikes(session: Session, workspace_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Lookalike).where(Lookalike.workspace_id == workspace_id).order_by(Lookalike.id.desc()).limit(limit)
    )
    return [lookalike_dict(r) for r in rows]


def create(
    db: Database,
    workspace_id: int,
    raw: Mapping[str, Any],
    actor: str = "",
    refresh: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Train on the seed segment, save the audience as a new segment; the lookalike and its segment.

    `refresh(workspace_id)` computes the new segment's members (the tag worker's recompute); without
    it the segment fills at the next scheduled tag run.
    """
    values = _checked(raw)
    with db.session() as session:
        try:
            seed = segments.get_segment(session, workspace_id, values["seed"])
        except NotFound:
            raise InvalidInput(
                "seed_segment_id",
                f"no segment {values['seed']} in this workspace",
                code="value_seed_unknown",
                params={"id": values["seed"]},
            ) from None
        ids, x, names = _population(session, workspace_id)
        members = set(session.scalars(select(SegmentMember.super_id).where(SegmentMember.segment_id == seed.id)))
        is_seed = np.isin(ids, np.fromiter(members, dtype=np.int64, count=len(members)))
        if is_seed.sum() < model.MIN_SEEDS:
            raise InvalidInput(
                "seed_segment_id",
                f"only {int(is_seed.sum())} seed people have value data; at least {model.MIN_SEEDS} are needed",
                code="value_seed_small",
                params={"n": int(is_seed.sum()), "min": model.MIN_SEEDS},
            )
        try:
            result = model.lookalike(
                x, is_seed, names, model=values["model"], top=values["top_n"], threshold=values["threshold"]
            )
        except InvalidInput as exc:  # the model names its own parameters; the caller gave a segment
            raise InvalidInput(
                [
                    FieldError("seed_segment_id" if e.field in ("seed", "folds") else e.field, e.reason)
                    for e in exc.errors
                ]
            ) from None
        audience = ids[result.audience]
        row = Lookalike(
            workspace_id=workspace_id,
            seed_segment_id=seed.id,
            seed_name=seed.name[:100],
            model=values["model"],
            top_n=values["top_n"],
            threshold=values["threshold"],
            seeds=int(is_seed.sum()),
            candidates=int((~is_seed).sum()),
            audience=len(audience),
            auc=round(result.auc, 4),
            features=[
                {"feature": f, "importance": round(float(i), 4), "direction": int(d)}
                for f, i, d in zip(
                    *(result.importance[c].to_pylist() for c in ("feature", "importance", "direction")), strict=True
                )
            ],
            created_by=actor[:200],
        )
        session.add(row)
        session.flush()
        row.tag_code = f"lookalike_{row.id}"
        segment = _save_audience(session, workspace_id, row, values["name"], audience.tolist(), actor)
        row.segment_id = segment.id
        out = lookalike_dict(row)
        segment_id = segment.id
    if refresh is not None:
        refresh(workspace_id)
    with db.session() as session:
        out["segment"] = segments.segment_dict(segments.get_segment(session, workspace_id, segment_id))
    return out


def _save_audience(session: Session, workspace_id: int, row: Lookalike, name: str, audience: list[int], actor: str):
    label = name or f"相似人群 · {row.seed_name}"[: segments.MAX_NAME - 8] + f" #{row.id}"
    definitions.create_tag(
        session,
        workspace_id,
        {
            "code": row.tag_code,
            "name": f"相似人群 #{row.id}",
            "name_en": f"Lookalike #{row.id}",
            "description": f"种子人群 / seed segment: {row.seed_name}"[:500],
            "kind": "model",
            "values": [{"code": "member", "name": "相似人群成员", "name_en": "Lookalike member"}],
        },
        actor=ACTOR,
    )
    current = current_persons(session, workspace_id, audience)  # merged since the run: their survivor
    members = {current[i]: "member" for i in audience if i in current}
    tag_compute.set_model_tag_values(session, workspace_id, row.tag_code, members, replace=True)
    return segments.create_segment(
        session,
        workspace_id,
        {
            "name": label,
            "description": f"相似人群 (lookalike) · AUC {row.auc:.3f} · {row.audience} 人 / people",
            "rule": {"type": "tag", "tag": row.tag_code},
        },
        actor=actor,
    )
