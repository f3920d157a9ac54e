"""Bulk imports: members, orders with line items, official-account follows and store visits become Segment
events in the real event store (DuckDB), attributed to a source, all rows or none, idempotently.

Files come the way operators make them: Excel in China saves GBK, other tools add a BOM, times are typed
'2024/5/1 14:30' in China time, amounts carry thousands separators. Every refused row is reported as
(row as the operator sees it, column, reason), and then nothing at all is written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from siyu.db import Database
from siyu.errors import InvalidInput
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.events.store import EventFilter
from siyu.identity.extract import event_identifiers, person_traits, usable_keys
from siyu.identity.rules import default_rules
from siyu.imports import plan
from siyu.imports.models import ImportRun
from siyu.imports.service import list_runs, run_import
from siyu.sources import service as sources
from siyu.sources.models import Source
from siyu.workspaces import service as workspaces

SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Env:
    def __init__(self, db: Database, store: DuckDBEventStore, ws: int, other: int):
        self.db, self.store, self.ws, self.other = db, store, ws, other

    def run(self, kind: str, text: str | bytes, ws: int | None = None, **kw):
        data = text.encode() if isinstance(text, str) else text
        kw.setdefault("file_name", f"{kind}.csv")
        kw.setdefault("now", NOW)
        return run_import(self.db, self.store, ws or self.ws, kind, data, actor="test", **kw)

    def events(self, ws: int | None = None) -> list[dict]:
        return self.store.list_events(EventFilter(ws or self.ws), limit=10_000)

    def count(self, ws: int | None = None) -> int:
        return self.store.count_events(EventFilter(ws or self.ws))


def _env(database_url: str, tmp_path) -> Env:
    db = Database(database_url)
    db.migrate()
    with db.session() as s:
        ws = workspaces.create_workspace(s, "Coffee", slug="coffee").id
        other = workspaces.create_workspace(s, "Tea", slug="tea").id
    return Env(db, DuckDBEventStore(tmp_path / "events.duckdb"), ws, other)


@pytest.fixture
def env(tmp_path):
    e = _env(f"sqlite:///{tmp_path / 'siyu.db'}", tmp_path)
    yield e
    e.store.close()
    e.db.dispose()


@pytest.fixture
def env_any_db(database_url, tmp_path):
    e = _env(database_url, tmp_path)
    yield e
    e.store.close()
    e.db.dispose()


def errors(result) -> list[tuple[int, str, str | None]]:
    return [(e.row, e.field, e.code) for e in result.errors]


def identifiers(event: dict, source_kind: str) -> set[tuple[str, str]]:
    """What One ID will read from a stored event (siyu.identity.extract, helper A's extraction)."""
    pairs = event_identifiers(
        type_=event["type"],
        user_id=event["user_id"],
        anonymous_id=event["anonymous_id"],
        previous_id=event["previous_id"],
        traits=person_traits(event["type"], event["traits"], event["context"]),
        context=event["context"] or {},
        source_kind=source_kind,
        known_types=default_rules().types,
    )
    return set(usable_keys(default_rules(), pairs))


# --- members --------------------------------------------------------------------------------------------------


MEMBERS = """member_id,phone,email,unionid,openid,appid,name,gender,birthday,city,level,points,registered_at,store,consent_marketing,consent_personalization,consent_evidence
M001,139 1234 5678,Wang.Fang@Example.com,o6_union1,oOpen1,wx123,王芳,女,1990/5/1,上海,金卡,"1,280",2021-03-15 10:20:00,静安寺店,是,否,会员协议 v3
M002,+86 137-0000-1234,,,,,李伟,male,19851123,北京,银卡,320,2022/07/01 09:30,,,,
"""


def test_a_member_row_becomes_an_identify_with_traits_and_consent(env):
    result = env.run("members", MEMBERS)

    assert (result.status, result.rows, result.events, result.imported, result.unchanged) == ("completed", 2, 2, 2, 0)
    assert result.errors == [] and result.warnings == []
    wang = next(e for e in env.events() if e["user_id"] == "M001")
    assert wang["type"] == "identify" and wang["message_id"].startswith("imp_")
    assert wang["traits"] == {
        "phone": "+8613912345678",
        "email": "wang.fang@example.com",
        "unionid": "o6_union1",
        "openid": "oOpen1",
        "appid": "wx123",
        "name": "王芳",
        "gender": "female",
        "birthday": "1990-05-01",
        "address": {"city": "上海"},
        "level": "金卡",
        "points": 1280,
        "createdAt": "2021-03-15T02:20:00.000Z",  # China time in the file, UTC in the event
        "store": "静安寺店",
    }
    assert wang["context"]["consent"] == {
        "categoryPreferences": {"marketing": True, "personalization": False},
        "evidence": "会员协议 v3",
    }
    assert wang["context"]["library"]["name"] == "siyu-import"
    li = next(e for e in env.events() if e["user_id"] == "M002")
    assert "consent" not in li["context"] and li["traits"]["phone"] == "+8613700001234"


def test_imported_events_carry_the_identifiers_one_id_reads(env):
    env.run("members", MEMBERS)
    env.run("follows", "appid,openid,unionid\nwx123,oOpen1,o6_union1\n")
    env.run("store-visits", "store_id,visited_at,phone\nSH-01,2024-05-01 10:00,13700001234\n")

    by_type = {(e["type"], e["event"], e["user_id"]): e for e in env.events()}
    assert identifiers(by_type[("identify", None, "M001")], "crm") >= {
        ("member_id", "M001"),
        ("phone", "+8613912345678"),
        ("email", "wang.fang@example.com"),
        ("unionid", "o6_union1"),
        ("openid", "wx123:oOpen1"),
    }
    follow = by_type[("track", "Official Account Followed", None)]
    assert identifiers(follow, "official_account") >= {("openid", "wx123:oOpen1"), ("unionid", "o6_union1")}
    visit = by_type[("track", "Store Visited", None)]
    assert ("phone", "+8613700001234") in identifiers(visit, "store")
    # No identifier is spelled out in the anonymous id (Segment needs one when there is no userId).
    assert follow["anonymous_id"].startswith("imp-") and "oOpen1" not in follow["anonymous_id"]


def test_members_jsonl_takes_numbers_booleans_and_a_consent_object(env):
    text = (SAMPLES / "members.jsonl").read_text(encoding="utf-8")
    result = env.run("members", text, file_name="members.jsonl")

    assert (result.format, result.imported, result.errors) == ("jsonl", 2, [])
    liu = next(e for e in env.events() if e["user_id"] == "M20001")
    assert liu["traits"]["points"] == 560 and liu["traits"]["gender"] == "male"
    assert liu["context"]["consent"]["categoryPreferences"] == {"marketing": True, "personalization": True}
    zhao = next(e for e in env.events() if e["user_id"] == "M20002")
    assert zhao["context"]["consent"]["categoryPreferences"] == {"marketing": False}


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: t.encode("gbk"), id="GBK (Excel in China)"),
        pytest.param(lambda t: t.encode("utf-8-sig"), id="UTF-8 with BOM"),
        pytest.param(lambda t: t.encode("utf-16"), id="UTF-16 (Excel 'Unicode text')"),
    ],
)
def test_gbk_bom_and_utf16_files_import_the_same_as_utf8(env, encode):
    env.run("members", MEMBERS.encode())
    result = env.run("members", encode(MEMBERS))

    assert (result.imported, result.unchanged) == (0, 2)  # the very same events, byte for byte in content


