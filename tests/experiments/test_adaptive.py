"""MEP stage 2: the priority formula, partner sampling inside the chunk, frozen partners, a
tiny run from a tiny stage-1 population, resumption, CLI errors."""

import dataclasses
import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.cli import main
from coplay.experiments import adaptive
from coplay.experiments.adaptive import preset_config
from coplay.experiments.populations import preset_config as population_preset
from coplay.experiments.populations import train_population
from coplay.populations import mep
from coplay.populations.members import load_params, network_of
from coplay.populations.mep import (
    dense_rank,
    draw_partners,
    partner_probs,
    update_running,
)
from coplay.runs import RunDir


# --- the priority formula ---------------------------------------------------------------------
def test_partner_probs_on_hand_made_returns():
    # returns 10, 0, 5 -> 1/return ranks 1, 3, 2 -> weights 1, 27, 8 (alpha 3) / 36
    np.testing.assert_allclose(partner_probs(np.array([10.0, 0.0, 5.0]), 3.0),
                               np.array([1, 27, 8]) / 36)
    # ties share a dense rank: 10, 10, 5, 0 -> ranks 1, 1, 2, 3 -> 1, 1, 4, 9 (alpha 2) / 15
    np.testing.assert_allclose(partner_probs(np.array([10.0, 10.0, 5.0, 0.0]), 2.0),
                               np.array([1, 1, 4, 9]) / 15)
    # alpha 0: uniform; alpha 1: proportional to the rank
    np.testing.assert_allclose(partner_probs(np.array([3.0, 1.0, 2.0]), 0.0), np.full(3, 1 / 3))
    np.testing.assert_allclose(partner_probs(np.array([3.0, 1.0, 2.0]), 1.0),
                               np.array([1, 3, 2]) / 6)
    # no return yet: the mean of the others (here 10 + 0 / 2 = 5 -> ties partner 2 at rank 2)
    np.testing.assert_allclose(partner_probs(np.array([10.0, np.nan, 0.0, 5.0]), 1.0),
                               np.array([1, 2, 3, 2]) / 8)
    np.testing.assert_allclose(partner_probs(np.full(4, np.nan), 3.0), np.full(4, 0.25))
    # the reference code's rank of 1 / (R + 1e-6) orders non-negative returns the same way
    r = np.array([0.0, 40.0, 40.0, 3.5, 120.0, 0.0])
    ref = dense_rank(1.0 / (r + 1e-6))
    np.testing.assert_array_equal(dense_rank(-r), ref)


def test_running_returns():
    running = np.array([np.nan, 10.0, 20.0])
    out = update_running(running, np.array([30.0, 0.0, 40.0]), np.array([3, 0, 1]), 0.9)
    np.testing.assert_allclose(out, [10.0, 10.0, 0.9 * 20 + 0.1 * 40])


