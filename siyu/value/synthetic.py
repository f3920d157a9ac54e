"""Synthetic order histories drawn from the BG/NBD and Gamma-Gamma processes themselves.

With known true parameters the fits can be checked for recovery (tests) and timed at scale
(bench/value_bench.py). Vectorised: one numpy step per purchase round over the people still
buying, so a million people with ~7 million orders take seconds. Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.value.transactions import Transactions

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Truth:
    """The generating parameters, times in days (α is per day)."""

    r: float = 0.9
    alpha: float = 40.0
    a: float = 0.8
    b: float = 6.0
    p: float = 6.0
    q: float = 4.0
    v: float = 60.0


def simulate(
    people: int,
    *,
    start: str = "2024-01-01",
    days: float = 730.0,
    truth: Truth = Truth(),
    acquisition_days: float | None = None,
    seed: int = 1,
) -> Transactions:
    """Orders of `people` customers over `days` from `start`.

    Each person is acquired (first order) uniformly in the first `acquisition_days` (default: the
    first half of the period), buys at rate λ ~ Gamma(r, α) while alive, drops out after each
    repeat purchase with probability p ~ Beta(a, b), and each order's value is Gamma(p, ν) with
    ν ~ Gamma(q, v). Person ids are 1..people; values are rounded to the fen (0.01 yuan).
    """
    rng = np.random.default_rng(seed)
    acquisition = days / 2 if acquisition_days is None else acquisition_days
    rate = rng.gamma(truth.r, 1 / truth.alpha, people)
    dropout = rng.beta(truth.a, truth.b, people)
    nu = rng.gamma(truth.q, 1 / truth.v, people)
    first = rng.uniform(0, acquisition, people)

    persons, times = [np.arange(people)], [first]
    current, who = first, np.arange(people)
    repeat = False
    while len(who):
        if repeat:  # the drop-out coin after each repeat purchase (not after the first: FHL 2005)
            alive = rng.random(len(who)) >= dropout[who]
            who, current = who[alive], current[alive]
        repeat = True
        current = current + rng.exponential(1.0, len(who)) / rate[who]
        inside = current < days
        who, current = who[inside], current[inside]
        persons.append(who)
        times.append(current)
    person = np.concatenate(persons)
    when = np.concatenate(times)
    amount = np.round(rng.gamma(truth.p, 1.0, len(person)) / nu[person], 2)
    stamp = np.datetime64(start, "us") + (when * US_PER_DAY).astype(np.int64).astype("timedelta64[us]")
    return Transactions(person.astype(np.int64) + 1, stamp, amount)
