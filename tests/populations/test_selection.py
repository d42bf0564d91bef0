"""Selection of training pools and evaluation partners on hand-made features."""

import itertools

import numpy as np
import pytest

from coplay.populations.selection import (
    diversity_score,
    dpp_select,
    event_features,
    greedy_select,
    log_det,
    mid_skill,
    sample_k_dpp,
    select_sets,
)


def test_features_are_normalised_per_column():
    events = np.array([[[2.0, 0.0], [4.0, 1.0]],
                       [[1.0, 0.0], [0.0, 3.0]]])  # (M=2, seats, E=2)
    f = event_features(events)
    assert f.shape == (2, 4)
    np.testing.assert_allclose(f[:, 0], [2 / 2.001, 1 / 2.001])
    np.testing.assert_allclose(f[:, 1], [0.0, 0.0])  # never-seen event: zero column
    np.testing.assert_allclose(f[:, 3], [1 / 3.001, 3 / 3.001])
    assert f.max() < 1


def test_greedy_on_a_line():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [9.5]])
    # summed distances: 10 (row 3) is farthest from everything; then 0; then 2 beats 1
    assert greedy_select(x, 1) == [3]
    assert greedy_select(x, 2) == [3, 0]
    # every point between 0 and 10 is 10 away from {0, 10} in total: the tie goes to row 1
    assert greedy_select(x, 3) == [3, 0, 1]
    assert greedy_select(x, 2, candidates=[0, 1, 2]) == [0, 2]


def test_greedy_prefers_the_point_off_the_line():
    x = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 3.0], [5.0, 0.0]])
    # sums 23, 23, 19, 13 -> row 0 (tie, lowest); farthest from it: row 1; then row 2 (16 > 10)
    assert greedy_select(x, 3) == [0, 1, 2]


def test_greedy_from_a_seeded_first_pick():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [9.5]])
    for seed in range(6):
        first = int(np.random.default_rng(seed).integers(5))
        got = greedy_select(x, 3, first_seed=seed)
        assert got[0] == first and len(set(got)) == 3
        # the second pick is the row farthest from the first
        assert got[1] == int(np.argmax(np.abs(x[:, 0] - x[first, 0])))
    assert {greedy_select(x, 1, first_seed=s)[0] for s in range(20)} != {3}  # not the max
    # the draw is among the candidates only
    assert greedy_select(x, 1, candidates=[1, 2], first_seed=0)[0] in (1, 2)


def test_greedy_breaks_ties_by_lowest_index():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # all rows have the same summed L1 distance (4); then row 3 is farthest from row 0
    assert greedy_select(x, 2) == [0, 3]


def test_dpp_exact_picks_the_largest_determinant():
    # two near-duplicate directions and one orthogonal: the best pair is orthogonal
    f = np.array([[1.0, 0.0, 0.0], [0.99, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    subset, ld, how = dpp_select(f, 2)
    assert how == "exact"
    assert subset == [0, 2]  # det = 1 (unit vectors, orthogonal)
    k = f @ f.T
    best = max(itertools.combinations(range(4), 2), key=lambda s: np.linalg.det(k[np.ix_(s, s)]))
    assert subset == sorted(best)
    np.testing.assert_allclose(ld, 0.0, atol=1e-9)
    assert dpp_select(f, 3)[0] == [0, 2, 3]


def test_k_dpp_sampler_matches_the_exact_distribution():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 4))
    kernel = f @ f.T
    subsets = list(itertools.combinations(range(5), 2))
    p = np.array([np.linalg.det(kernel[np.ix_(s, s)]) for s in subsets])
    p /= p.sum()
    n = 6000
    counts = {s: 0 for s in subsets}
    for _ in range(n):
        counts[tuple(sample_k_dpp(kernel, 2, rng))] += 1
    freq = np.array([counts[s] / n for s in subsets])
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p * (1 - p) / n).max())


def test_dpp_sampling_finds_the_best_subset_when_enumeration_is_off():
    f = np.eye(6)[:, :6] * np.array([[1.0], [1.0], [1.0], [0.1], [0.1], [0.1]])
    subset, ld, how = dpp_select(f, 3, exact_limit=1, num_samples=200, seed=1)
    assert how == "sampled" and subset == [0, 1, 2]
    np.testing.assert_allclose(ld, log_det(f @ f.T, [0, 1, 2]))


def test_sets_are_disjoint_and_respect_the_return_thresholds():
    rng = np.random.default_rng(3)
    f = rng.random((12, 6))
    returns = np.array([0.0, 5.0, 20, 30, 40, 50, 60, 0.05, 80, 90, 100, 110])
    sel = select_sets(f, returns, train_size=6, eval_size=4)
    assert len(sel["eval"]) == 4 and len(sel["train"]) == 6
    assert not set(sel["eval"]) & set(sel["train"])
    assert all(returns[i] > 10 for i in sel["eval"])
    assert all(returns[i] > 0.1 for i in sel["train"])
    assert 0 not in sel["train"] and 7 not in sel["train"]
    # too few eligible pairs: the sets shrink, still disjoint
    sel = select_sets(f, returns, train_size=20, eval_size=20)
    assert len(sel["eval"]) == 9 and sorted(sel["train"]) == [1]


def test_diversity_and_mid_skill():
    assert diversity_score(np.zeros((3, 2))) == 0.0
    np.testing.assert_allclose(diversity_score(np.array([[0.0], [1.0]])), 1.0)
    assert mid_skill([0.0, 10.0, 38.0, 60.0, 80.0], 80.0) == 2
    assert mid_skill([0.0, 40.0, 40.0], 80.0) == 1


def test_selection_errors():
    with pytest.raises(ValueError):
        greedy_select(np.zeros((2, 1)), 3)
    with pytest.raises(ValueError, match="rank"):
        sample_k_dpp(np.zeros((3, 3)), 2, np.random.default_rng(0))
