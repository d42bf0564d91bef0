"""Overcooked self-play PPO runs end to end: the CLI, run folders, config errors, resume."""

import dataclasses
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.algos.ppo_config import PPOConfig, num_updates
from coplay.cli import main
from coplay.config import parse_overrides
from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.state import ACTION_NAMES
from coplay.experiments.overcooked.ppo import (
    OvercookedTrainConfig,
    evaluate_run,
    time_to,
    train_run,
)
from coplay.experiments.overcooked.presets import PPO_PRESETS as PRESETS
from coplay.runs import RunDir

TINY = PRESETS["tiny"]
SOUP_VALUE = 20  # old dynamics (cramped_room, BOX below): onion soup is the only order


def assert_eval_adds_up(ev: dict) -> None:
    """The sparse return of eval.json is the team's deliveries x 20, and the two seat
    arrangements (half of the episodes each) average to the mean."""
    deliveries = sum(ev["events_per_episode"]["delivery"])  # per episode, both seats
    assert ev["sparse_return_mean"] == pytest.approx(SOUP_VALUE * deliveries, abs=1e-4)
    assert ev["sparse_return_mean"] == pytest.approx(
        (ev["sparse_return_seat0_on_cook0"] + ev["sparse_return_seat0_on_cook1"]) / 2,
        abs=1e-4)


@pytest.fixture(scope="module")
def tiny_run(self_play_tiny):
    """The shared tiny self-play run (tests/experiments/conftest.py), seed 2."""
    return self_play_tiny


def test_tiny_run_writes_the_whole_folder(tiny_run):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "eval.json",
                 "report.md", "training.png"):
        assert (tiny_run / name).is_file(), name
    rows = RunDir(tiny_run).read_metrics()
    n = num_updates(TINY)
    assert [r["update"] for r in rows] == list(range(TINY.updates_per_chunk, n + 1,
                                                     TINY.updates_per_chunk))
    assert rows[-1]["env_steps"] == n * TINY.num_envs * TINY.num_steps
    assert sum(r["episodes"] for r in rows) > 0
    assert "delivery" in next(r for r in rows if r["episodes"])["events_per_episode"]
    ev = json.loads((tiny_run / "eval.json").read_text())
    assert ev["episodes"] == 32 and ev["steps_per_episode"] == TINY.horizon
    assert_eval_adds_up(ev)  # (all zeros here: a 16-step episode is too short to cook a soup)
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["resolved"]["num_envs"] == TINY.num_envs and cfg["layout"] == "cramped_room"
    assert "seed 2" in (tiny_run / "report.md").read_text()



# Cook 0 is boxed in by an onion dispenser (N), the pot (S), the dish dispenser (W) and the
# serving tile (E); cook 1 by counters. Neither can move: direction actions only turn them.
BOX = "XOXXXX\nD1SX2X\nXPXXXX"
N, S, E, W, STAY, INTERACT = (ACTION_NAMES.index(a) for a in ("N", "S", "E", "W", "STAY",
                                                                "INTERACT"))


class BoxCook:
    """A scripted policy with the network's ``apply`` signature, for BOX. ``params["works"]``
    1: as cook 0, face the next thing needed (onion dispenser until the pot holds 3 onions,
    then the dish dispenser; the pot while holding an onion or a dish; the serving tile while
    holding a soup) and INTERACT once facing it; as cook 1, INTERACT with its counter.
    ``params["works"]`` 0: STAY. Reads the lossless old-dynamics channels (observation.py)."""

    def apply(self, params, obs, critic_obs):
        here = obs[:, 1, 1]  # (B, C) the cell of cook 0 (x 1, y 1), as this seat sees it
        facing = jnp.argmax(here[:, 2:6], -1)  # own orientation N, S, E, W = actions 0-3
        soup, dish, onion = here[:, 17] > 0, here[:, 18] > 0, here[:, 19] > 0
        pot_full = obs[:, 2, 1, 15] >= 3  # onions in the pot (x 1, y 2)
        target = jnp.where(soup, E, jnp.where(onion | dish, S, jnp.where(pot_full, W, N)))
        action = jnp.where(facing == target, INTERACT, target)
        action = jnp.where(here[:, 0] > 0, action, INTERACT)  # channel 0: own position
        action = jnp.where(params["works"] > 0, action, STAY)
        logits = jnp.where(jnp.arange(6) == action[:, None], 0.0, -1e9)
        return logits, jnp.zeros(obs.shape[0])


