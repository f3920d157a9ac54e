"""CSV import of links: a verdict for every row, and importing the same file twice changes nothing.

Files come the way people make them: Excel in China saves GBK, other tools add a UTF-8 BOM, rows have stray
blank lines or one cell too many. The importer is driven directly and through `siyu links import`.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from typer.testing import CliRunner

from siyu import security
from siyu.cli import common
from siyu.cli.main import app
from siyu.db import Database
from siyu.errors import InvalidInput
from siyu.links import service
from siyu.links.importer import import_csv
from siyu.links.models import ShortLink, Tag
from siyu.workspaces import service as workspaces


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    with database.session() as s:
        ws = workspaces.create_workspace(s, "Shop", slug="shop")
        workspaces.add_domain(s, ws.id, "s.example")
        workspaces.add_domain(s, ws.id, "go.example")
        other = workspaces.create_workspace(s, "Other", slug="other")
        workspaces.add_domain(s, other.id, "other.example")
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    database.migrate()
    with database.session() as s:
        ws = workspaces.create_workspace(s, "Shop", slug="shop")
        workspaces.add_domain(s, ws.id, "s.example")
    yield database
    database.dispose()


def run_import(db, text: str | bytes, dry_run: bool = False, workspace_id: int = 1):
    data = text.encode("utf-8") if isinstance(text, str) else text
    with db.session() as s:
        return import_csv(s, workspace_id, data, base_host="sy.test", dry_run=dry_run)


def verdicts(report) -> list[tuple[int, str, str]]:
    return [(r.row, r.status, r.message) for r in report.rows]


def link_count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ShortLink))


MIXED = """destination_url,slug,domain,title,tags,max_clicks,redirect_status,anti_block_platforms
https://shop.example/spring,spring,,Spring sale,sale;poster,100,301,wechat;qq
https://shop.example/autumn,,go.example,,,,,
javascript:alert(1),,,,,,,
https://shop.example/x,,,,,-1,,
https://shop.example/y,admin,,,,,,
https://shop.example/z,,,,,,,myspace
https://shop.example/w,,nowhere.example,,,,,
,,,,,,,
"""


def test_every_row_gets_a_verdict_naming_the_field_and_reason(db):
    report = run_import(db, MIXED)
    rows = verdicts(report)
    assert rows[0][:2] == (2, "created") and rows[0][2].endswith("://s.example/spring")
    assert rows[1][:2] == (3, "created") and rows[1][2].startswith("https://go.example/")
    assert rows[2:] == [
        (4, "error", "destination_url: only http and https URLs are allowed (scheme: javascript)"),
        (5, "error", "max_clicks: must be a whole number"),
        (6, "error", "slug: 'admin' is reserved"),
        (7, "error", rows[5][2]),  # checked below: the message lists every known platform
        (8, "error", "domain: 'nowhere.example' is not a domain of this workspace"),
        (9, "error", "destination_url: a URL is required"),
    ]
    assert rows[5][2].startswith("anti_block_platforms[0]: unknown platform 'myspace'; known: ")
    assert "wechat" in rows[5][2].split("known: ")[1]
    assert report.errors == 6
    assert report.summary() == "2 created, 6 error"

    with db.session() as s:
        spring = service.get_link_by_slug(s, 1, "spring")
        assert (spring.title, spring.max_clicks, spring.redirect_status) == ("Spring sale", 100, 301)
        assert [t.name for t in spring.tags] == ["poster", "sale"]
        assert spring.anti_block_platforms == ["wechat", "qq"]
        assert spring.created_by == "import"
        assert s.scalar(select(func.count()).select_from(ShortLink)) == 2  # failed rows left nothing behind


def test_reimporting_the_same_file_skips_every_row_and_creates_nothing(db):
    text = (
        "destination_url,slug,domain,tags\n"
        "https://shop.example/a,promo-a,,x\n"
        "HTTPS://Shop.Example/B?ref=csv,,GO.example,y\n"  # stored normalised; must still be recognised
        "https://shop.example/c,Promo-C,go.example,\n"
        "https://shop.example/d,,,\n"
    )
    first = run_import(db, text)
    assert [r.status for r in first.rows] == ["created"] * 4
    count = link_count(db)

    second = run_import(db, text)
    assert [r.status for r in second.rows] == ["skipped"] * 4
    assert [r.link_id for r in second.rows] == [r.link_id for r in first.rows]
    assert second.rows[0].message == f"already imported as link {first.rows[0].link_id}"
    assert second.summary() == "4 skipped"
    assert link_count(db) == count == 4
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 2


def test_a_taken_slug_with_another_destination_is_an_error_not_a_skip(db):
    run_import(db, "destination_url,slug\nhttps://shop.example/a,promo\n")
    report = run_import(
        db, "destination_url,slug\nhttps://shop.example/DIFFERENT,promo\nhttps://shop.example/b,PROMO\n"
    )
    assert verdicts(report) == [
        (2, "error", "slug: 'promo' is already used on s.example"),
        (3, "error", "slug: 'PROMO' is already used on s.example"),
    ]
    assert link_count(db) == 1


def test_rows_are_numbered_like_the_files_lines_even_with_blank_lines(sqlite_db):
    report = run_import(sqlite_db, "destination_url\nhttps://shop.example/a\n\n\nftp://nope\n")
    assert [(r.row, r.status) for r in report.rows] == [(2, "created"), (5, "error")]


def test_a_workspace_import_only_sees_its_own_links(db):
    run_import(db, "destination_url,slug\nhttps://shop.example/a,promo\n")
    report = run_import(db, "destination_url,slug\nhttps://shop.example/a,promo\n", workspace_id=2)
    assert [r.status for r in report.rows] == ["created"]  # same slug, but on the other workspace's domain
    assert report.rows[0].message.endswith("://other.example/promo")


# --- encodings and shapes --------------------------------------------------------------------------------

CHINESE = "destination_url,title,tags\nhttps://shop.example/coffee,精品咖啡,咖啡;新品\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(CHINESE.encode("utf-8"), id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), id="utf-8-bom"),
        pytest.param(CHINESE.encode("gbk"), id="gbk"),
        pytest.param(CHINESE.replace("\n", "\r\n").encode("gbk"), id="gbk-crlf"),
    ],
)
def test_utf8_with_or_without_bom_and_gbk_files_import_the_same(sqlite_db, data):
    report = run_import(sqlite_db, data)
    assert [r.status for r in report.rows] == ["created"], verdicts(report)
    with sqlite_db.session() as s:
        link = s.get(ShortLink, report.rows[0].link_id)
        assert link.title == "精品咖啡"
        assert sorted(t.name for t in link.tags) == sorted(["咖啡", "新品"])


def test_a_file_that_is_neither_utf8_nor_gbk_is_refused(sqlite_db):
    with pytest.raises(InvalidInput) as exc:
        run_import(sqlite_db, b"destination_url\n\xff\xfe\xff\n")
    assert exc.value.errors[0].field == "file"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("url,title\nhttps://shop.example/a,A\n", "include destination_url"),
        ("", "include destination_url"),
        ("https://shop.example/a\n", "include destination_url"),  # no header line at all
        ("destination_url,colour\nhttps://shop.example/a,red\n", "unknown column(s) colour; known: destination_url"),
    ],
)
def test_bad_header_lines_refuse_the_whole_file(sqlite_db, text, reason):
    with pytest.raises(InvalidInput) as exc:
        run_import(sqlite_db, text)
    assert [e.field for e in exc.value.errors] == ["file"]
    assert reason in exc.value.errors[0].reason
    assert link_count(sqlite_db) == 0


def test_a_row_with_more_values_than_columns_is_an_error_and_the_rest_still_import(sqlite_db):
    report = run_import(
        sqlite_db,
        "destination_url,title\nhttps://shop.example/a,A,oops\nhttps://shop.example/b\n"
        'https://shop.example/c,"C, with a comma"\n',
    )
    assert verdicts(report)[0] == (2, "error", "more values than columns")
    assert [r.status for r in report.rows[1:]] == ["created", "created"]  # fewer values are fine
    with sqlite_db.session() as s:
        assert s.get(ShortLink, report.rows[2].link_id).title == "C, with a comma"


def test_a_dry_run_validates_every_row_and_creates_nothing(db):
    report = run_import(db, MIXED, dry_run=True)
    assert [r.status for r in report.rows] == ["valid", "valid"] + ["error"] * 6
    assert report.rows[2].message.startswith("destination_url: only http and https")
    assert link_count(db) == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 0

    real = run_import(db, MIXED)  # the real run agrees with the dry run
    assert [r.status for r in real.rows] == ["created", "created"] + ["error"] * 6
    assert link_count(db) == 2


# --- through the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def siyu(tmp_path, monkeypatch):
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    runner = CliRunner()

    def run(*args, code: int = 0):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == code, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    run("init", "--no-demo")
    yield run
    if common._db is not None:
        common._db.dispose()


def test_cli_import_reports_each_row_and_exits_1_on_errors(siyu, tmp_path):
    path = tmp_path / "links.csv"
    path.write_bytes(
        "destination_url,slug,title\nhttps://shop.example/a,sale-a,春季\nftp://bad,,\nhttps://shop.example/b,,\n".encode(
            "gbk"
        )
    )
    first = siyu("links", "import", path, code=1)
    assert first.stdout.splitlines() == [
        "row 2: created — http://sy.test/sale-a",
        "row 3: error — destination_url: only http and https URLs are allowed (scheme: ftp)",
        first.stdout.splitlines()[2],
        "2 created, 1 error",
    ]
    assert first.stdout.splitlines()[2].startswith("row 4: created — http://sy.test/")
    assert "Traceback" not in first.output

    again = siyu("links", "import", path, code=1).stdout.splitlines()
    assert again[0].startswith("row 2: skipped — already imported as link ")
    assert again[-1] == "1 error, 2 skipped"

    listed = siyu("links", "list", "--json").stdout
    assert listed.count('"slug"') == 2 and "春季" in listed


def test_cli_import_dry_run_and_a_clean_file_exit_0(siyu, tmp_path):
    path = tmp_path / "links.csv"
    path.write_text("destination_url\nhttps://shop.example/a\nhttps://shop.example/b\n", encoding="utf-8-sig")
    dry = siyu("links", "import", path, "--dry-run").stdout.splitlines()
    assert dry == ["row 2: valid", "row 3: valid", "2 valid"]
    assert siyu("links", "list").stdout.strip() == "0 of 0 link(s)"
    assert siyu("links", "import", path).stdout.splitlines()[-1] == "2 created"
    assert siyu("links", "list").stdout.splitlines()[-1] == "2 of 2 link(s)"


def test_cli_import_of_a_file_without_destination_url_column(siyu, tmp_path):
    path = tmp_path / "links.csv"
    path.write_text("url\nhttps://shop.example/a\n", encoding="utf-8")
    result = siyu("links", "import", path, code=1)
    assert result.stderr.strip() == ("error: file: the first line must name the columns and include destination_url")
    assert result.stdout == ""
    assert siyu("links", "import", tmp_path / "missing.csv", code=2).stderr  # Typer: path does not exist
