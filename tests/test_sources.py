"""Sources: each touchpoint (website, mini program, store, CRM, ...) gets a write key to send events with.

The key is random, shown once and stored as a SHA-256 with a short prefix to recognise it by; it can
be rotated, and a source can be disabled. Managed through the service, the REST API
(/api/v1/sources, scope `sources:write`) and the CLI (`siyu sources create/list`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher
from sqlalchemy import inspect, select
from typer.testing import CliRunner

import siyu.db
from siyu import security
from siyu.cli import common
from siyu.cli.main import app as cli
from siyu.db import Database
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.security import hash_token
from siyu.sources import service as sources
from siyu.sources.models import SOURCE_KINDS, Source
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def ws(db) -> int:
    with db.session() as session:
        return workspaces.create_workspace(session, "Brand").id


# --- the service ----------------------------------------------------------------------------------------


def test_a_write_key_is_shown_once_and_only_its_hash_and_prefix_are_kept(db, ws):
    with db.session() as session:
        issued = sources.create_source(session, ws, "官网", "website")

    assert re.fullmatch(r"wk_[A-Za-z0-9_-]{32}", issued.write_key)
    with db.session() as session:
        row = session.scalar(select(Source))
        assert (row.name, row.kind, row.enabled) == ("官网", "website", True)
        assert row.write_key_hash == hash_token(issued.write_key) != issued.write_key
        assert row.write_key_prefix == issued.write_key[:10]
        assert issued.write_key not in json.dumps(sources.as_dict(row))
        assert sources.authenticate_write_key(session, issued.write_key).id == row.id
        assert sources.authenticate_write_key(session, "wk_guess") is None


def test_every_kind_is_accepted_and_anything_else_is_refused(db, ws):
    with db.session() as session:
        for kind in SOURCE_KINDS:
            sources.create_source(session, ws, f"src {kind}", kind)
        with pytest.raises(InvalidInput) as bad_kind:
            sources.create_source(session, ws, "x", "billboard")
        with pytest.raises(InvalidInput) as no_name:
            sources.create_source(session, ws, "  ", "website")

    assert bad_kind.value.errors[0].field == "kind"
    assert "mini_program" in bad_kind.value.errors[0].reason
    assert no_name.value.errors[0].field == "name"


def test_names_are_unique_per_workspace_not_across_workspaces(db, ws):
    with db.session() as session:
        other = workspaces.create_workspace(session, "Other").id
        sources.create_source(session, ws, "Store POS", "store")
        sources.create_source(session, other, "Store POS", "store")  # fine: another workspace
        with pytest.raises(Conflict):
            sources.create_source(session, ws, "Store POS", "crm")


def test_a_rotated_key_replaces_the_old_one(db, ws):
    with db.session() as session:
        issued = sources.create_source(session, ws, "CRM", "crm")
        rotated = sources.rotate_write_key(session, ws, issued.source.id)

    with db.session() as session:
        assert sources.authenticate_write_key(session, issued.write_key) is None
        assert sources.authenticate_write_key(session, rotated.write_key).name == "CRM"


def test_another_workspaces_source_is_not_found(db, ws):
    with db.session() as session:
        other = workspaces.create_workspace(session, "Other").id
        theirs = sources.create_source(session, other, "Theirs").source.id
        with pytest.raises(NotFound):
            sources.update_source(session, ws, theirs, {"enabled": False})


# --- REST -----------------------------------------------------------------------------------------------


def test_sources_over_rest(client, auth):
    created = client.post("/api/v1/sources", json={"name": "Mini program", "kind": "mini_program"}, headers=auth)
    assert created.status_code == 201
    source = created.json()
    assert source["write_key"].startswith(source["write_key_prefix"])
    assert source["kind"] == "mini_program" and source["enabled"] is True

    listed = client.get("/api/v1/sources", headers=auth).json()["sources"]
    assert [s["name"] for s in listed] == ["Mini program"] and "write_key" not in listed[0]

    disabled = client.patch(f"/api/v1/sources/{source['id']}", json={"enabled": False}, headers=auth)
    assert disabled.json()["enabled"] is False
    track = {"event": "E", "userId": "u", "writeKey": source["write_key"]}
    assert client.post("/v1/track", json=track).status_code == 401  # refused at once, no cache delay

    client.patch(f"/api/v1/sources/{source['id']}", json={"enabled": True}, headers=auth)
    rotated = client.post(f"/api/v1/sources/{source['id']}/rotate-key", headers=auth).json()
    assert client.post("/v1/track", json=track).status_code == 401  # the old key
    assert client.post("/v1/track", json={**track, "writeKey": rotated["write_key"]}).status_code == 200


def test_rest_validation_and_conflicts(client, auth):
    bad = client.post("/api/v1/sources", json={"name": "x", "kind": "billboard"}, headers=auth)
    client.post("/api/v1/sources", json={"name": "Web"}, headers=auth)
    twice = client.post("/api/v1/sources", json={"name": "Web"}, headers=auth)
    missing = client.get("/api/v1/sources/999", headers=auth)

    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "kind"
    assert twice.status_code == 409
    assert missing.status_code == 404


def test_rest_needs_the_sources_scope(client, runtime, first_run):
    with runtime.db.session() as session:
        ws = session.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))
        key = workspaces.create_api_key(session, ws, "links only", ["links:read", "links:write"]).secret

    response = client.get("/api/v1/sources", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 403
    assert "sources:write" in response.json()["error"]["message"]


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_creates_and_lists_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["init", "--no-demo"]).exit_code == 0
        created = runner.invoke(cli, ["sources", "create", "官网", "--kind", "website"])
        as_json = runner.invoke(cli, ["sources", "create", "Store POS", "--kind", "store", "--json"])
        bad = runner.invoke(cli, ["sources", "create", "Billboard", "--kind", "billboard"])
        listed = runner.invoke(cli, ["sources", "list"])
    finally:
        if common._db is not None:
            common._db.dispose()

    assert created.exit_code == 0
    key = created.stdout.splitlines()[0]
    assert re.fullmatch(r"wk_\S{32}", key) and "shown once" in created.stdout
    assert json.loads(as_json.stdout)["write_key"].startswith("wk_")
    assert bad.exit_code == 1 and "error: kind: must be one of" in bad.output and "Traceback" not in bad.output
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[-1] == "2 source(s)"
    assert key[:10] in lines[0] and "website" in lines[0] and "官网" in lines[0] and key not in listed.stdout


# --- migration ------------------------------------------------------------------------------------------


def test_the_migration_creates_and_drops_the_sources_table(database_url):
    """0004 runs forwards, backwards and forwards again on SQLite and on PostgreSQL."""
    database = Database(database_url)
    try:
        database.migrate()
        columns = {c["name"] for c in inspect(database.engine).get_columns("sources")}
        assert {"workspace_id", "kind", "name", "write_key_prefix", "write_key_hash", "enabled"} <= columns

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(siyu.db.__file__).parent / "migrations"))
        cfg.attributes["connection_engine"] = database.engine
        command.downgrade(cfg, "0003")
        assert "sources" not in inspect(database.engine).get_table_names()
        command.upgrade(cfg, "head")

        with database.session() as session:
            ws = workspaces.create_workspace(session, "Brand").id
            issued = sources.create_source(session, ws, "Web", "website")
        with database.session() as session:
            assert sources.authenticate_write_key(session, issued.write_key).kind == "website"
            with pytest.raises(Conflict):
                sources.create_source(session, ws, "Web", "website")
    finally:
        database.dispose()
