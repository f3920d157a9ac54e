"""Association rules on the textbook market-basket example (Tan, Steinbach & Kumar, Table 6.1).

    1 {bread, milk}                 4 {bread, milk, diaper, beer}
    2 {bread, diaper, beer, eggs}   5 {bread, milk, diaper, cola}
    3 {milk, diaper, beer, cola}

Counts: bread 4, milk 4, diaper 4, beer 3, cola 2, eggs 1; {diaper, beer} 3, {milk, diaper} 3,
{milk, diaper, beer} 2. By hand:
- {diaper} → {beer}: support 3/5 = 0.6, confidence 3/4 = 0.75, lift 0.75 / 0.6 = 1.25
- {beer} → {diaper}: support 0.6, confidence 3/3 = 1, lift 1 / 0.8 = 1.25
- {milk, diaper} → {beer}: support 2/5 = 0.4, confidence 2/3, lift (2/3) / 0.6 = 10/9
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pyarrow as pa
import pytest

from siyu.errors import InvalidInput
from siyu.value.basket import association_rules, bought_together, recommend

BASKETS = [
    ["bread", "milk"],
    ["bread", "diaper", "beer", "eggs"],
    ["milk", "diaper", "beer", "cola"],
    ["bread", "milk", "diaper", "beer"],
    ["bread", "milk", "diaper", "cola"],
]
ORDER_ID = [f"o{i}" for i, basket in enumerate(BASKETS, 1) for _ in basket]
PRODUCT = [item for basket in BASKETS for item in basket]


@pytest.fixture(scope="module")
def rules():
    return association_rules(ORDER_ID, PRODUCT, min_support=0.4, min_confidence=0.5)


def rule(rules, antecedent, consequent):
    table = rules.to_arrow().to_pylist()
    found = [r for r in table if sorted(r["antecedent"]) == sorted(antecedent) and r["consequent"] == consequent]
    assert len(found) == 1, (antecedent, consequent)
    return found[0]


def test_support_confidence_and_lift_as_computed_by_hand(rules):
    r = rule(rules, ["diaper"], "beer")
    assert (r["count"], r["support"], r["confidence"], r["lift"]) == (3, 0.6, 0.75, pytest.approx(1.25))
    r = rule(rules, ["beer"], "diaper")
    assert (r["support"], r["confidence"], r["lift"]) == (0.6, 1.0, pytest.approx(1.25))
    r = rule(rules, ["milk", "diaper"], "beer")
    assert (r["support"], r["confidence"], r["lift"]) == (0.4, pytest.approx(2 / 3), pytest.approx(10 / 9))


def test_thresholds_prune_items_and_rules(rules):
    table = rules.to_arrow().to_pylist()
    assert not any("eggs" in r["antecedent"] or r["consequent"] == "eggs" for r in table)  # support 0.2
    assert all(r["confidence"] >= 0.5 and r["support"] >= 0.4 for r in table)
    assert len(rules) == len(table) == 28
    strict = association_rules(ORDER_ID, PRODUCT, min_support=0.5, min_confidence=0.8)
    assert [(list(r["antecedent"]), r["consequent"]) for r in strict.to_arrow().to_pylist()] == [(["beer"], "diaper")]
    pairs_only = association_rules(ORDER_ID, PRODUCT, min_support=0.4, min_confidence=0.5, max_size=2)
    assert max(len(r["antecedent"]) for r in pairs_only.to_arrow().to_pylist()) == 1


def test_rules_come_best_lift_first(rules):
    lifts = rules.lift.tolist()
    assert lifts == sorted(lifts, reverse=True)
    assert rule(rules, ["milk", "diaper"], "cola")["lift"] == pytest.approx(lifts[0])  # (2/3) / 0.4


def test_bought_together(rules):
    table = bought_together(rules, "diaper").to_pydict()
    assert table["product"][0] == "beer"  # confidence 0.75 ties with milk and bread; beer has the best lift
    assert table["confidence"][:3] == [0.75, 0.75, 0.75]
    assert bought_together(rules, "diaper", by="lift").to_pydict()["product"][:2] == ["beer", "cola"]


def test_recommendations_skip_what_the_person_has(rules):
    table = recommend(
        rules,
        [1, 1, 2, 2, 2, 2, 2, 3],
        ["diaper", "milk"] + ["bread", "milk", "diaper", "beer", "cola"] + ["eggs"],
        top=3,
    )
    by_person: dict[int, list] = {}
    for row in table.to_pylist():
        by_person.setdefault(row["person"], []).append((row["product"], row["score"]))
    # diaper → beer 0.75, milk → bread 0.75, {milk, diaper} → cola 2/3
    assert by_person[1] == [("beer", 0.75), ("bread", 0.75), ("cola", pytest.approx(2 / 3))]
    assert 2 not in by_person  # has everything the rules can offer
    assert 3 not in by_person  # eggs start no rule


def test_random_baskets_agree_with_counting_by_brute_force():
    rng = np.random.default_rng(5)
    baskets = [sorted(set(rng.choice(12, rng.integers(1, 7), replace=True).tolist())) for _ in range(300)]
    order_id = [o for o, basket in enumerate(baskets) for _ in basket]
    product = [f"p{i:02d}" for basket in baskets for i in basket]
    rules = association_rules(order_id, product, min_support=0.05, min_confidence=0.0)

    def n(items):
        return sum(1 for b in baskets if set(items) <= set(b))

    expected = {}
    for size in (2, 3):
        for items in combinations(range(12), size):
            if n(items) >= 0.05 * 300:
                for right in items:
                    left = tuple(sorted(set(items) - {right}))
                    expected[(tuple(f"p{i:02d}" for i in left), f"p{right:02d}")] = (n(items), n(items) / n(left))
    found = {
        (tuple(sorted(r["antecedent"])), r["consequent"]): (r["count"], r["confidence"])
        for r in rules.to_arrow().to_pylist()
    }
    assert found.keys() == expected.keys()
    for key, (count, confidence) in expected.items():
        assert found[key] == (count, pytest.approx(confidence)), key


def test_integer_skus_and_arrow_input():
    rules = association_rules(pa.array([1, 1, 2, 2, 3]), np.array([10, 20, 10, 20, 10]), min_support=0.5)
    assert rule(rules, ["20"], "10")["confidence"] == 1.0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"max_size": 4}, "max_size"),
        ({"order_id": [], "product": []}, "order_id"),
        ({"product": PRODUCT[:-1]}, "product"),
        ({"product": PRODUCT[:-1] + [None]}, "product"),
    ],
)
def test_bad_input_names_the_parameter(options, field):
    with pytest.raises(InvalidInput) as error:
        association_rules(**({"order_id": ORDER_ID, "product": PRODUCT} | options))
    assert error.value.errors[0].field == field


def test_bad_recommendation_input(rules):
    with pytest.raises(InvalidInput) as error:
        recommend(rules, [1], ["milk"], top=0)
    assert error.value.errors[0].field == "top"
    with pytest.raises(InvalidInput) as error:
        bought_together(rules, "caviar")
    assert error.value.errors[0].field == "product"
