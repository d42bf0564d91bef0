"""CooT evaluation metrics (coplay.eval.brprox) against hand-computed values, and the
adaptation / BR-Prox plots (coplay.eval.adaptation_plots) write whole PNGs atomically."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from coplay.eval.adaptation_plots import plot_adaptation, plot_br_prox_bars
from coplay.eval.brprox import (
    adaptation_curve,
    adaptation_gain,
    bootstrap_ci,
    bootstrap_diff_ci,
    br_prox_paper,
    br_prox_zsceval,
    iqm,
    table10_stats,
)


def ego_from_means(r_ego: np.ndarray) -> np.ndarray:
    """(P, S, N) per-seed mean returns -> (P, S, N, 2) episodes x - 1, x + 1 (same mean)."""
    r_ego = np.asarray(r_ego, dtype=float)
    return np.stack([r_ego - 1, r_ego + 1], axis=-1)


# Four partners, two seats, two seeds. Partner 1's BR scores 0 in both seats, partner 3's BR
# is negative in seat 0 (mean over seats -1). Ego means per (partner, seat, seed):
R_EGO = np.array([
    [[5, 15], [10, 30]],  # BR 10, 20 -> ratios 0.5, 1 (1.5 clipped); 0.5, 1 (1.5 clipped)
    [[7, 3], [2, 9]],  # BR 0, 0 -> 1 everywhere (ZSC-Eval); skipped (paper)
    [[10, 20], [-8, 2]],  # BR 40, 8 -> 0.25, 0.5; -1, 0.25
    [[4, 4], [6, 1.5]],  # BR -5, 3 -> 1, 1; 1 (2 clipped), 0.5; paper: mean BR -1, skipped
], dtype=float)
BR = np.array([[10, 20], [0, 0], [40, 8], [-5, 3]], dtype=float)  # (P, S)


# -- iqm and Table 10 -------------------------------------------------------------------------


def test_iqm_hand_values():
    assert iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # n=5: drop 1 each side -> 2, 3, 4
    assert iqm([4, 1, 3, 2]) == pytest.approx(2.5)  # n=4: keep the middle two
    assert iqm([1, 2, 9]) == pytest.approx(4.0)  # n=3: int(0.75) = 0, nothing cut
    # n=8: int(2) = 2 cut each side -> 3, 4, 5, 6
    assert iqm([8, 1000, 3, -50, 5, 4, 6, 2]) == pytest.approx(4.5)
    # n=10: int(2.5) = 2 cut each side of sorted 0..9 with outliers -> 2..7
    assert iqm([0, 1, 2, 3, 4, 5, 6, 7, -1e9, 1e9]) == pytest.approx(np.mean([1, 2, 3, 4, 5, 6]))


def test_iqm_along_an_axis_and_flattened():
    x = np.array([[1, 2, 3, 4, 100], [10, 0, 0, 0, 10]], dtype=float)
    np.testing.assert_allclose(iqm(x, axis=1), [3.0, 10 / 3])
    # flattened: 10 values, 2 cut each side: sorted 0 0 0 1 2 3 4 10 10 100 -> 0 1 2 3 4 10
    assert iqm(x) == pytest.approx(20 / 6)


def test_iqm_matches_scipy_trim_mean_where_scipy_is_installed():
    stats = pytest.importorskip("scipy.stats")  # not a dependency: a cross-check only
    rng = np.random.default_rng(3)
    for n in range(1, 23):
        x = rng.normal(size=(n, 3)) ** 3
        np.testing.assert_allclose(iqm(x, axis=0), stats.trim_mean(x, 0.25, axis=0))
        assert iqm(x) == pytest.approx(stats.trim_mean(x.reshape(-1), 0.25))


def test_table10_on_known_arrays():
    t = table10_stats([0, 1, 2, 3, 10, 20, 30, 40, 100])  # q25 = 2, q75 = 30 exactly
    assert (t.min, t.max, t.n) == (0.0, 100.0, 9)
    assert t.iqr == pytest.approx(28.0)
    assert t.iqr_mean == pytest.approx(np.mean([2, 3, 10, 20, 30]))  # bounds included
    t = table10_stats(np.array([[4, 1], [3, 2]]))  # q25 = 1.75, q75 = 3.25 (interpolated)
    assert (t.min, t.max) == (1.0, 4.0)
    assert t.iqr == pytest.approx(1.5)
    assert t.iqr_mean == pytest.approx(2.5)


# -- BR-Prox ----------------------------------------------------------------------------------


def test_br_prox_paper_skips_zero_and_negative_br_partners():
    out = br_prox_paper(ego_from_means(R_EGO), BR)
    assert out.aggregate == "mean_of_ratios"
    assert out.n_skipped == 2
    np.testing.assert_array_equal(out.skipped, [False, True, False, True])
    # partner 0: ego mean 15 / BR mean 15; partner 2: ego mean 6 / BR mean 24
    np.testing.assert_allclose(out.per_partner, [1.0, np.nan, 0.25, np.nan])
    assert out.value == pytest.approx((1.0 + 0.25) / 2)
    ratio = br_prox_paper(ego_from_means(R_EGO), BR, aggregate="ratio_of_means")
    assert ratio.value == pytest.approx(((15 + 6) / 2) / ((15 + 24) / 2))
    assert ratio.n_skipped == 2


def test_br_prox_paper_does_not_clip_and_averages_episodes_seats_seeds():
    # one partner, one seat, one seed, episodes 50 and 70 -> mean 60 against BR 30 -> 2.0
    ego = np.array([50.0, 70.0]).reshape(1, 1, 1, 2)
    assert br_prox_paper(ego, [[30.0]]).value == pytest.approx(2.0)
    # (P, S, N) BR: per-seed BRs averaged over seats and seeds: (10 + 30 + 20 + 20) / 4 = 20
    ego = np.full((1, 2, 2, 3), 10.0)
    br = np.array([[[10, 30], [20, 20]]], dtype=float)
    assert br_prox_paper(ego, br).value == pytest.approx(0.5)
    # a (P, S) BR is the same as that BR repeated over seeds
    br2 = np.array([[15.0, 25.0]])
    assert br_prox_paper(ego, br2).value == pytest.approx(
        br_prox_paper(ego, np.repeat(br2[:, :, None], 2, axis=2)).value)


def test_br_prox_paper_all_partners_skipped_is_nan():
    out = br_prox_paper(np.ones((2, 1, 1, 1)), np.zeros((2, 1)))
    assert np.isnan(out.value) and out.n_skipped == 2
    with pytest.raises(ValueError, match="aggregate"):
        br_prox_paper(np.ones((2, 1, 1, 1)), np.ones((2, 1)), aggregate="median")


def test_br_prox_zsceval_hand_values():
    out = br_prox_zsceval(ego_from_means(R_EGO), BR)
    expected = np.array([
        [[0.5, 1.0], [0.5, 1.0]],
        [[1.0, 1.0], [1.0, 1.0]],  # BR 0: counted as 1 (the paper skips this partner)
        [[0.25, 0.5], [-1.0, 0.25]],  # negative ego return: not clipped below
        [[1.0, 1.0], [1.0, 0.5]],  # negative BR in seat 0: 1; ratio 2 clipped to 1
    ])
    np.testing.assert_allclose(out.ratios, expected)
    # seat 0 sorted: .25 .5 .5 1 1 1 1 1, cut 2 each side -> .5 1 1 1
    # seat 1 sorted: -1 .25 .5 .5 1 1 1 1, cut 2 each side -> .5 .5 1 1
    np.testing.assert_allclose(out.per_seat, [0.875, 0.75])
    # all 16: -1 .25 .25 .5 .5 .5 .5 1 x9, cut 4 each side -> .5 .5 .5 1 1 1 1 1
    assert out.overall == pytest.approx(6.5 / 8)


def test_br_prox_zsceval_per_seed_br():
    # (P, S, N) BR: seed 0's BR 0 -> 1, seed 1's BR 20 -> 10 / 20
    ego = np.full((1, 1, 2, 1), 10.0)
    out = br_prox_zsceval(ego, np.array([[[0.0, 20.0]]]))
    np.testing.assert_allclose(out.ratios, [[[1.0, 0.5]]])
    assert out.overall == pytest.approx(0.75)


@pytest.mark.parametrize("fn", [br_prox_paper, br_prox_zsceval])
def test_br_prox_shape_errors_name_the_shapes(fn):
    with pytest.raises(ValueError, match=r"\(4, 2, 2\)"):
        fn(R_EGO, BR)  # ego without an episode axis
    with pytest.raises(ValueError, match=r"\(4, 2, 2, 2\); got shape \(4,\)"):
        fn(ego_from_means(R_EGO), BR[:, 0])  # BR without a seat axis
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(4, 2, 2\).*\(4, 2, 2, 2\).*\(2, 2\)"):
        fn(ego_from_means(R_EGO), BR[:2])  # wrong partner count, and no silent broadcast
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        fn(ego_from_means(R_EGO), BR[:, :1])  # one seat's BR would broadcast: refused


# -- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_true_mean_and_has_the_normal_width():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 1.0, size=4000)
    ci = bootstrap_ci(x, rng=1)
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.lo < 5.0 < ci.hi
    half = 1.96 * x.std() / np.sqrt(x.size)  # ~0.031
    assert ci.hi - ci.lo == pytest.approx(2 * half, rel=0.15)
    assert ci.lo < ci.estimate < ci.hi


def test_bootstrap_ci_is_deterministic_under_a_seed():
    x = np.random.default_rng(0).exponential(size=200)
    a, b = bootstrap_ci(x, rng=7), bootstrap_ci(x, rng=7)
    assert a == b
    c = bootstrap_ci(x, rng=np.random.default_rng(7))
    assert c == a  # a seed and a generator from that seed agree
    assert bootstrap_ci(x, rng=8) != a
    assert bootstrap_ci(x, n_boot=500, alpha=0.5, rng=7).hi < a.hi  # 50 % CI is narrower


def test_bootstrap_ci_over_trailing_axes_and_other_stats():
    x = np.random.default_rng(0).normal(size=(300, 3)) + np.array([0.0, 10.0, -10.0])
    ci = bootstrap_ci(x, n_boot=400)
    assert ci.estimate.shape == ci.lo.shape == ci.hi.shape == (3,)
    assert np.all(ci.lo < np.array([0.0, 10.0, -10.0])) and np.all(ci.hi > [0, 10, -10])
    med = bootstrap_ci(x[:, 0], stat=np.median, n_boot=400)
    assert med.estimate == pytest.approx(np.median(x[:, 0]))
    q = bootstrap_ci(x[:, 0], stat=iqm, n_boot=400)
    assert q.estimate == pytest.approx(iqm(x[:, 0]))
    assert q.lo < q.estimate < q.hi


def test_paired_diff_ci_excludes_zero_for_a_shift_and_unpaired_does_not():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 10.0, size=60)  # large differences between units
    b = base
    a = base + 0.5 + rng.normal(0.0, 0.1, size=60)  # a clear shift within each unit
    paired = bootstrap_diff_ci(a, b, rng=0)
    assert paired.estimate == pytest.approx(a.mean() - b.mean())
    assert 0 < paired.lo < 0.5 < paired.hi < 1.0
    # ignoring the pairing, the between-unit spread swamps the shift
    unpaired = bootstrap_diff_ci(a, b, paired=False, rng=0)
    assert unpaired.lo < 0 < unpaired.hi
    assert unpaired.hi - unpaired.lo > 10 * (paired.hi - paired.lo)


def test_diff_ci_of_identical_inputs_includes_zero():
    x = np.random.default_rng(0).normal(size=50)
    same = bootstrap_diff_ci(x, x.copy(), rng=0)
    assert same.estimate == 0.0 and same.lo == 0.0 and same.hi == 0.0
    indep = bootstrap_diff_ci(x, x.copy(), paired=False, rng=0)
    assert indep.lo < 0 < indep.hi


def test_bootstrap_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(5,\).*\(6,\)"):
        bootstrap_diff_ci(np.ones(5), np.ones(6))  # paired needs the same units
    bootstrap_diff_ci(np.ones(5), np.ones(6), paired=False)  # unpaired: fine
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(5, 3\)"):
        bootstrap_diff_ci(np.ones((5, 2)), np.ones((5, 3)), paired=False)
    with pytest.raises(ValueError, match=r"\(0,\)"):
        bootstrap_ci(np.ones(0))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(np.ones(3), alpha=1.5)


# -- adaptation -------------------------------------------------------------------------------


def test_adaptation_curve_hand_values():
    # 2 partners x 1 seat x 2 seeds = 4 units, 3 episodes
    units = np.array([[1, 2, 3], [3, 4, 5], [5, 6, 7], [7, 8, 9]], dtype=float)
    ego = units.reshape(2, 1, 2, 3)
    curve = adaptation_curve(ego, episodes=2, n_boot=500)
    np.testing.assert_array_equal(curve.episode, [1, 2])
    np.testing.assert_allclose(curve.mean, [4.0, 5.0])
    assert curve.n_units == 4
    assert np.all(curve.lo < curve.mean) and np.all(curve.mean < curve.hi)
    # a resampled mean of a column lies within that column's range
    assert np.all(curve.lo >= [1, 2]) and np.all(curve.hi <= [7, 8])
    full = adaptation_curve(ego, episodes=3, n_boot=500)
    np.testing.assert_allclose(full.mean, [4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match=r"1\.\.3.*\(2, 1, 2, 3\)"):
        adaptation_curve(ego, episodes=10)
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        adaptation_curve(units, episodes=2)


def test_adaptation_gain_is_paired_over_units():
    # units differ by hundreds, but every unit gains exactly 2 from episode 1 to episode 3
    units = np.array([[0, 1, 2], [100, 150, 102], [300, 0, 302], [-50, 7, -48]], dtype=float)
    ego = units.reshape(1, 2, 2, 3)
    g = adaptation_gain(ego, first=1, last=3)
    assert (g.estimate, g.lo, g.hi) == (2.0, 2.0, 2.0)
    # episode 2 - episode 1: gains 1, 50, -300, 57 -> mean -48, CI within the gains' range
    g = adaptation_gain(ego, first=1, last=2, n_boot=1000)
    assert g.estimate == pytest.approx(-48.0)
    assert -300 <= g.lo < -48 < g.hi <= 57
    with pytest.raises(ValueError, match=r"first=1, last=10"):
        adaptation_gain(ego)  # only 3 episodes


# -- plots ------------------------------------------------------------------------------------


def png(path) -> np.ndarray:
    """The image as an (H, W, 3) array, after PIL has checked it is a whole PNG."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert pixels.min() < pixels.max()
    return pixels


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left its figure open"


