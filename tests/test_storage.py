"""Operational storage, on SQLite and on the machine's real PostgreSQL.

Every test here runs twice (see the `database_url` fixture): the schema comes from Alembic migrations run on an
empty database, never from `create_all`, so what is tested is what an installation actually gets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

import siyu.models  # noqa: F401  (every table on Base.metadata)
from siyu.db import Base, Database
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.links import service, slugs
from siyu.links.models import ShortLink, Tag
from siyu.workspaces import service as workspaces

# Every table a model declares, plus Alembic's bookkeeping (the drift test below checks the columns match).
TABLES = {*Base.metadata.tables, "alembic_version"}


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def two_workspaces(db):
    """Workspace A on s.example (plus go.example), workspace B on b.example."""
    with db.session() as s:
        a = workspaces.create_workspace(s, "Shop A", slug="shop-a")
        workspaces.add_domain(s, a.id, "s.example")
        workspaces.add_domain(s, a.id, "go.example")
        b = workspaces.create_workspace(s, "Shop B", slug="shop-b")
        workspaces.add_domain(s, b.id, "b.example")
    return service.Context(a.id, "alice", "sy.test"), service.Context(b.id, "bob", "sy.test")


def create(db, ctx, **fields):
    with db.session() as s:
        return service.create_link(s, ctx, {"destination_url": "https://example.com/", **fields})


def alembic_head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", "siyu:migrations")
    return ScriptDirectory.from_config(cfg).get_current_head()


# --- schema ----------------------------------------------------------------------------------------------


def test_migrations_build_the_whole_schema_from_an_empty_database(database_url):
    database = Database(database_url)
    try:
        assert set(inspect(database.engine).get_table_names()) == set()
        database.migrate()
        assert set(inspect(database.engine).get_table_names()) == TABLES
        assert {"workspaces", "domains", "short_links", "tags", "link_tags", "api_keys", "users"} < TABLES
        with database.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == alembic_head()
        database.migrate()  # a second run (every process start does this) is a no-op
        with database.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == alembic_head()
    finally:
        database.dispose()


def test_the_migrated_schema_matches_the_models_exactly(db):
    """The autogenerate diff is empty: no model change was left without a migration (types included)."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        drift = compare_metadata(context, Base.metadata)
    assert drift == []


# --- round trips -----------------------------------------------------------------------------------------


def test_workspace_domain_link_and_tags_round_trip_with_utc_datetimes(db, two_workspaces):
    a, _ = two_workspaces
    before = datetime.now(UTC)
    link = create(
        db,
        a,
        destination_url="https://example.com/coffee?from=poster",
        slug="coffee",
        domain="go.example",
        title="精品咖啡 Coffee",
        tags=["咖啡", "demo", "咖啡"],
        utm={"utm_source": "poster", "campaign": "launch"},
        expires_at="2030-01-01T08:00:00+08:00",
        max_clicks=100,
        rules=[{"when": {"os": ["iOS"], "province": ["广东省"]}, "url": "https://apps.apple.com/app/id1"}],
        variants=[{"url": "https://example.com/a", "weight": 3}, {"url": "https://example.com/b", "weight": 1}],
        anti_block_platforms=["WeChat", "qq"],
        password="s3cret",
    )

    with db.session() as s:  # a fresh session: everything below comes back from the database
        ws = workspaces.get_workspace(s, a.workspace_id)
        assert ws.slug == "shop-a" and ws.name == "Shop A" and ws.ip_mode == "truncated"
        assert [d.hostname for d in workspaces.list_domains(s, ws.id)] == ["s.example", "go.example"]
        assert workspaces.default_domain(s, ws.id).hostname == "s.example"

        got = service.get_link(s, a.workspace_id, link.id)
        assert (got.hostname, got.slug) == ("go.example", "coffee")
        assert got.title == "精品咖啡 Coffee"
        assert [t.name for t in got.tags] == sorted(["咖啡", "demo"])
        assert got.utm == {"source": "poster", "campaign": "launch"}
        assert got.rules == [{"when": {"os": ["ios"], "province": ["广东"]}, "url": "https://apps.apple.com/app/id1"}]
        assert got.variants == [
            {"url": "https://example.com/a", "weight": 3},
            {"url": "https://example.com/b", "weight": 1},
        ]
        assert got.anti_block_platforms == ["wechat", "qq"]
        assert got.max_clicks == 100
        assert got.password_hash and "s3cret" not in got.password_hash
        assert got.created_by == "alice"

        for value in (got.created_at, got.updated_at, got.expires_at, ws.created_at):
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert got.expires_at == datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
        assert before - timedelta(seconds=5) <= got.created_at <= datetime.now(UTC) + timedelta(seconds=5)

        # The dict the API and CLI print says the same thing, in UTC, before and after the reload.
        assert service.link_as_dict(got)["expires_at"] == "2030-01-01T00:00:00+00:00"
    assert service.link_as_dict(link)["expires_at"] == "2030-01-01T00:00:00+00:00"


