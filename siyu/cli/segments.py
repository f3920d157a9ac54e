"""`siyu segments`: define segments (人群), count a rule, recompute, snapshot, export audience files.

Counting and recomputing read and write the per-person facts in the event store, which one process
holds at a time: stop the server first, or use the API / console while it runs. Definitions,
members, history and exports need only the operational database.
"""

from __future__ import annotations

from pathlib import Path

import typer

from siyu.cli import common
from siyu.cli import tags as tags_cli
from siyu.cli.common import fail, friendly_errors
from siyu.cli.tags import actor, echo_json, json_arg, owned_runtime

app = typer.Typer(help="Segments (人群) and audience exports (人群包).", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
JsonOpt = typer.Option(False, "--json", help="print JSON")
RuleOpt = typer.Option(..., help="a rule tree as JSON, or @file.json (see docs/segments.md)")


@app.command("list")
def list_segments(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Segments and their member counts (as last computed)."""
    from siyu.segments import service

    with friendly_errors(), common.database().session() as session:
        rows = [
            service.segment_dict(s) for s in service.list_segments(session, common.workspace_id(session, workspace))
        ]
    if as_json:
        echo_json(rows)
        return
    for s in rows:
        typer.echo(
            f"{s['id']:>4}  {s['name']:<24} v{s['version']:<3} {s['member_count']:>9}  {s['computed_at'] or 'never'}"
        )


@app.command("show")
def show(segment_id: int = typer.Argument(...), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """A segment: rule, versions, snapshots."""
    import json

    from siyu.segments import service

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        seg = service.get_segment(session, ws, segment_id)
        data = {
            **service.segment_dict(seg),
            "versions": service.versions(session, seg),
            "snapshots": service.list_snapshots(session, ws, seg.id),
        }
    if as_json:
        echo_json(data)
        return
    typer.secho(f"{data['name']} (segment {data['id']}, version {data['version']})", bold=True)
    typer.echo(f"  rule: {json.dumps(data['rule'], ensure_ascii=False)}")
    typer.echo(f"  members: {data['member_count']}, computed {data['computed_at'] or 'never'}")
    for snap in data["snapshots"]:
        typer.echo(f"  snapshot {snap['id']}: {snap['name']} ({snap['member_count']} people)")


@app.command("create")
def create(
    name: str = typer.Argument(...),
    rule: str = RuleOpt,
    description: str = typer.Option(None),
    workspace: str = WorkspaceOpt,
) -> None:
    """Define a segment (computed at the next run: `siyu segments recompute`)."""
    from siyu.segments import service

    raw = {"name": name, "rule": json_arg(rule, "--rule"), "description": description}
    with friendly_errors(), common.database().session() as session:
        seg = service.create_segment(session, common.workspace_id(session, workspace), raw, actor())
        typer.echo(f"created segment {seg.id}: {seg.name}")


@app.command("update")
def update(
    segment_id: int = typer.Argument(...),
    name: str = typer.Option(None),
    rule: str = typer.Option(None, help="a rule tree as JSON, or @file.json"),
    description: str = typer.Option(None),
    workspace: str = WorkspaceOpt,
) -> None:
    """Change a segment (a new version when the name or rule changes)."""
    from siyu.segments import service

    raw = {"name": name, "rule": json_arg(rule, "--rule"), "description": description}
    with friendly_errors(), common.database().session() as session:
        seg = service.update_segment(
            session,
            common.workspace_id(session, workspace),
            segment_id,
            {k: v for k, v in raw.items() if v is not None},
            actor(),
        )
        typer.echo(f"segment {seg.id} is at version {seg.version}")


@app.command("delete")
def delete(
    segment_id: int = typer.Argument(...), yes: bool = typer.Option(False, "--yes"), workspace: str = WorkspaceOpt
):
    """Delete a segment with its members and history (its snapshots stay)."""
    from siyu.segments import service

    if not yes:
        typer.confirm(f"Delete segment {segment_id}?", abort=True)
    with friendly_errors(), common.database().session() as session:
        service.delete_segment(session, common.workspace_id(session, workspace), segment_id)
    typer.echo(f"deleted segment {segment_id}")


@app.command("count")
def count(rule: str = RuleOpt, workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """How many people a rule matches now (the facts are refreshed first; stop the server first)."""
    from siyu.segments import facts, service

    tree = json_arg(rule, "--rule")
    with friendly_errors(), owned_runtime() as rt:
        rt.stitch_now()
        with rt.db.session() as session:
            ws = common.workspace_id(session, workspace)
        facts.refresh(rt.db, rt.store, ws)
        with rt.db.session() as session:
            data = service.preview(session, rt.store, ws, tree)
    if as_json:
        echo_json(data)
    else:
        typer.echo(f"{data['count']} of {data['persons']} people")


# One computation refreshes the facts, the tags and the segments: the same command in both groups.
app.command("recompute")(tags_cli.recompute)


@app.command("members")
def members(
    segment_id: int = typer.Argument(...),
    limit: int = typer.Option(50, help="1-200"),
    offset: int = typer.Option(0),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """A segment's members (as last computed)."""
    from siyu.segments import service

    with friendly_errors(), common.database().session() as session:
        data = service.members(session, common.workspace_id(session, workspace), segment_id, limit, offset)
    if as_json:
        echo_json(data)
        return
    for m in data["items"]:
        typer.echo(f"{m['super_id']:>10}  {m['name'] or '—':<16} since {str(m['since'])[:19]}")
    typer.echo(f"{len(data['items'])} of {data['total']}")


@app.command("history")
def history(
    segment_id: int = typer.Argument(...),
    limit: int = typer.Option(50, help="1-200"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who joined and left, newest first."""
    from siyu.segments import service

    with friendly_errors(), common.database().session() as session:
        data = service.history(session, common.workspace_id(session, workspace), segment_id, limit)
    if as_json:
        echo_json(data)
        return
    for h in data["items"]:
        typer.echo(f"{str(h['at'])[:19]}  {h['change']:<6} {h['super_id']:>10}  {h['name']}")


@app.command("snapshot")
def snapshot(segment_id: int = typer.Argument(...), name: str = typer.Option(None), workspace: str = WorkspaceOpt):
    """Freeze the segment's members as last computed (a static segment)."""
    from siyu.segments import service

    with friendly_errors(), common.database().session() as session:
        snap = service.create_snapshot(session, common.workspace_id(session, workspace), segment_id, actor(), name)
        typer.echo(f"snapshot {snap.id}: {snap.name} ({snap.member_count} people)")


@app.command("export")
def export(
    segment_id: int = typer.Argument(..., help="segment id (or snapshot id with --snapshot)"),
    out: Path = typer.Option(..., "--out", "-o", help="file to write (one hash per line)"),
    id_type: str = typer.Option("phone", help="phone (11-digit mainland numbers) | device_id"),
    hash: str = typer.Option("md5", help="md5 | sha256 (lower-case hex)"),
    from_snapshot: bool = typer.Option(False, "--snapshot", help="the id is a snapshot's"),
    workspace: str = WorkspaceOpt,
) -> None:
    """An audience file (人群包) of people who consented to data sharing; the export is logged."""
    from siyu.segments import audience

    ids = {"snapshot_id": segment_id} if from_snapshot else {"segment_id": segment_id}
    with friendly_errors(), common.database().session() as session:
        result = audience.export_audience(
            session, common.workspace_id(session, workspace), id_type=id_type, hash=hash, actor=actor(), **ids
        )
    try:
        out.write_text(result.text(), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    log = result.log
    typer.echo(
        f"{log['rows']} line(s) for {log['exported']} people written to {out}; {log['refused']} of {log['members']} "
        "left out without data-sharing consent (export logged)"
    )


@app.command("exports")
def exports(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """The audience export log."""
    from siyu.segments import audience

    with friendly_errors(), common.database().session() as session:
        rows = audience.export_log(session, common.workspace_id(session, workspace))
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        typer.echo(
            f"{str(r['created_at'])[:19]}  {r['name']:<20} {r['id_type']}/{r['hash']}  {r['exported']} exported, "
            f"{r['refused']} refused  by {r['actor']}"
        )
