"""PPI runs end to end: the CLI, run folders with dataset shards, eval/report, resumption
after an interrupted phase, stages and ablations."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from coplay.cli import main
from coplay.config import ConfigError
from coplay.data.shards import ShardStore
from coplay.experiments.ipd.ppi import (
    PPITrainConfig,
    learner_shards,
    prior_weights,
    resolve,
    train_run,
)
from coplay.experiments.ipd.runs import (
    ppi_state_template,
)
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir

# every test here uses the tiny preset with 16 evaluation games per pairing = its collection
# batch, so collection, probes and evaluation share one compiled program
EVAL = 16


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppi") / "tiny"
    assert main(["ipd", "train", "--algo", "ppi", "--preset", "tiny", "--seed", "2",
                 "--out", str(out), "--eval-episodes", str(EVAL), "--probe-every", "0"]) == 0
    return out


def _params(folder):
    _, algo = load_ipd_config(folder)
    state, meta = RunDir(folder).load_checkpoint(ppi_state_template(algo))
    return [np.asarray(x) for x in jax.tree.leaves(state.params)], meta


def test_tiny_run_writes_the_folder_and_the_dataset(tiny_run):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "eval.json",
                 "report.md", "training.png", "within_episode.png"):
        assert (tiny_run / name).is_file(), name
    ev = json.loads((tiny_run / "eval.json").read_text())
    assert ev["algo"] == "ppi" and ev["update"] == 2
    for pairing in ("learner_vs_learner", "learner_vs_tabular"):
        assert {"reward", "cooperation", "cooperation_second_half"} <= set(ev[pairing])
    for probe in ("TFT", "AllC", "AllD"):
        assert {"reward", "cooperation"} <= set(ev["probes"][probe])
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2]
    assert rows[0]["dataset_size"] == [64, 64] and rows[1]["dataset_size"] == [80, 80]
    assert all(len(r["coop_vs_learner"]) == 2 and r["train_s"] >= 0 for r in rows)
    store = ShardStore(tiny_run / "data")
    assert store.names() == ["d0", "phase001-learner0", "phase001-learner1",
                             "phase002-learner0", "phase002-learner1"]
    shard = store.read("phase002-learner1")
    assert shard["action"].shape == (16, 20) and shard["opponent_id"].shape == (16, 10)
    assert "PPI phases" in (tiny_run / "report.md").read_text()


def test_eval_and_report_commands_read_ppi_runs(tiny_run, tmp_path):
    assert main(["ipd", "eval", str(tiny_run), "--episodes", str(EVAL)]) == 0
    assert main(["ipd", "report", str(tiny_run), "--out", str(tmp_path / "rep")]) == 0
    assert "ppi seed 2" in (tmp_path / "rep" / "report.md").read_text()


def test_resume_after_an_interrupted_phase_is_exact(tiny_run, tmp_path):
    cfg = PPITrainConfig(preset="tiny", seed=2, eval_episodes=EVAL, probe_every=0)
    out = tmp_path / "killed"
    train_run(cfg, out, stop_after_phases=1, progress=False, evaluate_at_end=False)
    # a kill during phase 2, after one of its shards was written: the checkpoint still says 1
    ShardStore(out / "data").write("phase002-learner0", {"action": np.zeros((3, 20), np.int8)})
    assert _params(out)[1]["chunks"] == 1
    train_run(cfg, out, resume=True, progress=False, evaluate_at_end=False)
    got, meta = _params(out)
    want, _ = _params(tiny_run)
    assert meta["chunks"] == 2
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ("phase002-learner0", "phase002-learner1"):
        np.testing.assert_array_equal(ShardStore(out / "data").read(name)["action"],
                                      ShardStore(tiny_run / "data").read(name)["action"])
    assert len(RunDir(out).read_metrics()) == 2


def test_stages_and_ablations_resolve():
    base = PPITrainConfig(preset="tiny")
    assert resolve(dataclasses.replace(base, stage="step1")).num_learners == 1
    assert resolve(dataclasses.replace(base, ablation="no-tabular")).tabular_fraction == 0.0
    assert resolve(dataclasses.replace(base, ablation="opponent-id")).use_opponent_id
    with pytest.raises(ConfigError, match="init_from"):
        resolve(dataclasses.replace(base, stage="step2"))


def test_step2_freezes_the_step1_agent(tiny_run, tmp_path):
    """A step-2 run against a frozen victim taken from a run folder: the victim's model is
    never retrained and only the fresh learner's games enter the dataset."""
    cfg = PPITrainConfig(preset="tiny", seed=0, stage="step2", init_from=(f"{tiny_run}:1",),
                         eval_episodes=EVAL, probe_every=0)
    algo = resolve(cfg)
    assert algo.frozen_learners == (1,) and algo.tabular_fraction == 0.0
    out = tmp_path / "step2"
    train_run(cfg, out, progress=False, evaluate_at_end=False)
    got, _ = _params(out)
    want, _ = _params(tiny_run)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a[1], b[1])
    assert not ShardStore(out / "data").exists("phase001-learner1")


