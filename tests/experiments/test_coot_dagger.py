"""`coplay coot dagger` on the tiny stack: rounds of play with the training pairs, best-response
labels, aggregated datasets that never touch the base, fine-tuning from the previous round,
exact resume; BC never learns from relabelled episodes; bad input named."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.cli import main
from coplay.config import ConfigError
from coplay.data.shards import ShardStore
from coplay.experiments.coot.dagger import DaggerConfig, run_dagger
from coplay.experiments.coot.data import load_dataset, pair_from_json
from coplay.experiments.coot.presets import COOT_PRESETS
from coplay.experiments.coot.train import (
    CootRunConfig,
    _bc_episodes,
    train_coot,
)
from coplay.experiments.refs import resolve
from coplay.experiments.run_agents import dagger_result
from coplay.runs import RunError

TINY = DaggerConfig(rounds=2, repeats=1, episodes=2, epochs_per_round=1, label="argmax",
                    seed=0)


@pytest.fixture(scope="module")
def dagger(coot_stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("dagger") / "run"
    assert main(["coot", "dagger", "--preset", "tiny", "--dataset", str(coot_stack / "data"),
                 "--dagger.start", str(coot_stack / "coot"), "--dagger.label", "argmax",
                 "--dagger.seed", "0", "--out", str(out)]) == 0
    return out


def test_rounds_aggregate_relabelled_play_and_leave_the_base_alone(coot_stack, dagger):
    base = load_dataset(coot_stack / "data")
    assert base.relabelled is not None and not base.relabelled.any()
    assert base.episodes.label is None
    r0, r1 = load_dataset(dagger / "data-r0"), load_dataset(dagger / "data-r1")
    n = base.episodes.obs.shape[1]
    # per group (pair, seat): the base episodes, then 1 game x 2 episodes per round
    assert r0.episodes.obs.shape[1] == n + 2 and r1.episodes.obs.shape[1] == n + 4
    np.testing.assert_array_equal(r1.relabelled, np.tile([False] * n + [True] * 4, (8, 1)))
    np.testing.assert_array_equal(r1.episodes.obs[:, :n], base.episodes.obs)
    np.testing.assert_array_equal(r1.episodes.obs[:, : n + 2], r0.episodes.obs)
    # base episodes keep their own actions as labels
    np.testing.assert_array_equal(r1.episodes.label[:, :n], base.episodes.action)
    man = json.loads((coot_stack / "data" / "manifest.json").read_text())
    assert all("extra_shards" not in p for p in man["pairs"])
    man1 = json.loads((dagger / "data-r1" / "manifest.json").read_text())
    assert [p["extra_shards"] for p in man1["pairs"]] == [
        [f"r0-pair{i:03d}", f"r1-pair{i:03d}"] for i in range(4)]


def test_labels_are_the_best_responses_argmax_at_the_cootss_states(coot_stack, dagger):
    man = json.loads((dagger / "data-r1" / "manifest.json").read_text())
    store = ShardStore(dagger / "data-r1")
    for i in (0, 3):  # an HSP pair and a MEP member (its own best response)
        s = store.read(f"r1-pair{i:03d}")
        br = pair_from_json(man["pairs"][i]).br.load()
        logits = jax.vmap(jax.vmap(lambda o, br=br: br.policy(jax.random.PRNGKey(0), (), o)[0]))(
            jnp.asarray(s["obs"]))
        np.testing.assert_array_equal(s["label"], np.asarray(jnp.argmax(logits, -1)))
        np.testing.assert_array_equal(s["ego_cook"], [0, 0, 1, 1])
        np.testing.assert_allclose(s["ret"], s["reward"].sum(-1))
        assert (s["action"] != s["label"]).any()  # the CooT is not its best response


def test_each_round_fine_tunes_the_previous_model_and_reports(coot_stack, dagger):
    for r, start in ((0, coot_stack / "coot"), (1, dagger / "round-0")):
        cfg = json.loads((dagger / f"round-{r}" / "config.json").read_text())
        assert cfg["init_from"] == str(start) and cfg["dataset"] == str(dagger / f"data-r{r}")
        assert cfg["coot"]["epochs"] == 1
    history = json.loads((dagger / "history.json").read_text())
    assert [h["round"] for h in history] == [0, 1]
    for h in history:
        assert 0.0 <= h["agreement"] <= 1.0 and len(h["return_by_episode"]) == 2
        assert h["epochs"] == 1 and np.isfinite(h["val_loss"])
    report = (dagger / "report.md").read_text()
    assert "not in the paper" in report and str(dagger / "round-1") in report
    assert (dagger / "dagger.png").stat().st_size > 0
    agent = resolve(str(dagger / "round-1"))
    assert agent.spec.episode_len == 20
    # the folder names its last round as an agent for coplay coot eval
    assert dagger_result(dagger) == dagger / "round-1"
    via_ref = jax.tree.leaves(resolve(str(dagger), name="d").params)
    assert all(np.array_equal(a, b) for a, b in zip(via_ref, jax.tree.leaves(agent.params),
                                                    strict=True))


def _dagger_cli(coot_stack, out, *extra) -> int:
    return main(["coot", "dagger", "--preset", "tiny", "--dataset", str(coot_stack / "data"),
                 "--dagger.start", str(coot_stack / "coot"), "--dagger.label", "argmax",
                 "--dagger.seed", "0", *extra, "--out", str(out)])


def test_a_killed_run_resumes_to_the_same_model(coot_stack, dagger, tmp_path):
    part = tmp_path / "part"
    cfg = dataclasses.replace(TINY, start=str(coot_stack / "coot"))
    run_dagger(cfg, coot_stack / "data", part, progress=False, stop_after_rounds=1)
    assert (part / "round-0" / "model.msgpack").is_file()
    assert not (part / "round-1").exists()
    assert _dagger_cli(coot_stack, part) == 0
    for r in (0, 1):
        assert ((part / f"round-{r}" / "model.msgpack").read_bytes()
                == (dagger / f"round-{r}" / "model.msgpack").read_bytes())
    # killed in round 1 after three pairs' shards: the same shard and model again
    before = ShardStore(part / "data-r1").read("r1-pair003")
    (part / "data-r1" / "r1-pair003.npz").unlink()
    shutil.rmtree(part / "round-1")
    assert _dagger_cli(coot_stack, part) == 0
    after = ShardStore(part / "data-r1").read("r1-pair003")
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    assert ((part / "round-1" / "model.msgpack").read_bytes()
            == (dagger / "round-1" / "model.msgpack").read_bytes())
    # another config into the same folder is refused
    assert _dagger_cli(coot_stack, part, "--dagger.rounds", "3") == 1
    # a foreign folder where a round's dataset goes is named, not overwritten
    other = tmp_path / "other"
    run_dagger(cfg, coot_stack / "data", other, progress=False, stop_after_rounds=1)
    (other / "data-r1").mkdir()
    (other / "data-r1" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="round 1 of 2 has not finished"):
        dagger_result(other)
    with pytest.raises(RunError, match="data-r1 exists without"):
        run_dagger(cfg, coot_stack / "data", other, progress=False)
    assert (other / "data-r1" / "notes.txt").read_text() == "mine"


def test_bc_never_learns_from_relabelled_episodes(dagger):
    ds = load_dataset(dagger / "data-r1")
    groups = np.arange(8)
    eps = _bc_episodes(ds, groups)
    n = ds.episodes.obs.shape[1] - 4
    assert eps.action.shape[0] == 8 * n
    np.testing.assert_array_equal(eps.action, ds.episodes.action[:, :n].reshape(8 * n, -1))


def test_bad_input_is_named(coot_stack, dagger, tmp_path):
    # a start of another GPT shape cannot initialise the run
    wide = dataclasses.replace(COOT_PRESETS["tiny"], gpt=dataclasses.replace(
        COOT_PRESETS["tiny"].gpt, width=64))
    cfg = CootRunConfig(str(coot_stack / "data"), wide, "tiny", init_from=str(coot_stack / "coot"))
    with pytest.raises(ConfigError, match="does not have the shape"):
        train_coot(cfg, tmp_path / "wide", progress=False)
    cfg = CootRunConfig(str(coot_stack / "data"), COOT_PRESETS["tiny"], "tiny",
                        init_from=str(coot_stack / "bc"))
    with pytest.raises(RunError, match="bc': not a Coordination Transformer"):
        train_coot(cfg, tmp_path / "bc", progress=False)
    with pytest.raises(ConfigError, match="dagger.rounds"):
        run_dagger(dataclasses.replace(TINY, rounds=0), coot_stack / "data", tmp_path / "x")
    assert main(["coot", "dagger", "--preset", "tiny", "--out", str(tmp_path / "y")]) == 1


def test_relabel_adds_another_players_games_with_best_response_labels(coot_stack, tmp_path):
    data, out = coot_stack / "data", tmp_path / "bcplay"
    args = ["coot", "relabel", "--dataset", str(data), "--relabel.player",
            str(coot_stack / "bc"), "--relabel.repeats", "1", "--relabel.episodes", "2",
            "--relabel.label", "argmax"]
    assert main([*args, "--out", str(out)]) == 0
    base, ds = load_dataset(data), load_dataset(out)
    n = base.episodes.obs.shape[1]
    assert ds.episodes.obs.shape[1] == n + 2  # 1 game x 2 episodes per seat
    np.testing.assert_array_equal(ds.episodes.obs[:, :n], base.episodes.obs)
    np.testing.assert_array_equal(ds.relabelled, np.tile([False] * n + [True] * 2, (8, 1)))
    man = json.loads((out / "manifest.json").read_text())
    assert [p["extra_shards"] for p in man["pairs"]] == [[f"play-pair{i:03d}"] for i in range(4)]
    assert all("extra_shards" not in p
               for p in json.loads((data / "manifest.json").read_text())["pairs"])
    bc_agent = resolve(str(coot_stack / "bc"))
    store = ShardStore(out)
    for i in (0, 3):
        s = store.read(f"play-pair{i:03d}")
        br = pair_from_json(man["pairs"][i]).br.load()
        logits = jax.vmap(jax.vmap(lambda o, br=br: br.policy(jax.random.PRNGKey(0), (), o)[0]))(
            jnp.asarray(s["obs"]))
        np.testing.assert_array_equal(s["label"], np.asarray(jnp.argmax(logits, -1)))
        # the actions are the player's: BC's samples have BC's support
        bc_logits = jax.vmap(jax.vmap(
            lambda o: bc_agent.policy(jax.random.PRNGKey(0), (), o)[0]))(jnp.asarray(s["obs"]))
        chosen = np.take_along_axis(np.asarray(bc_logits), s["action"][..., None], -1)
        assert np.isfinite(chosen).all()
    summary = json.loads((out / "relabel-play.json").read_text())
    assert summary["relabel"]["player"] == str(coot_stack / "bc") and len(summary["pairs"]) == 4
    # rerunning the same --out adds nothing; a second player needs its own tag
    assert main([*args, "--out", str(out)]) == 0
    assert load_dataset(out).episodes.obs.shape[1] == n + 2
    assert main([*args, "--dataset", str(out), "--out", str(tmp_path / "two"),
                 "--relabel.tag", "bc2"]) == 0
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert two["pairs"][0]["extra_shards"] == ["play-pair000", "bc2-pair000"]
    assert main([*args, "--out", str(tmp_path / "bad"), "--relabel.tag", "r0"]) == 1
    assert not (tmp_path / "bad").exists()
