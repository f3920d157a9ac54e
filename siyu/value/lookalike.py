"""Lookalike audiences (相似人群扩展): find the people most like a seed group.

Only the seeds are labelled. Everyone else is *unlabelled*, not negative: the lookalikes we are
looking for are among them. We still train seed (1) vs unlabelled (0) — under the usual
assumption that seeds are a random pick of the people like them (Elkan & Noto 2008), this
classifier's score is proportional to the probability of being like the seeds, so it *ranks*
people correctly, and ranking is all an audience needs. Two consequences, handled here:

- Scores are out-of-fold: each person is scored by a model that did not see them as a "0",
  otherwise a flexible model learns to push down exactly the lookalikes it was shown.
- The held-out AUC (seed vs unlabelled, out of fold) understates the true AUC against people
  really unlike the seeds, because some "0"s are lookalikes. It is a floor, not an estimate.

Classes are balanced by weight. Large inputs train on at most `max_train_rows` unlabelled
rows per fold (all seeds are kept) and score everyone. Feature importance: standardised
coefficients for the logistic model, permutation importance (AUC drop) for gradient boosting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from siyu.value.checks import as_array, choice, in_range, invalid
from siyu.value.features import feature_matrix
from siyu.value.threads import limited_threads

MIN_SEEDS = 10


@dataclass(frozen=True)
class Lookalike:
    """`scores` per row (0–1, out of fold); `audience` the chosen non-seed rows, best first."""

    auc: float
    fold_auc: tuple[float, ...]
    importance: pa.Table  # feature, importance, direction (+1: more of it looks more like the seeds)
    scores: np.ndarray
    seed: np.ndarray  # bool per row
    audience: np.ndarray

    def to_arrow(self, person: Any = None) -> pa.Table:
        """The audience, best first: row (or person), score and its percentile among non-seeds."""
        others = np.sort(self.scores[~self.seed])
        pct = 100.0 * np.searchsorted(others, self.scores[self.audience], side="right") / max(len(others), 1)
        ids = self.audience if person is None else np.asarray(person)[self.audience]
        return pa.table(
            {"person" if person is not None else "row": ids, "score": self.scores[self.audience], "percentile": pct}
        )


def _model(kind: str, random_state: int):
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    return HistGradientBoostingClassifier(class_weight="balanced", max_iter=100, random_state=random_state)


def _seed_mask(seed: Any, n: int) -> np.ndarray:
    s = as_array(seed, "seed")
    if s.dtype == bool:
        if len(s) != n:
            raise invalid("seed", f"a seed mask needs one true/false per row ({n})")
        return s
    if s.size and s.dtype.kind not in "iu":
        raise invalid("seed", "must be a true/false mask or row numbers")
    if s.size and (s.min() < 0 or s.max() >= n):
        raise invalid("seed", f"row numbers must be between 0 and {n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[s] = True
    return mask


def _cross_fit(x: np.ndarray, y: np.ndarray, model: str, folds: int, max_train_rows: int, random_state: int):
    """Out-of-fold scores for every row, each fold's AUC, and the last fold's model and test rows."""
    rng = np.random.default_rng(random_state)
    scores = np.zeros(len(x))
    fold_auc = []
    last = None
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state).split(x, y):
        negatives = train[y[train] == 0]
        if len(negatives) > max_train_rows:
            negatives = rng.choice(negatives, max_train_rows, replace=False)
        rows = np.r_[train[y[train] == 1], negatives]
        fitted = _model(model, random_state).fit(x[rows], y[rows])
        scores[test] = fitted.predict_proba(x[test])[:, 1]
        fold_auc.append(float(roc_auc_score(y[test], scores[test])))
        last = (fitted, test)
    return scores, fold_auc, last


def _importance(fitted, model: str, x, y, scores, test, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """How much each feature drives the score, and its direction (+1: more of it, more seed-like)."""
    if model == "logistic":
        coef = fitted[-1].coef_[0]  # on standardised features, so comparable
        return np.abs(coef), np.sign(coef)
    rng = np.random.default_rng(random_state)
    sample = test if len(test) <= 50_000 else rng.choice(test, 50_000, replace=False)
    result = permutation_importance(
        fitted, x[sample], y[sample], scoring="roc_auc", n_repeats=3, random_state=random_state
    )
    direction = [
        np.corrcoef(x[sample, i], scores[sample])[0, 1] if x[sample, i].std() > 0 else 0.0 for i in range(x.shape[1])
    ]
    return result.importances_mean, np.sign(direction)


def lookalike(
    features: Any,
    seed: Any,
    names: Sequence[str] | None = None,
    *,
    model: str = "logistic",
    top: int | None = None,
    threshold: float | None = None,
    folds: int = 4,
    max_train_rows: int = 200_000,
    random_state: int = 0,
) -> Lookalike:
    """Score every row against the seeds (a bool mask or row numbers) and pick the audience.

    Give `top` (the N best non-seeds), `threshold` (every non-seed scoring at least this), or both
    (the best N above the threshold); with neither, the audience is as large as the seed group.
    """
    x, names = feature_matrix(features, names)
    choice(model, "model", ("logistic", "gbdt"))
    n = len(x)
    is_seed = _seed_mask(seed, n)
    n_seed = int(is_seed.sum())
    if n_seed < MIN_SEEDS:
        raise invalid("seed", f"needs at least {MIN_SEEDS} seed people (got {n_seed})")
    if n - n_seed < MIN_SEEDS:
        raise invalid("seed", f"leaves fewer than {MIN_SEEDS} people to score")
    if not isinstance(folds, int | np.integer) or not 2 <= folds <= min(10, n_seed):
        raise invalid("folds", f"must be a whole number between 2 and {min(10, n_seed)}")
    if top is not None and (not isinstance(top, int | np.integer) or top < 1):
        raise invalid("top", "must be a whole number ≥ 1")
    if threshold is not None:
        in_range(threshold, "threshold", 0, 1)

    y = is_seed.astype(np.int8)
    with limited_threads():
        scores, fold_auc, (fitted, test) = _cross_fit(x, y, model, folds, max_train_rows, random_state)
        importance, direction = _importance(fitted, model, x, y, scores, test, random_state)
    auc = float(roc_auc_score(y, scores))
    order = np.argsort(-importance, kind="stable")
    table = pa.table(
        {
            "feature": [names[i] for i in order],
            "importance": importance[order],
            "direction": direction[order].astype(np.int8),
        }
    )

    candidates = np.flatnonzero(~is_seed)
    candidates = candidates[np.lexsort((candidates, -scores[candidates]))]
    if threshold is not None:
        candidates = candidates[scores[candidates] >= threshold]
    limit = top if top is not None else (n_seed if threshold is None else len(candidates))
    return Lookalike(auc, tuple(fold_auc), table, scores, is_seed, candidates[:limit])