def test_bad_config_fails_before_compiling_and_names_the_field(tmp_path, capsys):
    assert main(["ipd", "train", "--algo", "ppi", "--preset", "tiny", "--out",
                 str(tmp_path / "x"), "--set", "beta=-1"]) == 2
    assert "beta" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_step3_learners_continue_from_their_runs_models_and_datasets(tiny_run, tmp_path):
    cfg = PPITrainConfig(preset="tiny", stage="step3",
                         init_from=(f"{tiny_run}:0", f"{tiny_run}:1"), probe_every=0)
    out = tmp_path / "step3"
    state = train_run(cfg, out, stop_after_phases=0, progress=False, evaluate_at_end=False)
    want, _ = _params(tiny_run)
    for a, b in zip([np.asarray(x) for x in jax.tree.leaves(state.params)], want, strict=True):
        np.testing.assert_array_equal(a, b)
    src, dst = ShardStore(tiny_run / "data"), ShardStore(out / "data")
    for i in (0, 1):
        inherited = dst.read(f"base-learner{i}")["action"]
        own = src.read_many(["d0", "phase001-learner" + str(i), "phase002-learner" + str(i)])
        np.testing.assert_array_equal(inherited, own["action"])


def test_dataset_window_keeps_the_base_and_the_last_phases(tmp_path):
    store = ShardStore(tmp_path)
    store.write("d0", {"action": np.zeros((2, 3), np.int8)})
    phases = [f"phase{k:03d}-learner1" for k in (1, 2, 3, 4)]
    assert learner_shards(store, 1, 4) == ["d0", *phases]
    assert learner_shards(store, 1, 4, window=2) == ["d0", *phases[2:]]
    assert learner_shards(store, 1, 4, window=9) == ["d0", *phases]
    assert learner_shards(store, 1, 0, window=2) == ["d0"]
    store.write("base-learner1", {"action": np.zeros((2, 3), np.int8)})
    assert learner_shards(store, 1, 3, window=1) == ["base-learner1", phases[2]]


def test_a_windowed_run_trains_on_d0_and_the_last_phase(tmp_path):
    """Phase 3 of a run with dataset_window = 1 trains on D0 (64) + phase 2 (16), not 96."""
    cfg = PPITrainConfig(preset="tiny", seed=2, eval_episodes=EVAL, probe_every=0,
                         ppi=dataclasses.replace(resolve(PPITrainConfig(preset="tiny")),
                                                 num_phases=3, dataset_window=1))
    train_run(cfg, tmp_path / "w", progress=False, evaluate_at_end=False)
    rows = RunDir(tmp_path / "w").read_metrics()
    assert [r["dataset_size"] for r in rows] == [[64, 64], [80, 80], [80, 80]]


def test_prior_weights_keep_the_last_phases_or_the_base_while_there_are_none():
    names = ["d0", "phase001-learner0", "phase002-learner0", "phase003-learner0"]
    sizes = [4, 2, 2, 2]
    np.testing.assert_array_equal(prior_weights(names, sizes, 3, 0), np.ones(10))
    np.testing.assert_array_equal(prior_weights(names, sizes, 3, 1), [0] * 8 + [1] * 2)
    np.testing.assert_array_equal(prior_weights(names, sizes, 3, 2), [0] * 6 + [1] * 4)
    np.testing.assert_array_equal(prior_weights(names, sizes, 3, 5), [0] * 4 + [1] * 6)
    np.testing.assert_array_equal(prior_weights(["base-learner1"], [3], 0, 1), np.ones(3))


def test_a_prior_window_run_trains_the_action_head_on_the_last_phase_only(tmp_path):
    """Same data as the paper's cumulative run (dataset sizes equal), different prior: with
    prior_window = 1 phase 3's own-action loss is taken over phase 2's games alone."""
    base = resolve(PPITrainConfig(preset="tiny"))
    rows = {}
    for w in (0, 1):
        cfg = PPITrainConfig(preset="tiny", seed=2, eval_episodes=EVAL, probe_every=0,
                             ppi=dataclasses.replace(base, num_phases=3, prior_window=w))
        train_run(cfg, tmp_path / f"p{w}", progress=False, evaluate_at_end=False)
        rows[w] = RunDir(tmp_path / f"p{w}").read_metrics()
    assert [r["dataset_size"] for r in rows[1]] == [r["dataset_size"] for r in rows[0]]
    np.testing.assert_allclose(rows[1][0]["loss_action"], rows[0][0]["loss_action"],
                               rtol=1e-4)  # phase 1: both learn the prior from D0
    assert not np.allclose(rows[1][2]["loss_action"], rows[0][2]["loss_action"], rtol=1e-3)
