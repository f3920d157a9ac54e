"""The identity graph's storage on SQLite and on the machine's real PostgreSQL (`database_url`).

The schema comes from migration 0003 (test_storage.py checks it matches the models exactly); here the
graph's whole life runs on each backend, and PostgreSQL's concurrent writers are serialised.
"""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

import siyu.models  # noqa: F401
from siyu.db import Database
from siyu.identity import service as ids
from siyu.identity.rules import configure_type
from siyu.workspaces import service as workspaces

IDENTITY_TABLES = {
    "identity_persons",
    "identity_identifiers",
    "identity_merges",
    "identity_conflicts",
    "identity_quarantine",
    "identity_erased",
    "identity_type_config",
}


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def ws(db) -> int:
    with db.session() as s:
        return workspaces.create_workspace(s, "Coffee Co", slug="coffee").id


def test_migration_0003_creates_and_drops_the_identity_tables(db):
    assert set(inspect(db.engine).get_table_names()) >= IDENTITY_TABLES
    cfg = Config()
    cfg.set_main_option("script_location", "siyu:migrations")
    cfg.attributes["connection_engine"] = db.engine
    command.downgrade(cfg, "0002")
    assert not IDENTITY_TABLES & set(inspect(db.engine).get_table_names())
    command.upgrade(cfg, "head")
    assert set(inspect(db.engine).get_table_names()) >= IDENTITY_TABLES


def test_the_graph_lives_its_whole_life_on_both_databases(db, ws):
    with db.session() as s:
        configure_type(s, ws, "crm_id", {"priority": 5, "unique": True})
    with db.session() as s:
        a = ids.resolve(s, ws, [("crm_id", "C-1"), ("phone", "13800138001"), ("visitor_cookie", "ca")], "e1")
        b = ids.resolve(s, ws, [("email", "B@x.cn"), ("visitor_cookie", "cb")], "e2")
        assert ids.resolve(s, ws, [("visitor_cookie", "cb"), ("visitor_cookie", "ca")], "e3") == a
        other = ids.resolve(s, ws, [("phone", "13800138002"), ("visitor_cookie", "ca")], "e4")  # refused
        for i in range(3):  # the shop tablet: quarantined after touching a fourth person
            ids.resolve(s, ws, [("phone", f"1390013900{i}"), ("visitor_cookie", "shop")], f"t{i}")
        ids.resolve(s, ws, [("phone", "13900139009"), ("visitor_cookie", "shop")], "t9")
    with db.session() as s:  # a fresh session: everything below comes from the database
        profile = ids.profile(s, ws, b)
        assert profile["super_id"] == a and profile["merged_ids"] == [b]
        assert [i["type"] for i in profile["identifiers"]] == [
            "crm_id",
            "phone",
            "email",
            "visitor_cookie",
            "visitor_cookie",
        ]
        created = ids.identifiers_of(s, ws, a)[0]["created_at"]
        assert created.endswith("+00:00")
        assert ids.lookup(s, ws, "email", "b@x.cn") == a
        assert [c["kind"] for c in ids.list_conflicts(s, ws)].count("unique") >= 2
        assert ids.quarantined(s, ws) == [{"type": "visitor_cookie", "value": "shop", "people": 4}]
        assert other not in (a, b)
        log = ids.merge_log(s, ws, a)
        assert [(m["survivor_id"], m["merged_id"], m["event_ref"]) for m in log] == [(a, b, "e3")]
        restored = ids.unmerge(s, ws, b, actor="ops")
        assert restored.moved == [("email", "b@x.cn"), ("visitor_cookie", "cb")]
    with db.session() as s:
        assert ids.lookup(s, ws, "visitor_cookie", "cb") == b
        assert ids.resolve(s, ws, [("visitor_cookie", "ca"), ("visitor_cookie", "cb")]) == a  # kept apart
        assert ids.erase(s, ws, b) == 2
    with db.session() as s:
        assert ids.resolve(s, ws, [("email", "b@x.cn")]) is None
        assert all(m["via"][1] != "cb" for m in ids.merge_log(s, ws))  # the logs lost the erased values


def test_concurrent_first_sightings_of_one_person_make_one_person_on_postgresql(pg_url):
    """Two events of a brand-new person arrive at once: without the workspace lock both would create a person."""
    db = Database(pg_url)
    db.migrate()
    try:
        with db.session() as s:
            ws = workspaces.create_workspace(s, "Coffee Co", slug="coffee").id
        barrier = threading.Barrier(4)
        got: list[int] = []
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                barrier.wait(5)
                with db.session() as s:
                    got.append(ids.resolve(s, ws, [("member_id", "M1"), ("visitor_cookie", f"c{i}")], f"e{i}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert len(set(got)) == 1 and len(got) == 4
        with db.session() as s:
            assert len(ids.identifiers_of(s, ws, got[0])) == 5
    finally:
        db.dispose()
