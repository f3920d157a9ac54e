"""`siyu profiles`: show a person's profile, find one by identifier, read their timeline.

Profiles read the event store, which one process holds at a time: stop the server first, or use
the API (`GET /api/v1/profiles/...`) while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(help="Profiles: traits, computed attributes and timelines of persons.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
JsonOpt = typer.Option(False, "--json", help="print JSON")


@contextmanager
def _store() -> Iterator[Any]:
    from siyu.events.duckdb_store import DuckDBEventStore, StoreLocked

    path = common.settings().events_path
    try:
        store = DuckDBEventStore(path, read_only=True) if Path(path).exists() else DuckDBEventStore(":memory:")
    except StoreLocked as exc:
        fail(f"{exc}; use GET /api/v1/profiles/... while the server runs")
    try:
        yield store
    finally:
        store.close()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _print_profile(p: dict[str, Any]) -> None:
    c = p["computed"]
    typer.secho(f"{p['name'] or '(unnamed)'}  super ID {p['super_id']}", bold=True)
    if p["merged_ids"]:
        typer.echo(f"  merged: {', '.join(str(i) for i in p['merged_ids'])}")
    typer.echo("identifiers:")
    for i in p["identifiers"]:
        typer.echo(f"  {i['type']:<15} {i['value']}{'  (quarantined)' if i['quarantined'] else ''}")
    typer.echo("traits:")
    for tr in p["traits"]:
        typer.echo(f"  {tr['key']:<20} {json.dumps(tr['value'], ensure_ascii=False)}  [{tr['strategy']}]")
    typer.echo(
        f"activity: {c['event_count']} events, {c['click_count']} clicks, "
        f"first seen {_when(c['first_seen'])}, last seen {_when(c['last_seen'])}"
    )
    typer.echo(f"orders: {c['order_count']}, revenue {c['revenue']:.2f} {c['currency'] or ''}".rstrip())
    sources = ", ".join(f"{s['name'] or s['kind'] or 'no source'} ({s['count']})" for s in c["sources"])
    typer.echo(f"touchpoints: {sources or '—'}")


@app.command("show")
def show(
    super_id: int = typer.Argument(..., help="the person's super ID"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Identifiers, traits (with their strategy) and computed attributes of a person."""
    from siyu.profiles import service

    with friendly_errors(), _store() as store, common.database().session() as session:
        data = service.profile_of(session, store, common.workspace_id(session, workspace), super_id)
    if as_json:
        _print_json(data)
    else:
        _print_profile(data)


@app.command("lookup")
def lookup(
    id_type: str = typer.Argument(..., metavar="TYPE", help="phone, email, member_id, unionid, openid, …"),
    value: str = typer.Argument(..., help="typed as you like: '138 0013 8000' finds +8613800138000"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The profile holding an identifier."""
    from siyu.profiles import service

    with friendly_errors(), _store() as store, common.database().session() as session:
        data = service.find_by_identifier(session, store, common.workspace_id(session, workspace), id_type, value)
    if data is None:
        fail(f"no profile holds {id_type} '{value}'")
    if as_json:
        _print_json(data)
    else:
        _print_profile(data)


@app.command("timeline")
def timeline(
    super_id: int = typer.Argument(..., help="the person's super ID"),
    limit: int = typer.Option(20, help="items per page (1-200)"),
    offset: int = typer.Option(0, help="items to skip"),
    lang: str = typer.Option("zh-CN", help="zh-CN or en: the language of the summaries"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Events and short-link clicks of a person, newest first."""
    from siyu.i18n import LOCALES
    from siyu.profiles import service

    if lang not in LOCALES:
        fail(f"--lang must be one of {', '.join(LOCALES)}")
    with friendly_errors(), _store() as store, common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        data = service.timeline(session, store, ws, super_id, limit, offset, lang)
    if as_json:
        _print_json(data)
        return
    for item in data["items"]:
        where = item["source_name"] or item["source_kind"] or "—"
        typer.echo(f"{_when(item['timestamp'])}  {where:<12} {item['summary']}")
    shown = f"{data['offset'] + 1}-{data['offset'] + len(data['items'])}" if data["items"] else "0"
    typer.echo(f"{shown} of {data['total']} (super ID {data['super_id']})")