def test_naive_datetimes_are_taken_as_utc(db, two_workspaces):
    a, _ = two_workspaces
    link = create(db, a, expires_at="2031-06-01T12:00:00")
    with db.session() as s:
        assert service.get_link(s, a.workspace_id, link.id).expires_at == datetime(2031, 6, 1, 12, tzinfo=UTC)


def test_tags_are_shared_per_workspace_and_replaced_on_update(db, two_workspaces):
    a, b = two_workspaces
    one = create(db, a, tags=["sale", "spring"])
    create(db, a, tags=["sale"])
    create(db, b, tags=["sale"])
    with db.session() as s:
        service.update_link(s, a, one.id, {"tags": ["autumn"]})
    with db.session() as s:
        assert [t.name for t in service.get_link(s, a.workspace_id, one.id).tags] == ["autumn"]
        names = s.execute(select(Tag.workspace_id, Tag.name).order_by(Tag.workspace_id, Tag.name)).all()
        # one 'sale' tag per workspace, not one per link; 'spring' stays as a (now unused) tag
        assert names == [
            (a.workspace_id, "autumn"),
            (a.workspace_id, "sale"),
            (a.workspace_id, "spring"),
            (b.workspace_id, "sale"),
        ]
        rows, total = service.list_links(s, a.workspace_id, service.LinkQuery(tag="sale"))
        assert total == 1 and rows[0].id != one.id


# --- uniqueness ------------------------------------------------------------------------------------------


def test_the_database_itself_refuses_a_second_link_with_the_same_host_and_slug(db, two_workspaces):
    a, _ = two_workspaces

    def row(hostname: str) -> ShortLink:
        return ShortLink(workspace_id=a.workspace_id, hostname=hostname, slug="dup", destination_url="https://e.com")

    with db.session() as s:
        s.add_all([row("s.example"), row("go.example")])  # same slug, other host: fine
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(row("s.example"))
        s.flush()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ShortLink)) == 2


def test_custom_slugs_are_unique_per_host_ignoring_case(db, two_workspaces):
    a, b = two_workspaces
    create(db, a, slug="Sale")
    for taken in ("Sale", "sale", "SALE"):
        with pytest.raises(Conflict) as exc:
            create(db, a, slug=taken)
        assert exc.value.field == "slug"
        assert "already used on s.example" in exc.value.reason
    assert create(db, a, slug="sale", domain="go.example").hostname == "go.example"  # other host of A
    assert create(db, b, slug="sale").hostname == "b.example"  # other workspace, other host
    with db.session() as s:
        assert s.scalar(select(func.count()).where(func.lower(ShortLink.slug) == "sale")) == 3


def test_a_random_slug_that_is_already_taken_is_drawn_again(db, two_workspaces, monkeypatch):
    a, _ = two_workspaces
    create(db, a, slug="AbCdEf")
    drawn: list[int] = []
    answers = iter(["AbCdEf", "abcdef", "Fresh7"])  # taken, taken ignoring case, free

    def fake_random_slug(length: int = 6) -> str:
        drawn.append(length)
        return next(answers)

    monkeypatch.setattr(slugs, "random_slug", fake_random_slug)
    link = create(db, a)
    assert link.slug == "Fresh7"
    assert drawn == [6, 6, 6]
    with db.session() as s:
        assert service.get_link_by_slug(s, a.workspace_id, "Fresh7").id == link.id


def test_a_slug_taken_between_check_and_insert_is_retried_inside_a_savepoint(db, two_workspaces, monkeypatch):
    """The unique constraint is the last line of defence (two writers racing); the transaction survives it."""
    a, _ = two_workspaces
    first = create(db, a, slug="race1")
    answers = iter(["race1", "race2"])
    monkeypatch.setattr(slugs, "random_slug", lambda length=6: next(answers))
    monkeypatch.setattr(service, "_slug_taken", lambda *args: False)  # pretend the check lost the race
    with db.session() as s:
        link = service.create_link(s, a, {"destination_url": "https://example.com/late", "tags": ["t"]})
        assert link.slug == "race2"
    with db.session() as s:
        assert service.get_link(s, a.workspace_id, link.id).destination_url == "https://example.com/late"
        assert service.get_link(s, a.workspace_id, first.id).destination_url == "https://example.com/"
        assert [t.name for t in service.get_link(s, a.workspace_id, link.id).tags] == ["t"]