def test_plot_adaptation_writes_a_png_and_no_temp_file(tmp_path):
    rng = np.random.default_rng(0)
    ego = rng.normal(50, 10, size=(3, 2, 2, 10)) + np.arange(10)
    curves = {
        "CooT": adaptation_curve(ego, episodes=10, n_boot=200),
        "BC": {"mean": [40.0] * 10, "lo": [35.0] * 10, "hi": [45.0] * 10},  # as read from JSON
    }
    path = tmp_path / "adapt.png"
    plot_adaptation(curves, path, title="coord ring",
                    paper_reference={"CooT": 41.11, "HSP-adaptive": [30.0, 31.0, 33.0]})
    png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["adapt.png"]
    first = path.read_bytes()
    plot_adaptation(curves, path, title="coord ring")  # overwrites in place
    assert path.read_bytes() != first  # the paper lines are gone
    assert [p.name for p in tmp_path.iterdir()] == ["adapt.png"]
    with pytest.raises(ValueError, match="disagree"):
        plot_adaptation({"x": {"mean": [1.0, 2.0], "lo": [0.0]}}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_br_prox_bars_writes_a_png(tmp_path):
    table = {"CooT": (0.59, 0.52, 0.66), "BC": (0.41, 0.35, 0.47),
             "HSP-adaptive": (float("nan"), float("nan"), float("nan"))}
    path = tmp_path / "sub" / "bars.png"
    plot_br_prox_bars(table, path, paper={"CooT": 0.59, "BC": 0.41, "HSP-dense": 0.46},
                      title="BR-Prox overall")
    png(path)
    plot_br_prox_bars(table, tmp_path / "plain.png")
    plot_br_prox_bars(table, tmp_path / "marked.png", paper={"CooT": 0.59, "BC": 0.41})
    plain, marked = png(tmp_path / "plain.png"), png(tmp_path / "marked.png")
    assert plain.shape == marked.shape and not np.array_equal(plain, marked)  # markers drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marked.png", "plain.png", "sub"]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["bars.png"]


def test_plot_br_prox_bars_paper_only_and_bad_rows(tmp_path):
    plot_br_prox_bars({}, tmp_path / "paper.png", paper={"CooT": 0.59})
    png(tmp_path / "paper.png")
    with pytest.raises(ValueError, match="triples"):
        plot_br_prox_bars({"CooT": (0.5, 0.4)}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
