"""PNG plots of runs: every plot writes a valid PNG, draws the data it is given, survives the
None / NaN values and empty rows the runs produce, and closes its figure.

(None of the plot functions claims an atomic write — they call ``fig.savefig`` directly — so
none is tested for one.)
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from coplay.eval.plots import (
    plot_adaptive_training,
    plot_crossplay,
    plot_ppo_training,
    plot_training_curves,
    plot_within_episode,
)


def png(path) -> np.ndarray:
    """The image as an (H, W, C) array, after PIL has checked it is a whole PNG."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()  # a truncated or corrupt file raises here
    with Image.open(path) as im:
        assert im.size[0] > 0 and im.size[1] > 0
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.min() < pixels.max()  # not one flat colour
    return pixels


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left its figure open"


# --- IPD -------------------------------------------------------------------------------------


def ipd_row(update, tabular=(0.4, 0.5), probes=False):
    row = {"update": update, "time_s": 1.0 * update,
           "reward_vs_learner": [0.5 + 0.01 * update, 0.6], "coop_vs_learner": [0.5, 0.55],
           "reward_vs_tabular": list(tabular), "coop_vs_tabular": list(tabular)}
    if probes:
        for name in ("TFT", "AllC", "AllD"):
            row[f"vs_{name}_reward"] = [0.5, 0.4]
            row[f"vs_{name}_coop_2nd_half"] = [0.3, 0.9]
    return row


def test_training_curves_draw_the_runs_and_a_probe_panel_only_with_probes(tmp_path):
    rows = [ipd_row(u) for u in (2, 4, 6)]
    plot_training_curves({"seed 0": rows}, tmp_path / "plain.png")
    plain = png(tmp_path / "plain.png")
    # probe checks every other chunk: only some rows carry them
    probed = [ipd_row(2), ipd_row(4, probes=True), ipd_row(6), ipd_row(8, probes=True)]
    plot_training_curves({"seed 0": probed, "seed 1": rows}, tmp_path / "probes.png")
    with_probes = png(tmp_path / "probes.png")
    assert with_probes.shape[1] > plain.shape[1] * 1.3  # a third panel (3 x 5.5 in vs 2 x)
    plot_training_curves({"seed 0": []}, tmp_path / "empty.png")  # a run with no rows yet
    empty = png(tmp_path / "empty.png")
    assert empty.shape == plain.shape and not np.array_equal(empty, plain)  # lines drawn


def test_training_curves_take_the_none_values_of_runs_without_tabular_episodes(tmp_path):
    """`no-tabular`: every tabular entry is None (NaN in the JSON sense); one learner None in
    a row; the learner-vs-learner curves are still drawn."""
    rows = [ipd_row(u, tabular=(None, None)) for u in (2, 4)]
    rows[1]["reward_vs_learner"] = [None, 0.3]
    rows[0]["vs_TFT_coop_2nd_half"] = [None, 0.5]  # a probe entry missing for one learner
    for name in ("TFT", "AllC", "AllD"):
        rows[0].setdefault(f"vs_{name}_coop_2nd_half", [0.2, 0.1])
    plot_training_curves({"no-tabular seed 0": rows}, tmp_path / "t.png")
    drawn = png(tmp_path / "t.png")
    plot_training_curves({"no-tabular seed 0": [r | {"reward_vs_learner": [None, None],
                                                     "coop_vs_learner": [None, None]}
                                                 for r in rows]}, tmp_path / "none.png")
    assert not np.array_equal(drawn, png(tmp_path / "none.png"))


def ipd_eval(curve):
    return {"probes": {name: {"cooperation_curve": list(curve)} for name in ("TFT", "AllC")}}


def test_within_episode_curves_skip_a_missing_probe(tmp_path):
    evals = {"seed 0": ipd_eval(np.linspace(0, 1, 20)), "seed 1": ipd_eval([0.5] * 20)}
    plot_within_episode(evals, tmp_path / "w.png")  # AllD is in neither eval
    drawn = png(tmp_path / "w.png")
    plot_within_episode({"seed 0": {"probes": {}}}, tmp_path / "none.png")
    assert drawn.shape == png(tmp_path / "none.png").shape
    assert not np.array_equal(drawn, png(tmp_path / "none.png"))
    plot_within_episode(evals, tmp_path / "one.png", probes=("TFT",))  # a single panel
    assert png(tmp_path / "one.png").shape[1] < drawn.shape[1]


# --- Overcooked ------------------------------------------------------------------------------


def test_crossplay_heatmap_of_any_size_with_nan_and_all_zero_cells(tmp_path):
    xp = np.array([[120.0, 40.0, 0.0], [10.0, math.nan, 80.0], [0.0, 0.0, 200.0]])
    plot_crossplay(xp, tmp_path / "xp.png", title="cross-play")
    big = png(tmp_path / "xp.png")
    plot_crossplay(np.zeros((1, 1)), tmp_path / "one.png")  # nothing delivered anywhere
    small = png(tmp_path / "one.png")
    assert small.shape[0] < big.shape[0] and small.shape[1] < big.shape[1]  # grows with m
    plot_crossplay(np.full((3, 3), math.nan), tmp_path / "nan.png")
    png(tmp_path / "nan.png")


def ppo_row(update, ret, episodes=4):
    return {"update": update, "env_steps": 64 * update, "time_s": 1.0,
            "returned_return": [ret, ret + 1.0], "episodes": episodes,
            "episode_return": ret if episodes else None,
            "entropy": [1.7, 1.6], "shaping_factor": 1.0 - 0.1 * update}


def test_ppo_training_curve(tmp_path):
    rows = [ppo_row(2, 0.0, episodes=0), ppo_row(4, 20.0), ppo_row(6, 60.0)]
    plot_ppo_training(rows, tmp_path / "p.png", title="cramped_room seed 0")
    drawn = png(tmp_path / "p.png")
    plot_ppo_training([], tmp_path / "empty.png")  # evaluated before any chunk was logged
    assert drawn.shape == png(tmp_path / "empty.png").shape
    assert not np.array_equal(drawn, png(tmp_path / "empty.png"))


def adaptive_row(chunk, running, partner, probs):
    return {"update": chunk, "env_steps": 128 * chunk, "time_s": 1.0,
            "running_return": running, "partner_return": partner, "probs": probs}


def test_adaptive_training_takes_partners_without_episodes_yet(tmp_path):
    """The first chunks leave partners unseen: running / chunk returns None."""
    rows = [adaptive_row(1, [None, 4.0, None], [None, 4.0, None], [1 / 3, 1 / 3, 1 / 3]),
            adaptive_row(2, [2.0, 5.0, None], [2.0, 6.0, None], [0.5, 0.1, 0.4]),
            adaptive_row(3, [3.0, 5.5, 1.0], [None, 6.0, 1.0], [0.3, 0.1, 0.6])]
    plot_adaptive_training(rows, [0, 2, 5], tmp_path / "a.png", title="alpha 3")
    drawn = png(tmp_path / "a.png")
    unseen = [r | {"running_return": [None] * 3, "partner_return": [None] * 3} for r in rows]
    plot_adaptive_training(unseen, [0, 2, 5], tmp_path / "unseen.png")
    assert not np.array_equal(drawn, png(tmp_path / "unseen.png"))


def test_adaptive_training_with_no_rows(tmp_path):
    """No metrics row (the function guards its stack plot for this case, and finish_adaptive
    reads the rows with `rows[-1] if rows else {}`), as plot_ppo_training and
    plot_training_curves take one."""
    plot_adaptive_training([], [0, 1], tmp_path / "empty.png")
    png(tmp_path / "empty.png")
