"""Lookalike: seeds are a random fifth of a hidden group; the model must find the rest of it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from siyu.errors import InvalidInput
from siyu.value.lookalike import lookalike


@pytest.fixture(scope="module")
def population():
    """4000 people; 800 of them (the hidden group) spend more and visit more; noise is irrelevant."""
    rng = np.random.default_rng(11)
    n, k = 4000, 800
    hidden = np.zeros(n, dtype=bool)
    hidden[rng.choice(n, k, replace=False)] = True
    features = pa.table(
        {
            "monetary": rng.normal(0, 1, n) + 2.5 * hidden,
            "visits": rng.normal(0, 1, n) + 2.0 * hidden,
            "noise": rng.normal(0, 1, n),
        }
    )
    seeds = rng.choice(np.flatnonzero(hidden), 160, replace=False)
    return features, hidden, seeds


@pytest.mark.parametrize("model", ["logistic", "gbdt"])
def test_finds_the_hidden_group_with_a_good_held_out_auc(population, model):
    features, hidden, seeds = population
    result = lookalike(features, seeds, model=model, top=640)
    assert result.auc > 0.8
    assert len(result.fold_auc) == 4
    assert not result.seed[result.audience].any()  # seeds are never in their own audience
    precision = hidden[result.audience].mean()
    assert precision > 0.7  # a random pick would be 640 / 3840 ≈ 17 % hidden-group people
    importance = result.importance.to_pydict()
    assert set(importance["feature"][:2]) == {"monetary", "visits"}
    assert importance["feature"][2] == "noise"
    assert importance["direction"][:2] == [1, 1]  # more spend, more visits: more like the seeds


def test_threshold_default_size_and_arrow_output(population):
    features, hidden, seeds = population
    by_default = lookalike(features, seeds)
    assert len(by_default.audience) == len(seeds)
    above = lookalike(features, seeds, threshold=0.9)
    assert (above.scores[above.audience] >= 0.9).all()
    mask = np.zeros(len(hidden), dtype=bool)
    mask[seeds] = True
    same = lookalike(features, mask, top=10)
    assert same.audience.tolist() == lookalike(features, seeds, top=10).audience.tolist()
    table = same.to_arrow(person=np.arange(len(hidden)) + 1000).to_pydict()
    assert table["person"] == (same.audience + 1000).tolist()
    assert table["score"] == sorted(table["score"], reverse=True)
    assert 90 < table["percentile"][-1] <= table["percentile"][0] <= 100


def test_training_on_a_sample_of_the_unlabelled(population):
    features, _, seeds = population
    assert lookalike(features, seeds, max_train_rows=500, top=100).auc > 0.8


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"seed": [1, 2, 3]}, "seed"),
        ({"seed": [-1] + list(range(20))}, "seed"),
        ({"seed": [10_000] + list(range(20))}, "seed"),
        ({"seed": np.ones(5, dtype=bool)}, "seed"),
        ({"seed": list(range(95))}, "seed"),
        ({"folds": 1}, "folds"),
        ({"top": 0}, "top"),
        ({"threshold": 2.0}, "threshold"),
        ({"model": "deep"}, "model"),
        ({"names": ["a"]}, "names"),
    ],
)
def test_bad_input_names_the_parameter(options, field):
    rng = np.random.default_rng(0)
    args = {"features": rng.normal(0, 1, (100, 2)), "seed": list(range(20)), "names": ["a", "b"]} | options
    with pytest.raises(InvalidInput) as error:
        lookalike(**args)
    assert error.value.errors[0].field == field
