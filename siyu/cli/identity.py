"""`siyu identity`: look people up, show, unmerge, conflicts, identifier types, rebuild, quality report.

Reading needs only the operational database. Unmerge, stitch and rebuild also change which person
each stored event belongs to, in the event store, which only one process may write: stop the server
first, or use the API / console while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(help="One ID: persons (super IDs) and their identifiers.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _print_person(person: dict[str, Any]) -> None:
    typer.echo(f"super ID {person['super_id']}  (created {person['created_at'][:19]})")
    if person["merged_ids"]:
        typer.echo(f"  merged into it: {', '.join(map(str, person['merged_ids']))}")
    for ident in person["identifiers"]:
        flag = "  [quarantined]" if ident["quarantined"] else ""
        typer.echo(f"  {ident['type']:<16} {ident['value']}{flag}")
    for m in person.get("merges", []):
        hint = f"   (undo: siyu identity unmerge {m['merged_id']})" if m.get("can_unmerge") else ""
        via = f" via {m['via'][0]} {m['via'][1]}" if m["via"][0] else ""
        typer.echo(f"  {m['at'][:19]}  {m['action']:<8} {m['merged_id']} → {m['survivor_id']}{via}{hint}")


@contextmanager
def _runtime() -> Iterator[Any]:
    """The Runtime, owning the event store (not started: no server, no background threads)."""
    from siyu.events.duckdb_store import StoreLocked
    from siyu.runtime import Runtime

    try:
        rt = Runtime.create(common.settings())
    except StoreLocked as exc:
        fail(f"{exc}; while the server runs, use the API (/api/v1/identity/...) or the console (/console/identity)")
    try:
        yield rt
    finally:
        rt.close()


@app.command("lookup")
def lookup(
    id_type: str = typer.Argument(..., metavar="TYPE", help="phone, member_id, email, unionid, openid, ..."),
    value: str = typer.Argument(...),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The person holding an identifier ('siyu identity lookup phone 13800138001')."""
    from siyu.api.identity import person_json
    from siyu.identity import service

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        super_id = service.lookup(session, ws, id_type, value)
        if super_id is None:
            fail(f"no person holds this {id_type}")
        person = person_json(session, ws, super_id)
    if as_json:
        _echo_json(person)
    else:
        _print_person(person)