# --- inside the jitted chunk ------------------------------------------------------------------
def test_draw_partners_follows_the_probabilities():
    probs = jnp.array([0.1, 0.2, 0.7])
    n = 20_000
    counts = np.bincount(np.asarray(draw_partners(jax.random.PRNGKey(0), probs, n)), minlength=3)
    sd = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) < 4 * sd), counts


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A tiny finished MEP stage-1 population (2 members) on cramped_room."""
    out = tmp_path_factory.mktemp("mep1") / "pop"
    cfg = population_preset("tiny", kind="mep", layout="cramped_room", num_members=2,
                            eval_envs=2, crossplay_envs=2, gif_steps=2)
    train_population(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def stage2(stage1, tmp_path_factory):
    out = tmp_path_factory.mktemp("mep2") / "run"
    assert main(["populations", "train", "--kind", "mep-adaptive", "--pop", str(stage1),
                 "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def one_chunk(stage1):
    """One chunk of a learner with the 2 partners drawn with fixed probabilities 0.2 / 0.8:
    64 envs, 2-step episodes, so that many end. (files' hashes, partner params before,
    learner before, state after, partner params after)"""
    files = sorted((stage1 / "members").glob("m*.msgpack"))
    hashes = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    _, pop = adaptive.resolve(preset_config("tiny", population=str(stage1)))
    algo = dataclasses.replace(adaptive.PPO_PRESETS_ADAPTIVE["tiny"], num_envs=64, num_steps=8,
                               horizon=2, updates_per_chunk=2, total_steps=64 * 8 * 2)
    trainer, _, params = adaptive.make_trainer(algo, pop)
    partners0 = jax.tree.map(np.array, params)
    state = adaptive.init_state(trainer, 0, 2)
    state = state.replace(runner=state.runner.replace(probs=jnp.array([[0.2, 0.8]])))
    learner0 = jax.tree.map(np.array, state.params)
    state, _ = trainer.train_chunk(state)
    return files, hashes, partners0, learner0, state, params


def test_partners_are_sampled_with_the_given_probabilities_in_the_rollout(one_chunk):
    state = one_chunk[4]
    eps = np.asarray(state.runner.partner_episodes[0])
    # 64 envs x 16 steps / 2 = 512 episodes; the first partner of each env was drawn
    # uniformly at init, the 448 after it with probabilities 0.2 / 0.8
    assert eps.sum() == 512
    n_drawn = 512 - 64
    expect = 64 * 0.5 + n_drawn * np.array([0.2, 0.8])
    sd = np.sqrt(n_drawn * 0.2 * 0.8) + np.sqrt(64 * 0.25)
    assert np.all(np.abs(eps - expect) < 4 * sd), (eps, expect)  # uniform: 256 each, 5.7 sd


def test_partner_logits_come_from_the_gathered_frozen_partner(stage1):
    cfg = preset_config("tiny", population=str(stage1))
    algo, pop = adaptive.resolve(cfg)
    trainer, env, params = adaptive.make_trainer(algo, pop)
    net = network_of(pop.algo, env)
    partner = mep.frozen_partner(net, params, False)
    state = adaptive.init_state(trainer, 0, 2)
    runner = jax.tree.map(lambda x: x[0], state.runner)
    runner = runner.replace(partner=jnp.array([1, 0, 1, 1], jnp.int32))
    obs = runner.obs  # (N, 2, H, W, C), cook order = seat order without swaps
    got = partner.logits(params, runner, obs)
    for n, k in enumerate([1, 0, 1, 1]):
        want, _ = net.apply(jax.tree.map(lambda x, k=k: x[k], params), obs[n, 1][None],
                            obs[n, 1][None])
        np.testing.assert_allclose(np.asarray(got[n]), np.asarray(want[0]), rtol=1e-5,
                                   atol=1e-6)


def test_frozen_partners_stay_frozen(one_chunk):
    files, hashes, partners0, learner0, state, params = one_chunk
    for a, b in zip(jax.tree.leaves(partners0), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    # the partners are not train state: only the learner's (M=1, G=1) parameters are
    assert jax.tree.leaves(state.params)[0].shape[:2] == (1, 1)
    moved = [not np.allclose(a, np.asarray(b)) for a, b in
             zip(jax.tree.leaves(learner0), jax.tree.leaves(state.params), strict=True)]
    assert any(moved)  # the learner did learn
    assert hashes == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]


def test_refresh_priorities_folds_a_chunk_into_the_probabilities(one_chunk):
    state = one_chunk[4]
    runner = state.runner.replace(partner_episodes=jnp.array([[2.0, 4.0]]),
                                  partner_return_sum=jnp.array([[40.0, 0.0]]),
                                  running_return=jnp.array([[jnp.nan, 10.0]]))
    new, row = mep.refresh_priorities(state.replace(runner=runner), alpha=2.0, return_decay=0.5)
    # partner 0: first episodes -> 40 / 2 = 20; partner 1: 0.5 x 10 + 0.5 x 0 = 5
    # -> ranks of 1/R: 1, 2 -> p = 1, 4 (alpha 2) / 5; the chunk's sums start again at 0
    np.testing.assert_allclose(np.asarray(new.runner.running_return[0]), [20.0, 5.0])
    np.testing.assert_allclose(np.asarray(new.runner.probs[0]), [0.2, 0.8], rtol=1e-6)
    assert not np.asarray(new.runner.partner_episodes).any()
    assert not np.asarray(new.runner.partner_return_sum).any()
    assert row["partner_return"] == [20.0, 0.0] and row["probs"] == [0.2, 0.8]


# --- a tiny run end to end --------------------------------------------------------------------
def test_tiny_stage2_run_writes_the_whole_folder(stage2, stage1):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "agent.msgpack",
                 "eval.json", "manifest.json", "training.png", "report.md"):
        assert (stage2 / name).is_file(), name
    rows = RunDir(stage2).read_metrics()
    assert len(rows) == 4  # 512 steps / (4 envs x 16 steps x 2 updates)
    for r in rows:
        assert len(r["probs"]) == 2 and abs(sum(r["probs"]) - 1) < 1e-4
        assert sum(r["partner_episodes"]) == 4 * 2  # one 16-step episode per env and update
        want = partner_probs(np.array([np.nan if x is None else x
                                       for x in r["running_return"]]), mep.ALPHA_MEP)
        np.testing.assert_allclose(r["probs"], want, rtol=1e-4)
    ev = json.loads((stage2 / "eval.json").read_text())
    assert [p["member"] for p in ev["partners"]] == [0, 1]
    man = json.loads((stage2 / "manifest.json").read_text())
    assert man["kind"] == "mep-adaptive" and man["population"] == str(stage1)
    agent = load_params(stage2 / "agent.msgpack")
    assert jax.tree.leaves(agent)[0].shape[0] == 1


def test_killed_and_resumed_stage2_equals_an_uninterrupted_run(stage2, tmp_path, monkeypatch):
    cfg = adaptive.load_config(stage2)
    # the resumed run reuses the killed one's compiled trainer (a new process would build the
    # same program again; this keeps the test to one compilation)
    built, make = {}, adaptive.make_trainer

    def make_once(algo, pop):
        if algo not in built:
            built[algo] = make(algo, pop)
        return built[algo]

    monkeypatch.setattr(adaptive, "make_trainer", make_once)
    out = tmp_path / "killed"
    adaptive.train_adaptive(cfg, out, stop_after_chunks=3, progress=False)
    assert json.loads((out / "checkpoint.json").read_text())["chunks"] == 2  # chunk 3 lost
    state = adaptive.train_adaptive(cfg, out, resume=True, progress=False, finish=False)
    want = load_params(stage2 / "checkpoint.msgpack")
    np.testing.assert_allclose(np.asarray(state.runner.probs), want["runner"]["probs"])
    for x, y in zip(jax.tree.leaves(want["params"]), jax.tree.leaves(state.params),
                    strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    untimed = lambda rows: [{k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
                            for r in rows]
    assert untimed(RunDir(out).read_metrics()) == untimed(RunDir(stage2).read_metrics())


def test_cli_resume_of_a_finished_stage2_run(stage2, capsys):
    # the stored config reloads unchanged (RunDir.start compares it) and nothing is left to
    # train, so only the evaluation runs again
    rows = RunDir(stage2).read_metrics()
    assert main(["populations", "train", "--out", str(stage2), "--resume"]) == 0
    assert "worst partner" in capsys.readouterr().out
    assert RunDir(stage2).read_metrics() == rows


# --- errors -----------------------------------------------------------------------------------
def test_cli_errors_name_the_problem(stage1, tmp_path, capsys):
    base = ["populations", "train", "--kind", "mep-adaptive", "--preset", "tiny",
            "--out", str(tmp_path / "x")]
    hsp = tmp_path / "hsp"
    hsp.mkdir()
    (hsp / "config.json").write_text(json.dumps({"experiment": "hsp-population"}))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((stage1 / "config.json").read_text())
    cases = [
        ([], "--pop"),
        (["--pop", str(tmp_path / "nope")], "no such folder"),
        (["--pop", str(tmp_path)], "no readable config.json"),
        (["--pop", str(hsp)], "not a MEP stage-1 population"),
        (["--pop", str(unfinished)], "has not finished"),
        (["--pop", str(stage1), "--set", "alpha=-1"], "alpha"),
        (["--pop", str(stage1), "--set", "partners=0,5"], "partners"),
        (["--pop", str(stage1), "--set", "ppo.hidden_sizes=32"], "hidden_sizes"),
        (["--pop", str(stage1), "--set", "ppo.population_entropy_coef=0.01"],
         "population_entropy_coef"),
        (["--pop", str(stage1), "--num-members", "3"], "--num-members"),
    ]
    for args, text in cases:
        assert main(base + args) == 2, args
        assert text in capsys.readouterr().err, (args, text)
    assert not (tmp_path / "x").exists()
