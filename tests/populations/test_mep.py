"""MEP stage 1: a tiny population; the population-entropy bonus is paid; CLI errors."""

import dataclasses
import json
import math

import numpy as np

from coplay.cli import main
from coplay.envs.overcooked import Overcooked
from coplay.populations.finish import evaluate_snapshot
from coplay.populations.train import PPO_PRESETS, default_ppo, preset_config, train_population
from coplay.runs import RunDir


def test_tiny_mep_population_pays_the_entropy_bonus(tmp_path):
    out = tmp_path / "mep"
    algo = dataclasses.replace(default_ppo("tiny", "mep"), shaping_horizon=None,
                               population_entropy_coef=0.5)
    cfg = preset_config("tiny", kind="mep", layout="cramped_room", ppo=algo)
    train_population(cfg, out, progress=False, finish=False)
    assert algo.share_policy and json.loads((out / "config.json").read_text())["kind"] == "mep"
    ev = evaluate_snapshot(out, 8, episodes=2)  # one policy per member plays both seats
    assert ev["returns"].shape == (3,)
    names = Overcooked("cramped_room").event_names
    # per episode and seat: reward = sparse + shaped + 0.5 * sum_t -log pi_bar(a_t|s_t); the
    # policies are still near uniform, so the bonus is about 0.5 * log(6) per step
    horizon = PPO_PRESETS["tiny"].horizon
    rows = [r for r in RunDir(out).read_metrics() if min(r["episodes"]) > 0]
    assert rows
    for r in rows:
        for m in range(3):
            ev = np.array(r["events_per_episode"][m])  # (2, E)
            shaped = (3 * ev[:, names.index("PLACEMENT_IN_POT")]
                      + 3 * ev[:, names.index("USEFUL_DISH_PICKUP")]
                      + 5 * ev[:, names.index("SOUP_PICKUP")])
            bonus = np.array(r["episode_reward"][m]) - r["episode_return"][m] - shaped
            np.testing.assert_allclose(bonus, 0.5 * math.log(6) * horizon, rtol=0.03)


def test_mep_needs_a_bonus_and_two_members(tmp_path, capsys):
    base = ["populations", "train", "--kind", "mep", "--preset", "tiny", "--out",
            str(tmp_path / "x")]
    assert main(base + ["--set", "ppo.population_entropy_coef=0"]) == 2
    assert "population_entropy_coef" in capsys.readouterr().err
    assert main(base + ["--num-members", "1"]) == 2
    assert "num_members" in capsys.readouterr().err
    assert main(base + ["--kind", "xyz"]) == 2
    assert "kind" in capsys.readouterr().err
