"""`siyu tags`: define fact, rule and model tags, compute them, read who holds them.

Definitions live in the operational database and can be changed while the server runs. Computing
(`recompute`) writes the per-person facts in the event store, which one process holds at a time:
stop the server first, or use the API (`POST /api/v1/tags/recompute`) or the console while it runs.
"""

from __future__ import annotations

import csv
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(help="Tags (标签): fact, rule and model tags.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def json_arg(value: str | None, name: str) -> Any:
    """JSON given inline, or '@file.json' to read it from a file."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            fail(f"{name}: no such file {path}")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")


@contextmanager
def owned_runtime() -> Iterator[Any]:
    """A Runtime of our own (owning the event store, not started: no server, no background threads)."""
    from siyu.events.duckdb_store import StoreLocked
    from siyu.runtime import Runtime

    try:
        rt = Runtime.create(common.settings())
    except StoreLocked as exc:
        fail(f"{exc}; while the server runs, use the API (/api/v1/tags, /api/v1/segments) or the console")
    try:
        yield rt
    finally:
        rt.close()


def print_report(report: dict[str, Any]) -> None:
    typer.echo(
        f"{report['persons']} people, behaviour facts {report['events_refresh']} (+{report['events_appended']}), "
        f"{report['seconds']:.2f} s"
    )
    for t in report["tags"]:
        line = f"  tag {t['code']:<24} {t['members']:>9} (+{t['gained']} -{t['lost']} ~{t['changed']})"
        typer.echo(line + (f"  error: {t['error']}" if t["error"] else ""))
    for s in report["segments"]:
        line = f"  segment {s['segment_id']:>4} {s['name']:<20} {s['members']:>9} (+{s['joined']} -{s['left']})"
        typer.echo(line + (f"  error: {s['error']}" if s["error"] else ""))


@app.command("list")
def list_tags(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Tags with their kind, version and how many people hold them."""
    from siyu.tags import definitions

    with friendly_errors(), common.database().session() as session:
        rows = [
            definitions.tag_dict(t) for t in definitions.list_tags(session, common.workspace_id(session, workspace))
        ]
    if as_json:
        echo_json(rows)
        return
    for t in rows:
        flags = ("" if t["enabled"] else " (disabled)") + (" [streaming]" if t["streaming"] else "")
        typer.echo(f"{t['code']:<24} {t['kind']:<6} v{t['version']:<3} {t['member_count']:>9}  {t['name']}{flags}")


@app.command("show")
def show(code: str = typer.Argument(..., help="tag code"), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """A tag: definition, versions, counts per value, recent changes."""
    from siyu.tags import reading

    with friendly_errors(), common.database().session() as session:
        data = reading.tag_detail(session, common.workspace_id(session, workspace), code)
    if as_json:
        echo_json(data)
        return
    typer.secho(f"{data['name']} ({data['code']}), {data['kind']} tag, version {data['version']}", bold=True)
    spec = data.get("trait") or data.get("rule") or data.get("values")
    typer.echo(f"  definition: {json.dumps(spec, ensure_ascii=False)}")
    typer.echo(f"  holders: {data['member_count']}, computed {data['computed_at'] or 'never'}")
    for v in data["value_counts"]:
        typer.echo(f"    {v['value']!s:<20} {v['count']:>9}")
    for c in data["recent_changes"]:
        typer.echo(f"  {str(c['at'])[:19]}  {c['change']:<8} {c['super_id']:>8} {c['value'] or ''}  ({c['cause']})")


@app.command("create")
def create(
    code: str = typer.Argument(..., help="lower-case letters, digits, _"),
    name: str = typer.Option(..., help="the name people see (Chinese first)"),
    kind: str = typer.Option(..., help="fact | rule | model"),
    name_en: str = typer.Option(None, help="English name"),
    description: str = typer.Option(None),
    trait: str = typer.Option(None, help="fact tags: the trait whose value is the tag's value"),
    rule: str = typer.Option(None, help="rule tags: a rule tree as JSON, or @file.json"),
    values: str = typer.Option(None, help='model tags: [{"code","name","name_en"}, ...] as JSON, or @file.json'),
    workspace: str = WorkspaceOpt,
) -> None:
    """Define a tag."""
    from siyu.tags import definitions

    raw = {"code": code, "name": name, "kind": kind, "name_en": name_en, "description": description, "trait": trait}
    raw.update(rule=json_arg(rule, "--rule"), values=json_arg(values, "--values"))
    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        tag = definitions.create_tag(session, ws, {k: v for k, v in raw.items() if v is not None}, actor())
        typer.echo(f"created {tag.kind} tag {tag.code} (version 1){' — streaming' if tag.streaming else ''}")


@app.command("update")
def update(
    code: str = typer.Argument(...),
    name: str = typer.Option(None),
    name_en: str = typer.Option(None),
    description: str = typer.Option(None),
    trait: str = typer.Option(None),
    rule: str = typer.Option(None, help="a rule tree as JSON, or @file.json"),
    values: str = typer.Option(None, help="model tag values as JSON, or @file.json"),
    enabled: bool = typer.Option(None, "--enable/--disable"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Change a tag (a new version)."""
    from siyu.tags import definitions

    raw = {"name": name, "name_en": name_en, "description": description, "trait": trait, "enabled": enabled}
    raw.update(rule=json_arg(rule, "--rule"), values=json_arg(values, "--values"))
    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        tag = definitions.update_tag(session, ws, code, {k: v for k, v in raw.items() if v is not None}, actor())
        typer.echo(f"{tag.code} is at version {tag.version}")


@app.command("delete")
def delete(code: str = typer.Argument(...), yes: bool = typer.Option(False, "--yes"), workspace: str = WorkspaceOpt):
    """Delete a tag with its assignments and history (refused while a segment or rule tag reads it)."""
    from siyu.tags import definitions

    if not yes:
        typer.confirm(f"Delete the tag {code}, who holds it and its history?", abort=True)
    with friendly_errors(), common.database().session() as session:
        definitions.delete_tag(session, common.workspace_id(session, workspace), code)
    typer.echo(f"deleted {code}")


@app.command("recompute")
def recompute(
    full: bool = typer.Option(False, "--full", help="rebuild the behaviour facts from every event"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Refresh the facts, compute every tag and segment now (stop the server first)."""
    with friendly_errors(), owned_runtime() as rt:
        rt.stitch_now()
        with rt.db.session() as session:
            ws = common.workspace_id(session, workspace)
        report = rt.tags.recompute(ws, full_events=full, cause="manual")[0].as_dict()
    if as_json:
        echo_json(report)
    else:
        print_report(report)


@app.command("set-values")
def set_values(
    code: str = typer.Argument(..., help="a model tag"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV: super_id,value (a header row is fine)"),
    replace: bool = typer.Option(False, "--replace", help="people not in the file lose the tag"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Write a model tag's values from a CSV file (an empty value removes the tag)."""
    from siyu.tags import compute

    values: dict[int, str | None] = {}
    with file.open(encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or (n == 1 and not row[0].strip().isdigit()):
                continue
            if not row[0].strip().isdigit() or len(row) < 2:
                fail(f"{file}:{n}: expected super_id,value")
            values[int(row[0])] = row[1].strip() or None
    with friendly_errors(), common.database().session() as session:
        result = compute.set_model_tag_values(
            session, common.workspace_id(session, workspace), code, values, replace=replace
        )
    typer.echo(f"{code}: {result.members} holders (+{result.gained} -{result.lost} ~{result.changed})")


@app.command("person")
def person(super_id: int = typer.Argument(...), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """A person's tags, and what they gained and lost when."""
    from siyu.tags import reading

    with friendly_errors(), common.database().session() as session:
        data = reading.person_tags(session, common.workspace_id(session, workspace), super_id)
    if as_json:
        echo_json(data)
        return
    for t in data["tags"]:
        typer.echo(f"{t['name']:<16} {t['value_label'] or ''}  (since {str(t['since'])[:10]}, v{t['version']})")
    for h in data["history"]:
        typer.echo(f"  {str(h['at'])[:19]}  {h['change']:<8} {h['tag']} {h['value'] or ''}  ({h['cause']})")


@app.command("members")
def members(
    code: str = typer.Argument(...),
    limit: int = typer.Option(50, help="1-200"),
    offset: int = typer.Option(0),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who holds a tag."""
    from siyu.tags import reading

    with friendly_errors(), common.database().session() as session:
        data = reading.members(session, common.workspace_id(session, workspace), code, limit, offset)
    if as_json:
        echo_json(data)
        return
    for m in data["items"]:
        typer.echo(f"{m['super_id']:>10}  {m['name'] or '—':<16} {m['value'] or ''}")
    typer.echo(f"{len(data['items'])} of {data['total']}")
