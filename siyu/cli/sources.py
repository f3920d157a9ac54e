"""`siyu sources`: create and list event sources; a new source's write key is printed once."""

from __future__ import annotations

import json

import typer

from siyu.cli import common
from siyu.cli.common import friendly_errors
from siyu.sources.models import SOURCE_KINDS

app = typer.Typer(help="Event sources (website, mini program, store, ...) and their write keys.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="e.g. 官网 or 'WeChat mini program'"),
    kind: str = typer.Option("other", help=f"one of {', '.join(SOURCE_KINDS)}"),
    workspace: str = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Create a source; its write key is printed once (SDKs send it to POST /v1/batch)."""
    from siyu.sources import service

    with friendly_errors(), common.database().session() as session:
        issued = service.create_source(session, common.workspace_id(session, workspace), name, kind)
        data = {**service.as_dict(issued.source), "write_key": issued.write_key}
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{data['write_key']}\n(source {data['id']} '{data['name']}', kind {data['kind']}; write key shown once)"
    )


@app.command("list")
def list_(workspace: str = WorkspaceOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the workspace's sources (write keys by prefix only)."""
    from siyu.sources import service

    with friendly_errors(), common.database().session() as session:
        rows = [service.as_dict(s) for s in service.list_sources(session, common.workspace_id(session, workspace))]
    if as_json:
        typer.echo(json.dumps({"sources": rows}, ensure_ascii=False, indent=2))
        return
    for s in rows:
        state = "enabled" if s["enabled"] else "disabled"
        typer.echo(f"{s['id']:>4}  {s['write_key_prefix']}…  {s['kind']:<16} {state:<8}  {s['name']}")
    typer.echo(f"{len(rows)} source(s)")
