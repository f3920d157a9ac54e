"""Model tags from CLV predictions: churn risk, predicted value and purchase intent."""

from __future__ import annotations

import numpy as np
import pytest

from siyu.errors import InvalidInput
from siyu.value.clv import Predictions
from siyu.value.tags import CHURN_RISK, PREDICTED_VALUE, churn_risk, model_tags, predicted_value, purchase_intent


def codes(values, tag):
    return [tag.values[v].code for v in values]


def test_churn_risk_by_probability_alive():
    p_alive = np.array([0.05, 0.3, 0.5, 0.69, 0.7, 1.0])
    assert codes(churn_risk(p_alive), CHURN_RISK) == ["high", "medium", "medium", "medium", "low", "low"]
    assert codes(churn_risk(p_alive, cuts=(0.1, 0.9)), CHURN_RISK) == [
        "high",
        "medium",
        "medium",
        "medium",
        "medium",
        "low",
    ]
    assert CHURN_RISK.zh == "流失风险" and CHURN_RISK.values[0].zh == "高"


def test_predicted_value_by_share_of_people_or_by_amount():
    clv = np.arange(10.0)  # 0..9: the top 20 % (8, 9) high, the next 30 % (5, 6, 7) medium
    # cuts at the 50th and 80th percentiles: 4.5 and 7.2
    assert codes(predicted_value(clv), PREDICTED_VALUE) == ["low"] * 5 + ["medium"] * 3 + ["high"] * 2
    by_amount = predicted_value(np.array([10.0, 200, 1000]), "amount", cuts=(100, 500))
    assert codes(by_amount, PREDICTED_VALUE) == ["low", "medium", "high"]


def test_purchase_intent_and_the_tag_table():
    predictions = Predictions(
        person=np.array([7, 8, 9]),
        p_alive=np.array([0.9, 0.5, 0.1]),
        purchases_30d=np.array([1.2, 0.4, 0.01]),
        purchases_90d=np.array([3.0, 1.0, 0.03]),
        expected_order_value=np.array([100.0, 80, 50]),
        clv=np.array([900.0, 300, 5]),
    )
    assert purchase_intent(predictions.purchases_30d).tolist() == [0, 1, 1]
    table = model_tags(predictions).to_pydict()
    assert table["person"] == [7, 8, 9]
    assert table["churn_risk"] == ["low", "medium", "high"]
    assert table["predicted_value"] == ["high", "medium", "low"]
    assert table["purchase_intent"] == ["likely", "unlikely", "unlikely"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: churn_risk(np.ones(3), cuts=(0.7, 0.3)), "cuts"),
        (lambda: churn_risk(np.ones(3), cuts=(0.3, 1.5)), "cuts"),
        (lambda: churn_risk(np.ones(3), cuts=(0.3,)), "cuts"),
        (lambda: predicted_value(np.ones(3), "amount", cuts=(-5, 10)), "cuts"),
        (lambda: predicted_value(np.ones(3), "rank"), "method"),
        (lambda: purchase_intent(np.ones(3), threshold=0), "threshold"),
    ],
)
def test_bad_input_names_the_parameter(call, field):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.errors[0].field == field
