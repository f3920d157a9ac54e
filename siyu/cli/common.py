"""Shared CLI plumbing: settings, database, workspace selection and error output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.db import Database
from siyu.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from siyu.workspaces.models import Workspace


def settings() -> Settings:
    return Settings.from_env()


_db: Database | None = None


def database() -> Database:
    global _db
    if _db is None:
        _db = Database(settings().database_url)
        _db.migrate()
    return _db


def workspace_id(session: Session, slug: str | None) -> int:
    query = select(Workspace.id).order_by(Workspace.id)
    if slug:
        query = query.where(Workspace.slug == slug)
    found = session.scalar(query)
    if found is None:
        fail(f"workspace '{slug}' not found" if slug else "no workspace yet: run `siyu init` or `siyu serve`")
    return found  # type: ignore[return-value]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Domain errors become one readable line each and exit status 1, never a traceback."""
    try:
        yield
    except InvalidInput as exc:
        for e in exc.errors:
            typer.secho(f"error: {e.field}: {e.reason}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except (Conflict, NotFound, PermissionDenied) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
