"""`siyu import members|orders|follows|store-visits FILE`: bulk import with a progress bar and a per-row report.

The import writes the event store itself, so it needs the store to itself: while the server runs,
it refuses and says how to import through the API instead. A dry run only reads; when the server
holds the store it still validates the whole file and says that the "already stored" check was skipped.
"""

from __future__ import annotations

import csv
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.cli import common
from siyu.cli.common import fail, friendly_errors
from siyu.imports.report import ImportResult, Issue

app = typer.Typer(
    help="Bulk import of customer data from CSV or JSONL (schemas: docs/import.md).", no_args_is_help=True
)
WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="workspace slug (default: the first one)")
SHOWN_ISSUES = 200  # the terminal table; --report has them all
PHASES = {"validate": "Validating", "write": "Writing", "link": "Linking"}
KINDS = {
    "members": "Members (会员): one row per member → identify (userId = member_id, traits, consent).",
    "orders": "Orders with line items: one CSV row per item, grouped by order_id (JSONL: items list).",
    "follows": "Official-account follows/unfollows (公众号关注) by appid + openid.",
    "store-visits": "Store visits (到店): store_id, visited_at and who (member_id, phone or unionid).",
}


def _command(kind: str):
    def command(
        path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV or JSONL file"),
        format: str = typer.Option(None, "--format", help="csv or jsonl (default: from the file name)"),
        encoding: str = typer.Option(None, help="e.g. gbk (default: UTF-8, else GBK)"),
        source: str = typer.Option(None, help="source id or name (default: the kind's import source)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="validate and count only; write nothing"),
        report: Path = typer.Option(None, "--report", dir_okay=False, help="save every problem to this CSV"),
        link: bool = typer.Option(
            True, help="resolve the imported people (One ID) before returning; else the server does it when it starts"
        ),
        workspace: str = WorkspaceOpt,
        as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    ) -> None:
        result = _run(kind, path, format, encoding, source, dry_run, workspace, link)
        if report is not None:
            _save_report(result, report)
        if as_json:
            typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        else:
            _print(result, report)
        if result.errors:
            raise typer.Exit(1)

    command.__doc__ = KINDS[kind]
    return command


for _kind in KINDS:
    app.command(_kind)(_command(_kind))


def _run(
    kind: str,
    path: Path,
    format: str | None,
    encoding: str | None,
    source: str | None,
    dry_run: bool,
    ws: str | None,
    link: bool = True,
) -> ImportResult:
    from siyu.imports.reader import check_size
    from siyu.imports.service import get_kind, run_import

    with friendly_errors():
        get_kind(kind)
        check_size(path.stat().st_size)
        data = path.read_bytes()
        with _event_store(dry_run) as (db, store, runtime), _progress() as progress:
            with db.session() as session:
                workspace_id = common.workspace_id(session, ws)
            result = run_import(
                db,
                store,
                workspace_id,
                kind,
                data,
                file_name=path.name,
                format=format,
                encoding=encoding,
                source=source,
                dry_run=dry_run,
                actor=_actor(),
                progress=progress,
            )
            if runtime is not None and result.imported and link:
                _stitch(runtime, progress)
    return result


@contextmanager
def _event_store(dry_run: bool) -> Iterator[tuple]:
    """(database, store, runtime): a Runtime of our own to write; read-only access (or none) for a dry run."""
    from siyu.events.duckdb_store import DuckDBEventStore, StoreLocked
    from siyu.runtime import Runtime

    settings = common.settings()
    if dry_run:
        store = None
        try:
            path = Path(settings.events_path)
            store = DuckDBEventStore(path, read_only=True) if path.exists() else DuckDBEventStore(":memory:")
        except StoreLocked:
            pass  # the server holds it: validate anyway, without the "already stored" check
        try:
            yield common.database(), store, None
        finally:
            if store is not None:
                store.close()
        return
    try:
        runtime = Runtime.create(settings)
    except StoreLocked:
        fail(
            "the event store is in use by the running server. Import through the API instead:\n"
            f"  curl -H 'Authorization: Bearer <API key>' -F file=@<file> {settings.base_url}/api/v1/imports/<kind>\n"
            "or stop the server and run this command again"
        )
    try:
        yield runtime.db, runtime.store, runtime
    finally:
        runtime.close()


def _stitch(runtime, progress) -> None:
    """Resolve the imported people now (One ID), so profiles and consent reflect the file when we return."""
    stitch_now = getattr(runtime, "stitch_now", None)
    if not callable(stitch_now):
        return
    if progress is not None:
        progress("link", 0, None)
    linked = stitch_now()
    if progress is not None:
        progress("link", 1, 1)
    print(f"One ID: {linked} event(s) linked to people", file=sys.stderr)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _progress() -> Iterator:
    """A progress bar per phase on a terminal (stderr); nothing when output goes to a file or a test."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def _print(result: ImportResult, report: Path | None) -> None:
    console = Console(highlight=False, soft_wrap=False)
    issues = [("error", i) for i in result.errors] + [("warning", i) for i in result.warnings]
    if issues:
        table = Table("row", "field", "", "reason", header_style="bold", show_edge=False)
        for severity, issue in issues[:SHOWN_ISSUES]:
            style = "red" if severity == "error" else "yellow"
            table.add_row(str(issue.row or "-"), issue.field or "-", f"[{style}]{severity}[/]", issue.reason)
        console.print(table)
        if len(issues) > SHOWN_ISSUES:
            more = len(issues) - SHOWN_ISSUES
            console.print(f"… and {more} more" + (f" (all in {report})" if report else "; save them with --report"))
    console.print(summary(result))


def summary(result: ImportResult) -> str:
    source = result.source or {}
    where = f"source '{source.get('name')}'" + (" (new)" if source.get("created") else "")
    counts = f"{result.rows} rows, {result.events} events"
    if result.status == "rejected":
        more = " (stopped counting)" if result.errors_truncated else ""
        return f"rejected: {len(result.errors)} error(s){more} in {result.rows} rows; nothing was imported"
    if result.status == "dry_run":
        unchecked = "" if result.store_checked else " (the server holds the event store: not checked against it)"
        return f"dry run: {counts}; would import {result.imported}, {result.unchanged} unchanged{unchecked}; {where}"
    return f"imported {result.imported}, unchanged {result.unchanged} ({counts}) into {where}; run {result.run_id}"


def _save_report(result: ImportResult, path: Path) -> None:
    def rows(severity: str, issues: list[Issue]):
        for i in issues:
            yield [i.row, i.field, severity, i.reason]

    try:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:  # with BOM: Excel opens it right
            writer = csv.writer(fh)
            writer.writerow(["row", "field", "severity", "reason"])
            writer.writerows(rows("error", result.errors))
            writer.writerows(rows("warning", result.warnings))
    except OSError as exc:
        fail(f"report: cannot write {path} ({exc.strerror})")
    print(f"report saved to {path}", file=sys.stderr)
