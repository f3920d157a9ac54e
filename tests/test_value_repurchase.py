"""Repurchase cycles on a hand-checked example, as of 2026-03-28 with a 7-day tolerance.

- person 1 shampoo: 01-01, 01-31, 03-02 (+ a second order on 03-02): gaps 30, 30 → 30 days,
  next 04-01, 4 days ahead → due
- person 1 tea: 01-01, 01-11, 01-21, 03-01: gaps 10, 10, 39 → median 10, next 03-11, 17 days ago → overdue
- person 3 shampoo: 01-10, 02-19: one gap (40) is too few for their own interval (3 purchases)
  but counts for the category: shampoo's typical interval = median(30, 40) = 35 → next 03-26 → due
- person 2 shampoo: bought once, 03-20 → category interval 35 → next 04-24 → not yet
- person 2 soap: bought once, nobody has a soap interval → unknown
"""

from __future__ import annotations

import numpy as np
import pytest

from siyu.errors import InvalidInput
from siyu.value.repurchase import SOURCES, STATUSES, repurchase_cycles

LINES = [
    (1, "2026-01-01", "shampoo"), (1, "2026-01-31", "shampoo"), (1, "2026-03-02T10:00", "shampoo"),
    (1, "2026-03-02T18:00", "shampoo"),
    (1, "2026-01-01", "tea"), (1, "2026-01-11", "tea"), (1, "2026-01-21", "tea"), (1, "2026-03-01", "tea"),
    (3, "2026-01-10", "shampoo"), (3, "2026-02-19", "shampoo"),
    (2, "2026-03-20", "shampoo"), (2, "2026-03-20", "soap"),
    (2, "2026-04-02", "shampoo"),  # after as_of: ignored
]  # fmt: skip


def cycles(**options):
    person, when, category = zip(*LINES, strict=True)
    return repurchase_cycles(list(person), np.array(when, "datetime64[us]"), "2026-03-28", list(category), **options)


def rows(result) -> dict[tuple[int, str], tuple]:
    table = result.to_arrow().to_pylist()
    return {
        (r["person"], r["category"]): (
            r["purchases"],
            r["interval_days"],
            r["interval_source"],
            str(r["next_expected"]) if r["next_expected"] else None,
            r["status"],
        )
        for r in table
    }


def test_intervals_next_dates_and_status_by_person_and_category():
    assert rows(cycles()) == {
        (1, "shampoo"): (3, 30.0, "person", "2026-04-01", "due"),
        (1, "tea"): (4, 10.0, "person", "2026-03-11", "overdue"),
        (2, "shampoo"): (1, 35.0, "category", "2026-04-24", "not_yet"),
        (2, "soap"): (1, None, None, None, "unknown"),
        (3, "shampoo"): (2, 35.0, "category", "2026-03-26", "due"),
    }


def test_the_category_table_gives_the_typical_interval_and_how_many_people_it_rests_on():
    table = cycles().categories.to_pydict()
    at = table["category"].index("shampoo")
    assert (table["interval_days"][at], table["people"][at]) == (35.0, 2)
    assert np.isnan(table["interval_days"][table["category"].index("soap")])


def test_without_the_category_fallback_short_histories_are_unknown():
    result = rows(cycles(category_fallback=False))
    assert result[(3, "shampoo")][4] == "unknown"
    assert result[(1, "shampoo")][4] == "due"


def test_tolerance_and_minimum_purchases_move_the_boundaries():
    tight = rows(cycles(tolerance_days=3))
    assert tight[(1, "shampoo")][4] == "not_yet"  # 4 days ahead is outside ±3
    two = rows(cycles(min_purchases=2))
    assert two[(3, "shampoo")][1:3] == (40.0, "person")


def test_overall_cycles_without_categories():
    person, when, _ = zip(*LINES, strict=True)
    result = repurchase_cycles(list(person), np.array(when, "datetime64[us]"), "2026-03-28")
    table = result.to_arrow()
    assert "category" not in table.column_names
    by_person = {r["person"]: r for r in table.to_pylist()}
    # person 1 bought on 01-01, 01-11, 01-21, 01-31, 03-01, 03-02: gaps 10, 10, 10, 29, 1 → 10
    assert by_person[1]["interval_days"] == 10.0
    assert by_person[1]["purchases"] == 6
    assert result.due.dtype == bool
    assert {s.code for s in STATUSES} == {"not_yet", "due", "overdue", "unknown"}
    assert SOURCES[1].zh == "品类周期"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"min_purchases": 1}, "min_purchases"),
        ({"tolerance_days": -1}, "tolerance_days"),
        ({"as_of": "someday"}, "as_of"),
        ({"as_of": "2020-01-01"}, "as_of"),
        ({"person": []}, "person"),
        ({"person": ["a"] * len(LINES)}, "person"),
        ({"category": ["shampoo"] * (len(LINES) - 1) + [None]}, "category"),
        ({"category": ["shampoo"]}, "category"),
    ],
)
def test_bad_input_names_the_parameter(options, field):
    person, when, category = zip(*LINES, strict=True)
    args = {"person": list(person), "when": np.array(when, "datetime64[us]"), "as_of": "2026-03-28"}
    args["category"] = list(category)
    args |= options
    if field == "person" and not options["person"]:
        args["when"], args["category"] = np.array([], "datetime64[us]"), []
    with pytest.raises(InvalidInput) as error:
        repurchase_cycles(**args)
    assert error.value.errors[0].field == field
