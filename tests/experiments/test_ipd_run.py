"""IPD runs end to end: the CLI, run folders, config errors, kill + resume."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from coplay.algos import a2c
from coplay.algos.a2c import A2CState
from coplay.cli import main
from coplay.config import ConfigError
from coplay.experiments.ipd import PRESETS, IPDTrainConfig, resolve, train_run
from coplay.experiments.ipd_runs import resolve_stage
from coplay.runs import RunDir, RunError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["ipd", "train", "--preset", "tiny", "--seed", "3", "--out", str(out),
                 "--probe-every", "1"]) == 0
    return out


def test_tiny_run_writes_the_whole_folder(tiny_run):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "eval.json",
                 "report.md", "training.png", "within_episode.png"):
        assert (tiny_run / name).is_file(), name
    ev = json.loads((tiny_run / "eval.json").read_text())
    for pairing in ("learner_vs_learner", "learner_vs_tabular"):
        assert set(ev[pairing]) >= {"reward", "cooperation"}
    for probe in ("TFT", "AllC", "AllD"):
        assert set(ev["probes"][probe]) >= {"reward", "cooperation"}
    memory1 = ev["learner_vs_learner"]["memory1_second_half"]  # per learner, with a ZD fit
    assert len(memory1) == 2 and all(m["zd_fit"]["chi"] >= 1.0 for m in memory1)
    assert "ZD fit" in (tiny_run / "report.md").read_text()
    assert ev["update"] == PRESETS["tiny"].num_updates
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [2, 4, 6]
    for r in rows:  # the periodic probe checks, one value per learner
        for name in ("TFT", "AllC", "AllD"):
            assert len(r[f"vs_{name}_reward"]) == 2
            assert all(0.0 <= c <= 1.0 for c in r[f"vs_{name}_coop_2nd_half"])
    # AllD earns 0 against AllD whatever the learner does; AllC pays the learner >= -1, <= 2
    assert -1.0 <= ev["probes"]["AllC"]["reward"] <= 2.0
    assert ev["probes"]["AllD"]["reward"] <= 0.0


def test_eval_and_report_commands(tiny_run, tmp_path):
    assert main(["ipd", "eval", str(tiny_run), "--episodes", "16"]) == 0
    assert json.loads((tiny_run / "eval.json").read_text())["episodes"] == 16
    assert main(["ipd", "report", str(tiny_run), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "seed 3" in text and (tmp_path / "rep" / "training.png").is_file()


def test_report_keeps_runs_that_share_a_seed_apart(tiny_run, tmp_path):
    """Two experiments' seed-3 runs in one report: both rows, each with its own figures."""
    import shutil

    copies = [tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "other"]
    for i, c in enumerate(copies):
        shutil.copytree(tiny_run, c)
        ev = json.loads((c / "eval.json").read_text())
        ev["learner_vs_learner"]["cooperation"] = 0.111 * (i + 1)
        (c / "eval.json").write_text(json.dumps(ev))
    assert main(["ipd", "report", *map(str, copies), "--out", str(tmp_path / "rep")]) == 0
    rows = [line for line in (tmp_path / "rep" / "report.md").read_text().splitlines()
            if line.startswith("| seed 3")]
    assert len(rows) == 3
    assert [r.split(" | ")[4] for r in rows] == ["0.111", "0.222", "0.333"]
    assert len({r.split(" | ")[0] for r in rows}) == 3  # three distinct labels
    assert "[other]" in rows[2] and str(copies[0]) in rows[0]