def test_an_explicit_encoding_is_used_as_given(env):
    big5 = "member_id,name\nM9,陳大文\n".encode("big5")

    assert env.run("members", big5, encoding="big5").imported == 1
    assert env.events()[0]["traits"]["name"] == "陳大文"
    with pytest.raises(InvalidInput) as wrong:
        env.run("members", b"member_id,name\nM9,\x80\n", encoding="gbk")
    with pytest.raises(InvalidInput) as unknown:
        env.run("members", b"member_id\nM9\n", encoding="klingon")
    assert wrong.value.errors[0].field == "file" and "not valid gbk text" in wrong.value.errors[0].reason
    assert unknown.value.errors[0].field == "encoding"


def test_excel_quirks_tab_separated_and_formula_guarded_numbers(env):
    result = env.run("members", 'member_id\tphone\nM1\t="13912345678"\n', file_name="m.txt")

    assert result.errors == [] and env.events()[0]["traits"]["phone"] == "+8613912345678"


# --- orders ---------------------------------------------------------------------------------------------------


ORDERS = """order_id,member_id,phone,ordered_at,store,channel,total,discount,status,sku,product_name,category,quantity,price
SO1,M001,,2024-05-01 14:32:00,静安寺店,门店,,5,,LATTE,拿铁,咖啡,2,32
SO2,,13700001234,2024/05/02 09:15,,小程序,"1,299.00",,,GRINDER,磨豆机,器具,1,"1,299.00"
SO1,,,,,,,,,CROISSANT,可颂,烘焙,1,24
"""


