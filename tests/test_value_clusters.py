"""Clustering: k by silhouette on well-separated groups, clusters numbered by size and described."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from siyu.errors import InvalidInput
from siyu.value.clusters import Words, cluster


def blob(rng, n, frequency, order_value, recency):
    return np.column_stack(
        [
            np.maximum(1, np.round(frequency * rng.lognormal(0, 0.15, n))),
            order_value * rng.lognormal(0, 0.15, n),
            np.abs(recency + rng.normal(0, recency * 0.1 + 1, n)),
        ]
    )


@pytest.fixture(scope="module")
def people() -> pa.Table:
    """600 lapsed occasional buyers, 300 recent bargain hunters, 100 frequent big spenders."""
    rng = np.random.default_rng(7)
    x = np.vstack([blob(rng, 600, 2, 100, 200), blob(rng, 300, 1, 30, 20), blob(rng, 100, 20, 600, 5)])
    return pa.table({"frequency": x[:, 0], "average_order_value": x[:, 1], "recency_days": x[:, 2]})


def test_picks_the_number_of_groups_and_describes_each(people):
    result = cluster(people, k_range=(2, 6))
    assert result.k == 3
    assert max(result.silhouettes, key=result.silhouettes.get) == 3
    assert [c.size for c in result.clusters] == [600, 300, 100]  # numbered by size, largest first
    assert (result.labels[:600] == 0).all() and (result.labels[600:900] == 1).all() and (result.labels[900:] == 2).all()
    big_spenders = result.clusters[2]
    assert set(big_spenders.zh.split(" · ")) == {"高频", "高客单价", "近期活跃"}
    assert big_spenders.zh.split(" · ")[0] == "高频"  # the strongest difference comes first
    assert set(big_spenders.en.split(" · ")) == {"frequent", "high order value", "recently active"}
    assert result.clusters[0].zh == "久未购买"
    assert big_spenders.means["average_order_value"] == pytest.approx(600, rel=0.1)
    summary = result.summary().to_pydict()
    assert summary["size"] == [600, 300, 100]
    assert summary["name_en"][2] == big_spenders.en


def test_sampled_silhouette_and_fit_on_a_sample_agree(people):
    result = cluster(people, k_range=(2, 6), silhouette_rows=300, fit_rows=500)
    assert result.k == 3
    assert [c.size for c in result.clusters] == [600, 300, 100]


def test_operator_words_and_unknown_features():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
    result = cluster(
        x,
        ["coupons", "live_views"],
        k_range=(2, 3),
        words={"coupons": Words("爱用券", "少用券", "coupon lover", "few coupons")},
    )
    assert {frozenset(c.zh.split(" · ")) for c in result.clusters} == {
        frozenset({"爱用券", "live_views高"}),
        frozenset({"少用券", "live_views低"}),
    }


def test_a_single_blob_is_described_as_average_at_a_high_threshold():
    rng = np.random.default_rng(2)
    result = cluster(rng.normal(0, 1, (300, 2)), ["a", "b"], k_range=(2, 2), threshold=5)
    assert {c.en for c in result.clusters} == {"close to average on every feature"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"k_range": (1, 4)}, "k_range"),
        ({"k_range": (5, 3)}, "k_range"),
        ({"k_range": (2, 20)}, "k_range"),
        ({"k_range": (2.5, 4)}, "k_range"),
        ({"threshold": 0}, "threshold"),
        ({"log_features": ["nope"]}, "log_features"),
        ({"log_features": ["b"]}, "log_features"),
        ({"names": ["a"]}, "names"),
    ],
)
def test_bad_input_names_the_parameter(options, field):
    x = np.column_stack([np.arange(20.0), np.arange(20.0) - 10])
    with pytest.raises(InvalidInput) as error:
        cluster(x, **({"names": ["a", "b"]} | options))
    assert error.value.errors[0].field == field


def test_missing_values_are_refused():
    with pytest.raises(InvalidInput) as error:
        cluster(np.array([[1.0, np.nan], [2.0, 3.0], [3.0, 1.0]]), k_range=(2, 2))
    assert error.value.errors[0].field == "features"
    with pytest.raises(InvalidInput) as error:
        cluster(pa.table({"a": [1.0, None, 3.0]}), k_range=(2, 2))
    assert error.value.errors[0].field == "features"
