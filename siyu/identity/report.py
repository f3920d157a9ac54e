"""Merge quality against ground truth: pairwise precision and recall over events.

Two events are a true pair when the same real person caused them, a predicted pair when they
resolved to the same super ID. Precision = correct predicted pairs / predicted pairs (wrong merges
cost it); recall = correct predicted pairs / true pairs (missed links cost it). Events that stay
anonymous pair with nothing. Counting is by contingency table, never by enumerating pairs.

    python -m siyu.identity.report [--people 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siyu.identity.rebuild import encode, rebuild_arrays
from siyu.identity.rules import Rules, default_rules
from siyu.identity.synthetic import Population, generate


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _pairs(counts: np.ndarray) -> int:
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def pairwise_scores(predicted: Sequence[int | None] | np.ndarray, truth: Sequence[int] | np.ndarray) -> Scores:
    """Pairwise precision/recall of a clustering; None or negative predictions are singletons."""
    pred = np.array([-1 if p is None else p for p in predicted], dtype=np.int64)
    true = np.asarray(truth, dtype=np.int64)
    if pred.shape != true.shape:
        raise ValueError("one prediction per truth label")
    known = pred >= 0
    _, true_counts = np.unique(true, return_counts=True)
    _, pred_counts = np.unique(pred[known], return_counts=True)
    both = pred[known] * (int(true.max(initial=0)) + 1) + true[known]
    _, both_counts = np.unique(both, return_counts=True)
    tp, pp, tpairs = _pairs(both_counts), _pairs(pred_counts), _pairs(true_counts)
    return Scores(tp / pp if pp else 1.0, tp / tpairs if tpairs else 1.0, tpairs, pp, tp)


@dataclass
class Report:
    people: int
    records: int
    persons: int
    anonymous: int
    scores: Scores
    conflicts: int
    quarantined: int
    recycled: int
    households_sharing: int
    seconds: float

    def text(self) -> str:
        s = self.scores
        return "\n".join(
            [
                "One ID merge quality on a synthetic population (pairwise, over events)",
                f"  people (truth)      {self.people:>10,}    households sharing a tablet {self.households_sharing:,}",
                f"  events              {self.records:>10,}    recycled phone numbers {self.recycled:,}",
                f"  super IDs           {self.persons:>10,}    anonymous events {self.anonymous:,}",
                f"  precision           {s.precision:>10.4f}    ({s.correct_pairs:,} of {s.predicted_pairs:,} pairs)",
                f"  recall              {s.recall:>10.4f}    ({s.correct_pairs:,} of {s.true_pairs:,} pairs)",
                f"  F1                  {s.f1:>10.4f}",
                f"  conflicts recorded  {self.conflicts:>10,}    quarantined values {self.quarantined:,}",
                f"  rebuild seconds     {self.seconds:>10.3f}",
            ]
        )


def evaluate(population: Population, rules: Rules | None = None) -> Report:
    """Resolve a population with the rebuild (== streaming on the same order) and score it."""
    rules = rules or default_rules()
    t0 = time.perf_counter()
    enc = encode(rules, population.identifiers)
    result = rebuild_arrays(enc, rules)
    seconds = time.perf_counter() - t0
    return Report(
        people=len(population.people),
        records=len(population.records),
        persons=result.n_persons,
        anonymous=int((result.record_person < 0).sum()),
        scores=pairwise_scores(result.record_person, population.truth),
        conflicts=len(result.conflicts),
        quarantined=len(result.quarantine_people),
        recycled=population.recycled,
        households_sharing=population.households_sharing,
        seconds=seconds,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m siyu.identity.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--typo-rate", type=float, default=0.03)
    parser.add_argument("--recycle-rate", type=float, default=0.02)
    parser.add_argument("--tablet-rate", type=float, default=0.3)
    args = parser.parse_args(argv)
    population = generate(
        args.people, args.seed, typo_rate=args.typo_rate, recycle_rate=args.recycle_rate, tablet_rate=args.tablet_rate
    )
    print(evaluate(population).text())


if __name__ == "__main__":
    main()
