"""Bulk imports as people run them: `siyu import ...` on the command line, POST /api/v1/imports/{kind} while the
server runs, and the console page /console/import. One engine behind all three (see tests/test_imports.py for
the rules themselves); here: the report each one gives, the exit status / HTTP status, what got stored, and
that the CLI steps aside with a clear message when the server holds the event store.
"""

from __future__ import annotations

import csv
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from siyu import security
from siyu.cli import common
from siyu.cli.main import app as cli
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.store import EventFilter
from siyu.imports.models import ImportRun
from siyu.sources.models import Source
from siyu.workspaces import service as workspaces
from siyu.workspaces.models import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
MEMBERS = "member_id,phone,name,city,consent_marketing\nM1,13912345678,王芳,上海,是\nM2,13700001234,李伟,北京,否\n"
BAD_MEMBERS = "member_id,phone,name\nM1,13912345678,王芳\nM2,12345,李伟\n,13700001234,\n"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


# --- the command line -----------------------------------------------------------------------------------------


@pytest.fixture
def siyu(tmp_path, monkeypatch):
    """`siyu(*args, code=0)` runs the CLI in a fresh installation under tmp_path and checks its exit status."""
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SIYU_BASE_URL", "http://sy.test")
    for name in ("SIYU_DATABASE_URL", "SIYU_EVENTS_PATH", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "_db", None)
    runner = CliRunner()

    def run(*args, code: int = 0):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == code, result.output
        return result

    run("init", "--no-demo")
    return run


def stored_events(tmp_path) -> list[dict]:
    store = DuckDBEventStore(tmp_path / "events.duckdb", read_only=True)
    try:
        return store.list_events(EventFilter(1), limit=1000)
    finally:
        store.close()


def test_cli_imports_each_sample_file_and_importing_again_changes_nothing(siyu, tmp_path):
    for kind, name in [
        ("members", "members.csv"),
        ("orders", "orders.csv"),
        ("orders", "orders.jsonl"),
        ("follows", "follows.csv"),
        ("store-visits", "store-visits.csv"),
    ]:
        siyu("import", kind, SAMPLES / name)
    stored = len(stored_events(tmp_path))

    again = siyu("import", "orders", SAMPLES / "orders.csv")

    assert stored == 4 + 5 + 3 + 3 + 3
    assert "imported 0, unchanged 5 (5 rows, 5 events) into source 'CRM 导入'" in again.output
    assert len(stored_events(tmp_path)) == stored


def test_cli_links_the_imported_people_unless_told_not_to(siyu, tmp_path):
    def linked() -> int:
        store = DuckDBEventStore(tmp_path / "events.duckdb", read_only=True)
        try:
            return store.query("SELECT count(*) FROM event_persons")[0][0]
        finally:
            store.close()

    later = siyu("import", "members", SAMPLES / "members.csv", "--no-link")
    unlinked = linked()
    now = siyu("import", "follows", SAMPLES / "follows.csv")

    assert "One ID" not in later.output and unlinked == 0
    assert "One ID: 7 event(s) linked to people" in now.output  # the members' 4 as well as the 3 follows
    assert linked() == 7


def test_cli_reports_every_problem_by_row_and_exits_1_with_nothing_written(siyu, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(BAD_MEMBERS, encoding="gbk")
    report = tmp_path / "report.csv"

    result = siyu("import", "members", path, "--report", report, code=1)

    assert "rejected: 2 error(s) in 3 rows; nothing was imported" in result.output
    assert re.search(r"3\s+│\s+phone\s+│\s+error\s+│\s+not a phone number", result.output)
    assert re.search(r"4\s+│\s+member_id\s+│\s+error\s+│\s+is required", result.output)
    with report.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "field", "severity", "reason"]
    assert [r[:3] for r in rows[1:]] == [["3", "phone", "error"], ["4", "member_id", "error"]]
    assert stored_events(tmp_path) == []


