"""Referral graph: fission trees, PageRank influence (checked against an exact solve), KOC scores.

A(1) ─┬─ B(2) ─┬─ E(5)        H(8) ── I(9)
      │        └─ F(6)
      ├─ C(3) ── G(7)
      └─ D(4)
"""

from __future__ import annotations

import numpy as np
import pytest

from siyu.errors import InvalidInput
from siyu.value.social import fission, kocs, pagerank, referral_graph, scale_0_100, value_score

EDGES = [(1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (3, 7), (8, 9)]


def graph(edges=EDGES):
    src, dst = zip(*edges, strict=True)
    return referral_graph(list(src), list(dst))


def test_fission_trees_depth_and_size():
    tree = fission(graph())
    assert tree.trees().to_pydict() == {"root": [1, 8], "size": [7, 2], "depth": [2, 1], "direct": [3, 1]}
    persons = graph().persons.tolist()
    at = {p: i for i, p in enumerate(persons)}
    assert tree.descendants[at[1]] == 6 and tree.descendants[at[2]] == 2 and tree.descendants[at[7]] == 0
    assert tree.depth[at[5]] == 2
    assert persons[tree.root[at[7]]] == 1


def test_the_first_referrer_makes_the_tree_and_cycles_are_cut():
    # 5 was referred by 2 first and later also by 3; 10 → 11 → 12 → 10 is a cycle with a tail 13
    tree = fission(graph(EDGES + [(3, 5), (10, 11), (11, 12), (12, 10), (12, 13), (4, 4)]))
    persons = tree.graph.persons.tolist()
    assert persons[tree.parent[persons.index(5)]] == 2
    trees = tree.trees().to_pydict()
    assert sorted(trees["size"]) == [2, 4, 7]  # the cycle became a tree of its 4 people
    assert sum(trees["size"]) == len(persons) == 13  # everyone is in exactly one tree
    assert tree.direct[persons.index(4)] == 0  # the self-referral of 4 was dropped
    assert (tree.depth >= 0).all()


def exact_pagerank(n, src, dst, damping=0.85):
    """Solve the PageRank equations directly (dense), on the reversed referral edges."""
    m = np.zeros((n, n))
    out = np.bincount(dst, minlength=n)
    for s, d in zip(src, dst, strict=True):
        m[s, d] += 1 / out[d]  # the referred (d) votes for the referrer (s)
    m[:, out == 0] = 1 / n  # dangling: spread evenly
    return np.linalg.solve(np.eye(n) - damping * m, np.full(n, (1 - damping) / n))


def test_pagerank_matches_the_exact_solution_and_ranks_the_influencers():
    g = graph()
    rank = pagerank(g)
    np.testing.assert_allclose(rank, exact_pagerank(len(g), g.source, g.target), rtol=1e-8)
    assert rank.sum() == pytest.approx(1.0)
    by_person = dict(zip(g.persons.tolist(), rank, strict=True))
    assert by_person[1] > by_person[2] > by_person[3] > by_person[5]
    assert by_person[3] == pytest.approx(by_person[8])  # one referral each, both dead ends
    assert by_person[2] > by_person[8]  # two referrals beat one
    leaves = [by_person[p] for p in (4, 5, 6, 7, 9)]
    assert max(leaves) == pytest.approx(min(leaves))


def test_scores_are_0_to_100_and_weighted():
    assert scale_0_100(np.array([5.0, 1, 1, 9])).tolist() == [pytest.approx(200 / 3), 0, 0, 100]
    assert scale_0_100(np.array([0.0, 5, 10]), "minmax").tolist() == [0, 50, 100]
    score = value_score(np.array([0.0, 10, 20]), np.array([20.0, 10, 0]), (0.3, 0.7))
    assert score.tolist() == [pytest.approx(70), pytest.approx(50), pytest.approx(30)]
    assert value_score(np.array([1.0, 2]), np.array([2.0, 1]), (3, 7)).tolist() == pytest.approx([70, 30])


def test_kocs_combine_social_and_commercial_value():
    # person 2 spends the most; 1 brings in the most; 42 bought but referred nobody
    table = kocs(
        [s for s, _ in EDGES],
        [d for _, d in EDGES],
        person=[1, 2, 42],
        commercial=[100.0, 5000.0, 300.0],
        weights=(0.3, 0.7),
        top=2,
    ).to_pydict()
    assert table["person"][:2] == [1, 2]
    assert table["is_koc"][:3] == [True, True, False]
    assert 42 in table["person"]
    row = table["person"].index(1)
    assert (table["direct_referrals"][row], table["descendants"][row]) == (3, 6)
    commercial_only = kocs(
        [s for s, _ in EDGES],
        [d for _, d in EDGES],
        person=[1, 2, 42],
        commercial=[100.0, 5000.0, 300.0],
        weights=(1, 0),
        top=1,
    ).to_pydict()
    assert commercial_only["person"][0] == 2


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: referral_graph([], []), "referrer"),
        (lambda: referral_graph([1, 2], [3]), "referred"),
        (lambda: referral_graph(["a"], ["b"]), "referrer"),
        (lambda: pagerank(graph(), damping=1.5), "damping"),
        (lambda: value_score(np.ones(2), np.ones(2), (0, 0)), "weights"),
        (lambda: value_score(np.ones(2), np.ones(2), (-1, 2)), "weights"),
        (lambda: value_score(np.ones(2), np.ones(2), (1, 2, 3)), "weights"),
        (lambda: value_score(np.ones(2), np.ones(3)), "social"),
        (lambda: scale_0_100(np.ones(2), "log"), "scale"),
        (lambda: kocs([1], [2], top=-1), "top"),
        (lambda: kocs([1], [2], person=[1]), "commercial"),
        (lambda: kocs([1], [2], person=[1, 2], commercial=[1.0]), "commercial"),
    ],
)
def test_bad_input_names_the_parameter(call, field):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.errors[0].field == field
