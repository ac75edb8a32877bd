"""The plans table: which plans it lists, block stability over half-samples, and the stored table read back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.geometry.redundancy import block_stability, redundancy_blocks
from core.models.plans import PruningPlan
from core.results.kinds.plans import PlanScore, PlansTable, ProbeScore, decode_plans, plans_entry
from core.results.store import load_result
from core.training.plans_table import PlansRequest, half_sample_stability, table_plans
from core.training.probe_score import ProbeOptions

pytestmark = pytest.mark.usefixtures("private_cache")


def _map(n_layers: int, blocks: list[tuple[int, int]], inside: float = 0.95) -> np.ndarray:
    sim = np.full((n_layers + 1, n_layers + 1), 0.3)
    for a, b in blocks:
        sim[a : b + 1, a : b + 1] = inside
    np.fill_diagonal(sim, 1.0)
    return sim


def test_block_stability_counts_exact_blocks_and_each_boundary() -> None:
    full = redundancy_blocks(_map(6, [(2, 4)]), 0.9, "linear_cka")
    halves = [_map(6, [(2, 4)])] * 3 + [_map(6, [(2, 3)])]
    got = block_stability(full, halves, seed=7, scheme="half of the speakers")
    (row,) = got.blocks
    assert (row.first, row.last) == (2, 4)
    assert (row.exact, row.start, row.end) == (0.75, 1.0, 0.75)
    assert got.n_resamples == 4 and got.n_blocks == (1, 1, 1, 1) and got.seed == 7
    assert got.of(full.blocks[0]) == row


def _features(n: int, copies: bool) -> SimpleNamespace:
    """Features (n, 5, 6): layers 2-4 one representation (a block) when ``copies``, else independent."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 5, 6))
    if copies:
        x[:, 3] = x[:, 2] + 0.01 * rng.standard_normal((n, 6))
        x[:, 4] = x[:, 2] + 0.01 * rng.standard_normal((n, 6))
    speakers = [f"s{i % 8}" for i in range(n)]
    words = [f"w{i % 3}" for i in range(n)]
    return SimpleNamespace(features=x, labels=lambda name: speakers if name == "speaker" else words)


def test_half_sample_stability_reruns_the_rule_on_halves_of_the_speakers() -> None:
    from core.geometry.criteria import linear_cka

    fs = _features(96, copies=True)
    request = PlansRequest(stability_resamples=4)
    full = redundancy_blocks(linear_cka(fs.features).values, request.cut, "linear_cka")
    assert [(b.first, b.last) for b in full.blocks] == [(2, 4)]
    got = half_sample_stability(fs, full, request)
    assert got is not None and got.n_resamples == 4 and got.scheme == "half of the speakers"
    assert got.blocks[0].exact == 1.0
    # a block that exists only at a threshold no half-sample reaches never reappears
    loose = redundancy_blocks(linear_cka(fs.features).values, -1.0, "linear_cka")
    strict = type(loose)(loose.criterion, 0.999999, loose.n_layers, loose.blocks)
    assert half_sample_stability(fs, strict, request).blocks[0].exact == 0.0
    assert half_sample_stability(fs, full, PlansRequest(stability_resamples=0)) is None


def test_table_plans_pair_every_block_drop_with_the_top_plan_of_its_size() -> None:
    redundancy = redundancy_blocks(_map(8, [(2, 3), (5, 7)]), 0.9)
    got = [(p.size, p.is_top, p.dropped) for p in table_plans(redundancy, 8)]
    assert got == [
        (8, True, ()),
        (7, True, (8,)),
        (7, False, (3,)),
        (6, True, (7, 8)),
        (6, False, (6, 7)),
        (5, True, (6, 7, 8)),
        (5, False, (3, 6, 7)),
    ]