def test_cli_dry_run_writes_nothing_and_json_output_has_the_counts(siyu, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(MEMBERS, encoding="utf-8")

    dry = siyu("import", "members", path, "--dry-run")
    siyu("import", "members", path)
    result = json.loads(siyu("import", "members", path, "--json").output)

    assert "dry run: 2 rows, 2 events; would import 2, 0 unchanged; source 'CRM 导入' (new)" in dry.output
    assert result["counts"] == {"rows": 2, "events": 2, "imported": 0, "unchanged": 2, "errors": 0, "warnings": 0}
    assert result["status"] == "completed" and result["source"]["kind"] == "crm"


def test_cli_file_level_errors_are_one_line_each(siyu, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    no_id = tmp_path / "no_id.csv"
    no_id.write_text("name\n王芳\n", encoding="utf-8")

    assert "error: file: is empty" in siyu("import", "members", empty, code=1).output
    assert "error: file: missing required column(s): member_id" in siyu("import", "members", no_id, code=1).output
    assert (
        "error: format: must be one of csv, jsonl" in siyu("import", "members", no_id, "--format", "xml", code=1).output
    )
    assert (
        "error: source: no source 'nope' in this workspace"
        in siyu("import", "members", no_id, "--source", "nope", code=1).output
    )
    assert siyu("import", "coupons", no_id, code=2).exit_code == 2  # not a command


def test_cli_steps_aside_while_the_server_holds_the_event_store(siyu, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(MEMBERS, encoding="utf-8")
    # Another process holds the store for writing, as the running server does.
    holder = "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    server = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path / "events.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        refused = siyu("import", "members", path, code=1)
        dry = siyu("import", "members", path, "--dry-run")
    finally:
        server.communicate("", timeout=30)  # closing its stdin ends it

    assert "the event store is in use by the running server" in refused.output
    assert "/api/v1/imports/<kind>" in refused.output
    assert "would import 2" in dry.output and "not checked against it" in dry.output


# --- the REST API ---------------------------------------------------------------------------------------------


def upload(client, auth, kind: str, text: str | bytes, name: str = "members.csv", **form):
    data = text.encode() if isinstance(text, str) else text
    return client.post(f"/api/v1/imports/{kind}", headers=auth, files={"file": (name, data)}, data=form)


def test_api_imports_a_file_and_lists_the_run(client, auth, runtime):
    response = upload(client, auth, "members", MEMBERS.encode("gbk"))
    again = upload(client, auth, "members", MEMBERS)
    runs = client.get("/api/v1/imports", headers=auth).json()

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed" and body["errors"] == []
    assert body["counts"] == {"rows": 2, "events": 2, "imported": 2, "unchanged": 0, "errors": 0, "warnings": 0}
    assert again.json()["counts"]["unchanged"] == 2
    assert runs["total"] == 2
    assert [r["counts"]["imported"] for r in runs["runs"]] == [0, 2]  # newest first
    assert runs["runs"][0]["actor"].startswith("key:") and runs["runs"][0]["file_name"] == "members.csv"
    events = runtime.store.list_events(EventFilter(1), limit=10)
    assert sorted(e["user_id"] for e in events) == ["M1", "M2"]


def test_api_rejects_a_file_with_row_errors_with_422_and_the_full_report(client, auth, runtime):
    response = upload(client, auth, "members", BAD_MEMBERS)

    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "rejected" and body["error"]["code"] == "import_rejected"
    assert [(e["row"], e["field"], e["code"]) for e in body["errors"]] == [
        (3, "phone", "import_phone"),
        (4, "member_id", "import_required"),
    ]
    assert runtime.store.count_events(EventFilter(1)) == 0


def test_api_dry_run_format_encoding_and_source_fields(client, auth, runtime):
    with runtime.db.session() as db:
        source = db.scalar(select(Source).where(Source.workspace_id == 1))
        source_id = source.id if source else None
    jsonl = '{"appid": "wx1", "openid": "o1", "event": "关注", "at": 1714471200}\n'

    dry = upload(client, auth, "follows", jsonl, name="follows.data", format="jsonl", dry_run="true")
    real = upload(client, auth, "follows", jsonl.encode("gbk"), name="f.data", format="jsonl", encoding="gbk")

    assert dry.status_code == 200 and dry.json()["status"] == "dry_run" and dry.json()["counts"]["imported"] == 1
    assert real.json()["counts"]["imported"] == 1
    assert real.json()["source"]["kind"] == "official_account" and real.json()["source"]["id"] != source_id


@pytest.mark.parametrize(
    ("kind", "form", "data", "status", "field"),
    [
        ("members", {}, b"", 422, "file"),
        ("members", {}, b"name\nx\n", 422, "file"),
        ("members", {"format": "xlsx"}, b"member_id\nM1\n", 422, "format"),
        ("members", {"source": "nope"}, b"member_id\nM1\n", 422, "source"),
        ("members", {"encoding": "klingon"}, b"member_id\nM1\n", 422, "encoding"),
        ("coupons", {}, b"member_id\nM1\n", 422, "kind"),
    ],
)
def test_api_bad_requests_name_the_field(client, auth, kind, form, data, status, field):
    response = upload(client, auth, kind, data, **form)

    assert response.status_code == status, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_api_needs_a_key_with_the_sources_scope(client, auth, runtime):
    with runtime.db.session() as db:
        read_only = workspaces.create_api_key(db, 1, "reader", ["links:read"]).secret

    anonymous = client.post("/api/v1/imports/members", files={"file": ("m.csv", b"member_id\nM1\n")})
    forbidden = upload(client, {"Authorization": f"Bearer {read_only}"}, "members", "member_id\nM1\n")

    assert anonymous.status_code == 401 and forbidden.status_code == 403
    assert runtime.store.count_events(EventFilter(1)) == 0


def test_api_upload_over_the_cap_is_refused(client, auth):
    big = b"member_id\n" + b"M1234567890\n" * (11 * 1024 * 1024 // 12)

    response = upload(client, auth, "members", big)

    assert response.status_code == 422  # under the server's body limit (12 MB), over the upload cap (10 MB)
    assert response.json()["error"]["fields"][0]["reason"].endswith("the limit is 10 MB: split the file")


def test_api_keys_import_into_their_own_workspace_only(client, auth, runtime):
    with runtime.db.session() as db:
        other = workspaces.create_workspace(db, "Tea", slug="tea").id
        other_key = workspaces.create_api_key(db, other, "tea").secret

    upload(client, auth, "members", MEMBERS)
    theirs = upload(client, {"Authorization": f"Bearer {other_key}"}, "members", MEMBERS)
    listed = client.get("/api/v1/imports", headers={"Authorization": f"Bearer {other_key}"}).json()

    assert theirs.json()["counts"]["imported"] == 2  # new to that workspace
    assert runtime.store.count_events(EventFilter(other)) == 2
    assert listed["total"] == 1


# --- the console ----------------------------------------------------------------------------------------------


@pytest.fixture
def console(client, first_run):
    response = client.post("/console/login", data={"email": first_run.email, "password": first_run.password})
    assert response.status_code == 303
    return client


def csrf_of(client) -> str:
    page = client.get("/console/import")
    assert page.status_code == 200, page.text
    return CSRF_RE.search(page.text).group(1)


def post_file(client, text: str, action: str, kind: str = "members", **extra):
    data = {"csrf": csrf_of(client), "kind": kind, "action": action, **extra}
    return client.post("/console/import", data=data, files={"file": ("会员.csv", text.encode("gbk"))})


def test_console_preview_then_import_shows_counts_and_lists_the_run(console, runtime):
    preview = post_file(console, MEMBERS, "preview")
    imported = post_file(console, MEMBERS, "import")

    assert preview.status_code == 200 and "预览结果（尚未写入）" in preview.text
    assert runtime.store.count_events(EventFilter(1)) == 2  # only the real import wrote
    assert "导入完成" in imported.text and "新增 · 2" in imported.text
    assert "会员.csv" in imported.text and "user:" in imported.text  # the run, in the recent imports
    with runtime.db.session() as db:
        runs = db.scalars(select(ImportRun)).all()
        assert [(r.status, r.imported) for r in runs] == [("completed", 2)]


def test_console_report_is_translated_and_nothing_is_written(console, runtime):
    page = post_file(console, BAD_MEMBERS, "import")

    assert page.status_code == 422
    text = html.unescape(page.text)
    assert "未导入：文件中有错误，一行都没有写入" in text
    assert "手机号 <code>phone</code>" in text and "不是有效的电话号码" in text
    assert "会员号 <code>member_id</code>" in text and "必填" in text
    assert runtime.store.count_events(EventFilter(1)) == 0


def test_console_in_english_and_file_level_errors(console):
    console.get("/console/lang/en")
    no_file = console.post("/console/import", data={"csrf": csrf_of(console), "kind": "members", "action": "import"})
    no_column = post_file(console, "name\n王芳\n", "import")

    assert no_file.status_code == 422 and "Choose a file to import" in no_file.text
    assert no_column.status_code == 422 and "missing required column(s): member_id" in html.unescape(no_column.text)


def test_console_template_download_and_permissions(console, client, runtime, first_run):
    template = console.get("/console/import/template/orders")
    missing = console.get("/console/import/template/coupons")
    with runtime.db.session() as db:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == first_run.workspace))
        analyst = workspaces.create_user(db, "analyst@siyu.local", "analyst-pass-1", "Ana")
        workspaces.add_member(db, ws, analyst.id, "analyst")
    console.post("/console/logout", data={"csrf": csrf_of(console)})
    client.post("/console/login", data={"email": "analyst@siyu.local", "password": "analyst-pass-1"})

    assert template.status_code == 200 and template.text.startswith("\ufefforder_id,member_id,phone,ordered_at")
    assert missing.status_code == 404
    assert client.get("/console/import").status_code == 403
    assert 'href="/console/import"' not in client.get("/console/").text  # no nav entry either


# --- through the whole pipeline: import → One ID → profile and consent -------------------------------------------


def test_imported_people_are_linked_across_files_and_get_their_traits_and_consent(client, auth, runtime):
    from siyu.consent.service import current_consents
    from siyu.identity.service import lookup
    from siyu.profiles.service import traits_of

    for kind, name in [("members", "members.csv"), ("follows", "follows.csv"), ("store-visits", "store-visits.csv")]:
        assert upload(client, auth, kind, (SAMPLES / name).read_bytes(), name=name).status_code == 200
    runtime.stitch_now()

    people = dict(
        runtime.store.query(
            "SELECT coalesce(e.user_id, e.event), p.super_id FROM events e "
            "JOIN event_persons p ON p.event_id = e.message_id AND p.kind = 'event' "
            "WHERE e.type = 'identify' OR e.context->>'$.traits.phone' = '+8613700001234'"
        )
    )
    with runtime.db.session() as db:
        wang = lookup(db, 1, "member_id", "M10001")
        assert lookup(db, 1, "openid", "wx5f3a9c2e8b1d4f70:oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == wang  # the follow
        assert lookup(db, 1, "unionid", "o6_bmjrPTlm6_9hTkq2LmQvWx3Rk") == lookup(db, 1, "member_id", "M10003")
        assert people["Store Visited"] == people["M10002"]  # a visit known only by phone: 李伟's
        traits = traits_of(db, 1, wang)
        consents = {c["purpose"]: c for c in current_consents(db, 1, wang)}
    assert (traits["name"], traits["level"], traits["phone"]) == ("王芳", "金卡", "+8613912345678")
    assert consents["marketing"]["granted"] and consents["marketing"]["evidence"] == "会员注册协议 v3（门店纸质版）"
