"""Social value: referral (fission 裂变) trees, PageRank, and KOC (关键意见消费者) scores.

The input is referral edges referrer → referred (an invitation accepted, a share that brought
someone in), in time order. Each person's *first* referrer makes the fission tree: depth and size
per root (the people nobody referred), direct referrals and all descendants per person. Cycles
(A brought B, later B "brought" A on another device) are cut at one of their members, which then
counts as a root.

Influence is PageRank on the *reversed* edges: every referred person passes their weight to the
person who brought them, so someone who brought in people who themselves bring in many scores
higher than someone with the same number of dead-end referrals. It is a power iteration on a
scipy sparse matrix (no networkx: one sparse mat-vec per step is all it needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import sparse

from siyu.value.checks import as_array, choice, in_range, invalid
from siyu.value.checks import weights as normalised


@dataclass(frozen=True)
class ReferralGraph:
    """Persons (sorted ids) and deduplicated edges as indexes into them, in the input's order."""

    persons: np.ndarray
    source: np.ndarray  # referrer index
    target: np.ndarray  # referred index

    def __len__(self) -> int:
        return len(self.persons)


def referral_graph(referrer: Any, referred: Any) -> ReferralGraph:
    """Edges referrer → referred; self-referrals dropped, repeated edges kept once (the first)."""
    src = as_array(referrer, "referrer")
    dst = as_array(referred, "referred")
    if len(src) != len(dst):
        raise invalid("referred", "must have the same length as referrer")
    for name, a in (("referrer", src), ("referred", dst)):
        if a.size and a.dtype.kind not in "iu":
            raise invalid(name, "must be integer person ids (super_id)")
    if len(src) == 0:
        raise invalid("referrer", "is empty: there are no referrals")
    persons, codes = np.unique(np.r_[src, dst].astype(np.int64), return_inverse=True)
    s, t = codes[: len(src)], codes[len(src) :]
    keep = s != t
    s, t = s[keep], t[keep]
    _, first = np.unique(s * len(persons) + t, return_index=True)
    first.sort()
    return ReferralGraph(persons, s[first], t[first])


@dataclass(frozen=True)
class Fission:
    """Per person: parent (index, −1 for roots), root (index), depth, direct referrals, descendants."""

    graph: ReferralGraph
    parent: np.ndarray
    root: np.ndarray
    depth: np.ndarray
    direct: np.ndarray
    descendants: np.ndarray

    def trees(self) -> pa.Table:
        """One row per fission tree: root person, people in it, levels below the root, direct referrals."""
        roots = np.flatnonzero(self.parent < 0)
        index = np.full(len(self.parent), -1, dtype=np.int64)
        index[roots] = np.arange(len(roots))
        deepest = np.zeros(len(roots), dtype=np.int64)
        np.maximum.at(deepest, index[self.root], self.depth)
        return pa.table(
            {
                "root": self.graph.persons[roots],
                "size": self.descendants[roots] + 1,
                "depth": deepest,
                "direct": self.direct[roots],
            }
        )


