"""A tiny population end to end through the CLI: folder, manifest, selection, resume."""

import json
import shutil

import jax
import numpy as np
import pytest

from coplay.cli import main
from coplay.experiments.populations.cli import build_config, parse_train_args
from coplay.experiments.populations.train import (
    _run_config,
    load_run,
    member_weights,
    preset_config,
    resolve,
    train_population,
)
from coplay.populations.members import load_params, member_policies, snapshot_path
from coplay.populations.selection import greedy_select
from coplay.runs import RunDir


@pytest.fixture(scope="module")
def tiny_pop(tmp_path_factory):
    out = tmp_path_factory.mktemp("pop") / "tiny"
    assert main(["populations", "train", "--preset", "tiny", "--seed", "3",
                 "--out", str(out)]) == 0
    return out


def test_tiny_population_writes_the_whole_folder(tiny_pop):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "manifest.json",
                 "crossplay.json", "crossplay.png", "pairs.gif", "report.md",
                 "members/m00.msgpack", "members/m02.msgpack"):
        assert (tiny_pop / name).is_file(), name
    man = json.loads((tiny_pop / "manifest.json").read_text())
    assert man["num_members"] == 3 and len(man["members"]) == 3
    e = man["members"][1]
    for k in ("candidate", "weights", "checkpoint", "return", "events_biased", "events_br",
              "features", "snapshots", "mid_skill"):
        assert k in e, k
    assert len(e["features"]) == 2 * len(man["event_names"])
    # the CooT release's features: both seats in each cook assignment, concatenated
    assert len(e["features_by_order"]) == 4 * len(man["event_names"])
    by_order = np.array([m["features_by_order"] for m in man["members"]])
    assert by_order.min() >= 0 and by_order.max() < 1
    assert [s["update"] for s in e["snapshots"]] == [4, 8]  # every 2 chunks of 2 updates
    rows = RunDir(tiny_pop).read_metrics()
    assert len(rows) == 4 and len(rows[-1]["episode_return"]) == 3
    xp = json.loads((tiny_pop / "crossplay.json").read_text())["sparse_return"]
    assert np.shape(xp) == (3, 3)
    biased, br = member_policies(tiny_pop, 1, "final")
    _, br_mid = member_policies(tiny_pop, 1, "mid")
    assert jax.tree.structure(biased) == jax.tree.structure(br_mid)


def test_select_and_show(tiny_pop, capsys):
    assert main(["populations", "select", "--pop", str(tiny_pop), "--eval-size", "1",
                 "--train-size", "2", "--eval-min-return", "-1",
                 "--train-min-return", "-1"]) == 0
    sel = json.loads((tiny_pop / "selection.json").read_text())
    assert len(sel["eval"]) == 1 and len(sel["train"]) == 2
    assert not set(sel["eval"]) & set(sel["train"])
    assert main(["populations", "show", "--pop", str(tiny_pop)]) == 0
    assert "eval" in capsys.readouterr().out


def test_the_release_selection_uses_both_cook_orders_and_a_seeded_first_pick(tiny_pop,
                                                                             tmp_path):
    pop = tmp_path / "pop"  # a copy: the module's folder keeps its own selection
    shutil.copytree(tiny_pop, pop)
    args = ["populations", "select", "--pop", str(pop), "--eval-size", "0", "--train-size",
            "2", "--train-min-return", "-1", "--features", "by-order", "--first-pick",
            "seeded", "--seed", "0"]
    assert main(args) == 0
    sel = json.loads((pop / "selection.json").read_text())
    man = json.loads((pop / "manifest.json").read_text())
    f = np.array([m["features_by_order"] for m in man["members"]])
    assert sel["eval"] == [] and sel["train"] == greedy_select(f, 2, first_seed=0)
    assert sel["args"]["features"] == "by-order" and sel["args"]["first_pick"] == "seeded"
    for m in man["members"]:  # a manifest from before the option: a clear error
        del m["features_by_order"]
    (pop / "manifest.json").write_text(json.dumps(man))
    assert main(args) == 2


def test_a_finished_folder_reloads_to_the_config_it_was_started_with(tiny_pop):
    cfg, algo, raw = load_run(tiny_pop)
    assert cfg.ppo is None and cfg.preset == "tiny" and cfg.seed == 3
    assert RunDir(tiny_pop).start(_run_config(cfg, resolve(cfg), member_weights(cfg)[0]),
                                  resume=True)  # what `--resume` checks: no difference


def test_fresh_run_refuses_to_overwrite(tiny_pop, capsys):
    assert main(["populations", "train", "--preset", "tiny", "--out", str(tiny_pop)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_ppo_fields_are_flags_with_the_kinds_defaults(capsys):
    args, default = parse_train_args(["--preset", "tiny", "--kind", "mep"])
    assert default.population_entropy_coef == 0.01 and default.share_policy
    assert build_config(args, default).ppo is None  # untouched: the run records its preset
    args, default = parse_train_args(["--preset", "tiny", "--kind", "mep",
                                      "--ppo.total-steps", "1024"])
    cfg = build_config(args, default)
    assert cfg.ppo.total_steps == 1024 and cfg.ppo.population_entropy_coef == 0.01
    args, default = parse_train_args(["--preset", "tiny", "--set", "ppo.total_steps=2048"])
    assert build_config(args, default).ppo.total_steps == 2048  # --set stays an alias
    with pytest.raises(SystemExit):
        main(["populations", "train", "--preset", "tiny", "--kind", "mep", "--help"])
    out = capsys.readouterr().out
    assert "--ppo.population-entropy-coef" in out and "(default: 0.01)" in out


@pytest.mark.parametrize("args, field", [
    (["--ppo.learning-rate", "-1"], "learning_rate"),
    (["--set", "ppo.learning_rate=-1"], "learning_rate"),
    (["--set", "ppo.shaping_factor=1.0"], "shaping_factor"),
    (["--set", "ppo.share_policy=true"], "share_policy"),
    (["--set", "eval_envs=3"], "eval_envs"),
    (["--set", "snapshot_every=0"], "snapshot_every"),
    (["--num-members", "60"], "num_members"),
    (["--candidates", "1", "99"], "candidates"),
    (["--layout", "cramped_room"], "layout"),
    (["--preset", "huge"], "preset"),
])
def test_bad_config_fails_before_compiling_and_names_the_field(args, field, tmp_path, capsys):
    assert main(["populations", "train", "--preset", "tiny", "--out", str(tmp_path / "x"),
                 *args]) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_killed_and_resumed_population_ends_with_the_same_parameters(tiny_pop, tmp_path):
    cfg = preset_config("tiny", seed=3)
    out = tmp_path / "killed"
    train_population(cfg, out, stop_after_chunks=3, progress=False, finish=False)
    assert json.loads((out / "checkpoint.json").read_text())["chunks"] == 2  # chunk 3 lost
    state = train_population(cfg, out, resume=True, progress=False, finish=False)
    want = load_params(snapshot_path(tiny_pop, 8))
    for x, y in zip(jax.tree.leaves(want), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    assert len(RunDir(out).read_metrics()) == 4