def test_eval_of_a_scripted_cook_counts_its_soups_in_the_right_seat(tmp_path):
    """The run's evaluation with seat 0 a scripted cook and seat 1 idle: the soups it must
    deliver, and each seat's events, in the seat that did them.

    Each soup takes 35 steps from an empty pot (3 x (turn, take onion, turn, put) -> cooking
    from step 11; turn, dish, turn; ready 20 ticks after cooking started; soup, turn, serve at
    step ~34), so 120 steps serve 3 soups (the 4th would land at ~139). Seat 0 steers cook 0
    in half of the episodes (3 soups), cook 1 in the other half (nothing can be done)."""
    horizon, envs = 120, 8
    algo = dataclasses.replace(TINY, horizon=horizon)
    cfg = OvercookedTrainConfig(layout=BOX, preset="tiny", seed=0, eval_envs=envs)
    state = types.SimpleNamespace(params={"works": jnp.array([[1.0, 0.0]])},  # (member, seat)
                                  update=np.array([num_updates(TINY)]))
    ev = evaluate_run(tmp_path, cfg, algo, Overcooked(BOX), types.SimpleNamespace(
        network=BoxCook()), state)
    assert ev == json.loads((tmp_path / "eval.json").read_text())
    assert ev["episodes"] == envs and ev["steps_per_episode"] == horizon
    assert ev["sparse_return_seat0_on_cook0"] == 3 * SOUP_VALUE
    assert ev["sparse_return_seat0_on_cook1"] == 0.0
    assert_eval_adds_up(ev)
    events = ev["events_per_episode"]  # [seat 0, seat 1], per episode over all episodes
    assert events["delivery"] == [1.5, 0.0] and events["SOUP_PICKUP"] == [1.5, 0.0]
    assert events["STAY"] == [0.0, horizon]  # the idle seat, whichever cook it steers
    assert events["IDLE_INTERACT_X"] == [horizon / 2, 0.0]  # seat 0 boxed in by counters
    assert "seat 0 on cook 0: 60.0" in (tmp_path / "report.md").read_text()

def test_fresh_run_refuses_to_overwrite(tiny_run, capsys):
    assert main(["overcooked", "train", "--preset", "tiny", "--out", str(tiny_run)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("args, field", [
    (["--set", "learning_rate=-1"], "learning_rate"),
    (["--set", "num_minibatchs=2"], "num_minibatchs"),
    (["--set", "num_envs=abc"], "num_envs"),
    (["--set", "num_minibatches=3"], "num_minibatches"),
    (["--set", "network=rnn"], "network"),
    (["--layout", "no_such_kitchen"], "layout"),
])
def test_bad_config_fails_before_compiling_and_names_the_field(args, field, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["overcooked", "train", "--preset", "tiny", "--out", str(out), *args]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_overrides_parse_tuples_and_optionals():
    cfg = parse_overrides(PPOConfig(), ("hidden_sizes=128,32", "shaping_horizon=none",
                                        "entropy_coefs=0.2,0.05", "share_policy=true",
                                        "network=cnn", "total_steps=1e6"), "ppo")
    assert cfg.hidden_sizes == (128, 32) and cfg.shaping_horizon is None
    assert cfg.entropy_coefs == (0.2, 0.05) and cfg.share_policy and cfg.network == "cnn"
    assert cfg.total_steps == 1_000_000


def test_killed_and_resumed_run_ends_with_the_same_parameters(tmp_path):
    cfg = OvercookedTrainConfig(preset="tiny", seed=5, checkpoint_every=1)
    straight = train_run(cfg, tmp_path / "straight", progress=False, evaluate_at_end=False)
    train_run(cfg, tmp_path / "killed", stop_after_chunks=1, progress=False,
              evaluate_at_end=False)
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as f:
        f.write('{"update": 999, "partial": true}\n')  # written after the last checkpoint
    resumed = train_run(cfg, tmp_path / "killed", resume=True, progress=False,
                        evaluate_at_end=False)
    assert int(resumed.update[0]) == int(straight.update[0]) == num_updates(TINY)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = RunDir(tmp_path / "killed").read_metrics()
    assert [r["update"] for r in rows] == [r["update"] for r in
                                           RunDir(tmp_path / "straight").read_metrics()]


def test_time_to_threshold():
    rows = [{"update": 2, "env_steps": 200, "time_s": 1.0, "returned_return": [0.0, 10.0]},
            {"update": 4, "env_steps": 400, "time_s": 2.5, "returned_return": [149.0, 151.0]}]
    assert time_to(rows, 150.0) == (400, 2.5)
    assert time_to(rows, 140.0) == (300, 2.5)
    assert time_to(rows, 500.0) is None


def test_every_ppo_field_is_a_flag_with_the_presets_default(capsys):
    """tyro over the nested config: --ppo.FIELD flags, their docstrings in --help, and the
    --preset's values as their defaults; a flag reaches the resolved config."""
    with pytest.raises(SystemExit):
        main(["overcooked", "train", "--preset", "tiny", "--help"])
    text = capsys.readouterr().out
    assert "--ppo.total-steps" in text and "(default: 256)" in text  # the tiny preset's
    assert "--checkpoint-every" in text and "--eval-envs" in text
    from coplay.experiments.cli_common import parse_with_preset
    from coplay.experiments.overcooked.cli import TrainArgs

    args = parse_with_preset(TrainArgs, ["--preset", "tiny", "--ppo.num-envs", "8",
                                         "--set", "learning_rate=1e-3"], "t", "ppo", PRESETS)
    assert args.ppo.num_envs == 8 and args.ppo.learning_rate == 1e-3
    assert args.ppo.total_steps == PRESETS["tiny"].total_steps
