"""Rule trees (人群规则): what is accepted, what is refused (with the path of the node at fault), and what a
rule means, counted by the compiled SQL on a real DuckDB over per-person facts.

The facts here are written straight into the facts tables (siyu.segments.facts keeps them in the
same shape from the operational database and the event store; tests/test_tags.py goes through that
whole pipeline). Six people:

    1 张三  上海, 金卡, 1200 points   phone, member_id   marketing      3 orders (last 10 days, ¥300), 4 coffee clicks
    2 李四  上海, 银卡,  300 points   member_id          marketing      1 order 100 days ago (¥80)
    3 王五  北京, 普通,   50 points   phone              data_sharing   2 tea clicks 5 days ago
    4 赵六  北京, 金卡, "800" points  —                   —              nothing
    5 孙七  杭州, —                   phone              both           a page view 40 days ago
    6 周八  —                         —                   —              1 order yesterday (¥20)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from siyu.errors import InvalidInput
from siyu.events.duckdb_store import DuckDBEventStore
from siyu.segments import facts
from siyu.segments.compile import compile_rule, count_query, members_query
from siyu.segments.rules import MAX_DEPTH, MAX_NODES, TagInfo, Vocabulary, parse, tag_codes, tag_ids

NOW = datetime(2026, 11, 20, 12, 0)
WS = 1
VOCAB = Vocabulary(
    traits=frozenset({"city", "level", "points", "address", "name"}),
    tags={"vip": TagInfo(1, "rule"), "churn_risk": TagInfo(2, "model", ("high", "low"))},
    purposes=frozenset({"marketing", "data_sharing", "basic"}),
    id_types=frozenset({"phone", "member_id", "email"}),
    links={"coffee": (10,), "tea": (11,)},
    link_tags={"咖啡": (10,), "饮品": (10, 11)},
)
CLICK = "Short Link Clicked"


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture(scope="module")
def store():
    s = DuckDBEventStore(":memory:")
    facts.create(s)
    traits = [
        (1, "city", "上海", None), (1, "level", "金卡", None), (1, "points", "1200", 1200.0), (1, "name", "张三", None),
        (2, "city", "上海", None), (2, "level", "银卡", None), (2, "points", "300", 300.0), (2, "name", "李四", None),
        (3, "city", "北京", None), (3, "level", "普通", None), (3, "points", "50", 50.0), (3, "name", "王五", None),
        (4, "city", "北京", None), (4, "level", "金卡", None), (4, "points", "800", 800.0), (4, "name", "赵六", None),
        (5, "city", "杭州", None), (5, "address.city", "杭州", None), (5, "name", "孙七", None),
        (6, "name", "周八", None),
    ]  # fmt: skip
    events = [
        (1, days_ago(2), "Order Completed", None, 100.0), (1, days_ago(5), "Order Completed", None, 150.0),
        (1, days_ago(9), "Order Completed", None, 50.0),
        *[(1, days_ago(k + 1), CLICK, 10, None) for k in range(4)],
        (2, days_ago(100), "Order Completed", None, 80.0),
        (3, days_ago(5), CLICK, 11, None), (3, days_ago(5.5), CLICK, 11, None),
        (5, days_ago(40), "page", None, None),
        (6, days_ago(1), "Order Completed", None, 20.0),
    ]  # fmt: skip
    tables = {
        "facts_persons": {"super_id": [1, 2, 3, 4, 5, 6]},
        "facts_traits": {
            "super_id": [t[0] for t in traits],
            "key": [t[1] for t in traits],
            "text": [t[2] for t in traits],
            "num": [t[3] for t in traits],
        },
        "facts_identifiers": {
            "super_id": [1, 1, 2, 3, 5],
            "id_type": ["phone", "member_id", "member_id", "phone", "phone"],
        },
        "facts_consents": {
            "super_id": [1, 2, 3, 5, 5],
            "purpose": ["marketing", "marketing", "data_sharing", "marketing", "data_sharing"],
        },
        "facts_tags": {"super_id": [1, 2, 1, 4], "tag_id": [1, 1, 2, 2], "value": [None, None, "low", "high"]},
    }
    with s.writing() as cur:
        for name, columns in tables.items():
            cur.register("rows", facts.rows_table(name, WS, columns))
            cur.execute(f"INSERT INTO {name} SELECT * FROM rows")
            cur.unregister("rows")
        # another workspace's person with everything: never counted for WS
        cur.execute("INSERT INTO facts_persons VALUES (2, 99)")
        cur.execute("INSERT INTO facts_traits VALUES (2, 99, 'city', '上海', NULL)")
        ev = pa.table(
            {
                "workspace_id": pa.array([WS] * len(events), pa.int32()),
                "super_id": pa.array([e[0] for e in events], pa.int64()),
                "ts": pa.array([e[1] for e in events], pa.timestamp("us")),
                "event": [e[2] for e in events],
                "link_id": pa.array([e[3] for e in events], pa.int64()),
                "amount": pa.array([e[4] for e in events], pa.float64()),
                "event_id": [f"e{i}" for i in range(len(events))],
            }
        )
        cur.register("ev", ev)
        cur.execute("INSERT INTO facts_events SELECT * FROM ev")
        cur.unregister("ev")
    yield s
    s.close()


def members(store, rule) -> set[int]:
    sql, params = members_query(compile_rule(parse(rule, VOCAB), WS, NOW), WS)
    return {r[0] for r in store.query(sql, params)}


def trait(field, op, value=None):
    node = {"type": "trait", "field": field, "op": op}
    if value is not None:
        node["value"] = value
    return node


def event(name, **kw):
    return {"type": "event", "event": name, **kw}


# --- what a rule means ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (trait("city", "eq", "上海"), {1, 2}),
        (trait("city", "ne", "上海"), {3, 4, 5}),  # 'ne' needs the trait: 周八 has no city
        ({"not": trait("city", "eq", "上海")}, {3, 4, 5, 6}),  # NOT counts people without it too
        (trait("city", "in", ["北京", "杭州"]), {3, 4, 5}),
        (trait("city", "not_in", ["北京", "杭州"]), {1, 2}),
        (trait("points", "gte", 800), {1, 4}),  # 赵六's "800" arrived as text: still a number
        (trait("points", "eq", 1200), {1}),
        (trait("points", "eq", "1200"), {1}),
        (trait("points", "between", [50, 300]), {2, 3}),
        (trait("points", "lt", 100), {3}),
        (trait("level", "exists"), {1, 2, 3, 4}),
        (trait("level", "not_exists"), {5, 6}),
        (trait("name", "contains", "五"), {3}),
        (trait("name", "starts_with", "张"), {1}),
        (trait("address.city", "eq", "杭州"), {5}),
        ({"type": "tag", "tag": "vip"}, {1, 2}),
        ({"type": "tag", "tag": "churn_risk", "op": "eq", "value": "high"}, {4}),
        ({"type": "tag", "tag": "churn_risk", "op": "ne", "value": "high"}, {1}),
        ({"type": "tag", "tag": "churn_risk", "op": "in", "value": ["high", "low"]}, {1, 4}),
        ({"type": "identifier", "id_type": "phone"}, {1, 3, 5}),
        ({"type": "consent", "purpose": "data_sharing"}, {3, 5}),
        (event("Order Completed", within_days=90, op="gte", value=2), {1}),
        (event("Order Completed", within_days=90), {1, 6}),  # at least once by default
        (event("Order Completed"), {1, 2, 6}),  # no window: all time
        (event("Order Completed", within_days=90, op="lt", value=2), {2, 3, 4, 5, 6}),  # zero orders count too
        (event("Order Completed", within_days=90, op="eq", value=0), {2, 3, 4, 5}),
        (event("Order Completed", within_days=365, measure="amount", op="gte", value=100), {1}),
        (event("Order Completed", within_days=365, measure="amount", op="lt", value=50), {3, 4, 5, 6}),
        (event(CLICK, link="coffee", within_days=30, value=3), {1}),
        (event(CLICK, link_tag="饮品", within_days=30), {1, 3}),
        (event("*", link="tea"), {3}),
        (event("page"), {5}),
        ({"not": event("*", within_days=30)}, {2, 4, 5}),  # "no visit for 30 days"
        (
            {"and": [trait("city", "eq", "上海"), {"or": [{"type": "tag", "tag": "vip"}, event(CLICK)]}]},
            {1, 2},
        ),
        (
            {
                "or": [
                    {"and": [trait("city", "eq", "北京"), {"not": {"type": "identifier", "id_type": "phone"}}]},
                    {"type": "consent", "purpose": "data_sharing"},
                ]
            },
            {3, 4, 5},
        ),  # fmt: skip
    ],
)
def test_a_rule_selects_exactly_the_people_it_says(store, rule, expected):
    assert members(store, rule) == expected


def test_the_count_and_the_members_agree_and_stay_in_the_workspace(store):
    rule = trait("city", "eq", "上海")
    sql, params = count_query(compile_rule(parse(rule, VOCAB), WS, NOW), WS)
    assert store.query(sql, params)[0][0] == 2  # workspace 2's 上海 person is not counted
    sql, params = count_query(compile_rule(parse(rule, VOCAB), 2, NOW), 2)
    assert store.query(sql, params)[0][0] == 1


def test_windows_are_measured_from_the_time_given(store):
    rule = parse(event("Order Completed", within_days=30), VOCAB)
    later = NOW + timedelta(days=10)  # 张三's orders are 12-19 days old then, 周八's 11
    sql, params = members_query(compile_rule(rule, WS, later), WS)
    assert {r[0] for r in store.query(sql, params)} == {1, 6}
    sql, params = members_query(compile_rule(rule, WS, NOW + timedelta(days=40)), WS)
    assert store.query(sql, params) == []


def test_names_from_the_rule_are_parameters_never_sql(store):
    """Whatever text a rule carries reaches DuckDB as a bound value: it matches nothing and breaks nothing."""
    nasty = "city' OR '1'='1"
    open_vocab = Vocabulary(None, VOCAB.tags, VOCAB.purposes, VOCAB.id_types, VOCAB.links, VOCAB.link_tags)
    for rule in (
        trait(nasty, "eq", "x"),
        trait("city", "eq", "'); DROP TABLE facts_persons; --"),
        trait("city", "in", ["上海') OR true --"]),
        event("Order Completed' OR true --"),
    ):
        compiled = compile_rule(parse(rule, open_vocab), WS, NOW)
        assert nasty not in compiled.predicate and "DROP" not in compiled.predicate
        sql, params = members_query(compiled, WS)
        assert store.query(sql, params) == []
    assert store.query("SELECT count(*) FROM facts_persons WHERE workspace_id = 1")[0][0] == 6


# --- what is refused -------------------------------------------------------------------------------------------


def refused(rule) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as exc:
        parse(rule, VOCAB)
    return [(e.field, e.reason) for e in exc.value.errors]


def test_an_unknown_trait_is_named_with_the_path_of_its_node():
    rule = {"and": [trait("city", "eq", "上海"), {"not": trait("foo", "eq", 1)}]}
    assert refused(rule) == [("rule.and[1].not.field", "unknown trait 'foo'")]


@pytest.mark.parametrize(
    ("rule", "errors"),
    [
        ([], [("rule", 'must be {"and": [...]}, {"or": [...]}, {"not": {...}} or a condition with "type"')]),
        ({"and": []}, [("rule.and", "must be a list of 1 to 50 conditions")]),
        ({"or": "x"}, [("rule.or", "must be a list of 1 to 50 conditions")]),
        ({"and": [trait("city", "eq", "上海")], "why": 1}, [("rule.why", "unknown field")]),
        ({"type": "shoe_size"}, [("rule.type", "must be one of trait, tag, identifier, consent, event")]),
        (
            {"field": "city"},
            [("rule", 'must be {"and": [...]}, {"or": [...]}, {"not": {...}} or a condition with "type"')],
        ),
        (
            trait("city", "like", "上%"),
            [
                (
                    "rule.op",
                    "must be one of eq, ne, in, not_in, gt, gte, lt, lte, between, contains, starts_with, exists, "
                    "not_exists",
                )
            ],
        ),  # fmt: skip
        (trait("points", "gte", "many"), [("rule.value", "must be a number for 'gte'")]),
        (trait("points", "gte", True), [("rule.value", "must be a number for 'gte'")]),
        (
            trait("points", "between", [9, 1]),
            [("rule.value", "must be two numbers [low, high], low ≤ high for 'between'")],
        ),
        (trait("city", "in", []), [("rule.value", "must be a list of 1 to 500 texts or numbers for 'in'")]),
        (trait("city", "eq", {"a": 1}), [("rule.value", "must be text, a number or true/false for 'eq'")]),
        (trait("city", "exists", "x"), [("rule.value", "takes no value with 'exists'")]),
        ({**trait("city", "eq", "x"), "colour": "red"}, [("rule.colour", "unknown field")]),
        ({"type": "tag", "tag": "gold"}, [("rule.tag", "unknown tag 'gold'")]),
        ({"type": "tag", "tag": "vip", "value": "x"}, [("rule.value", "takes no value with 'has'")]),
        ({"type": "identifier", "id_type": "passport"}, [("rule.id_type", "unknown identifier type 'passport'")]),
        ({"type": "consent", "purpose": "spam"}, [("rule.purpose", "unknown consent purpose 'spam'")]),
        (
            event("Order Completed", within_days=0),
            [("rule.within_days", "must be a whole number of days from 1 to 3650")],
        ),
        (
            event("Order Completed", within_days=-7),
            [("rule.within_days", "must be a whole number of days from 1 to 3650")],
        ),
        (
            event("Order Completed", within_days=100000),
            [("rule.within_days", "must be a whole number of days from 1 to 3650")],
        ),
        (
            event("Order Completed", within_days=1.5),
            [("rule.within_days", "must be a whole number of days from 1 to 3650")],
        ),
        (event("Order Completed", value=-1), [("rule.value", "must be a whole number from 0 to 1000000 for 'gte'")]),
        (event("Order Completed", measure="median"), [("rule.measure", "must be one of count, amount")]),
        (event(""), [("rule.event", "must be text of 1 to 200 characters")]),
        (
            event("Order Completed", link="coffee"),
            [("rule.link", "only short-link clicks (Short Link Clicked) can be filtered by link")],
        ),
        (event(CLICK, link="latte"), [("rule.link", "unknown short link 'latte'")]),
        (event(CLICK, link_tag="茶"), [("rule.link_tag", "no short link has the tag '茶'")]),
    ],
)
def test_bad_rules_are_refused_naming_the_node_and_the_reason(rule, errors):
    assert refused(rule) == errors


def test_every_problem_is_reported_at_once():
    rule = {"or": [trait("foo", "gte", "x"), {"and": [event("Order Completed", within_days=0)]}, {"type": "tag"}]}
    assert refused(rule) == [
        ("rule.or[0].field", "unknown trait 'foo'"),
        ("rule.or[0].value", "must be a number for 'gte'"),
        ("rule.or[1].and[0].within_days", "must be a whole number of days from 1 to 3650"),
        ("rule.or[2].tag", "must be text of 1 to 200 characters"),
    ]


def test_trees_too_deep_or_too_big_are_refused():
    deep = trait("city", "eq", "上海")
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    errors = refused(deep)
    assert errors == [("rule" + ".not" * MAX_DEPTH, f"the rule is nested deeper than {MAX_DEPTH} levels")]
    parse({"not": {"not": trait("city", "eq", "上海")}}, VOCAB)  # shallow nesting is fine

    wide = {"or": [{"and": [trait("city", "eq", str(i)) for i in range(40)]} for _ in range(3)]}
    assert refused(wide)[0] == ("rule", f"the rule has more than {MAX_NODES} nodes")


def test_tags_a_rule_reads_are_known_before_and_after_validation():
    rule = {
        "and": [
            {"type": "tag", "tag": "vip"},
            {"not": {"type": "tag", "tag": "churn_risk", "op": "eq", "value": "high"}},
        ]
    }
    assert tag_ids(parse(rule, VOCAB)) == {1, 2}
    assert tag_codes(rule) == {"vip", "churn_risk"}
    assert tag_codes({"and": [{"type": "trait", "field": "tag", "op": "exists"}]}) == set()