def test_csv_line_items_are_grouped_into_one_order_completed_per_order(env):
    result = env.run("orders", ORDERS)

    assert (result.rows, result.events, result.imported, result.errors) == (3, 2, 2, [])
    so1, so2 = sorted(env.events(), key=lambda e: e["properties"]["order_id"])
    assert so1["event"] == "Order Completed" and so1["user_id"] == "M001"
    assert so1["timestamp"] == datetime(2024, 5, 1, 6, 32)  # 14:32 China time, stored as naive UTC
    assert so1["properties"] == {
        "order_id": "SO1",
        "total": 83.0,  # 2 × 32 + 24 − 5: worked out from the line items when the file has no total
        "revenue": 83.0,
        "discount": 5.0,
        "currency": "CNY",
        "store": "静安寺店",
        "channel": "门店",
        "products": [
            {"product_id": "LATTE", "sku": "LATTE", "name": "拿铁", "category": "咖啡", "price": 32.0, "quantity": 2},
            {
                "product_id": "CROISSANT",
                "sku": "CROISSANT",
                "name": "可颂",
                "category": "烘焙",
                "price": 24.0,
                "quantity": 1,
            },
        ],
    }
    assert so2["properties"]["total"] == 1299.0 and so2["user_id"] is None
    assert so2["context"]["traits"] == {"phone": "+8613700001234"}


def test_an_order_column_that_disagrees_between_line_items_is_an_error_on_that_row(env):
    text = ORDERS + "SO1,M999,,,,,,,,MUG,杯子,周边,1,88\n"

    result = env.run("orders", text)

    assert errors(result) == [(5, "member_id", "import_order_mismatch")]
    assert "differs from row 2 of order SO1 ('M001' there)" in result.errors[0].reason
    assert env.count() == 0


def test_orders_jsonl_with_items_refunds_and_cancellations(env):
    lines = [
        {
            "order_id": "W1",
            "member_id": "M1",
            "ordered_at": "2024-06-18 20:15:00",
            "total": 236,
            "items": [
                {"sku": "L", "product_name": "拿铁", "quantity": 4, "price": 36},
                {"product_id": "C", "name": "提拉米苏", "quantity": 2, "price": 46},  # Segment's own names
            ],
        },
        {
            "order_id": "W2",
            "phone": "13912340001",
            "ordered_at": "2024-06-19T10:00:00+08:00",
            "total": 45.5,
            "status": "已退款",
            "status_at": "2024-06-20 09:00:00",
        },
        {"order_id": "W3", "member_id": "M1", "ordered_at": "2024-06-21 10:00", "total": 10, "status": "cancelled"},
    ]
    text = "\n".join(orjson.dumps(line).decode() for line in lines)

    result = env.run("orders", text, file_name="orders.jsonl")

    assert (result.rows, result.events, result.imported) == (3, 4, 4)
    names = sorted((e["properties"]["order_id"], e["event"], e["timestamp"]) for e in env.events())
    assert names == [
        ("W1", "Order Completed", datetime(2024, 6, 18, 12, 15)),
        ("W2", "Order Completed", datetime(2024, 6, 19, 2, 0)),
        ("W2", "Order Refunded", datetime(2024, 6, 20, 1, 0)),  # when it was refunded
        ("W3", "Order Cancelled", datetime(2024, 6, 21, 2, 0)),  # never paid: no Order Completed
    ]
    w1 = next(e for e in env.events() if e["properties"]["order_id"] == "W1")
    assert [p["name"] for p in w1["properties"]["products"]] == ["拿铁", "提拉米苏"]


