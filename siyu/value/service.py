"""Customer-value runs per workspace: read the event store, run the models, store the results, write tags.

    run = service.run(db, store, workspace_id, cause="manual", actor="alice@example.com")

A run reads only (a cursor of its own on the event store), computes everything in memory
(siyu.value.pipeline), then replaces the workspace's value tables and writes the value tags in one SQL
transaction — readers see the previous run or this one, never half of each. Its row in `value_runs`
says how it went; a failure keeps the previous results and records the reason. Runs of the server
come from its worker (siyu.value.worker), which never lets two overlap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from siyu.db import Database, utcnow
from siyu.errors import NotFound, SiyuError
from siyu.events.store import EventStore
from siyu.identity.bulk import bulk_insert
from siyu.value import config, pipeline, share, social, tagging
from siyu.value.models import (
    Referral,
    ValuePerson,
    ValueProduct,
    ValueRecommendation,
    ValueRepurchase,
    ValueRule,
    ValueRun,
)
from siyu.workspaces.models import Workspace

log = logging.getLogger("siyu.value")

CAUSES = ("schedule", "manual", "demo")
# columns of value_persons a run may leave out, and what they hold then
_PERSON_DEFAULTS = {
    "orders": 0,
    "revenue": 0.0,
    "average_order_value": 0.0,
    "categories": 0,
    "active_days": 0,
    "direct_referrals": 0,
    "descendants": 0,
    "pagerank": 0.0,
    "commercial_value": 0.0,
    "commercial_score": 0.0,
    "social_score": 0.0,
    "value_score": 0.0,
    "is_koc": False,
}


def run_dict(run: ValueRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "cause": run.cause,
        "requested_by": run.requested_by,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "seconds": run.seconds,
        "persons": run.persons,
        "orders": run.orders,
        "summary": run.summary or {},
        "error": run.error or None,
    }


def queue_run(session: Session, workspace_id: int, cause: str = "manual", actor: str = "") -> ValueRun:
    """A queued run for the worker; an already queued one of the workspace is returned instead."""
    if session.get(Workspace, workspace_id) is None:
        raise NotFound(f"workspace {workspace_id}")
    waiting = session.scalar(
        select(ValueRun).where(ValueRun.workspace_id == workspace_id, ValueRun.status == "queued").limit(1)
    )
    if waiting is not None:
        return waiting
    row = ValueRun(workspace_id=workspace_id, status="queued", cause=cause, requested_by=actor[:200], summary={})
    session.add(row)
    session.flush()
    return row


def run(
    db: Database,
    store: EventStore,
    workspace_id: int,
    *,
    cause: str = "manual",
    actor: str = "",
    run_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Compute and store the workspace's value now (or a queued run `run_id`); the finished run."""
    now = now or datetime.now(UTC)
    with db.session() as session:
        row = session.get(ValueRun, run_id) if run_id is not None else None
        if row is None:
            row = queue_run(session, workspace_id, cause, actor)
        row.status, row.started_at = "running", utcnow()
        cfg = config.load(session, workspace_id)
        owners = share.owners(session, workspace_id)
        run_id = row.id
    started = time.perf_counter()
    try:
        with store.reading() as con:
            computed = pipeline.compute(con, workspace_id, cfg, owners, now)
        with db.session() as session:
            replace_results(session, workspace_id, computed)
            names = [(c["name_zh"], c["name_en"]) for c in computed.summary.get("clusters", {}).get("clusters", [])]
            tags = tagging.write_tags(session, workspace_id, computed.persons, names)
            row = session.get(ValueRun, run_id)
            row.status, row.finished_at = "succeeded", utcnow()
            row.seconds = round(time.perf_counter() - started, 3)
            row.persons, row.orders = computed.persons.num_rows, computed.orders
            row.summary = {**computed.summary, "tags": tags}
            return run_dict(row)
    except Exception as exc:
        if not isinstance(exc, SiyuError):
            log.exception("value run %s of workspace %s failed", run_id, workspace_id)
        with db.session() as session:
            row = session.get(ValueRun, run_id)
            row.status, row.finished_at = "failed", utcnow()
            row.seconds = round(time.perf_counter() - started, 3)
            row.error = str(exc)[:2000] or type(exc).__name__
            return run_dict(row)


