"""Customer lifetime value: BG/NBD for purchase counts and Gamma-Gamma for order value.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a person
buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out with probability
p ~ Beta(a, b). Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013 note):
each order's value is Gamma(p, ν) with ν ~ Gamma(q, γ) per person — "v" below is that γ.
Both are fitted by maximum likelihood with analytic gradients (BFGS in log-parameter space, an
optional L2 penalty on the parameters as in `lifetimes`), and both likelihoods depend on a person
only through a few numbers, so the fit runs on the *unique* combinations weighted by their count:
a million people collapse to the distinct (frequency, recency, T) triples.

Inputs follow `lifetimes.utils.summary_data_from_transaction_data`: per person, `frequency` is the
number of *repeat* purchase periods (days with an order, minus the first), `recency` the time from
the first to the last purchase period, `T` from the first purchase period to the end of
observation, and `monetary_value` the mean value of the repeat periods (0 when there are none).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from siyu.value.checks import as_array, choice, in_range, invalid, non_negative, not_empty
from siyu.value.groups import sort_order, starts
from siyu.value.transactions import DAY, Transactions, to_datetime64

UNITS = ("day", "week")
DAYS_PER_MONTH = 30.0  # a CLV "month" (lifetimes uses 30 days, or 4.345 weeks)
_EPOCH_MONDAY_OFFSET = 3  # 1970-01-01 was a Thursday: weeks run Monday–Sunday, like pandas' "W"


@dataclass(frozen=True)
class Summary:
    """Per person: repeat purchase periods, recency, age T (in `unit`s) and repeat order value."""

    person: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray
    unit: str = "day"

    def __len__(self) -> int:
        return len(self.person)

    def in_weeks(self) -> Summary:
        """The day-based summary with recency and T in (fractional) weeks: the CDNOW papers' scale."""
        if self.unit != "day":
            raise invalid("unit", "only a day-based summary converts to fractional weeks")
        return replace(self, recency=self.recency / 7.0, T=self.T / 7.0, unit="week")

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "person": self.person,
                "frequency": self.frequency,
                "recency": self.recency,
                "T": self.T,
                "monetary_value": self.monetary_value,
            }
        )


def _period(when: np.ndarray, unit: str) -> np.ndarray:
    day = when.view(np.int64) // (DAY // np.timedelta64(1, "us"))
    return day if unit == "day" else (day + _EPOCH_MONDAY_OFFSET) // 7


def summarize(tx: Transactions, observation_end: Any, unit: str = "day") -> Summary:
    """The BG/NBD + Gamma-Gamma input per person from orders up to `observation_end`.

    Orders on the same day (or week) count as one purchase, with their amounts added, exactly as
    lifetimes does: a person who places three orders in one session has not repurchased.
    """
    choice(unit, "unit", UNITS)
    end = to_datetime64(observation_end, "observation_end")
    not_empty(len(tx), "transactions")
    tx = tx.until(end)
    not_empty(len(tx), "observation_end")
    period = _period(tx.when, unit)
    order = sort_order(tx.person, period)
    person, period, amount = tx.person[order], period[order], tx.amount[order]
    # one row per (person, period), amounts added
    new = np.r_[True, (person[1:] != person[:-1]) | (period[1:] != period[:-1])]
    at = np.flatnonzero(new)
    person, period, amount = person[at], period[at], np.add.reduceat(amount, at)
    # one row per person
    first_at = starts(person)
    last_at = np.r_[first_at[1:], len(person)] - 1
    count = np.diff(np.r_[first_at, len(person)])
    total = np.add.reduceat(amount, first_at)
    frequency = count - 1
    repeat_value = total - amount[first_at]
    monetary = np.divide(repeat_value, frequency, out=np.zeros(len(first_at)), where=frequency > 0)
    end_period = _period(np.array([end]), unit)[0]
    return Summary(
        person=person[first_at],
        frequency=frequency.astype(np.int64),
        recency=(period[last_at] - period[first_at]).astype(float),
        T=(end_period - period[first_at]).astype(float),
        monetary_value=monetary,
        unit=unit,
    )


