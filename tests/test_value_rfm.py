"""RFM: scores, the eight segments and the value pyramid on a small example checked by hand.

Eight people, as of 2026-01-31, 365-day window (orders after 2025-01-31):

| person | orders (date: amount)                               | R days | F | M    | R | F | M | segment |
|--------|-----------------------------------------------------|--------|---|------|---|---|---|---------|
| 1      | 01-10, 01-20, 01-30 (2026): 100 each                | 1      | 3 | 300  | 5 | 4 | 3 | 重要价值 |
| 2      | 2026-01-29: 500                                     | 2      | 1 | 500  | 4 | 1 | 4 | 重要发展 |
| 3      | 2025-09-03, 09-13, 09-23, 10-03: 50 each            | 120    | 4 | 200  | 2 | 4 | 2 | 一般保持 |
| 4      | 2025-07-01, 08-01: 400 each                         | 183    | 2 | 800  | 2 | 3 | 4 | 重要保持 |
| 5      | 2025-06-01: 20                                      | 244    | 1 | 20   | 1 | 1 | 1 | 一般挽留 |
| 6      | 2024-12-01 (outside the window): 999; 2026-01-25: 30 | 6      | 1 | 30   | 3 | 1 | 2 | 一般发展 |
| 7      | 2025-03-01: 1000                                    | 336    | 1 | 1000 | 1 | 1 | 5 | 重要挽留 |
| 8      | 2026-01-15, 01-26, 01-27, 01-28: 5 each             | 3      | 4 | 20   | 4 | 4 | 1 | 一般价值 |

Score = 1 + ⌊5 · (people strictly worse) / 8⌋. Means: R 22/8 = 2.75, F 19/8 = 2.375, M 22/8 = 2.75;
"high" is strictly above the mean.
"""

from __future__ import annotations

import numpy as np
import pytest

from siyu.errors import InvalidInput
from siyu.value.rfm import SEGMENTS, TIERS, pyramid_summary, quintile_scores, rfm, value_pyramid
from siyu.value.transactions import Transactions

ORDERS = [
    (1, "2026-01-10", 100), (1, "2026-01-20", 100), (1, "2026-01-30", 100),
    (2, "2026-01-29", 500),
    (3, "2025-09-03", 50), (3, "2025-09-13", 50), (3, "2025-09-23", 50), (3, "2025-10-03", 50),
    (4, "2025-07-01", 400), (4, "2025-08-01", 400),
    (5, "2025-06-01", 20),
    (6, "2024-12-01", 999), (6, "2026-01-25", 30),
    (7, "2025-03-01", 1000),
    (8, "2026-01-15", 5), (8, "2026-01-26", 5), (8, "2026-01-27", 5), (8, "2026-01-28", 5),
]  # fmt: skip


def transactions(rows=ORDERS) -> Transactions:
    person, when, amount = zip(*rows, strict=True)
    return Transactions.of(list(person), np.array(when, dtype="datetime64[us]"), list(amount))


@pytest.fixture
def result():
    return rfm(transactions(), "2026-01-31", window_days=365)


def test_recency_frequency_monetary_per_person(result):
    assert result.person.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert result.recency_days.tolist() == [1, 2, 120, 183, 244, 6, 336, 3]
    assert result.frequency.tolist() == [3, 1, 4, 2, 1, 1, 1, 4]
    assert result.monetary.tolist() == [300, 500, 200, 800, 20, 30, 1000, 20]  # person 6's 999 is outside


def test_quintile_scores(result):
    assert result.r_score.tolist() == [5, 4, 2, 2, 1, 3, 1, 4]
    assert result.f_score.tolist() == [4, 1, 4, 3, 1, 1, 1, 4]
    assert result.m_score.tolist() == [3, 4, 2, 4, 1, 2, 5, 1]
    assert result.score.tolist() == [12, 9, 8, 9, 3, 6, 7, 9]


def test_ties_share_a_score_and_the_worst_value_scores_one():
    # most people bought once: they all get 1, not an arbitrary split into 1s and 2s
    frequency = np.array([1, 1, 1, 1, 1, 1, 2, 3, 5, 9], dtype=float)
    assert quintile_scores(frequency).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    recency = np.array([0.0, 10, 10, 400])
    assert quintile_scores(recency, higher_is_better=False).tolist() == [4, 2, 2, 1]


def test_each_person_lands_in_the_segment_worked_out_by_hand(result):
    codes = result.segment_codes().tolist()
    assert codes == [
        "important_value",
        "important_development",
        "general_retention",
        "important_retention",
        "general_winback",
        "general_development",
        "important_winback",
        "general_value",
    ]
    names = {s.code: (s.zh, s.en) for s in SEGMENTS}
    assert names["important_winback"] == ("重要挽留客户", "Important win-back")
    assert names["general_value"] == ("一般价值客户", "General value")