def _children(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the tree: children of node i are kids[ptr[i]:ptr[i+1]]."""
    has = np.flatnonzero(parent >= 0)
    kids = has[np.argsort(parent[has], kind="stable")]
    ptr = np.r_[0, np.cumsum(np.bincount(parent[has], minlength=len(parent)))]
    return kids, ptr


def _expand(nodes: np.ndarray, kids: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """All children of `nodes`, vectorised."""
    counts = ptr[nodes + 1] - ptr[nodes]
    if counts.sum() == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(ptr[nodes] - np.r_[0, np.cumsum(counts)[:-1]], counts)
    return kids[np.arange(counts.sum()) + offsets]


def fission(graph: ReferralGraph) -> Fission:
    """The fission forest from each person's first referrer."""
    n = len(graph)
    parent = np.full(n, -1, dtype=np.int64)
    referred, first = np.unique(graph.target, return_index=True)
    parent[referred] = graph.source[first]
    depth = np.full(n, -1, dtype=np.int64)
    root = np.full(n, -1, dtype=np.int64)

    def spread(starts: np.ndarray, kids: np.ndarray, ptr: np.ndarray) -> None:
        depth[starts], root[starts] = 0, starts
        frontier, level = starts, 0
        while len(frontier):
            frontier = _expand(frontier, kids, ptr)
            level += 1
            depth[frontier] = level
            root[frontier] = root[parent[frontier]]

    kids, ptr = _children(parent)
    spread(np.flatnonzero(parent < 0), kids, ptr)
    unreached = np.flatnonzero(depth < 0)
    if len(unreached):  # cycles: jump len(unreached) steps up to land on a cycle, cut it there
        on_cycle = parent.copy()
        for _ in range(int(np.ceil(np.log2(len(unreached) + 1))) + 1):
            on_cycle = on_cycle[on_cycle]
        while len(unreached):
            cut = on_cycle[unreached[0]]
            parent[cut] = -1
            kids, ptr = _children(parent)
            spread(np.array([cut]), kids, ptr)
            unreached = np.flatnonzero(depth < 0)

    direct = np.bincount(parent[parent >= 0], minlength=n)
    descendants = np.zeros(n, dtype=np.int64)
    for level in range(int(depth.max()), 0, -1):
        nodes = np.flatnonzero(depth == level)
        np.add.at(descendants, parent[nodes], descendants[nodes] + 1)
    return Fission(graph, parent, root, depth, direct, descendants)


def pagerank(graph: ReferralGraph, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """Influence per person (sums to 1): PageRank on referred → referrer edges.

    People who referred nobody pass their weight evenly to everyone (the usual treatment of
    dangling nodes), so the result matches the textbook definition and networkx.
    """
    in_range(damping, "damping", 0, 1, open_low=True)
    n = len(graph)
    src, dst = graph.target, graph.source  # reversed: the referred "vote" for their referrer
    out = np.bincount(src, minlength=n).astype(float)
    m = sparse.csr_matrix((1.0 / out[src], (dst, src)), shape=(n, n))
    dangling = out == 0
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = rank
        rank = damping * (m @ rank + rank[dangling].sum() / n) + (1 - damping) / n
        if np.abs(rank - previous).sum() < n * tol:
            break
    return rank / rank.sum()


def scale_0_100(values: np.ndarray, method: str = "rank") -> np.ndarray:
    """0–100: "rank" — share of people with a strictly lower value (robust to heavy tails, ties
    equal); "minmax" — linear between the lowest and highest value."""
    choice(method, "scale", ("rank", "minmax"))
    v = np.asarray(values, dtype=float)
    if len(v) <= 1:
        return np.zeros(len(v))
    if method == "rank":
        below = np.searchsorted(np.sort(v), v, side="left")
        return 100.0 * below / (len(v) - 1)
    spread = v.max() - v.min()
    return np.zeros(len(v)) if spread == 0 else 100.0 * (v - v.min()) / spread


def value_score(
    commercial: np.ndarray, social: np.ndarray, weights: Sequence[float] = (0.3, 0.7), scale: str = "rank"
) -> np.ndarray:
    """Weighted 0–100 score: weights (commercial, social), normalised to sum to 1."""
    w = normalised(weights, "weights", count=2)
    c, s = np.asarray(commercial, dtype=float), np.asarray(social, dtype=float)
    if len(c) != len(s):
        raise invalid("social", "must have one value per person, like commercial")
    for name, a in (("commercial", c), ("social", s)):
        if not np.isfinite(a).all():
            raise invalid(name, "must be finite numbers")
    return w[0] * scale_0_100(c, scale) + w[1] * scale_0_100(s, scale)


def kocs(
    referrer: Any,
    referred: Any,
    *,
    person: Any = None,
    commercial: Any = None,
    weights: Sequence[float] = (0.3, 0.7),
    scale: str = "rank",
    top: int = 100,
) -> pa.Table:
    """Everyone in the referral graph (and in `person`), best value score first, the first `top` marked KOC.

    `person` / `commercial` give each person's commercial value (CLV, or spend); people without
    one count 0. Social value is PageRank influence.
    """
    if not isinstance(top, int | np.integer) or top < 0:
        raise invalid("top", "must be a whole number ≥ 0")
    graph = referral_graph(referrer, referred)
    tree = fission(graph)
    influence = pagerank(graph)
    ids = graph.persons
    money = np.zeros(len(ids))
    if person is not None or commercial is not None:
        if person is None or commercial is None:
            raise invalid("commercial", "needs both person and commercial, one value per person")
        pid = as_array(person, "person")
        value = as_array(commercial, "commercial", float)
        if len(pid) != len(value):
            raise invalid("commercial", "must have one value per person")
        if pid.size and pid.dtype.kind not in "iu":
            raise invalid("person", "must be integer person ids (super_id)")
        everyone = np.union1d(ids, pid)
        at = np.searchsorted(everyone, ids)
        influence_all = np.zeros(len(everyone))
        influence_all[at] = influence
        money = np.zeros(len(everyone))
        np.add.at(money, np.searchsorted(everyone, pid), value)
        direct, descendants = np.zeros(len(everyone), np.int64), np.zeros(len(everyone), np.int64)
        direct[at], descendants[at] = tree.direct, tree.descendants
        ids, influence = everyone, influence_all
    else:
        direct, descendants = tree.direct, tree.descendants
    score = value_score(money, influence, weights, scale)
    order = np.lexsort((ids, -score))
    social = scale_0_100(influence, scale)
    return pa.table(
        {
            "person": ids[order],
            "value_score": score[order],
            "social_score": social[order],
            "commercial_score": scale_0_100(money, scale)[order],
            "pagerank": influence[order],
            "direct_referrals": direct[order],
            "descendants": descendants[order],
            "commercial_value": money[order],
            "is_koc": np.arange(len(order)) < top,
        }
    )