# --- isolation -------------------------------------------------------------------------------------------


def test_a_workspace_never_sees_or_touches_another_workspaces_links(db, two_workspaces):
    a, b = two_workspaces
    theirs = create(db, a, slug="secret", title="A's launch")
    with db.session() as s:
        with pytest.raises(NotFound):
            service.get_link(s, b.workspace_id, theirs.id)
        with pytest.raises(NotFound):
            service.get_link_by_slug(s, b.workspace_id, "secret")
        with pytest.raises(NotFound):
            service.get_link_by_slug(s, b.workspace_id, "secret", "s.example")
        assert service.list_links(s, b.workspace_id, service.LinkQuery(search="secret")) == ([], 0)
        assert service.list_links(s, b.workspace_id, service.LinkQuery(archived=None)) == ([], 0)
        assert service.links_by_ids(s, b.workspace_id, [theirs.id]) == []
        with pytest.raises(NotFound):
            service.update_link(s, b, theirs.id, {"title": "hijacked"})
        with pytest.raises(NotFound):
            service.archive_link(s, b, theirs.id)
        with pytest.raises(InvalidInput) as exc:  # nor put links on A's domain
            service.create_link(s, b, {"destination_url": "https://e.com", "domain": "s.example"})
        assert exc.value.errors[0].field == "domain"
    with db.session() as s:
        same = service.get_link(s, a.workspace_id, theirs.id)
        assert (same.title, same.archived) == ("A's launch", False)
        assert service.list_links(s, a.workspace_id, service.LinkQuery())[1] == 1


# --- archive and change tracking -------------------------------------------------------------------------


def test_archiving_keeps_the_row_and_only_hides_it_from_default_lists(db, two_workspaces):
    a, _ = two_workspaces
    link = create(db, a, slug="old-promo")
    with db.session() as s:
        service.archive_link(s, a, link.id)
    with db.session() as s:
        kept = service.get_link(s, a.workspace_id, link.id)
        assert kept.archived is True
        assert kept.destination_url == "https://example.com/"
        assert s.scalar(select(func.count()).select_from(ShortLink)) == 1
        assert service.list_links(s, a.workspace_id, service.LinkQuery()) == ([], 0)
        assert [x.id for x in service.list_links(s, a.workspace_id, service.LinkQuery(archived=True))[0]] == [link.id]
        assert service.find_for_redirect(s, "s.example", "old-promo").id == link.id  # the redirect says 'gone'
        with pytest.raises(Conflict):  # and the slug stays reserved: old posters never point somewhere new
            service.create_link(s, a, {"destination_url": "https://e.com/new", "slug": "old-promo"})


def test_change_seq_grows_on_every_write_and_reports_what_changed(db, two_workspaces):
    a, b = two_workspaces
    seqs: list[int] = []

    def seq_of(link_id: int) -> int:
        with db.session() as s:
            return s.get(ShortLink, link_id).change_seq

    one = create(db, a)
    seqs.append(seq_of(one.id))
    two = create(db, b)  # another workspace shares the counter: caches are per process, not per workspace
    seqs.append(seq_of(two.id))
    with db.session() as s:
        service.update_link(s, a, one.id, {"title": "renamed"})
    seqs.append(seq_of(one.id))
    with db.session() as s:
        service.update_link(s, b, two.id, {"tags": ["x"]})
    seqs.append(seq_of(two.id))
    with db.session() as s:
        service.archive_link(s, a, one.id)
    seqs.append(seq_of(one.id))

    assert seqs == sorted(set(seqs)) and len(seqs) == 5  # strictly increasing
    with db.session() as s:
        assert service.max_change_seq(s) == seqs[-1]
        assert service.changed_since(s, seqs[-1]) == []
        assert sorted(service.changed_since(s, seqs[2])) == sorted(
            [(seqs[3], two.id, two.hostname, two.slug), (seqs[4], one.id, one.hostname, one.slug)]
        )