def test_segments_on_raw_values_compare_with_the_mean_amounts():
    # means: recency 895/8 ≈ 112 days, frequency 17/8, monetary 2870/8 ≈ 359
    result = rfm(transactions(), "2026-01-31", window_days=365, basis="value")
    codes = dict(zip(result.person.tolist(), result.segment_codes().tolist(), strict=True))
    assert codes[1] == "general_value"  # 300 is below the 359 mean amount
    assert codes[3] == "general_retention"  # 120 days > 112: not recent
    assert codes[7] == "important_winback"


def test_average_monetary_and_the_arrow_output():
    result = rfm(transactions(), "2026-01-31", window_days=365, monetary="average")
    assert result.monetary.tolist() == [100, 500, 50, 400, 20, 30, 1000, 5]
    table = result.to_arrow()
    assert table.column_names[:4] == ["person", "recency_days", "frequency", "monetary"]
    assert table["segment"].to_pylist()[0] == "important_value"


def test_window_and_as_of_select_the_orders():
    result = rfm(transactions(), "2026-01-31", window_days=30)  # orders after 2026-01-01
    assert result.person.tolist() == [1, 2, 6, 8]
    everything = rfm(transactions(), "2026-01-31", window_days=None)
    assert everything.monetary[everything.person == 6].tolist() == [1029]
    earlier = rfm(transactions(), "2025-12-31", window_days=365)
    assert 2 not in earlier.person.tolist()


def test_pyramid_by_cumulative_revenue_share(result):
    # sorted by spend: 1000 (7), 800 (4), 500 (2), 300 (1), 200 (3), 30, 20, 20 of 2870 in all;
    # revenue share before each: 0 → VIP, 0.35 → high, 0.63 → medium, 0.80 → low, ...
    tiers = value_pyramid(result.monetary)
    by_person = dict(zip(result.person.tolist(), [TIERS[t].code for t in tiers], strict=True))
    assert by_person == {7: "vip", 4: "high", 2: "medium", 1: "low", 3: "low", 6: "low", 5: "low", 8: "low"}
    summary = pyramid_summary(tiers, result.monetary).to_pydict()
    assert summary["customers"] == [1, 1, 1, 5]
    assert summary["value"] == [1000, 800, 500, 570]


def test_pyramid_by_customer_share_and_by_score(result):
    tiers = value_pyramid(result.monetary, "customer_share", (0.05, 0.15, 0.3, 0.5))
    # people strictly above each: 7:0, 4:1/8, 2:2/8, 1:3/8, 3:4/8 (= the 0.5 bound → low)
    assert [TIERS[t].code for t in tiers] == ["medium", "medium", "low", "high", "low", "low", "vip", "low"]
    by_score = value_pyramid(result.monetary, "score", scores=result.score)
    assert [TIERS[t].code for t in by_score] == ["high", "medium", "medium", "medium", "low", "low", "medium", "medium"]


def test_equal_values_share_a_tier():
    tiers = value_pyramid(np.array([10.0, 10, 10, 10, 1]), "customer_share", (0.25, 0.25, 0.25, 0.25))
    assert tiers.tolist() == [0, 0, 0, 0, 3]


def test_pyramid_shares_are_normalised():
    values = np.arange(1.0, 101)
    assert (value_pyramid(values, shares=(2, 3, 3, 2)) == value_pyramid(values)).all()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Transactions.of([1, 2], ["2026-01-01", "2026-01-02"], [10, -5]), "amount"),
        (lambda: Transactions.of([1, 2], ["2026-01-01"], [10, 5]), "when"),
        (lambda: Transactions.of([1], ["not a date"], [10]), "when"),
        (lambda: Transactions.of([1.5], ["2026-01-01"], [10]), "person"),
        (lambda: Transactions.of([1], ["2026-01-01"], [float("nan")]), "amount"),
        (lambda: rfm(Transactions.of([], np.array([], "datetime64[us]"), []), "2026-01-31"), "transactions"),
        (lambda: rfm(transactions(), "2026-01-31", window_days=0), "window_days"),
        (lambda: rfm(transactions(), "2026-01-31", window_days=-30), "window_days"),
        (lambda: rfm(transactions(), "2020-01-01", window_days=30), "window_days"),
        (lambda: rfm(transactions(), "yesterday"), "as_of"),
        (lambda: rfm(transactions(), "2026-01-31", basis="median"), "basis"),
        (lambda: value_pyramid(np.ones(3), shares=(0, 0, 0, 0)), "shares"),
        (lambda: value_pyramid(np.ones(3), shares=(0.5, -0.1, 0.3, 0.3)), "shares"),
        (lambda: value_pyramid(np.ones(3), shares=(0.5, 0.5)), "shares"),
        (lambda: value_pyramid(np.array([1.0, -2.0])), "values"),
        (lambda: value_pyramid(np.ones(3), "score"), "scores"),
        (lambda: value_pyramid(np.ones(3), "score", scores=np.ones(3), score_cuts=(7, 10, 13)), "score_cuts"),
        (lambda: value_pyramid(np.ones(3), "deciles"), "method"),
    ],
)
def test_bad_input_names_the_parameter(call, field):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.errors[0].field == field
