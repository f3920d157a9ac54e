"""`siyu privacy`: export or erase a person (PIPL subject rights) and read the audit log.

Export and erase open the event store, which only one process may hold: stop the server first, or
use the API (`POST /api/v1/privacy/persons/{super_id}/export|erase`) while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors

app = typer.Typer(help="Subject rights: export or erase a person, and the audit log.", no_args_is_help=True)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
PersonArg = typer.Argument(..., help="a super ID (1024) or an identifier as type:value (phone:13912345678)")
ACTOR = "cli"


@contextmanager
def _runtime() -> Iterator:
    from siyu.events.duckdb_store import StoreLocked
    from siyu.runtime import Runtime

    try:
        rt = Runtime.create(common.settings())
    except StoreLocked:
        fail(
            "the event store is in use by the running server: stop it first, or use the API "
            "(POST /api/v1/privacy/persons/<super_id>/export or /erase)"
        )
    try:
        yield rt
    finally:
        rt.close()


def _resolve(rt, workspace: str | None, person: str) -> tuple[int, int]:
    from siyu.errors import NotFound
    from siyu.privacy import service

    with rt.db.session() as session:
        ws = common.workspace_id(session, workspace)
        try:
            return ws, service.find_person(session, ws, person)
        except NotFound as exc:
            fail(f"not found: {exc} (never seen, or already erased)")
            raise


@app.command("export")
def export(
    person: str = PersonArg,
    out: Path = typer.Option(None, "--out", "-o", help="write the JSON to this file (default: print it)"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Export everything kept about a person as JSON (identifiers, traits, consent, events, clicks, merges)."""
    from siyu.privacy import requests

    with friendly_errors(), _runtime() as rt:
        ws, super_id = _resolve(rt, workspace, person)
        data = requests.export(rt, ws, super_id, ACTOR)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"person {super_id}: {_counts(data['audit']['counts'])} → {out}")


@app.command("erase")
def erase(
    person: str = PersonArg,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    workspace: str = WorkspaceOpt,
) -> None:
    """Erase a person everywhere: events, clicks, traits, consent records, identifiers (kept as digests)."""
    from siyu.privacy import requests

    with friendly_errors(), _runtime() as rt:
        ws, super_id = _resolve(rt, workspace, person)
        preview = requests.preview(rt, ws, super_id)
        shown = {k: preview[k] for k in ("identifiers", "traits", "consent_records", "events", "clicks")}
        typer.echo(f"person {super_id} (merged: {preview['merged_ids'] or 'none'}): {_counts(shown)}")
        if not yes and not typer.confirm("Erase this person for good?", default=False):
            fail("nothing erased")
        entry = requests.erase(rt, ws, super_id, ACTOR)
    typer.echo(f"erased person {entry['super_id']}: {_counts(entry['counts'])} (audit entry {entry['id']})")


@app.command("audit")
def audit(
    workspace: str = WorkspaceOpt,
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Exports and erasures, newest first."""
    from siyu.privacy import service

    with friendly_errors(), common.database().session() as session:
        rows = service.audit_log(session, common.workspace_id(session, workspace), limit=limit)
    if as_json:
        typer.echo(json.dumps({"audit": service.jsonable(rows)}, ensure_ascii=False, indent=2))
        return
    for r in rows:
        when, who = f"{r['at']:%Y-%m-%d %H:%M}", f"{r['actor']:<20}"
        typer.echo(f"{when}  {r['action']:<6}  person {r['super_id']:<8} {who} {_counts(r['counts'])}")
    typer.echo(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
