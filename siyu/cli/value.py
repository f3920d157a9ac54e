"""`siyu value`: customer value (客户价值) — run the models, read RFM, CLV, clusters, repurchase, basket
rules, KOCs and fission trees, set the weights, hand out share links, build lookalike audiences.

Results are stored in SQL, so every reading command works while the server runs. `run` reads the event
store and needs it to itself (stop the server, or `POST /api/v1/value/run`); `lookalike` computes the
new segment's members when the store is free, otherwise the server does at its next tag run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(help="Customer value: RFM, CLV, clusters, repurchase, basket, KOCs, lookalike.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def _session(workspace: str | None) -> Iterator[tuple[Any, int]]:
    with friendly_errors(), common.database().session() as session:
        yield session, common.workspace_id(session, workspace)


@contextmanager
def _runtime() -> Iterator[Any]:
    """A Runtime of our own (not started): the event store to ourselves, or a clear message."""
    from siyu.events.duckdb_store import StoreLocked
    from siyu.runtime import Runtime

    settings = common.settings()
    try:
        runtime = Runtime.create(settings)
    except StoreLocked:
        fail(
            "the event store is in use by the running server. Run it through the API instead:\n"
            f"  curl -X POST -H 'Authorization: Bearer <API key>' {settings.base_url}/api/v1/value/run\n"
            "or stop the server and run this command again"
        )
    try:
        yield runtime
    finally:
        runtime.close()


def _money(value: Any) -> str:
    return "—" if value is None else f"¥{value:,.2f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


@app.command("run")
def run(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Recompute the workspace's customer value now (stop the server first) and write the value tags."""
    with _session(workspace) as (_, ws):
        pass
    with friendly_errors(), _runtime() as runtime:
        result = runtime.value.run_now(ws, actor="cli")
    if as_json:
        _print_json(result)
    else:
        s = result["summary"]
        typer.echo(f"run {result['id']}: {result['status']} in {result['seconds']} s")
        if result["error"]:
            typer.secho(f"  error: {result['error']}", fg=typer.colors.RED)
        else:
            typer.echo(f"  people {result['persons']}, orders {result['orders']}, as of {s.get('as_of')}")
            for model, note in (s.get("notes") or {}).items():
                typer.echo(f"  {model}: skipped — {note}")
    if result["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("status")
def status(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """The latest run and the last successful one."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.status(session, ws)
    if as_json:
        _print_json(data)
        return
    for label in ("latest", "last_success"):
        r = data[label]
        if r is None:
            typer.echo(f"{label}: none")
        else:
            typer.echo(f"{label}: run {r['id']} {r['status']} ({r['cause']}) at {r['finished_at'] or r['created_at']}")
    if data["pending"]:
        typer.echo("a run is queued or running")


@app.command("rfm")
def rfm_grid(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """The eight RFM segments (RFM 八类客户) and the value pyramid of the last run."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.rfm_grid(session, ws)
    if as_json:
        _print_json(data)
        return
    if not data["rfm"]:
        fail(f"no RFM results: {data['note'] or 'run `siyu value run` first'}")
    typer.echo(f"RFM, {data['rfm']['window_days']}-day window, as of {data['as_of']}")
    for c in data["rfm"]["grid"]:
        typer.echo(
            f"  {c['name_zh']:<8} {c['name_en']:<22} {c['customers']:>6} people  {_pct(c['customer_share']):>6}"
            f"  revenue {_money(c['revenue']):>14} {_pct(c['revenue_share']):>6}"
        )
    typer.echo(f"value pyramid ({data['pyramid']['method']}):")
    for tier in data["pyramid"]["tiers"]:
        typer.echo(f"  {tier['name_zh']:<8} {tier['customers']:>6} people  {_pct(tier['value_share']):>6} of value")


@app.command("clv")
def clv(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """CLV and churn risk: fitted models and distributions."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.clv_summary(session, ws)
    if as_json or not data["clv"]:
        _print_json(data)
        return
    c = data["clv"]
    typer.echo(
        f"{c['people']} people, predicted 12-month value {_money(c['total_clv'])}, mean P(alive) {c['mean_p_alive']}"
    )
    typer.echo(
        f"expected orders: next 30 days {c['expected_purchases_30d']}, next 90 days {c['expected_purchases_90d']}"
    )
    typer.echo("churn risk: " + ", ".join(f"{r['name_zh']} {r['count']}" for r in c["churn_risk"]))


@app.command("people")
def people(
    segment: str = typer.Option(None, help="RFM segment code, e.g. important_value"),
    tier: str = typer.Option(None, help="vip, high, medium or low"),
    churn_risk: str = typer.Option(None, help="high, medium or low"),
    cluster: int = typer.Option(None),
    koc: bool = typer.Option(None, help="only KOCs"),
    sort: str = typer.Option("value_score", help="value_score, clv, revenue, monetary, recency, p_alive, referrals"),
    limit: int = typer.Option(20),
    offset: int = typer.Option(0),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """People with their value, filtered and sorted."""
    from siyu.value import queries

    filters = {"segment": segment, "tier": tier, "churn_risk": churn_risk, "cluster": cluster, "koc": koc}
    with _session(workspace) as (session, ws):
        data = queries.people(session, ws, filters, sort, limit, offset)
    if as_json:
        _print_json(data)
        return
    for p in data["items"]:
        typer.echo(
            f"{p['super_id']:>8}  {p['name'][:12]:<12} {p['rfm_segment'] or '—':<22} {p['value_tier'] or '—':<7}"
            f" CLV {_money(p['clv']):>12}  score {p['value_score']:5.1f}"
        )
    typer.echo(f"{len(data['items'])} of {data['total']}")


@app.command("person")
def person(
    super_id: int = typer.Argument(..., help="super ID"), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt
):
    """One person's value: scores, tags, repurchase per category, recommendations, referrals."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.person(session, ws, super_id)
    if as_json or data["value"] is None:
        _print_json(data)
        return
    v = data["value"]
    typer.secho(f"{data['name'] or '(unnamed)'}  super ID {data['super_id']}", bold=True)
    typer.echo(
        f"  RFM {v['rfm_segment'] or '—'} (R{v['r_score']} F{v['f_score']} M{v['m_score']}), tier {v['value_tier']}"
    )
    typer.echo(
        f"  orders {v['orders']}, revenue {_money(v['revenue'])}, CLV {_money(v['clv'])}, P(alive) {v['p_alive']}"
    )
    typer.echo(f"  churn risk {v['churn_risk']}, value score {v['value_score']:.1f}{'  KOC' if v['is_koc'] else ''}")
    for c in data["repurchase"]:
        typer.echo(f"  {c['category']}: every {c['interval_days']} days, next {c['next_expected']} ({c['status']})")
    for r in data["recommendations"]:
        typer.echo(f"  recommend {r['name'] or r['product_id']} ({r['score']:.2f})")


@app.command("clusters")
def clusters(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Customer clusters, described in words."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.clusters(session, ws)
    if as_json:
        _print_json(data)
        return
    for c in data["clusters"]:
        typer.echo(f"  {c['cluster']}  {c['size']:>6} ({_pct(c['share'])})  {c['name_zh']} / {c['name_en']}")


@app.command("repurchase")
def repurchase(
    status: str = typer.Option("due", help="due or overdue"),
    category: str = typer.Option(None),
    limit: int = typer.Option(50),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who is due (待复购) or overdue to rebuy which category."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.repurchase_due(session, ws, status, category, limit)
    if as_json:
        _print_json(data)
        return
    for r in data["items"]:
        typer.echo(f"{r['super_id']:>8}  {r['name'][:12]:<12} {r['category']:<12} next {r['next_expected']}")
    typer.echo(f"{len(data['items'])} of {data['total']} {status}")


@app.command("rules")
def rules(
    product: str = typer.Option(None, help="only rules with this product on the left"),
    limit: int = typer.Option(20),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Association rules (A → B), best lift first."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.rules(session, ws, product, limit)
    if as_json:
        _print_json(data)
        return
    for r in data["items"]:
        left = " + ".join(p["name"] or p["product_id"] for p in r["antecedent"])
        right = r["consequent"]["name"] or r["consequent"]["product_id"]
        typer.echo(
            f"  {left} → {right}   confidence {r['confidence']:.2f}  lift {r['lift']:.2f}  ({r['orders']} orders)"
        )


@app.command("together")
def together(
    product: str = typer.Argument(..., help="product id"), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt
):
    """Products bought together with a product."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.bought_together(session, ws, product)
    if as_json:
        _print_json(data)
        return
    for r in data["items"]:
        typer.echo(f"  {r['name'] or r['product_id']}  confidence {r['confidence']:.2f}  lift {r['lift']:.2f}")


@app.command("kocs")
def kocs(limit: int = typer.Option(20), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """KOCs (关键意见消费者) by value score."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.kocs(session, ws, limit)
    if as_json:
        _print_json(data)
        return
    for p in data["items"]:
        typer.echo(
            f"{p['super_id']:>8}  {p['name'][:12]:<12} score {p['value_score']:5.1f}  brought {p['direct_referrals']}"
            f" (tree {p['descendants']})  CLV {_money(p['clv'])}"
        )


@app.command("tree")
def tree(
    root: int = typer.Argument(None, help="super ID of the root (default: list the largest trees)"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Fission trees (裂变树): the largest ones, or the tree below one person."""
    from siyu.value import queries

    with _session(workspace) as (session, ws):
        data = queries.trees(session, ws) if root is None else queries.tree(session, ws, root)
    if as_json:
        _print_json(data)
        return
    if root is None:
        for t in data["trees"]:
            typer.echo(f"{t['root']:>8}  {t['name'][:12]:<12} {t['size']} people, {t['depth']} levels")
        return

    def show(node: dict, depth: int) -> None:
        typer.echo("  " * depth + f"└ {node['name'] or '#' + str(node['super_id'])} ({node['super_id']})")
        for child in node["children"]:
            show(child, depth + 1)

    show(data["root"], 0)


@app.command("settings")
def settings(
    window_days: int = typer.Option(None, help="RFM window in days"),
    pyramid_method: str = typer.Option(None, help="revenue_share, customer_share or score"),
    commercial_weight: float = typer.Option(None, help="weight of commercial value"),
    social_weight: float = typer.Option(None, help="weight of social value"),
    koc_top: int = typer.Option(None, help="how many KOCs to mark"),
    share_url: str = typer.Option(None, help="landing page of personal share links"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show the value settings, or change them (new weights rescore everyone at once)."""
    from siyu.value import config, service

    changes = {
        k: v
        for k, v in {
            "window_days": window_days,
            "pyramid_method": pyramid_method,
            "commercial_weight": commercial_weight,
            "social_weight": social_weight,
            "koc_top": koc_top,
            "share_url": share_url,
        }.items()
        if v is not None
    }
    with _session(workspace) as (session, ws):
        before = config.load(session, ws)
        after = config.save(session, ws, changes, actor="cli") if changes else before
        data = after.as_dict()
        if (before.weights, before.koc_top) != (after.weights, after.koc_top):
            data["rescored"] = service.rescore(session, ws)
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        typer.echo(f"  {key}: {value}")


@app.command("share-link")
def share_link(
    super_id: int = typer.Argument(..., help="super ID of the person"),
    destination: str = typer.Option(None, help="landing page (default: the workspace's share page)"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The person's personal share link (created on first use): who arrives through it was referred by them."""
    from siyu.links import service as links
    from siyu.value import share

    base = common.settings()
    scheme = "https" if base.base_url.startswith("https") else "http"
    with _session(workspace) as (session, ws):
        shared = share.get_or_create(session, links.Context(ws, "cli", base.base_host), super_id, destination)
        data = {"super_id": shared.super_id, "created": shared.created, "link": links.link_as_dict(shared.link, scheme)}
    if as_json:
        _print_json(data)
        return
    typer.echo(
        f"{data['link']['short_url']}  →  {data['link']['destination_url']}" + ("  (new)" if shared.created else "")
    )


@app.command("lookalike")
def lookalike(
    seed_segment_id: int = typer.Argument(..., help="id of the seed segment"),
    top: int = typer.Option(None, "--top", help="the N most similar people"),
    threshold: float = typer.Option(None, help="everyone scoring at least this (0–1)"),
    name: str = typer.Option(None, help="name of the new segment"),
    model: str = typer.Option(None, help="logistic (default) or gbdt"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a lookalike audience from a seed segment and save it as a new segment."""
    from siyu.events.duckdb_store import StoreLocked
    from siyu.runtime import Runtime
    from siyu.value import audiences

    raw = {
        k: v
        for k, v in {
            "seed_segment_id": seed_segment_id,
            "top_n": top,
            "threshold": threshold,
            "name": name,
            "model": model,
        }.items()
        if v is not None
    }
    with _session(workspace) as (_, ws):
        pass
    runtime = None
    try:
        runtime = Runtime.create(common.settings())
    except StoreLocked:
        typer.echo("(the server holds the event store: it computes the new segment's members at its next tag run)")
    try:
        with friendly_errors():
            made = audiences.create(
                common.database(), ws, raw, actor="cli", refresh=runtime.tags.recompute if runtime else None
            )
    finally:
        if runtime is not None:
            runtime.close()
    if as_json:
        _print_json(made)
        return
    seg = made["segment"]
    typer.echo(f"segment {seg['id']} “{seg['name']}”: {made['audience']} people from {made['seeds']} seeds")
    typer.echo(f"held-out AUC {made['auc']:.3f} (a floor: some of the others are lookalikes)")
    for f in made["features"][:5]:
        typer.echo(f"  {f['feature']:<20} {f['importance']:.3f} {'+' if f['direction'] > 0 else '−'}")