def test_a_later_export_with_the_order_refunded_adds_only_the_refund(env):
    env.run("orders", "order_id,member_id,ordered_at,total\nSO9,M1,2024-05-01 10:00,99\n")

    again = env.run("orders", "order_id,member_id,ordered_at,total,status\nSO9,M1,2024-05-01 10:00,99,refunded\n")

    assert (again.imported, again.unchanged) == (1, 1)
    assert sorted(e["event"] for e in env.events()) == ["Order Completed", "Order Refunded"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('SO1,M1,2024-05-01 10:00,"12,3x",', ("total", "import_amount")),
        ("SO1,M1,2024-05-01 10:00,-5,", ("total", "not_negative")),
        ("SO1,,2024-05-01 10:00,5,", ("member_id", "import_order_person")),
        ("SO1,M1,,5,", ("ordered_at", "import_required")),
        ("SO1,M1,2024-13-01 10:00,5,", ("ordered_at", "import_time")),
        ("SO1,M1,2099-01-01 10:00,5,", ("ordered_at", "import_future")),
        ("SO1,M1,1969-12-31,5,", ("ordered_at", "year_range")),
        ("SO1,M1,2024-05-01 10:00,,", ("total", "import_order_total")),
        ("SO1,M1,2024-05-01 10:00,5,maybe", ("status", "import_order_status")),
    ],
)
def test_order_errors_name_the_row_and_the_column(env, row, problem):
    result = env.run("orders", f"order_id,member_id,ordered_at,total,status\n{row}\n")

    assert [(e.row, e.field, e.code) for e in result.errors][:1] == [(2, *problem)], result.errors
    assert result.status == "rejected" and env.count() == 0


def test_amounts_take_separators_and_currency_signs_but_not_garbage(env):
    from siyu.imports.values import CellError, amount

    assert [amount(v) for v in ("12.30", "1,234.50", "¥99", "99元", "0")] == [12.3, 1234.5, 99.0, 99.0, 0.0]
    for bad in ("12,3x", "12,3", "1,23,456", "12.3.4", "abc", "1e5"):
        with pytest.raises(CellError):
            amount(bad)


def test_line_items_are_checked_one_by_one(env):
    text = "order_id,member_id,ordered_at,sku,product_name,quantity,price\nSO1,M1,2024-05-01,,,0,abc\n"
    jsonl = '{"order_id": "W1", "member_id": "M1", "ordered_at": "2024-05-01", "items": [{"sku": "A", "price": 1}, {"quantity": 2}, 5]}'

    assert errors(env.run("orders", text)) == [(2, "price", "import_amount"), (2, "quantity", "int_min")]
    assert errors(env.run("orders", jsonl, file_name="o.jsonl")) == [
        (1, "items[1].sku", "import_item_product"),
        (1, "items[2]", "import_json_object"),
    ]


# --- follows and store visits ---------------------------------------------------------------------------------


def test_follows_become_official_account_tracks_attributed_to_an_official_account_source(env):
    result = env.run("follows", (SAMPLES / "follows.csv").read_text(encoding="utf-8"))

    assert (result.imported, result.errors) == (3, [])
    assert result.source == {
        "id": result.source["id"],
        "name": "公众号导入",
        "kind": "official_account",
        "created": True,
    }
    rows = sorted((e["timestamp"], e["event"], e["properties"].get("scene")) for e in env.events())
    assert rows == [
        (datetime(2024, 4, 30, 10, 0), "Official Account Followed", "ADD_SCENE_SEARCH"),  # WeChat's subscribe_time
        (datetime(2024, 4, 30, 10, 5, 11), "Official Account Followed", "ADD_SCENE_QR_CODE"),
        (datetime(2024, 5, 10, 0, 0), "Official Account Unfollowed", None),
    ]
    assert all(e["source_id"] == result.source["id"] for e in env.events())
    follower = [e for e in env.events() if e["context"]["traits"]["openid"] == "oUpF8uDk3v7Yx0PqZr2LmNs4Tb1E"]
    assert len({e["anonymous_id"] for e in follower}) == 1  # one person, one anonymous id across rows


def test_follow_errors(env):
    result = env.run("follows", "appid,openid,event\n,o1,follow\nwx1,,follow\nwx1,o1,like\nwx1,null,follow\n")

    assert errors(result) == [
        (2, "appid", "import_required"),
        (3, "openid", "import_required"),
        (4, "event", "import_follow_event"),
        (5, "openid", "import_placeholder"),
    ]