# --- storing a run's results ---------------------------------------------------------------------------------


def _binders(session: Session, table: Table, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor (UTC datetimes, dates on SQLite), looked up once per table."""
    dialect = session.get_bind().dialect
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def _replace(session: Session, model: type, workspace_id: int, data: pa.Table, columns: Sequence[str]) -> None:
    """Delete the workspace's rows of `model` and bulk-insert `data` (its columns named like the table's)."""
    session.execute(delete(model).where(model.workspace_id == workspace_id))
    table = model.__table__
    n = data.num_rows
    lists = []
    for name in columns:
        if name in data.column_names:
            values = data[name].to_pylist()
            default = _PERSON_DEFAULTS.get(name) if model is ValuePerson else None
            lists.append(values if default is None else [default if v is None else v for v in values])
        else:
            lists.append([_PERSON_DEFAULTS.get(name)] * n if model is ValuePerson else [None] * n)
    binders = _binders(session, table, columns)
    for i, bind in enumerate(binders):
        if bind is not None:
            lists[i] = [None if v is None else bind(v) for v in lists[i]]
    bulk_insert(session, table, ("workspace_id", *columns), zip([workspace_id] * n, *lists, strict=True))


def _columns(model: type) -> list[str]:
    return [c.name for c in model.__table__.columns if c.name not in ("workspace_id", "id")]


def replace_results(session: Session, workspace_id: int, computed: pipeline.Computed) -> None:
    _replace(session, ValuePerson, workspace_id, computed.persons, _columns(ValuePerson))
    _replace(session, ValueRepurchase, workspace_id, computed.repurchase, _columns(ValueRepurchase))
    _replace(session, ValueProduct, workspace_id, computed.products, _columns(ValueProduct))
    _replace(session, ValueRule, workspace_id, computed.rules, _columns(ValueRule))
    _replace(session, ValueRecommendation, workspace_id, computed.recommendations, _columns(ValueRecommendation))
    edges = computed.referrals
    at = pa.array([t.replace(tzinfo=UTC) for t in edges["ts"].to_pylist()], pa.timestamp("us", tz="UTC"))
    _replace(session, Referral, workspace_id, edges.append_column("at", at), _columns(Referral))


# --- rescoring after the weights change --------------------------------------------------------------------------


def rescore(session: Session, workspace_id: int) -> int:
    """Apply the workspace's current weights and KOC count to the stored commercial value and PageRank:
    the value scores, KOC flags and the KOC tag change at once, without a full run. How many people."""
    cfg = config.load(session, workspace_id)
    rows = session.execute(
        select(ValuePerson.super_id, ValuePerson.commercial_value, ValuePerson.pagerank, ValuePerson.direct_referrals)
        .where(ValuePerson.workspace_id == workspace_id)
        .order_by(ValuePerson.super_id)
    ).all()
    if not rows:
        return 0
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    commercial = np.array([r[1] for r in rows], dtype=float)
    influence = np.array([r[2] for r in rows], dtype=float)
    direct = np.array([r[3] for r in rows], dtype=np.int64)
    score = social.value_score(commercial, influence, cfg.weights)
    koc = pipeline.koc_mask(score, direct, cfg.koc_top)
    table = ValuePerson.__table__
    session.connection().execute(
        update(table)
        .where(table.c.workspace_id == workspace_id, table.c.super_id == bindparam("b_super"))
        .values(value_score=bindparam("b_score"), is_koc=bindparam("b_koc")),
        [
            {"b_super": int(i), "b_score": float(s), "b_koc": bool(k)}
            for i, s, k in zip(ids.tolist(), score.tolist(), koc.tolist(), strict=True)
        ],
    )
    persons = pa.table({"super_id": ids, "is_koc": koc})
    tagging.write_tags(session, workspace_id, persons, only=("koc",))
    return len(ids)