def _unique_rows(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given columns, their counts, and each input row's index into them."""
    order = np.lexsort(cols[::-1])
    changed = np.zeros(len(order), dtype=bool)
    changed[0] = True
    for c in cols:
        s = c[order]
        changed[1:] |= s[1:] != s[:-1]
    at = np.flatnonzero(changed)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(changed) - 1
    counts = np.diff(np.r_[at, len(order)]).astype(float)
    return [c[order[at]] for c in cols], counts, inverse


def _check_counts(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = non_negative(as_array(frequency, "frequency", float), "frequency")
    t_x = non_negative(as_array(recency, "recency", float), "recency")
    age = non_negative(as_array(T, "T", float), "T")
    if not (len(x) == len(t_x) == len(age)):
        raise invalid("recency" if len(t_x) != len(x) else "T", "must have the same length as frequency")
    if (x != np.round(x)).any():
        raise invalid("frequency", "must be whole numbers of repeat purchases")
    if (t_x > age + 1e-9).any():
        raise invalid("recency", "must not exceed T (the last purchase cannot be after the end of observation)")
    if ((x == 0) & (t_x != 0)).any():
        raise invalid("recency", "must be 0 for people without repeat purchases")
    return x, t_x, age


def _check_weights(w: Any, n: int) -> np.ndarray:
    if w is None:
        return np.ones(n)
    out = non_negative(as_array(w, "weights", float), "weights")
    if len(out) != n:
        raise invalid("weights", "must have one weight per row")
    if out.sum() <= 0:
        raise invalid("weights", "must sum to a positive number")
    return out


@dataclass(frozen=True)
class Fit:
    """How the optimiser ended: the log-likelihood at the optimum (weighted sum), rows, success."""

    log_likelihood: float
    rows: float
    converged: bool
    iterations: int


def _optimise(objective, x0: np.ndarray, args: tuple) -> tuple[np.ndarray, float, bool, int]:
    """BFGS with analytic gradients in log-parameter space.

    gtol 1e-7 on the *mean* log-likelihood puts the parameters within ~1e-6 (relative) of the
    optimum in about 20 evaluations; asking for more only buys line-search failures ("precision
    loss") at five times the evaluations. If BFGS stops early with a real gradient left, L-BFGS-B
    continues from there.
    """
    result = minimize(objective, x0, args=args, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 500})
    iterations = int(result.nit)
    if not result.success and np.linalg.norm(result.jac) > 1e-5:
        polished = minimize(objective, result.x, args=args, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        iterations += int(polished.nit)
        if polished.fun <= result.fun:
            result = polished
    converged = bool(result.success or np.linalg.norm(result.jac) <= 1e-5)
    return np.exp(result.x), float(result.fun), converged, iterations


# ---- BG/NBD ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaGeo:
    """A fitted BG/NBD model; times in the unit of the data it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float
    fit: Fit | None = None

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still a customer | x, t_x, T) (FHL 2005 eq. 11, computed in log space as lifetimes does)."""
        x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        log_div = (self.r + x) * np.log((self.alpha + age) / (self.alpha + t_x)) + np.log(
            self.a / (self.b + np.maximum(x, 1) - 1)
        )
        return np.where(x == 0, 1.0, expit(-log_div))

    def expected_purchases(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10)."""
        x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        if t == 0:
            return np.zeros(np.broadcast(x, t_x, age).shape)
        ha, hb, hc = r + x, b + x, a + b + x - 1
        z = t / (alpha + age + t)
        with np.errstate(divide="ignore", invalid="ignore"):
            ln_hyp = np.log(hyp2f1(ha, hb, hc, z))
            # Euler's transformation where the series overflows (large x): same value, finite terms
            alt = np.log(hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
        ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + age) / (alpha + t + age)))
        denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((alpha + age) / (alpha + t_x)) ** (r + x)
        return first * second / denominator

    def expected_purchases_new(self, t: float) -> float:
        """E[X(t)] for a person just acquired (FHL 2005 eq. 9)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


@dataclass(frozen=True)
class _BGData:
    """Fit input with what does not change between evaluations computed once.

    The Γ terms depend on a person only through x, so they are evaluated per distinct x and
    weighted by W_x, the total weight of that x: only the log-sum-exp part is per row.
    """

    x: np.ndarray
    t_x: np.ndarray
    age: np.ndarray
    w: np.ndarray
    x_values: np.ndarray
    x_index: np.ndarray
    w_per_x: np.ndarray
    repeat: np.ndarray  # x > 0

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray) -> _BGData:
        x_values, x_index = np.unique(x, return_inverse=True)
        return cls(x, t_x, age, w, x_values, x_index, np.bincount(x_index, weights=w), x > 0)


def _bgnbd_objective(log_params: np.ndarray, d: _BGData, penalizer: float) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (FHL 2005 eq. 6) + penalty, and its gradient in log-parameters."""
    params = np.exp(log_params)
    r, alpha, a, b = params
    ux, wx = d.x_values, d.w_per_x
    # per distinct x: ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b), and its derivatives
    a12 = gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + ux) - gammaln(b)
    a12 -= gammaln(a + b + ux)
    b_x1 = b + np.maximum(ux, 1) - 1
    psi_abx = digamma(a + b + ux)
    # per row: ln[(α+T)^−(r+x) + δ(x>0) a/(b+x−1) (α+t_x)^−(r+x)] by log-sum-exp
    rx = r + d.x
    log_at, log_atx = np.log(alpha + d.age), np.log(alpha + d.t_x)
    a3 = -rx * log_at
    a4 = np.where(d.repeat, (np.log(a) - np.log(b_x1))[d.x_index] - rx * log_atx, -np.inf)
    top = np.maximum(a3, a4)
    e3, e4 = np.exp(a3 - top), np.exp(a4 - top)
    total = e3 + e4
    w3, w4 = d.w * e3 / total, d.w * e4 / total  # weighted shares of the two terms
    ll = wx @ a12 + d.w @ (top + np.log(total))
    w4_per_x = np.bincount(d.x_index, weights=w4, minlength=len(ux))
    grad = np.array(
        [
            wx @ (digamma(r + ux) - digamma(r) + np.log(alpha)) - w3 @ log_at - w4 @ log_atx,
            wx.sum() * r / alpha - w3 @ (rx / (alpha + d.age)) - w4 @ (rx / (alpha + d.t_x)),
            wx @ (digamma(a + b) - psi_abx) + w4.sum() / a,
            wx @ (digamma(a + b) + digamma(b + ux) - digamma(b) - psi_abx) - w4_per_x @ (1 / b_x1),
        ]
    )
    wsum = wx.sum()
    value = -ll / wsum + penalizer * (params**2).sum()
    return value, -grad * params / wsum + 2 * penalizer * params**2


def fit_bgnbd(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    weights: Any = None,
    penalizer: float = 0.0,
    initial: tuple[float, float, float, float] | None = None,
) -> BetaGeo:
    """Maximum-likelihood BG/NBD parameters (r, α, a, b).

    `weights` counts how many people share each row (for data already aggregated); without it
    the rows are aggregated here. `penalizer` adds penalizer·Σθ² to the mean negative
    log-likelihood, as `lifetimes` does, to keep small or degenerate samples finite.
    """
    x, t_x, age = _check_counts(frequency, recency, T)
    not_empty(len(x), "frequency")
    in_range(penalizer, "penalizer", 0, 1e6)
    if weights is None:
        (x, t_x, age), w, _ = _unique_rows(x, t_x, age)
    else:
        w = _check_weights(weights, len(x))
    if not (x > 0).any():
        raise invalid("frequency", "nobody has a repeat purchase: the model cannot be fitted")
    if initial is None:  # rates start at about one purchase per mean age, dropout at a coin flip
        initial = (1.0, max(float(np.average(age, weights=w)) / 10, 1e-3), 1.0, 1.0)
    x0 = np.log(np.asarray(initial, dtype=float))
    params, value, converged, iterations = _optimise(_bgnbd_objective, x0, (_BGData.of(x, t_x, age, w), penalizer))
    ll = float(-(value - penalizer * (params**2).sum()) * w.sum())
    return BetaGeo(*map(float, params), fit=Fit(ll, float(w.sum()), converged, iterations))


# ---- Gamma-Gamma -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGamma:
    """A fitted Gamma-Gamma spend model."""

    p: float
    q: float
    v: float
    fit: Fit | None = None

    @property
    def population_mean(self) -> float:
        """E[order value] for someone we know nothing about: p·v / (q − 1) (needs q > 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")

    def expected_order_value(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[M | x, m̄]: a weighted mean of the population mean and the person's own (FHL 2005)."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        return self.p * (self.v + x * m) / (self.p * x + self.q - 1)


@dataclass(frozen=True)
class _GGData:
    """Gamma-Gamma fit input: per distinct x for the Γ terms, constant sums precomputed.

    ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m̄ + px ln x − (px+q) ln(x m̄ + v):
    the first four depend on the person only through x, and Σ w(px−1) ln m̄ + Σ w px ln x is
    linear in p with constant sums, so only ln(x m̄ + v) is evaluated per row.
    """

    xm: np.ndarray
    w: np.ndarray
    wx: np.ndarray
    x_values: np.ndarray
    w_per_x: np.ndarray
    sum_wx_log_mx: float  # Σ w x (ln m̄ + ln x)
    sum_w_log_m: float

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> _GGData:
        x_values, x_index = np.unique(x, return_inverse=True)
        wx = w * x
        return cls(
            xm=x * m,
            w=w,
            wx=wx,
            x_values=x_values,
            w_per_x=np.bincount(x_index, weights=w),
            sum_wx_log_mx=float(wx @ (np.log(m) + np.log(x))),
            sum_w_log_m=float(w @ np.log(m)),
        )


def _gg_objective(log_params: np.ndarray, d: _GGData, penalizer: float) -> tuple[float, np.ndarray]:
    params = np.exp(log_params)
    p, q, v = params
    ux, wx = d.x_values, d.w_per_x
    pu = p * ux
    wsum = wx.sum()
    log_xm_v = np.log(d.xm + v)
    inv_xm_v = 1 / (d.xm + v)
    s_wx_log, s_w_log = d.wx @ log_xm_v, d.w @ log_xm_v
    ll = wx @ (gammaln(pu + q) - gammaln(pu)) + wsum * (q * np.log(v) - gammaln(q))
    ll += p * d.sum_wx_log_mx - d.sum_w_log_m - p * s_wx_log - q * s_w_log
    psi_puq = digamma(pu + q)
    grad = np.array(
        [
            (wx * ux) @ (psi_puq - digamma(pu)) + d.sum_wx_log_mx - s_wx_log,
            wx @ psi_puq - wsum * digamma(q) + wsum * np.log(v) - s_w_log,
            wsum * q / v - p * (d.wx @ inv_xm_v) - q * (d.w @ inv_xm_v),
        ]
    )
    return -ll / wsum + penalizer * (params**2).sum(), -grad * params / wsum + 2 * penalizer * params**2


def fit_gamma_gamma(
    frequency: Any,
    monetary_value: Any,
    *,
    weights: Any = None,
    penalizer: float = 0.0,
    initial: tuple[float, float, float] | None = None,
) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters (p, q, v) from people with repeat purchases.

    Rows with frequency 0 carry no repeat order value and are left out; so are repeaters whose
    repeat orders were all free (value 0): a Gamma distribution has no mass at 0. The model assumes
    order value is independent of purchase frequency — check the correlation before trusting it.
    """
    x = non_negative(as_array(frequency, "frequency", float), "frequency")
    m = non_negative(as_array(monetary_value, "monetary_value", float), "monetary_value")
    if len(m) != len(x):
        raise invalid("monetary_value", "must have the same length as frequency")
    in_range(penalizer, "penalizer", 0, 1e6)
    w = _check_weights(weights, len(x))
    keep = (x > 0) & (m > 0) & (w > 0)
    if not keep.any():
        raise invalid("frequency", "nobody has a paid repeat purchase: the model cannot be fitted")
    x, m, w = x[keep], m[keep], w[keep]
    if initial is None:
        initial = (1.0, 1.0, max(float(np.average(m, weights=w)), 1e-3) / 10)
    x0 = np.log(np.asarray(initial, dtype=float))
    params, value, converged, iterations = _optimise(_gg_objective, x0, (_GGData.of(x, m, w), penalizer))
    ll = float(-(value - penalizer * (params**2).sum()) * w.sum())
    return GammaGamma(*map(float, params), fit=Fit(ll, float(w.sum()), converged, iterations))


# ---- predictions -------------------------------------------------------------------------------


def _check_horizon(months: int, discount_rate: float) -> None:
    if not isinstance(months, int | np.integer) or not 1 <= months <= 120:
        raise invalid("months", "must be a whole number of months between 1 and 120")
    in_range(discount_rate, "discount_rate", 0, 1)


def _monthly_cumulative(bg: BetaGeo, x: Any, t_x: Any, age: Any, months: int, unit: str) -> list[np.ndarray]:
    """E[purchases in the next i months] for i = 0 … months (30-day months)."""
    month = DAYS_PER_MONTH if unit == "day" else DAYS_PER_MONTH / 7
    zero = np.zeros(np.broadcast(*(np.asarray(v) for v in (x, t_x, age))).shape)
    return [zero] + [bg.expected_purchases(i * month, x, t_x, age) for i in range(1, months + 1)]


def _discount(cumulative: list[np.ndarray], months: int, discount_rate: float) -> np.ndarray:
    """Σ_i (E_i − E_{i−1}) / (1 + d)^i over the first `months` months."""
    return sum((cumulative[i] - cumulative[i - 1]) / (1 + discount_rate) ** i for i in range(1, months + 1))


def discounted_purchases(
    bg: BetaGeo,
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    unit: str = "day",
) -> np.ndarray:
    """Σ over the next `months` of E[orders in month i] / (1 + d)^i, months of 30 days."""
    choice(unit, "unit", UNITS)
    _check_horizon(months, discount_rate)
    return _discount(_monthly_cumulative(bg, frequency, recency, T, months, unit), months, discount_rate)


def lifetime_value(
    bg: BetaGeo,
    gg: GammaGamma,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    unit: str = "day",
) -> np.ndarray:
    """Discounted expected revenue over the next `months`: Σ E[orders in month i]·E[M] / (1+d)^i.

    The same sum as `lifetimes.utils._customer_lifetime_value` (months of 30 days) with the
    monthly `discount_rate` d; E[M] does not depend on i, so it multiplies the discounted count.
    """
    count = discounted_purchases(bg, frequency, recency, T, months=months, discount_rate=discount_rate, unit=unit)
    return gg.expected_order_value(frequency, monetary_value) * count


@dataclass(frozen=True)
class Predictions:
    """Per person: P(alive), expected purchases in the next 30 and 90 days, order value, CLV."""

    person: np.ndarray
    p_alive: np.ndarray
    purchases_30d: np.ndarray
    purchases_90d: np.ndarray
    expected_order_value: np.ndarray
    clv: np.ndarray

    def to_arrow(self) -> pa.Table:
        return pa.table({name: getattr(self, name) for name in self.__dataclass_fields__})


def predict(
    summary: Summary,
    bg: BetaGeo,
    gg: GammaGamma,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
) -> Predictions:
    """Every per-person prediction, computed once per distinct (x, t_x, T, m̄) and spread back."""
    not_empty(len(summary), "summary")
    _check_horizon(months, discount_rate)
    (x, t_x, age), _, inverse = _unique_rows(summary.frequency.astype(float), summary.recency, summary.T)
    # months are 30 days, so the 30- and 90-day expectations are the CLV sum's first and third months
    cumulative = _monthly_cumulative(bg, x, t_x, age, max(months, 3), summary.unit)
    count = _discount(cumulative, months, discount_rate)
    order_value = gg.expected_order_value(summary.frequency, summary.monetary_value)
    return Predictions(
        person=summary.person,
        p_alive=bg.p_alive(x, t_x, age)[inverse],
        purchases_30d=cumulative[1][inverse],
        purchases_90d=cumulative[3][inverse],
        expected_order_value=order_value,
        clv=count[inverse] * order_value,
    )


def fit_and_predict(
    tx: Transactions,
    observation_end: Any,
    *,
    unit: str = "day",
    penalizer: float = 0.0,
    months: int = 12,
    discount_rate: float = 0.01,
) -> tuple[Summary, BetaGeo, GammaGamma, Predictions]:
    """Summary → both fits → predictions: what a nightly model run does."""
    _check_horizon(months, discount_rate)
    summary = summarize(tx, observation_end, unit)
    bg = fit_bgnbd(summary.frequency, summary.recency, summary.T, penalizer=penalizer)
    gg = fit_gamma_gamma(summary.frequency, summary.monetary_value, penalizer=penalizer)
    return summary, bg, gg, predict(summary, bg, gg, months=months, discount_rate=discount_rate)