def test_store_visits_need_a_store_a_time_and_a_person(env):
    ok = env.run("store-visits", (SAMPLES / "store-visits.csv").read_text(encoding="utf-8"))
    bad = env.run("store-visits", "store_id,visited_at,member_id,duration\nS1,2024-05-01 10:00,,5\n,,M1,abc\n")

    assert (ok.imported, ok.source["kind"], ok.source["name"]) == (3, "store", "门店导入")
    visit = next(e for e in env.events() if e["user_id"] == "M10001")
    assert visit["event"] == "Store Visited"
    assert visit["properties"] == {"store_id": "SH-JA-01", "duration_minutes": 35.0, "staff": "小周"}
    assert errors(bad) == [
        (2, "member_id", "import_visit_person"),
        (3, "duration", "import_minutes"),
        (3, "store_id", "import_required"),
        (3, "visited_at", "import_required"),
    ]


# --- validation first, writing second ------------------------------------------------------------------------


def test_every_error_is_reported_with_its_row_and_nothing_is_written(env):
    env.run("members", MEMBERS)
    before = env.count()
    text = (
        "member_id,phone,email,birthday,gender,points,consent_marketing\n"
        "M10,13912345678,ok@example.com,1990-01-01,女,10,是\n"  # row 2: fine
        "\n"  # row 3: blank, skipped (row numbers stay the file's)
        "M11,12345,bad-mail,1990-02-30,x,1.5,maybe\n"  # row 4: six problems
        '"M12",,"bad\nmail",,,,\n'  # rows 5-6: a quoted cell over two lines (the row starts on line 5)
        ",13912345679,,,,,\n"  # row 7: no member id
    )

    result = env.run("members", text)

    assert errors(result) == [
        (4, "birthday", "import_date"),
        (4, "consent_marketing", "import_consent"),
        (4, "email", "email_invalid"),
        (4, "gender", "import_gender"),
        (4, "phone", "import_phone"),
        (4, "points", "whole_number"),
        (5, "email", "email_invalid"),
        (7, "member_id", "import_required"),
    ]
    assert (result.status, result.imported) == ("rejected", 0)
    assert env.count() == before  # row 2 was valid, and still nothing was written


def test_placeholders_are_left_out_with_a_warning_not_linked(env):
    result = env.run("members", "member_id,phone,email\nM1,13800138000,null\n")

    assert result.errors == [] and result.imported == 1
    assert [(w.row, w.field, w.code) for w in result.warnings] == [
        (2, "email", "import_placeholder_dropped"),
        (2, "phone", "import_placeholder_dropped"),
    ]
    assert "phone" not in env.events()[0]["traits"]


