"""Workspaces, domains, users and API keys: what is stored, what is refused, and who gets in.

Database-backed tests run on SQLite and PostgreSQL. API-key secrets and passwords must never be stored in
clear: the test reads every column of every table back and looks for them.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, select

from siyu.db import Database, utcnow
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.security import verify_password
from siyu.workspaces import service
from siyu.workspaces.models import ApiKey, Domain, User


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    """For checks that are refused before any SQL runs: one backend is enough."""
    database = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def shop(db) -> int:
    with db.session() as s:
        return service.create_workspace(s, "Shop", slug="shop").id


@pytest.fixture
def other(db) -> int:
    with db.session() as s:
        return service.create_workspace(s, "Other", slug="other").id


def everything_stored(db) -> str:
    """Every value of every row of every table, as one string."""
    meta = MetaData()
    meta.reflect(db.engine)
    with db.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in meta.sorted_tables for row in conn.execute(select(table)))


# --- API keys --------------------------------------------------------------------------------------------


def test_api_keys_are_stored_as_a_hash_and_a_short_prefix_only(db, shop):
    with db.session() as s:
        issued = service.create_api_key(s, shop, "CI", ["links:read"])
    secret = issued.secret
    assert secret.startswith("sy_") and len(secret) >= 30

    stored = everything_stored(db)
    assert secret not in stored
    assert secret[3:] not in stored  # not even without its "sy_" marker
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.id == issued.key.id))
        assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert key.prefix == secret[:10]  # what lists show to tell keys apart: 7 characters of the secret
        assert (key.name, key.scopes, key.revoked_at, key.last_used_at) == ("CI", ["links:read"], None, None)


def test_two_keys_never_share_a_secret(sqlite_db):
    with sqlite_db.session() as s:
        shop = service.create_workspace(s, "Shop").id
        secrets = {service.create_api_key(s, shop, f"k{i}").secret for i in range(20)}
    assert len(secrets) == 20


def test_authentication_by_secret_records_last_use(db, shop):
    with db.session() as s:
        secret = service.create_api_key(s, shop, "app").secret
    before = utcnow()
    with db.session() as s:
        key = service.authenticate_api_key(s, secret)
        assert key is not None and key.workspace_id == shop
        assert key.scopes == list(service.SCOPES)  # no scopes given: all of them
    with db.session() as s:
        used = s.scalar(select(ApiKey.last_used_at))
        assert used.utcoffset() == timedelta(0) and used >= before - timedelta(seconds=1)


def test_anything_but_the_exact_secret_is_refused(db, shop):
    with db.session() as s:
        secret = service.create_api_key(s, shop, "app").secret
    attempts = {
        "one character off": secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        "wrong case": secret.swapcase(),
        "the prefix lists show": secret[:10],
        "the stored hash": hashlib.sha256(secret.encode()).hexdigest(),
        "empty": "",
        "too long": secret + "x" * 200,
    }
    with db.session() as s:
        assert {name: service.authenticate_api_key(s, value) for name, value in attempts.items()} == dict.fromkeys(
            attempts
        )
        assert service.authenticate_api_key(s, secret) is not None


def test_a_revoked_key_no_longer_authenticates_but_stays_listed(db, shop, other):
    with db.session() as s:
        kept = service.create_api_key(s, shop, "kept").secret
        gone = service.create_api_key(s, shop, "gone")
    with db.session() as s:
        with pytest.raises(NotFound):  # another workspace cannot revoke it
            service.revoke_api_key(s, other, gone.key.id)
        with pytest.raises(NotFound):
            service.revoke_api_key(s, shop, 9999)
    with db.session() as s:
        assert service.authenticate_api_key(s, gone.secret) is not None
        service.revoke_api_key(s, shop, gone.key.id)
    with db.session() as s:
        assert service.authenticate_api_key(s, gone.secret) is None
        assert service.authenticate_api_key(s, kept) is not None
        rows = s.execute(select(ApiKey.name, ApiKey.revoked_at).order_by(ApiKey.id)).all()
        assert [name for name, _ in rows] == ["kept", "gone"]
        assert rows[0][1] is None and rows[1][1].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("scopes", "reason"),
    [
        (
            ["links:read", "admin"],
            "unknown scope(s) admin; known: links:read, links:write, analytics:read, webhooks:write",
        ),
        (["LINKS:READ"], "unknown scope(s) LINKS:READ"),
        (["links:*"], "unknown scope(s) links:*"),
    ],
)
def test_scopes_are_validated(sqlite_db, scopes, reason):
    with sqlite_db.session() as s:
        shop = service.create_workspace(s, "Shop").id
        with pytest.raises(InvalidInput) as exc:
            service.create_api_key(s, shop, "bad", scopes)
        assert [e.field for e in exc.value.errors] == ["scopes"]
        assert exc.value.errors[0].reason.startswith(reason)
        assert s.scalar(select(ApiKey.id)) is None


def test_every_known_scope_can_be_granted(sqlite_db):
    with sqlite_db.session() as s:
        shop = service.create_workspace(s, "Shop").id
        for scope in service.SCOPES:
            assert service.create_api_key(s, shop, scope, [scope]).key.scopes == [scope]


# --- domains ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("s.example.com", "s.example.com"),
        ("  S.Example.COM.  ", "s.example.com"),
        ("localhost", "localhost"),
        ("localhost:8000", "localhost:8000"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("例子.中国:8080", "xn--fsqu00a.xn--fiqs8s:8080"),
        ("xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_host_names_are_normalised(raw, normal):
    assert service.normalize_hostname(raw) == normal


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "not a valid host name"),
        ("   ", "not a valid host name"),
        ("exa mple.com", "not a valid host name"),
        ("-bad.com", "not a valid host name"),
        ("bad-.com", "not a valid host name"),
        ("a..b", "not a valid host name"),
        ("under_score.com", "not a valid host name"),
        ("x" * 64 + ".com", "not a valid host name"),
        (".".join(["abcdefghi"] * 26), "not a valid host name"),  # 259 characters
        ("shop!.com", "not a valid host name"),
        ("localhost:0", "port must be a number between 1 and 65535"),
        ("localhost:65536", "port must be a number between 1 and 65535"),
        ("localhost:http", "port must be a number between 1 and 65535"),
        ("localhost:²", "port must be a number between 1 and 65535"),
        ("localhost:", "port must be a number between 1 and 65535"),
        ("https://s.example.com", "host name only, without scheme or path"),
        ("s.example.com/promo", "host name only, without scheme or path"),
        ("admin@s.example.com", "host name only, without scheme or path"),
        (None, "must be a host name"),
        (42, "must be a host name"),
    ],
)
def test_bad_host_names_are_refused(raw, reason):
    with pytest.raises(InvalidInput) as exc:
        service.normalize_hostname(raw, "hostname")
    assert [e.field for e in exc.value.errors] == ["hostname"]
    assert reason in exc.value.errors[0].reason


def test_domains_are_unique_across_the_installation_and_one_is_the_default(db, shop, other):
    with db.session() as s:
        first = service.add_domain(s, shop, "S.Example.COM")
        second = service.add_domain(s, shop, "go.example.com")
        assert (first.hostname, first.is_default, second.is_default) == ("s.example.com", True, False)
        for duplicate, workspace in (("s.example.com", shop), ("S.EXAMPLE.com.", shop), ("s.example.com", other)):
            with pytest.raises(Conflict) as exc:
                service.add_domain(s, workspace, duplicate)
            assert (exc.value.field, exc.value.reason) == ("hostname", "domain 's.example.com' is already registered")
        assert service.add_domain(s, other, "o.example").is_default  # each workspace has its own default
    with db.session() as s:
        service.add_domain(s, shop, "new.example", is_default=True)
    with db.session() as s:
        listed = [(d.hostname, d.is_default) for d in service.list_domains(s, shop)]
        assert listed == [("s.example.com", False), ("go.example.com", False), ("new.example", True)]
        assert service.default_domain(s, shop).hostname == "new.example"
        assert service.default_domain(s, other).hostname == "o.example"
        assert service.all_hostnames(s) == {"s.example.com", "go.example.com", "new.example", "o.example"}
        assert len(s.scalars(select(Domain)).all()) == 4


def test_a_workspace_without_a_domain_says_so(sqlite_db):
    with sqlite_db.session() as s:
        shop = service.create_workspace(s, "Shop").id
        with pytest.raises(InvalidInput) as exc:
            service.default_domain(s, shop)
        assert exc.value.errors[0].field == "domain" and "add one first" in exc.value.errors[0].reason


# --- users -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password", "errors"),
    [
        ("not-an-email", "long enough", {"email": "not a valid e-mail address"}),
        ("a@", "long enough", {"email": "not a valid e-mail address"}),
        ("@b.example", "long enough", {"email": "not a valid e-mail address"}),
        ("a b@c.example", "long enough", {"email": "not a valid e-mail address"}),
        ("a@b@c.example", "long enough", {"email": "not a valid e-mail address"}),
        ("", "long enough", {"email": "not a valid e-mail address"}),
        ("x" * 65 + "@c.example", "long enough", {"email": "not a valid e-mail address"}),
        ("ok@shop.example", "1234567", {"password": "must be at least 8 characters"}),
        ("ok@shop.example", "", {"password": "must be at least 8 characters"}),
        ("nope", "short", {"email": "not a valid e-mail address", "password": "must be at least 8 characters"}),
    ],
)
def test_user_creation_is_validated_reporting_every_field(sqlite_db, email, password, errors):
    with sqlite_db.session() as s:
        with pytest.raises(InvalidInput) as exc:
            service.create_user(s, email, password)
        assert {e.field: e.reason for e in exc.value.errors} == errors
        assert s.scalar(select(User.id)) is None


def test_users_have_unique_lowercase_emails_and_hashed_passwords(db):
    with db.session() as s:
        user = service.create_user(s, "  Owner@Shop.Example ", "correct horse battery")
        assert (user.email, user.display_name) == ("owner@shop.example", "owner@shop.example")
    with db.session() as s:
        with pytest.raises(Conflict) as exc:
            service.create_user(s, "OWNER@shop.example", "another password")
        assert (exc.value.field, exc.value.reason) == ("email", "a user with this e-mail already exists")
    assert "correct horse battery" not in everything_stored(db)
    with db.session() as s:
        stored = s.scalar(select(User.password_hash))
        assert stored.startswith("$argon2")
        assert verify_password(stored, "correct horse battery")
        assert not verify_password(stored, "Correct horse battery")


# --- workspaces and members ------------------------------------------------------------------------------


def test_workspace_creation_derives_a_slug_and_validates(db):
    with db.session() as s:
        assert service.create_workspace(s, "My Shop!").slug == "my-shop"
        assert service.create_workspace(s, "默认工作区").slug.startswith("ws-")
        assert service.create_workspace(s, "Named", slug="named", ip_mode="hashed").ip_mode == "hashed"
        with pytest.raises(Conflict) as exc:
            service.create_workspace(s, "My Shop")
        assert exc.value.field == "slug"
        for kwargs, field in (
            (dict(name=""), "name"),
            (dict(name="x" * 201), "name"),
            (dict(name="A", slug="Bad Slug"), "slug"),
            (dict(name="A", slug="-x"), "slug"),
            (dict(name="A", ip_mode="everything"), "ip_mode"),
        ):
            with pytest.raises(InvalidInput) as bad:
                service.create_workspace(s, **kwargs)
            assert bad.value.errors[0].field == field


def test_members_have_one_known_role_per_workspace(sqlite_db):
    with sqlite_db.session() as s:
        shop = service.create_workspace(s, "Shop").id
        user = service.create_user(s, "op@shop.example", "long enough")
        assert service.add_member(s, shop, user.id, "operator").role == "operator"
        assert service.add_member(s, shop, user.id, "analyst").role == "analyst"  # changes, never duplicates
        with pytest.raises(InvalidInput) as exc:
            service.add_member(s, shop, user.id, "superuser")
        assert exc.value.errors[0].field == "role"