def test_report_counts_claims_over_mixed_pool_runs_and_checks_the_ablation(tiny_run, tmp_path):
    """A no-tabular run is not a failed seed: the mixed-pool claims count plain runs only, and
    each ablation gets its own check (cooperation <= 0.3)."""
    import shutil

    plain, notab, oid = tmp_path / "plain", tmp_path / "notab", tmp_path / "oid"
    for run, coop, ablation in ((plain, 0.9, "none"), (notab, 0.25, "no-tabular"),
                                (oid, 0.5, "opponent-id")):
        shutil.copytree(tiny_run, run)
        ev = json.loads((run / "eval.json").read_text())
        ev["learner_vs_learner"]["cooperation"] = coop
        (run / "eval.json").write_text(json.dumps(ev))
        cfg = json.loads((run / "config.json").read_text())
        cfg["ablation"] = ablation
        (run / "config.json").write_text(json.dumps(cfg))
    assert main(["ipd", "report", str(plain), str(notab), str(oid),
                 "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    claim = next(line for line in text.splitlines() if line.startswith("| learner vs learner coop"))
    assert claim.endswith("| 1/1 |") and "0.250" not in claim
    assert "mean 0.900, min 0.900, max 0.900 (n = 1)" in text
    assert ("`no-tabular` (no-tabular seed 3): learner vs learner cooperation <= 0.3: "
            "0.250 ✓") in text
    assert ("`opponent-id` (opponent-id seed 3): learner vs learner cooperation <= 0.3: "
            "0.500 ✗") in text


def test_fresh_run_refuses_to_overwrite(tiny_run, capsys):
    assert main(["ipd", "train", "--preset", "tiny", "--out", str(tiny_run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_with_another_config_is_refused(tiny_run, capsys):
    code = main(["ipd", "train", "--preset", "tiny", "--seed", "4", "--out", str(tiny_run),
                 "--resume"])
    assert code == 2
    assert "seed" in capsys.readouterr().err


@pytest.mark.parametrize("args, field", [
    (["--set", "learning_rate=-1"], "learning_rate"),
    (["--set", "hidden_sise=3"], "hidden_sise"),
    (["--set", "tabular_fraction=abc"], "tabular_fraction"),
    (["--set", "num_minibatches=5"], "num_minibatches"),
    (["--eval-episodes", "0"], "eval_episodes"),
])
def test_bad_config_fails_before_compiling_and_names_the_field(args, field, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["ipd", "train", "--preset", "tiny", "--out", str(out), *args]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_unknown_preset_and_ablation_are_refused():
    with pytest.raises(ConfigError, match="preset"):
        resolve(IPDTrainConfig(preset="huge"))
    with pytest.raises(ConfigError, match="ablation"):
        resolve(IPDTrainConfig(preset="tiny", ablation="no-learning"))


def test_ablations_change_the_resolved_config():
    assert resolve(IPDTrainConfig(preset="tiny", ablation="no-tabular")).tabular_fraction == 0
    assert resolve(IPDTrainConfig(preset="tiny", ablation="opponent-id")).use_opponent_id


def test_stages_of_the_population_default_train_as_its_pair_would():
    """`default` trains 8 learners x 128 episodes; its mechanism stages keep the batch they
    were measured with (512 per learner), a two-learner config's stages keep their own."""
    default = PRESETS["default"]
    assert (default.num_learners, default.episodes_per_update) == (8, 128)
    assert resolve(IPDTrainConfig()).num_learners == 8
    want = {"step1": (1, 1.0), "step2": (2, 0.0), "step3": (2, 0.0)}
    for stage, (learners, tabular) in want.items():
        for base, episodes in ((default, 512), (PRESETS["paper"], 4096)):
            algo = resolve_stage(IPDTrainConfig(stage=stage), base)
            assert (algo.num_learners, algo.episodes_per_update, algo.tabular_fraction) == (
                learners, episodes, tabular), (stage, base.num_learners)


def test_lookahead_run_killed_between_syncs_resumes_exactly(tmp_path):
    """Lookahead every 4 updates, chunks of 2: the kill falls between two syncs, so the
    checkpoint must carry the slow weights apart from the fast ones."""
    look = dataclasses.replace(PRESETS["tiny"], num_updates=8, lookahead_sync_period=4)
    cfg = IPDTrainConfig(preset="tiny", seed=5, a2c=look)
    straight = train_run(cfg, tmp_path / "straight", progress=False, evaluate_at_end=False)
    killed = train_run(cfg, tmp_path / "killed", stop_after_chunks=3, progress=False,
                       evaluate_at_end=False)
    assert any(not np.array_equal(f, s) for f, s in zip(
        jax.tree.leaves(killed.params), jax.tree.leaves(killed.slow_params), strict=True))
    resumed = train_run(cfg, tmp_path / "killed", resume=True, progress=False,
                        evaluate_at_end=False)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    for f, s in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(resumed.slow_params),
                    strict=True):
        np.testing.assert_allclose(f, s, rtol=1e-6, atol=1e-9)  # the run ends on a sync


def test_killed_and_resumed_run_ends_with_the_same_parameters(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=11)
    straight = train_run(cfg, tmp_path / "straight", progress=False, evaluate_at_end=False)
    # "kill" after the first chunk, leaving a stray metrics line past the checkpoint
    train_run(cfg, tmp_path / "killed", stop_after_chunks=1, progress=False,
              evaluate_at_end=False)
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as f:
        f.write('{"update": 999, "partial": true}\n')
    resumed = train_run(cfg, tmp_path / "killed", resume=True, progress=False,
                        evaluate_at_end=False)
    assert int(resumed.update) == int(straight.update) == PRESETS["tiny"].num_updates
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    updates = [r["update"] for r in RunDir(tmp_path / "killed").read_metrics()]
    assert updates == [2, 4, 6]


def test_corrupt_checkpoint_gives_a_clear_error_and_is_left_in_place(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=1)
    train_run(cfg, tmp_path / "r", stop_after_chunks=1, progress=False, evaluate_at_end=False)
    ckpt = tmp_path / "r" / "checkpoint.msgpack"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="corrupt"):
        train_run(cfg, tmp_path / "r", resume=True, progress=False, evaluate_at_end=False)
    assert ckpt.read_bytes() == b"not a checkpoint"


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    assert main(["ipd", "eval", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_state_round_trips_through_a_checkpoint(tmp_path):
    cfg = IPDTrainConfig(preset="tiny")
    state = train_run(cfg, tmp_path / "r", stop_after_chunks=1, progress=False,
                      evaluate_at_end=False)
    assert isinstance(state, A2CState)
    init, _ = a2c.make_train(dataclasses.replace(PRESETS["tiny"]))
    loaded, meta = RunDir(tmp_path / "r").load_checkpoint(init(jax.random.PRNGKey(5)))
    assert meta["chunks"] == 1 and int(loaded.update) == 2  # 2 updates per chunk
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)



def test_probe_checks_do_not_change_training(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=5)
    with_probes = train_run(dataclasses.replace(cfg, probe_every=1), tmp_path / "a",
                            progress=False, evaluate_at_end=False)
    without = train_run(dataclasses.replace(cfg, probe_every=0), tmp_path / "b",
                        progress=False, evaluate_at_end=False)
    for x, y in zip(jax.tree.leaves(with_probes.params), jax.tree.leaves(without.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    rows = RunDir(tmp_path / "b").read_metrics()
    assert not any("vs_TFT_reward" in r for r in rows)