def test_search_takes_percent_and_underscore_literally(db, two_workspaces):
    a, _ = two_workspaces
    underscore = create(db, a, slug="spring_sale")
    dash = create(db, a, slug="spring-sale")
    percent = create(db, a, title="50% off")
    create(db, a, title="500 mugs")
    backslash = create(db, a, title=r"C:\promo")
    with db.session() as s:

        def ids(text: str) -> set[int]:
            return {x.id for x in service.list_links(s, a.workspace_id, service.LinkQuery(search=text))[0]}

        assert ids("g_s") == {underscore.id}
        assert ids("spring") == {underscore.id, dash.id}
        assert ids("50%") == {percent.id}
        assert ids("%") == {percent.id}
        assert ids("\\p") == {backslash.id}


def test_listing_filters_and_sorts_in_sql_on_both_backends(db, two_workspaces):
    a, _ = two_workspaces
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expired = create(db, a, slug="gone", title="Zebra", expires_at=past)
    live = create(db, a, slug="live", title="Apple", expires_at=future, tags=["spring"])
    plain = create(db, a, slug="plain", title="Mango", destination_url="https://shop.example/SPRING-sale")
    with db.session() as s:

        def ids(**q) -> list[int]:
            return [x.id for x in service.list_links(s, a.workspace_id, service.LinkQuery(**q))[0]]

        assert ids(expired=True) == [expired.id]
        assert set(ids(expired=False)) == {live.id, plain.id}
        assert ids(tag="spring") == [live.id]
        assert set(ids(search="spring")) == {plain.id}  # URL text, case-insensitive
        assert ids(search="APP") == [live.id]  # title
        assert ids(search="g_s") == []  # '_' is a literal underscore, not "any character" ('spring-sale')
        assert ids(search="spring-s") == [plain.id]
        assert ids(sort="title") == [live.id, plain.id, expired.id]
        assert ids(sort="created") == [plain.id, live.id, expired.id]
        assert ids(limit=1, offset=1, sort="title") == [plain.id]
        assert service.list_links(s, a.workspace_id, service.LinkQuery(limit=1))[1] == 3
        for bad, field in ((dict(sort="random"), "sort"), (dict(limit=0), "limit"), (dict(offset=-1), "offset")):
            with pytest.raises(InvalidInput) as exc:
                service.list_links(s, a.workspace_id, service.LinkQuery(**bad))
            assert exc.value.errors[0].field == field


def test_text_with_nul_characters_is_refused_before_it_reaches_postgresql(pg_url, tmp_path):
    """PostgreSQL cannot store NUL in text columns: the service names the field instead of failing."""
    import pytest as _pytest

    from siyu.db import Database
    from siyu.errors import InvalidInput
    from siyu.links import service
    from siyu.workspaces import service as workspaces

    db = Database(pg_url)
    db.migrate()
    try:
        with db.session() as session:
            ws = workspaces.create_workspace(session, "NUL test", slug="nul-test")
            workspaces.add_domain(session, ws.id, "nul.test")
            ctx = service.Context(ws.id)
            for field, value in (("title", "a\x00b"), ("notes", "\x00"), ("tags", ["x\x00"])):
                with _pytest.raises(InvalidInput) as info:
                    service.create_link(session, ctx, {"destination_url": "https://example.com", field: value})
                assert info.value.errors[0].field.startswith(field)
            with _pytest.raises(InvalidInput) as info:
                service.create_link(session, ctx, {"destination_url": "https://example.com", "expires_at": "0001-01-01T00:00+14:00"})
            assert info.value.errors[0].field == "expires_at"
    finally:
        db.dispose()


def test_the_writing_store_leaves_a_core_to_the_request_path(tmp_path, monkeypatch, caplog):
    from siyu.events import duckdb_store

    monkeypatch.delenv("SIYU_DUCKDB_THREADS", raising=False)
    monkeypatch.setattr(duckdb_store.os, "cpu_count", lambda: 4)
    assert duckdb_store.store_threads() == 3
    monkeypatch.setattr(duckdb_store.os, "cpu_count", lambda: 1)
    assert duckdb_store.store_threads() == 1

    monkeypatch.setenv("SIYU_DUCKDB_THREADS", "2")
    store = duckdb_store.DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        assert store._con.execute("SELECT current_setting('threads')").fetchone()[0] == 2
    finally:
        store.close()

    monkeypatch.setenv("SIYU_DUCKDB_THREADS", "lots")
    assert duckdb_store.store_threads() == 1  # the default (one core here), and a warning naming the variable
    assert "SIYU_DUCKDB_THREADS" in caplog.text
