"""CLV: BG/NBD and Gamma-Gamma validated on CDNOW, cross-checked with lifetimes, and bad inputs.

The CDNOW data ships inside the `lifetimes` wheel (a dev dependency); it is read from the
installed package directory, never downloaded. Published fits (Fader, Hardie & Lee 2005, and
lifetimes' documentation): BG/NBD r = 0.2426, α = 4.4135, a = 0.7929, b = 2.4258 with
log-likelihood −9582.4 (T in weeks); Gamma-Gamma p = 6.2488, q = 3.7446, v = 15.4477.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from siyu.errors import InvalidInput
from siyu.value import clv
from siyu.value.synthetic import Truth, simulate
from siyu.value.transactions import Transactions


def cdnow(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None, "the dev extra installs lifetimes, which ships the CDNOW data"
    return Path(spec.submodule_search_locations[0]) / "datasets" / name


def three_significant(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def summary():
    """The CDNOW 1/10 sample, 2357 customers: ID, x, t_x, T (weeks), zbar (mean repeat spend)."""
    _, x, t_x, T, zbar = np.loadtxt(cdnow("cdnow_customers_summary_with_transactions.csv"), delimiter=",", skiprows=1).T
    return x, t_x, T, zbar


def read_transactions(name: str, person_column: int, date_column: int, value_column: int) -> Transactions:
    raw = np.loadtxt(cdnow(name), dtype=str, skiprows=1 if name == "CDNOW_master.txt" else 0)
    when = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, date_column]], dtype="datetime64[us]")
    return Transactions.of(raw[:, person_column].astype(np.int64), when, raw[:, value_column].astype(float))


@pytest.fixture(scope="module")
def bg(summary):
    x, t_x, T, _ = summary
    return clv.fit_bgnbd(x, t_x, T)


@pytest.fixture(scope="module")
def gg(summary):
    x, _, _, zbar = summary
    return clv.fit_gamma_gamma(x, zbar)


def test_bgnbd_reproduces_the_published_cdnow_fit(bg):
    published = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
    for name, value in published.items():
        assert three_significant(getattr(bg, name)) == three_significant(value), name
        assert getattr(bg, name) == pytest.approx(value, rel=2e-4), name
    assert bg.fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert bg.fit.converged


def test_gamma_gamma_reproduces_the_published_cdnow_fit(gg):
    published = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
    for name, value in published.items():
        assert three_significant(getattr(gg, name)) == three_significant(value), name
        assert getattr(gg, name) == pytest.approx(value, rel=2e-4), name
    assert gg.fit.rows == 946  # the CDNOW customers with at least one repeat purchase
    assert gg.fit.converged


def test_the_summary_builder_reproduces_the_published_cdnow_summary(summary):
    """From the raw sample transactions (second column = the summary's ID), calibration period to
    1997-09-30, in days then divided by 7: the published table, to its two decimals."""
    tx = read_transactions("CDNOW_sample.txt", person_column=1, date_column=2, value_column=4)
    built = clv.summarize(tx, "1997-09-30").in_weeks()
    x, t_x, T, zbar = summary
    assert built.person.tolist() == list(range(1, 2358))
    assert (built.frequency == x).all()
    assert np.abs(built.recency - t_x).max() <= 0.005 + 1e-9
    assert np.abs(built.T - T).max() <= 0.005 + 1e-9
    assert np.abs(built.monetary_value - zbar).max() <= 0.005 + 1e-9


def test_predictions_match_the_paper(bg):
    # FHL 2005: the customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226
    # purchases in the next 39 weeks
    assert bg.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    assert bg.p_alive(0, 0, 38.86) == 1.0  # nobody has dropped out before a repeat purchase


def test_more_time_more_purchases_and_recent_buyers_are_more_alive(bg):
    assert bg.expected_purchases(90, 3, 30, 38) > bg.expected_purchases(30, 3, 30, 38) > 0
    assert bg.p_alive(3, 37, 38) > bg.p_alive(3, 10, 38)
    assert bg.expected_purchases(0, 3, 30, 38) == 0


def test_gamma_gamma_shrinks_each_mean_towards_the_population_mean(gg):
    population = gg.p * gg.v / (gg.q - 1)
    assert gg.population_mean == pytest.approx(population)
    assert gg.expected_order_value(0, 0) == pytest.approx(population)
    one, many = gg.expected_order_value([1, 20], [100.0, 100.0])
    assert population < one < many < 100  # the more orders we saw, the more we trust the person's own mean


def test_predictions_agree_with_lifetimes(summary, bg, gg):
    lifetimes = pytest.importorskip("lifetimes")
    pd = pytest.importorskip("pandas")
    x, t_x, T, zbar = summary
    their_bg = lifetimes.BetaGeoFitter()
    their_bg.params_ = pd.Series({"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b})
    np.testing.assert_allclose(
        bg.expected_purchases(39, x, t_x, T),
        their_bg.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T),
        rtol=1e-9,
    )
    np.testing.assert_allclose(bg.p_alive(x, t_x, T), their_bg.conditional_probability_alive(x, t_x, T), rtol=1e-9)
    their_gg = lifetimes.GammaGammaFitter()
    their_gg.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.v})
    np.testing.assert_allclose(
        gg.expected_order_value(x, zbar), their_gg.conditional_expected_average_profit(x, zbar), rtol=1e-9
    )
    # CLV, in days: the week-based model has α in weeks, so α × 7 and t × 7
    day_bg = clv.BetaGeo(bg.r, bg.alpha * 7, bg.a, bg.b)
    their_bg.params_["alpha"] = bg.alpha * 7
    their_bg.predict = their_bg.conditional_expected_number_of_purchases_up_to_time  # set by lifetimes' fit()
    theirs = their_gg.customer_lifetime_value(
        their_bg,
        pd.Series(x),
        pd.Series(t_x * 7),
        pd.Series(T * 7),
        pd.Series(zbar),
        time=12,
        discount_rate=0.01,
        freq="D",
    )
    ours = clv.lifetime_value(day_bg, gg, x, t_x * 7, T * 7, zbar, months=12, discount_rate=0.01)
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-9)


def test_fits_agree_with_lifetimes_on_day_based_data():
    """The full CDNOW master file, summarised in days: same summary and same fitted parameters."""
    lifetimes = pytest.importorskip("lifetimes")
    pd = pytest.importorskip("pandas")
    from lifetimes.utils import summary_data_from_transaction_data

    tx = read_transactions("CDNOW_master.txt", person_column=0, date_column=1, value_column=3)
    frame = pd.DataFrame({"id": tx.person, "date": tx.when.astype("datetime64[ns]"), "amount": tx.amount})
    for unit, freq in (("day", "D"), ("week", "W")):
        # 1997-09-28 is a Sunday: lifetimes' weekly periods would otherwise take in the rest of the week
        theirs = summary_data_from_transaction_data(
            frame, "id", "date", "amount", observation_period_end="1997-09-28", freq=freq
        )
        ours = clv.summarize(tx, "1997-09-28", unit)
        assert (ours.person == theirs.index.to_numpy()).all()
        for column in ("frequency", "recency", "T", "monetary_value"):
            np.testing.assert_allclose(getattr(ours, column), theirs[column].to_numpy(), atol=1e-9, err_msg=column)
    day = clv.summarize(tx, "1997-09-30")
    ours = clv.fit_bgnbd(day.frequency, day.recency, day.T)
    theirs = lifetimes.BetaGeoFitter().fit(day.frequency, day.recency, day.T).params_
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(theirs[name], rel=1e-3), name


def assert_gradient_is_right(objective, point, *args):
    """The analytic gradient against central differences (error ~h², far below the tolerance)."""
    h = 1e-6
    numeric = [
        (objective(point + h * e, *args)[0] - objective(point - h * e, *args)[0]) / (2 * h) for e in np.eye(len(point))
    ]
    np.testing.assert_allclose(objective(point, *args)[1], numeric, rtol=1e-5, atol=1e-8)


def test_the_analytic_gradients_are_right(summary):
    x, t_x, T, zbar = summary
    w = np.ones(len(x))
    bg_data = clv._BGData.of(x, t_x, T, w)
    for point, penalizer in ((np.log([0.24, 4.4, 0.79, 2.4]), 0.0), (np.log([1.5, 20.0, 0.3, 7.0]), 0.1)):
        assert_gradient_is_right(clv._bgnbd_objective, point, bg_data, penalizer)
    repeat = x > 0
    gg_data = clv._GGData.of(x[repeat], zbar[repeat], w[repeat])
    for point, penalizer in ((np.log([6.2, 3.7, 15.4]), 0.0), (np.log([1.0, 8.0, 40.0]), 0.1)):
        assert_gradient_is_right(clv._gg_objective, point, gg_data, penalizer)


def test_counts_as_weights_give_the_same_fit(summary, bg):
    x, t_x, T, _ = summary
    keys, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    weighted = clv.fit_bgnbd(keys[:, 0], keys[:, 1], keys[:, 2], weights=counts)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(weighted, name) == pytest.approx(getattr(bg, name), rel=1e-5)


def test_the_penalizer_shrinks_the_parameters(summary, bg):
    x, t_x, T, _ = summary
    penalised = clv.fit_bgnbd(x, t_x, T, penalizer=0.1)
    squares = lambda m: m.r**2 + m.alpha**2 + m.a**2 + m.b**2  # noqa: E731
    assert squares(penalised) < squares(bg)


def test_fits_recover_the_parameters_that_generated_the_orders():
    truth = Truth(r=0.9, alpha=40.0, a=0.8, b=6.0, p=6.0, q=4.0, v=60.0)
    tx = simulate(20_000, truth=truth, seed=3)
    summary, bg, gg, predictions = clv.fit_and_predict(tx, "2025-12-31")
    for name in ("r", "alpha", "a", "b"):
        assert getattr(bg, name) == pytest.approx(getattr(truth, name), rel=0.1), name
    for name in ("p", "q", "v"):
        assert getattr(gg, name) == pytest.approx(getattr(truth, name), rel=0.1), name
    assert len(predictions.person) == len(summary) == 20_000
    assert ((predictions.p_alive >= 0) & (predictions.p_alive <= 1)).all()
    assert (predictions.purchases_90d >= predictions.purchases_30d).all()
    assert (predictions.clv >= 0).all()
    assert (predictions.p_alive[summary.frequency == 0] == 1).all()
    table = predictions.to_arrow()
    assert table.column_names == ["person", "p_alive", "purchases_30d", "purchases_90d", "expected_order_value", "clv"]


def test_orders_on_the_same_day_are_one_purchase():
    tx = Transactions.of(
        [1, 1, 1, 1],
        np.array(["2025-01-01T09:00", "2025-01-01T20:00", "2025-01-11", "2025-01-21"], dtype="datetime64[us]"),
        [10, 30, 50, 70],
    )
    s = clv.summarize(tx, "2025-01-31")
    assert (s.frequency[0], s.recency[0], s.T[0], s.monetary_value[0]) == (2, 20, 30, 60)
    weeks = clv.summarize(tx, "2025-01-31", unit="week")  # 2025-01-01 is a Wednesday
    assert (weeks.frequency[0], weeks.recency[0], weeks.T[0]) == (2, 3, 4)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: clv.fit_bgnbd([1, 0], [5, 0], [4, 10]), "recency"),
        (lambda: clv.fit_bgnbd([0, 1], [3, 2], [10, 10]), "recency"),
        (lambda: clv.fit_bgnbd([-1, 1], [0, 2], [10, 10]), "frequency"),
        (lambda: clv.fit_bgnbd([1.5, 1], [2, 2], [10, 10]), "frequency"),
        (lambda: clv.fit_bgnbd([1, 1], [2, 2], [10, -10]), "T"),
        (lambda: clv.fit_bgnbd([1, 1], [2], [10, 10]), "recency"),
        (lambda: clv.fit_bgnbd([], [], []), "frequency"),
        (lambda: clv.fit_bgnbd([0, 0], [0, 0], [5, 9]), "frequency"),
        (lambda: clv.fit_bgnbd([1, 1], [2, 2], [10, 10], penalizer=-1), "penalizer"),
        (lambda: clv.fit_bgnbd([1, 1], [2, 2], [10, 10], weights=[0, 0]), "weights"),
        (lambda: clv.fit_gamma_gamma([1, 2], [10.0, -3.0]), "monetary_value"),
        (lambda: clv.fit_gamma_gamma([0, 0], [0.0, 0.0]), "frequency"),
        (lambda: clv.summarize(Transactions.of([1], ["2025-01-01"], [5]), "2025-02-01", unit="month"), "unit"),
        (lambda: clv.summarize(Transactions.of([1], ["2025-01-01"], [5]), "2024-12-31"), "observation_end"),
        (
            lambda: clv.lifetime_value(clv.BetaGeo(1, 1, 2, 2), clv.GammaGamma(6, 4, 15), 1, 1, 2, 10, months=0),
            "months",
        ),
        (
            lambda: clv.lifetime_value(clv.BetaGeo(1, 1, 2, 2), clv.GammaGamma(6, 4, 15), 1, 1, 2, 10, discount_rate=2),
            "discount_rate",
        ),
    ],
)
def test_bad_input_names_the_parameter(call, field):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.errors[0].field == field
