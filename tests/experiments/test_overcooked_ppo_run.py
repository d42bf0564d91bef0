"""Overcooked self-play PPO runs end to end: the CLI, run folders, config errors, resume."""

import json

import jax
import numpy as np
import pytest

from coplay.algos.ppo import PPOConfig, num_updates
from coplay.cli import main
from coplay.experiments.overcooked_cli import parse_overrides
from coplay.experiments.overcooked_ppo import PRESETS, OvercookedTrainConfig, time_to, train_run
from coplay.runs import RunDir

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["overcooked", "train", "--preset", "tiny", "--seed", "2", "--out", str(out)]) == 0
    return out


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
    assert ev["sparse_return_mean"] >= 0
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["resolved"]["num_envs"] == TINY.num_envs and cfg["layout"] == "cramped_room"
    assert "seed 2" in (tiny_run / "report.md").read_text()


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
                                        "network=cnn", "total_steps=1e6"))
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