def test_openid_needs_its_appid(env):
    assert errors(env.run("members", "member_id,openid\nM1,oOpen1\n")) == [(2, "appid", "import_openid_appid")]


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (b"", "file", "import_empty"),
        (b"  \n\n", "file", "import_empty"),
        (b"member_id,name\n", "file", "import_no_rows"),
        (b"name,city\n\xe7\x8e\x8b,\xe4\xb8\x8a\n", "file", "import_missing_columns"),
        (b"PK\x03\x04\x14\x00\x06\x00", "file", "import_workbook"),
        (b"\xff\xfe\xff\xff\xfe", "file", "file_encoding"),
        (b"member_id,member_id\nM1,M2\n", "file", "import_duplicate_column"),
        (b"member_id\nM\x001\n", "file", "import_binary"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_error(env, data, field, code):
    with pytest.raises(InvalidInput) as refused:
        env.run("members", data)

    assert [(e.field, e.code) for e in refused.value.errors] == [(field, code)]


def test_unknown_columns_are_warnings_and_are_ignored(env):
    result = env.run("members", "member_id,wechat_nick,name\nM1,小王,王芳\n")

    assert result.errors == [] and result.imported == 1
    assert [(w.row, w.field, w.code) for w in result.warnings] == [(1, "wechat_nick", "import_unknown_column")]
    assert "wechat_nick" not in env.events()[0]["traits"]


def test_consent_columns_must_name_a_purpose_the_workspace_has(env):
    result = env.run("members", "member_id,consent_marketing,consent_lottery,consent_营销\nM1,是,是,是\n")

    assert errors(result) == [
        (1, "consent_lottery", "import_consent_unknown"),
        (1, "consent_营销", "import_consent_column"),
    ]


def test_jsonl_lines_that_are_not_objects_are_reported_by_line(env):
    text = '{"member_id": "M1"}\n\n[1, 2]\n{"member_id": \n{"member_id": {"a": 1}}\n'

    result = env.run("members", text, file_name="m.jsonl")

    assert errors(result) == [
        (3, "", "import_json_object"),
        (4, "", "import_json"),
        (5, "member_id", "import_json_value"),
    ]


def test_caps_on_size_rows_and_errors(env, monkeypatch):
    rows = "member_id\n" + "".join(f"M{i}\n" for i in range(11))
    with pytest.raises(InvalidInput) as too_many:
        env.run("members", rows, max_rows=10)
    with pytest.raises(InvalidInput) as too_big:
        env.run("members", rows, max_bytes=20)
    monkeypatch.setattr(plan, "MAX_ERRORS", 5)
    flood = env.run("members", "member_id,phone\n" + "".join(f"M{i},123\n" for i in range(20)))

    assert too_many.value.errors[0].code == "import_too_many_rows"
    assert "more than 10 rows" in too_many.value.errors[0].reason
    assert too_big.value.errors[0].code == "import_too_large"
    assert (len(flood.errors), flood.errors_truncated, flood.status) == (5, True, "rejected")


def test_an_unknown_kind_or_format_is_refused(env):
    with pytest.raises(InvalidInput) as kind:
        env.run("coupons", "x\n1\n")
    with pytest.raises(InvalidInput) as fmt:
        env.run("members", "member_id\nM1\n", format="xlsx")

    assert kind.value.errors[0].field == "kind" and fmt.value.errors[0].field == "format"


# --- idempotence ----------------------------------------------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(env):
    first = env.run("orders", ORDERS)
    stored = env.events()

    again = env.run("orders", ORDERS, now=NOW + timedelta(days=3))

    assert (first.imported, again.imported, again.unchanged) == (2, 0, 2)
    assert env.events() == stored


def test_a_row_repeated_in_the_file_counts_once_and_a_conflicting_one_is_an_error(env):
    repeated = env.run("members", "member_id,name\nM1,王芳\nM1,王芳\n")
    conflicting = env.run("members", "member_id,name\nM2,李伟\nM2,李卫\n")

    assert (repeated.events, repeated.imported, repeated.unchanged) == (2, 1, 1)
    assert errors(conflicting) == [(3, "member_id", "import_duplicate")]
    assert "'M2' is also on row 2" in conflicting.errors[0].reason


def test_a_corrected_member_row_is_a_new_identify_that_supersedes_the_old(env):
    env.run("members", "member_id,level,points\nM1,银卡,100\n")

    corrected = env.run("members", "member_id,level,points\nM1,金卡,900\n", now=NOW + timedelta(hours=1))
    again = env.run("members", "member_id,level,points\nM1,金卡,900\n", now=NOW + timedelta(hours=2))

    assert (corrected.imported, again.imported, again.unchanged) == (1, 0, 1)
    old, new = env.events()  # timestamp order
    assert (old["traits"]["level"], new["traits"]["level"]) == ("银卡", "金卡")
    assert new["timestamp"] > old["timestamp"]


def test_updated_at_says_when_the_member_data_was_true(env):
    env.run("members", "member_id,level,updated_at\nM1,金卡,2024-01-01 08:00\n")

    assert env.events()[0]["timestamp"] == datetime(2024, 1, 1, 0, 0)


def test_idempotence_holds_beyond_the_tracking_de_duplication_window(env):
    env.run("members", MEMBERS, now=NOW - timedelta(days=400))

    assert env.run("members", MEMBERS).imported == 0


# --- dry runs, sources, workspaces, runs ----------------------------------------------------------------------


def test_a_dry_run_counts_what_would_happen_and_writes_nothing(env):
    first = env.run("members", MEMBERS, dry_run=True)
    with env.db.session() as s:
        assert s.scalars(select(Source)).all() == [] and s.scalars(select(ImportRun)).all() == []
    env.run("members", "\n".join(MEMBERS.splitlines()[:2]))  # M001 only
    second = env.run("members", MEMBERS, dry_run=True)

    assert (first.status, first.imported, first.unchanged, first.source["id"]) == ("dry_run", 2, 0, None)
    assert first.source["name"] == "CRM 导入" and first.run_id is None
    assert (second.imported, second.unchanged) == (1, 1)
    assert env.count() == 1  # only what the real import wrote


def test_a_dry_run_without_the_store_still_validates(env):
    result = run_import(env.db, None, env.ws, "members", MEMBERS.encode(), dry_run=True, now=NOW)

    assert (result.status, result.imported, result.store_checked) == ("dry_run", 2, False)


def test_events_go_to_the_named_source_by_id_or_name(env):
    with env.db.session() as s:
        app = sources.create_source(s, env.ws, "有赞 CRM", "crm").source.id
        off = sources.create_source(s, env.ws, "旧系统", "crm").source
        sources.update_source(s, env.ws, off.id, {"enabled": False})

    by_name = env.run("members", "member_id\nM1\n", source="有赞 CRM")
    by_id = env.run("members", "member_id\nM2\n", source=str(app))
    with pytest.raises(InvalidInput) as unknown:
        env.run("members", "member_id\nM3\n", source="nope")
    with pytest.raises(InvalidInput) as disabled:
        env.run("members", "member_id\nM3\n", source="旧系统")
    with pytest.raises(InvalidInput) as elsewhere:  # another workspace's source is not ours
        env.run("members", "member_id\nM3\n", source=str(app), ws=env.other)

    assert by_name.source == by_id.source == {"id": app, "name": "有赞 CRM", "kind": "crm", "created": False}
    assert {e["source_id"] for e in env.events()} == {app}
    assert [e.errors[0].code for e in (unknown.value, disabled.value, elsewhere.value)] == [
        "import_source_unknown",
        "import_source_disabled",
        "import_source_unknown",
    ]


def test_workspaces_are_isolated(env):
    env.run("members", MEMBERS)

    other = env.run("members", MEMBERS, ws=env.other)

    assert (other.imported, other.unchanged) == (2, 0)  # the same rows are new to another workspace
    assert env.count() == 2 and env.count(env.other) == 2
    with env.db.session() as s:
        crm = s.scalars(select(Source).where(Source.name == "CRM 导入")).all()
        assert sorted(src.workspace_id for src in crm) == [env.ws, env.other]
        runs, total = list_runs(s, env.other)
        assert total == 1 and runs[0].workspace_id == env.other


def test_each_run_is_recorded_with_who_what_and_the_counts(env_any_db):
    env = env_any_db
    env.run("members", MEMBERS, file_name="会员.csv")
    env.run("members", "member_id,phone\nM9,123\n", file_name="bad.csv")
    env.run("members", MEMBERS, dry_run=True)

    with env.db.session() as s:
        runs, total = list_runs(s, env.ws)
        assert total == 2
        rejected, completed = runs  # newest first
        assert (completed.kind, completed.file_name, completed.format, completed.status) == (
            "members",
            "会员.csv",
            "csv",
            "completed",
        )
        assert (completed.rows, completed.imported, completed.unchanged, completed.errors) == (2, 2, 0, 0)
        assert completed.actor == "test" and completed.source_id is not None
        assert completed.finished_at >= completed.started_at
        assert (rejected.status, rejected.errors, rejected.imported) == ("rejected", 1, 0)


def test_the_migration_creates_and_drops_the_import_runs_table(database_url):
    """0008 runs forwards, backwards and forwards again on SQLite and on PostgreSQL."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    import siyu.db

    database = Database(database_url)
    try:
        database.migrate()
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(siyu.db.__file__).parent / "migrations"))
        cfg.attributes["connection_engine"] = database.engine
        assert "import_runs" in inspect(database.engine).get_table_names()
        command.downgrade(cfg, "0007")
        assert "import_runs" not in inspect(database.engine).get_table_names()
        command.upgrade(cfg, "head")
        assert {"kind", "file_name", "source_id", "actor", "status", "imported", "unchanged"} <= {
            c["name"] for c in inspect(database.engine).get_columns("import_runs")
        }
    finally:
        database.dispose()


def test_the_sample_files_import_cleanly(env):
    for kind, name in [
        ("members", "members.csv"),
        ("members", "members.jsonl"),
        ("orders", "orders.csv"),
        ("orders", "orders.jsonl"),
        ("follows", "follows.csv"),
        ("store-visits", "store-visits.csv"),
    ]:
        result = env.run(kind, (SAMPLES / name).read_bytes(), file_name=name)
        assert (result.status, result.errors, result.warnings) == ("completed", [], []), name


# --- the report in the operator's language ---------------------------------------------------------------------


def test_every_import_problem_has_a_chinese_text_and_the_english_one_is_the_reason(env):
    """The console translates by code (siyu.errors_i18n); its English must say what the CLI and API say."""
    import re

    from siyu.errors_i18n import ERRORS, error_text

    sources_dir = Path(__file__).resolve().parent.parent / "siyu"
    codes = set()
    for path in [*sorted((sources_dir / "imports").glob("*.py")), sources_dir / "textfiles.py"]:
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'(?:code=|, )"((?:import|encoding)_[a-z_]+)"', text))
    assert codes and codes <= ERRORS.keys(), codes - ERRORS.keys()

    many_items = [{"sku": f"SKU-{i:04d}", "product_name": "商品" * 20, "price": 1} for i in range(400)]
    big_order = orjson.dumps({"order_id": "B1", "member_id": "M1", "ordered_at": "2024-05-01", "items": many_items})
    results = [
        env.run(
            "members",
            "member_id,phone,email,birthday,gender,points,consent_marketing,openid,updated_at,extra\n"
            "M1,12345,bad,1990-02-30,x,1.5,maybe,o1,2099-01-01,\nnull,13800138000,,,,,,,,\n"
            "M2,,,,,,,,,,surplus\n",
        ),
        env.run("members", "member_id,consent_lottery,consent_营销\nM1,是,是\n"),
        env.run(
            "members",
            '{"member_id": "M1", "consent": {"Bad": 1}}\n{"member_id": "M2", "consent": 5}\n[1]\n{x\n'
            '{"member_id": ["M3"]}\n',
            file_name="m.jsonl",
        ),
        env.run(
            "orders",
            "order_id,member_id,ordered_at,total,discount,currency,status,sku,quantity,price\n"
            "O1,,2024-05-01,abc,,RMBX,maybe,,0,1\nO2,M1,2024-05-01,,,,,,,\n"
            "O3,M1,2024-05-01,,9,,,A,1,5\nO3,M2,,,,,,B,1,5\nO4,M1,2024-05-01,1,,,,,2,\n"
            "O5,,2024-05-01,1,,,,,,\nO6,M1,2024-05-01,,99,,,A,1,5\n",
        ),
        env.run(
            "orders",
            '{"order_id": "J1", "member_id": "M1", "ordered_at": "2024-05-01", "items": 3}\n' + big_order.decode(),
            file_name="o.jsonl",
        ),
        env.run("follows", "appid,openid,event,at\nwx1,o1,like,1969-01-01\nwx1,o2,follow,someday\n"),
        env.run("store-visits", "store_id,visited_at,duration\nS1,2024-05-01,forever\nS2,2024-05-01,5\n,,5\n"),
        env.run("members", "member_id,name\nM7,a\nM7,b\n"),
    ]
    issues = [i for r in results for i in (*r.errors, *r.warnings)]
    with env.db.session() as s:
        off = sources.create_source(s, env.ws, "停用的源", "crm").source
        sources.update_source(s, env.ws, off.id, {"enabled": False})
    refusals = [
        dict(text=b"member_id\nM1\n", max_bytes=3),
        dict(text=b"member_id\nM1\nM2\n", max_rows=1),
        dict(text=b"member_id\nM1\n", encoding="klingon"),
        dict(text=b"member_id\n\x80\n", encoding="gbk"),
        dict(text=b"name\nx\n"),
        dict(text=b"member_id\nM1\n", source="nope"),
        dict(text=b"member_id\nM1\n", source="停用的源"),
        dict(text=b"member_id\nM1\n", format="xml"),
        dict(text=b"\n"),
        dict(text=b"member_id\n"),
        dict(text=b"member_id,member_id\n1,2\n"),
        dict(text=b"member_id\nM\x001\n"),
        dict(text=b"PK\x03\x04rest"),
        dict(text=b"member_id\n" + b"x" * 200_000 + b"\n"),  # past the csv module's field limit
    ]
    for refusal in refusals:
        text = refusal.pop("text")
        with pytest.raises(InvalidInput) as refused:
            env.run("members", text, **refusal)
        issues.extend(refused.value.errors)

    seen = {i.code for i in issues}
    assert codes <= seen, sorted(codes - seen)  # every code is exercised below
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for issue in issues:
        assert error_text(issue, "en") == issue.reason, issue
        assert cjk.search(error_text(issue, "zh-CN")), issue
