"""The full rebuild (vectorised connected components) gives streaming's answer, and how good that answer is.

Quality is measured on a synthetic population with ground truth (siyu.identity.synthetic): pairwise
precision and recall over events. Thresholds, measured on seeds 1, 2, 3, 7, 11 at 3,000 and 20,000
people (docs/benchmarks.md):

* clean data (no shared devices, typos or recycled numbers): precision 1.0 — the rules themselves
  never merge two people — and recall exactly that of plain connected components, i.e. every link
  the data holds is found (≈ 0.90: some cookies never meet an identifier);
* the default, hard population: precision 0.92–0.94, recall 0.83–0.84. What is lost is what no
  deterministic rule can know — anonymous events on a family tablet go to its first owner, a
  recycled number's new owner without a member id looks like the old one. Tested at ≥ 0.91 and
  ≥ 0.82, and guard rails must beat plain connected components (precision 0.78–0.82) clearly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import siyu.models  # noqa: F401
from siyu.db import Database
from siyu.errors import InvalidInput
from siyu.identity import report
from siyu.identity import service as ids
from siyu.identity.engine import MemoryGraph, resolve_keys
from siyu.identity.rebuild import encode, rebuild, rebuild_arrays
from siyu.identity.rules import DEFAULT_TYPES, Rules, default_rules
from siyu.identity.store import root_of
from siyu.identity.synthetic import generate
from siyu.workspaces import service as workspaces


def partition(labels) -> list[int]:
    """Cluster labels renamed by first appearance, so two clusterings compare with ==."""
    names: dict[int, int] = {}
    return [-1 if x is None or x < 0 else names.setdefault(x, len(names)) for x in labels]


def replay_everything(enc, rules) -> tuple[list[int], MemoryGraph]:
    """Streaming, record by record, in memory: the reference the rebuild must reproduce."""
    graph, names, persons = MemoryGraph(), list(rules.types), []
    for r in range(enc.n_records):
        graph.record = r
        codes = enc.codes[enc.indptr[r] : enc.indptr[r + 1]].tolist()
        persons.append(resolve_keys(graph, rules, [(names[enc.ident_type[c]], c) for c in codes]).person)
    parent = {gone: survivor for survivor, gone, _, _ in graph.merges}

    def root(p):
        while p in parent:
            p = parent[p]
        return p

    return [-1 if p is None else root(p) for p in persons], graph


@pytest.fixture(scope="module")
def population():
    return generate(3000, seed=7)


WEAK_DEVICES = Rules([replace(t, weak=t.name in ("device_id", "visitor_cookie")) for t in DEFAULT_TYPES.values()])


@pytest.mark.parametrize(("rules", "people"), [(default_rules(), 3000), (WEAK_DEVICES, 1000)], ids=["default", "weak"])
def test_rebuild_gives_exactly_the_streaming_answer_on_the_synthetic_population(population, rules, people):
    enc = encode(rules, population.identifiers if people == 3000 else generate(people, seed=5).identifiers)
    rebuilt = rebuild_arrays(enc, rules)
    streamed, graph = replay_everything(enc, rules)

    assert rebuilt.stats["conflicting_components"] > 30  # the population does exercise the guard rails
    if not rules.weak:  # (weak links split more components, so more of them are replayed)
        assert rebuilt.stats["replayed_records"] < enc.n_records / 4  # ... and most of it is vectorised
    assert partition(rebuilt.record_person) == partition(streamed)  # every event, the same person
    owners = np.full(enc.n_idents, -1)
    for key, person in graph.owner.items():
        owners[key[1]] = person
    assert partition(rebuilt.ident_person) == partition(owners)  # every identifier too
    assert set(np.flatnonzero(rebuilt.ident_quarantined)) == {k[1] for k in graph.quarantined}
    assert len(rebuilt.conflicts) == len(graph.conflicts)
    # Persons are numbered by their first event, as streaming creates them: the oldest survives.
    assert list(rebuilt.person_first_record) == sorted(rebuilt.person_first_record)


def test_streaming_in_the_database_equals_the_rebuild_written_back(database_url):
    pop = generate(60, seed=3)
    db = Database(database_url)
    db.migrate()
    try:
        with db.session() as s:
            streamed_ws = workspaces.create_workspace(s, "Streamed", slug="streamed").id
            rebuilt_ws = workspaces.create_workspace(s, "Rebuilt", slug="rebuilt").id
        with db.session() as s:
            at_the_time = [ids.resolve(s, streamed_ws, r.identifiers, r.ref) for r in pop.records]
            streamed = [None if p is None else root_of(s, p) for p in at_the_time]
            result = rebuild(s, rebuilt_ws, pop.identifiers, [r.ref for r in pop.records], actor="test")
        assert result.stats["conflicting_components"] > 0
        assert partition(streamed) == partition(result.super_ids)
        with db.session() as s:
            conflicts = [ids.list_conflicts(s, w, 10**6) for w in (streamed_ws, rebuilt_ws)]
            assert len(conflicts[0]) == len(conflicts[1]) == result.conflicts
            assert len(ids.quarantined(s, streamed_ws)) == len(ids.quarantined(s, rebuilt_ws))
            # The rebuilt graph answers lookups like the streamed one.
            for record, super_id in list(zip(pop.records, result.super_ids, strict=True))[::25]:
                for id_type, value in record.identifiers:
                    a = ids.lookup(s, streamed_ws, id_type, value) if value != "null" else None
                    b = ids.lookup(s, rebuilt_ws, id_type, value) if value != "null" else None
                    assert (a is None) == (b is None)
                    if b is not None and super_id is not None:
                        assert ids.current_super_id(s, rebuilt_ws, b) == b
            assert ids.merge_log(s, rebuilt_ws)[-1]["action"] == "rebuild"
            # A second rebuild replaces the graph rather than adding to it.
            again = rebuild(s, rebuilt_ws, pop.identifiers)
            assert partition(again.super_ids) == partition(result.super_ids)
            assert again.identifiers == result.identifiers
    finally:
        db.dispose()


def test_rebuild_skips_bad_identifiers_and_reports_where_they_were(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'siyu.db'}")
    db.migrate()
    with db.session() as s:
        ws = workspaces.create_workspace(s, "Shop", slug="shop").id
        result = rebuild(
            s,
            ws,
            [
                [("member_id", "M1"), ("phone", "not a phone")],
                [("member_id", "null")],  # blocked: this event stays anonymous
                [("shoe_size", "42"), ("member_id", "M1"), ("email", "m1@x.cn")],
            ],
        )
        assert result.super_ids[0] == result.super_ids[2] and result.super_ids[1] is None
        assert result.invalid_count == 2
        assert [e.field for _, e in result.invalid] == ["records[0][1]", "records[2][0]"]
        with pytest.raises(InvalidInput) as exc:
            rebuild(s, ws, [[("member_id", "M1")]], event_refs=["a", "b"])
        assert exc.value.errors[0].field == "event_refs"
    db.dispose()


# --- quality against ground truth ------------------------------------------------------------------------


def test_pairwise_scores_count_pairs_of_events():
    # truth: events 0,1,2 are one person, 3,4 another; we merged 2 with 3 and left 4 anonymous.
    s = report.pairwise_scores([0, 0, 1, 1, None], [7, 7, 7, 8, 8])
    assert (s.true_pairs, s.predicted_pairs, s.correct_pairs) == (4, 2, 1)
    assert (s.precision, s.recall) == (0.5, 0.25)


def test_on_clean_data_nothing_is_merged_wrongly_and_every_link_in_the_data_is_found():
    pop = generate(1500, seed=7, typo_rate=0, recycle_rate=0, tablet_rate=0, junk_rate=0)
    guarded = report.evaluate(pop)
    no_rails = report.evaluate(pop, Rules([replace(t, unique=False, max_values=10**6) for t in DEFAULT_TYPES.values()]))
    assert guarded.scores.precision == 1.0
    assert guarded.scores.recall == no_rails.scores.recall > 0.88
    assert guarded.conflicts == 0


def test_precision_and_recall_on_the_hard_population(population):
    got = report.evaluate(population)
    assert got.scores.precision >= 0.91
    assert got.scores.recall >= 0.82
    no_rails = report.evaluate(
        population,
        Rules([replace(t, unique=False, max_values=10**6, max_people=10**6) for t in DEFAULT_TYPES.values()]),
    )
    assert got.scores.precision - no_rails.scores.precision > 0.08  # the guard rails earn their keep
    assert got.recycled > 0 and got.households_sharing > 0 and got.conflicts > 0 and got.quarantined > 0


def test_the_report_entry_point_prints_the_figures(capsys):
    report.main(["--people", "300", "--seed", "2"])
    out = capsys.readouterr().out
    assert "precision" in out and "recall" in out and "super IDs" in out