def _table(threshold: float) -> PlansTable:
    def score(plan: PruningPlan, acc: float) -> PlanScore:
        probe = ProbeScore("logistic", acc, acc - 0.05, acc + 0.02)
        return PlanScore(plan, 1000 * plan.size, "cached", (probe,), 30, 10, 0.1)

    redundancy = redundancy_blocks(_map(4, [(2, 3)]), threshold, "linear_cka")
    plans = (score(PruningPlan.top(4, 4), 0.9), score(PruningPlan.drop([3], 4), 0.8))
    return PlansTable(
        "linear_cka",
        redundancy,
        None,
        plans,
        ProbeOptions().to_dict(),
        similarity_map=tuple(map(tuple, _map(4, [(2, 3)]))),
    )


def test_the_table_is_stored_with_provenance_and_read_back() -> None:
    meta = {"key": "f" * 64, "model_id": "org/m", "n_layers": 4, "selection": {"task": "words"}}
    calls: list[float] = []

    def compute(threshold: float):
        def run() -> PlansTable:
            calls.append(threshold)
            return _table(threshold)

        return run

    request = PlansRequest(threshold=0.9).key_fields()
    entry, from_store = plans_entry(meta, request, compute(0.9))
    assert not from_store and entry.provenance.model_id == "org/m"
    assert entry.provenance.settings["threshold"] == 0.9
    again, from_store = plans_entry(meta, request, compute(0.9))
    assert from_store and calls == [0.9]
    table = decode_plans(load_result(again.key))
    assert table == _table(0.9)
    assert table.change(table.plans[1], "logistic") == pytest.approx(-0.1)
    assert table.matrix().shape == (5, 5)
    other, _ = plans_entry(meta, PlansRequest(threshold=0.8).key_fields(), compute(0.8))
    assert other.key != entry.key and calls == [0.9, 0.8]


def test_a_plan_is_called_a_block_drop_only_when_it_drops_a_detected_block() -> None:
    table = _table(0.9)  # block 2-3: its plan drops 3
    typed = PlanScore(PruningPlan.drop([2], 4), 3000, "cached", table.plans[1].scores, 30, 10, 0.1)
    top = PlanScore(PruningPlan.top(3, 4), 3000, "cached", table.plans[1].scores, 30, 10, 0.1)
    kinds = [table.kind(s) for s in (*table.plans, typed, top)]
    assert kinds == ["full", "block drop", "typed", "top"]
    assert _table(0.99).kind(table.plans[1]) == "typed"  # no block at that threshold


def test_bad_requests_are_one_line() -> None:
    from core.errors import TrainingError

    for kw in ({"similarity": "cosine"}, {"threshold": float("nan")}, {"stability_resamples": -1}):
        with pytest.raises(TrainingError):
            PlansRequest(**kw)


def test_the_progress_is_full_only_once_the_last_plans_probes_are_done(monkeypatch) -> None:
    """A pruned run's clips fill most of a plan's share; its probes (after the clips) fill the rest, so
    the bar does not stand at 'total/total, 0 s left' while the last probes still run."""
    from core.training import plans_table

    fs = _features(40, copies=True)
    fs.paths = [f"c{i}.wav" for i in range(40)]
    fs.n_layers = 4
    reports: list[tuple[str, int, int]] = []

    def fake_score(full, features, base, plan, options, progress=None):
        if not plan.is_full:  # the pruned encoder runs over every clip
            progress(40, 40)
        reports.append(("probes", 0, 0))
        return _table(0.9).plans[0]

    monkeypatch.setattr(plans_table, "score_plan", fake_score)
    monkeypatch.setattr(plans_table, "reuses_cache", lambda full, plan: plan.is_full)
    plans_table.compute_plans_table(
        None,
        fs,
        None,
        PlansRequest(stability_resamples=0),
        progress=lambda done, total: reports.append(("bar", done, total)),
    )
    total = next(t for kind, _, t in reports if kind == "bar")
    last_probes = max(i for i, r in enumerate(reports) if r[0] == "probes")
    before = [done for kind, done, _ in reports[:last_probes] if kind == "bar"]
    assert before and max(before) < total  # every clip of every plan ran: not full yet
    assert reports[last_probes + 1 :] == [("bar", total, total)]