@app.command("show")
def show(super_id: int = typer.Argument(..., help="super ID"), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """A person: identifiers (strongest first) and merge log."""
    from siyu.api.identity import person_json

    with friendly_errors(), common.database().session() as session:
        person = person_json(session, common.workspace_id(session, workspace), super_id)
    if as_json:
        _echo_json(person)
    else:
        _print_person(person)


@app.command("unmerge")
def unmerge(
    super_id: int = typer.Argument(..., help="the merged-away super ID to split back out"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Split a merged person back out; their events follow them (stop the server first)."""
    with friendly_errors(), _runtime() as rt:
        with rt.db.session() as session:
            ws = common.workspace_id(session, workspace)
        split = rt.stitcher.unmerge(ws, super_id, "cli")
    data = {"kept": split.kept, "restored": split.restored, "moved": [list(k) for k in split.moved]}
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"{split.restored} split out of {split.kept}; identifiers moved back:")
    for t, v in split.moved:
        typer.echo(f"  {t:<16} {v}")


@app.command("conflicts")
def conflicts(
    limit: int = typer.Option(50, min=1, max=1000), workspace: str = WorkspaceOpt, as_json: bool = JsonOpt
) -> None:
    """Links the guard rails refused (newest first), and quarantined values."""
    from siyu.identity import service

    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        rows = service.list_conflicts(session, ws, limit)
        held = service.quarantined(session, ws)
    if as_json:
        _echo_json({"conflicts": rows, "quarantined": held})
        return
    for c in rows:
        other = c["other_person_id"] if c["other_person_id"] is not None else "(new)"
        typer.echo(f"{c['kind']:<10} {c['person_id']} ⟂ {other}  via {c['via'][0]} {c['via'][1]}  {c['clash_type']}")
    typer.echo(f"{len(rows)} conflict(s)")
    for q in held:
        typer.echo(f"quarantined  {q['type']:<16} {q['value']}  ({q['people']} people)")


@app.command("types")
def types(
    name: str = typer.Argument(None, help="a type to change or add (e.g. crm_id); none: list them"),
    priority: int = typer.Option(None, help="lower links first"),
    unique: bool = typer.Option(None, "--unique/--not-unique", help="two values mean two people"),
    max_values: int = typer.Option(None, help="values one person may hold"),
    max_people: int = typer.Option(None, help="people one value may touch before quarantine"),
    weak: bool = typer.Option(None, "--weak/--strong", help="weak: never merges two identified people"),
    block: list[str] = typer.Option(None, help="junk value never linked (repeatable; replaces the list)"),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List identifier types, or change one ('siyu identity types crm_id --priority 5 --unique')."""
    from siyu.identity.rules import configure_type, get_rules

    changes = {
        k: v
        for k, v in {
            "priority": priority,
            "unique": unique,
            "max_values": max_values,
            "max_people": max_people,
            "weak": weak,
            "blocked_values": block or None,
        }.items()
        if v is not None
    }
    with friendly_errors(), common.database().session() as session:
        ws = common.workspace_id(session, workspace)
        if name is not None:
            if not changes:
                fail("say what to change: --priority, --unique/--not-unique, --max-values, --max-people, ...")
            configure_type(session, ws, name, changes)
        rows = get_rules(session, ws).as_list()
    if as_json:
        _echo_json({"types": rows})
        return
    typer.echo(f"{'type':<16} {'priority':>8}  {'unique':<6} {'values':>6} {'people':>6}  weak  blocked")
    for r in rows:
        typer.echo(
            f"{r['name']:<16} {r['priority']:>8}  {'yes' if r['unique'] else 'no':<6} {r['max_values']:>6} "
            f"{r['max_people']:>6}  {'yes' if r['weak'] else 'no':<4}  {len(r['blocked_values'])}"
        )


@app.command("stitch")
def stitch() -> None:
    """Resolve every stored event and click that has no person yet (stop the server first)."""
    with friendly_errors(), _runtime() as rt:
        done = rt.stitch_now()
    typer.echo(f"{done} event(s) and click(s) stitched")


@app.command("rebuild")
def rebuild(
    workspace: str = WorkspaceOpt,
    yes: bool = typer.Option(False, "--yes", help="do not ask"),
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the workspace's identity graph from all its events (new super IDs; stop the server first)."""
    with friendly_errors(), _runtime() as rt:
        with rt.db.session() as session:
            ws = common.workspace_id(session, workspace)
        if not yes:
            typer.confirm("Every super ID of the workspace changes. Rebuild?", abort=True)
        rt.stitch_now()
        report = rt.stitcher.rebuild(ws, "cli")
    data = {
        "persons": report.persons,
        "identifiers": report.identifiers,
        "conflicts": report.conflicts,
        "quarantined": report.quarantined,
        "records": len(report.super_ids),
        "invalid": report.invalid_count,
    }
    if as_json:
        _echo_json(data)
        return
    typer.echo(
        f"{data['records']} events → {data['persons']} persons, {data['identifiers']} identifiers, "
        f"{data['conflicts']} conflicts, {data['quarantined']} quarantined, {data['invalid']} invalid identifiers"
    )


@app.command("report")
def report(
    people: int = typer.Option(20_000, min=10, max=5_000_000, help="synthetic people"),
    seed: int = typer.Option(7),
) -> None:
    """Merge quality (pairwise precision/recall) on a synthetic population with known truth."""
    from siyu.identity.report import evaluate
    from siyu.identity.synthetic import generate

    typer.echo(evaluate(generate(people, seed)).text())
