"""MEP stage 2: the priority formula, partner sampling inside the chunk, frozen partners, a
tiny run from a tiny stage-1 population, resumption, CLI errors; the HSP adaptive agent: a
tiny run against the biased policies of a tiny HSP population's training pool."""

import dataclasses
import hashlib
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay import zoo
from coplay.agents.actor_critic import actor_only
from coplay.cli import main
from coplay.config import ConfigError
from coplay.envs.overcooked import Overcooked
from coplay.experiments.populations import adaptive
from coplay.experiments.populations.adaptive import preset_config
from coplay.experiments.populations.cli import build_adaptive_config, parse_train_args
from coplay.experiments.populations.presets import PPO_PRESETS_ADAPTIVE
from coplay.experiments.populations.train import load_run, train_population
from coplay.experiments.populations.train import preset_config as population_preset
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.zoo.export import export_population
from coplay.experiments.zoo_agents import actor_params
from coplay.populations import mep
from coplay.populations.hsp import BIASED, BR
from coplay.populations.members import load_params, member_policies, network_of, take
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


def tiny_stage2(kind: str, pop, tmp_path_factory):
    """A tiny ``--kind kind`` run (seed 1) against the population folder ``pop``, by the CLI."""
    out = tmp_path_factory.mktemp(kind) / "run"
    assert main(["populations", "train", "--kind", kind, "--pop", str(pop),
                 "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def stage2(stage1, tmp_path_factory):
    return tiny_stage2("mep-adaptive", stage1, tmp_path_factory)


@pytest.fixture(scope="module")
def one_chunk(stage1):
    """One chunk of a learner with the 2 partners drawn with fixed probabilities 0.2 / 0.8:
    64 envs, 2-step episodes, so that many end. (files' hashes, partner params before,
    learner before, state after, partner params after)"""
    files = sorted((stage1 / "members").glob("m*.msgpack"))
    hashes = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    _, pop = adaptive.resolve(preset_config("tiny", population=str(stage1)))
    algo = dataclasses.replace(PPO_PRESETS_ADAPTIVE["tiny"], num_envs=64, num_steps=8,
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
    """Each env's partner logits are those of the full network of the member it drew (the
    partners run on actor towers alone, as a zoo entry stores them)."""
    cfg = preset_config("tiny", population=str(stage1))
    algo, pop = adaptive.resolve(cfg)
    trainer, env, params = adaptive.make_trainer(algo, pop)
    net = network_of(pop.algo, env)
    partner = mep.frozen_partner(actor_only(net), params, False)
    full = [member_policies(stage1, i)[0] for i in pop.members]  # with the critic
    state = adaptive.init_state(trainer, 0, 2)
    runner = jax.tree.map(lambda x: x[0], state.runner)
    runner = runner.replace(partner=jnp.array([1, 0, 1, 1], jnp.int32))
    obs = runner.obs  # (N, 2, H, W, C), cook order = seat order without swaps
    got = partner.logits(params, runner, obs)
    for n, k in enumerate([1, 0, 1, 1]):
        want, _ = net.apply(full[k], obs[n, 1][None], obs[n, 1][None])
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


@pytest.mark.parametrize("kind", ["stage2", "hsp2"])
def test_killed_and_resumed_stage2_equals_an_uninterrupted_run(kind, request, tmp_path,
                                                                monkeypatch):
    stage2 = request.getfixturevalue(kind)  # MEP stage 2, the HSP adaptive agent
    cfg = adaptive.load_config(stage2)
    # the resumed run reuses the killed one's compiled trainer (a new process would build the
    # same program again; this keeps the test to one compilation)
    built, make = {}, adaptive.make_trainer

    def make_once(algo, pop, per_partner=False):
        if algo not in built:
            built[algo] = make(algo, pop, per_partner)
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
def test_learner_ppo_flags_default_to_the_populations_network(stage1):
    argv = ["--kind", "mep-adaptive", "--preset", "tiny", "--pop", str(stage1)]
    args, default = parse_train_args(argv)
    pop_algo = load_run(stage1)[1]
    assert (default.network, default.hidden_sizes) == (pop_algo.network, pop_algo.hidden_sizes)
    assert build_adaptive_config(args, default).ppo is None  # untouched: recorded as preset
    args, default = parse_train_args(argv + ["--ppo.total-steps", "4096"])
    assert build_adaptive_config(args, default).ppo.total_steps == 4096


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
        (["--pop", str(stage1), "--ppo.hidden-sizes", "32"], "hidden_sizes"),
        (["--pop", str(stage1), "--set", "ppo.population_entropy_coef=0.01"],
         "population_entropy_coef"),
        (["--pop", str(stage1), "--num-members", "3"], "--num-members"),
    ]
    for args, text in cases:
        assert main(base + args) == 2, args
        assert text in capsys.readouterr().err, (args, text)
    assert not (tmp_path / "x").exists()


# --- the HSP adaptive agent -------------------------------------------------------------------
@pytest.fixture(scope="module")
def hsp1(tmp_path_factory):
    """A tiny HSP population (3 pairs on random1) with its selection: 1 evaluation partner,
    the 2 others the training pool (thresholds below the tiny pairs' returns); and a copy of
    the population from before the selection."""
    out = tmp_path_factory.mktemp("hsp1") / "pop"
    assert main(["populations", "train", "--preset", "tiny", "--seed", "3",
                 "--out", str(out)]) == 0
    shutil.copytree(out, out.parent / "unselected")
    assert main(["populations", "select", "--pop", str(out), "--eval-size", "1",
                 "--train-size", "2", "--eval-min-return=-1", "--train-min-return=-1"]) == 0
    return out


@pytest.fixture(scope="module")
def hsp2(hsp1, tmp_path_factory):
    return tiny_stage2("hsp-adaptive", hsp1, tmp_path_factory)


def test_hsp_adaptive_trains_uniformly_against_the_training_pools_biased_policies(hsp1, hsp2):
    sel = json.loads((hsp1 / "selection.json").read_text())
    assert len(sel["train"]) == 2 and not set(sel["train"]) & set(sel["eval"])
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "agent.msgpack",
                 "eval.json", "manifest.json", "training.png", "report.md"):
        assert (hsp2 / name).is_file(), name
    raw = json.loads((hsp2 / "config.json").read_text())
    assert raw["experiment"] == "hsp-adaptive" and raw["alpha"] is None
    assert raw["sampling_alpha"] == 0 and raw["partner_sampling"] == "uniform"
    assert raw["partner_members"] == sel["train"]
    rows = RunDir(hsp2).read_metrics()
    assert len(rows) == 4 and all(r["probs"] == [0.5, 0.5] for r in rows)
    assert sum(sum(r["partner_episodes"]) for r in rows) == 4 * 2 * 4
    # the partners are the biased policies (seat 0) of the pool's members, not their BRs
    _, pop = adaptive.resolve(adaptive.load_config(hsp2))
    got = adaptive.partner_params(pop)
    for k, m in enumerate(sel["train"]):
        pair = load_params(hsp1 / "members" / f"m{m:02d}.msgpack")
        biased, br_ = actor_params(take(pair, BIASED)), actor_params(take(pair, BR))
        for a, b, br in zip(jax.tree.leaves(take(got, k)), jax.tree.leaves(biased),
                            jax.tree.leaves(br_), strict=True):
            np.testing.assert_array_equal(np.asarray(a), b)
            assert a.shape == br.shape
        assert any(not np.array_equal(b, br) for b, br in
                   zip(jax.tree.leaves(take(pair, BIASED)), jax.tree.leaves(take(pair, BR)),
                       strict=True))
    ev = json.loads((hsp2 / "eval.json").read_text())
    assert [p["member"] for p in ev["partners"]] == sel["train"]
    man = json.loads((hsp2 / "manifest.json").read_text())
    assert man["kind"] == "hsp-adaptive" and man["alpha"] == 0
    assert man["partner_members"] == sel["train"]
    report = (hsp2 / "report.md").read_text()
    assert "HSP adaptive agent" in report and "uniform" in report


def test_hsp_adaptive_agent_loads(hsp2):
    agent = resolve(str(hsp2))
    assert agent.name.startswith("hsp-adaptive")
    cfg = adaptive.load_config(hsp2)
    algo, pop = adaptive.resolve(cfg)
    env = Overcooked(pop.layout)
    obs = jax.random.bernoulli(jax.random.PRNGKey(0), 0.2, (3, *env.obs_shape)).astype(
        jnp.float32)
    learner = take(load_params(hsp2 / "agent.msgpack"), 0)  # (G = 1, ...) -> the learner
    want, _ = network_of(algo, env).apply(learner, obs, obs)
    got, _ = jax.vmap(agent.policy, in_axes=(None, None, 0))(jax.random.PRNGKey(0), (), obs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="hsp-adaptive folder: no member to choose"):
        resolve(AgentRef(str(hsp2), member=0))


def test_hsp_partner_choices(hsp1, tmp_path):
    sel = json.loads((hsp1 / "selection.json").read_text())
    _, pop = adaptive.resolve(preset_config("tiny", population=str(hsp1), pool="all-eligible"))
    assert pop.members == sel["train_eligible"]
    # a hand-made selection whose training pool is smaller than its eligible pairs
    pop_dir = tmp_path / "pop"
    shutil.copytree(hsp1, pop_dir)
    (pop_dir / "selection.json").write_text(json.dumps(
        {"eval": sel["eval"], "train": sel["train"][:1], "train_eligible": sel["train"]}))
    for pool, want in (("train", sel["train"][:1]), ("all-eligible", sel["train"])):
        _, pop = adaptive.resolve(preset_config("tiny", population=str(pop_dir), pool=pool))
        assert pop.members == want, pool
    _, pop = adaptive.resolve(preset_config("tiny", population=str(pop_dir),
                                            partners=tuple(sel["train"][::-1])))
    assert pop.members == sel["train"][::-1]


def test_hsp_cli_errors_name_the_problem(hsp1, stage1, tmp_path, capsys):
    sel = json.loads((hsp1 / "selection.json").read_text())
    base = ["populations", "train", "--preset", "tiny", "--out", str(tmp_path / "x")]
    hsp = ["--kind", "hsp-adaptive"]
    cases = [
        (hsp, "--pop"),
        (hsp + ["--pop", str(hsp1.parent / "unselected")],
         f"coplay populations select --pop {hsp1.parent / 'unselected'}"),
        (["--kind", "mep-adaptive", "--pop", str(hsp1)], "--kind hsp-adaptive"),
        (hsp + ["--pop", str(stage1)], "--kind mep-adaptive"),
        (hsp + ["--pop", str(hsp1), "--set", f"partners={sel['eval'][0]}"],
         "evaluation partners"),
        (hsp + ["--pop", str(hsp1), "--set", "pool=everything"], "pool"),
        (["--kind", "mep-adaptive", "--pop", str(stage1), "--set", "pool=all-eligible"],
         "for HSP populations"),
    ]
    for args, text in cases:
        assert main(base + args) == 2, args
        assert text in capsys.readouterr().err, (args, text)
    assert not (tmp_path / "x").exists()


def test_a_zoo_population_gives_the_folders_partners(hsp1, stage1, tmp_path, monkeypatch):
    """--pop zoo:<prefix>: the same training pool and layout as the exported folder, the
    partners its biased policies' actor towers rounded to float16 as the zoo stores them, and
    the same refusals (wrong kind, evaluation partners, an unknown prefix)."""
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "zoo"))
    export_population(hsp1, "random1/hsp-t")
    export_population(stage1, "cramped_room/mep-t")
    _, folder = adaptive.resolve(preset_config("tiny", population=str(hsp1)))
    algo, pop = adaptive.resolve(preset_config("tiny", population="zoo:random1/hsp-t"))
    assert (pop.kind, pop.layout, pop.members) == ("hsp", "random1", folder.members)
    assert pop.returns == folder.returns
    assert pop.checkpoints == [f"zoo:random1/hsp-t/member{m:02d}-biased" for m in pop.members]
    assert all(getattr(pop.algo, f) == getattr(folder.algo, f) for f in adaptive.NETWORK_FIELDS)
    got, want = adaptive.partner_params(pop), adaptive.partner_params(folder)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a),
                                      np.asarray(b).astype(np.float16).astype(np.float32))
    trainer, env, params = adaptive.make_trainer(algo, pop)  # builds on actor-only partners
    assert jax.tree.leaves(params)[0].shape[0] == len(pop.members)
    _, mep_pop = adaptive.resolve(preset_config("tiny", population="zoo:cramped_room/mep-t"))
    assert (mep_pop.kind, mep_pop.members) == ("mep", [0, 1])
    with pytest.raises(ConfigError, match="hsp-adaptive"):
        adaptive.load_population(preset_config("tiny", population="zoo:random1/hsp-t"), "mep")
    ev = json.loads((hsp1 / "selection.json").read_text())["eval"]
    with pytest.raises(ConfigError, match="evaluation partners"):
        adaptive.resolve(preset_config("tiny", population="zoo:random1/hsp-t",
                                       partners=tuple(ev)))
    with pytest.raises(ConfigError, match="not a zoo population"):
        adaptive.resolve(preset_config("tiny", population="zoo:random1/nothing-here"))


# --- best responses, one learner per partner (--kind mep-responses) ---------------------------
def test_each_learner_trains_against_its_own_partner_alone(stage1):
    """The vmapped chunk of per-partner learners equals, member by member, one learner's
    chunk with that partner alone (vmap == loop): the partner axis is the member axis."""
    cfg = preset_config("tiny", population=str(stage1), learners="per-partner")
    algo, pop = adaptive.resolve(cfg)
    algo = dataclasses.replace(algo, num_envs=8, num_steps=8, horizon=4, updates_per_chunk=1,
                               total_steps=64)
    trainer, env, params = adaptive.make_trainer(algo, pop, per_partner=True)
    state = adaptive.init_state(trainer, 0, 1)
    assert jax.tree.leaves(state.params)[0].shape[:2] == (2, 1)  # (learners, policies)
    after, _ = trainer.train_chunk(state)
    env_params = mep.mep_params(env, 2, algo.horizon)
    for k in range(2):
        own = jax.tree.map(lambda x, k=k: x[k:k + 1], params)  # partner k alone, (1, ...)
        one, _ = trainer.member_chunk(take(state, k), take(env_params, k), own)
        for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(take(after.params, k)),
                        strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    # the two partners differ, so the two learners' data (and updates) differ
    assert not np.allclose(*(np.asarray(jax.tree.leaves(after.params)[0][k]) for k in (0, 1)))


def test_tiny_responses_run_writes_one_best_response_per_partner(coot_stack_responses):
    responses = coot_stack_responses  # against the CooT stack's 2 MEP members
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "agent.msgpack",
                 "eval.json", "manifest.json", "training.png", "report.md"):
        assert (responses / name).is_file(), name
    man = json.loads((responses / "manifest.json").read_text())
    assert man["kind"] == "mep-responses" and man["learners"] == 2
    assert jax.tree.leaves(load_params(responses / "agent.msgpack"))[0].shape[:2] == (2, 1)
    rows = RunDir(responses).read_metrics()
    assert rows and all(len(r["running_return"]) == 2 and "probs" not in r for r in rows)
    assert all(e == 4 * 2 for r in rows for e in r["partner_episodes"])  # per learner
    ev = json.loads((responses / "eval.json").read_text())
    assert [p["member"] for p in ev["partners"]] == [0, 1]
    assert "one PPO learner per partner" in (responses / "report.md").read_text()
    # each best response resolves by its partner's index; the folder alone is ambiguous
    a1 = resolve(AgentRef(str(responses), 1))
    assert "best response 1" in a1.name
    want = take(take(load_params(responses / "agent.msgpack"), 1), 0)
    np.testing.assert_array_equal(np.asarray(jax.tree.leaves(a1.params)[0]),
                                  np.asarray(jax.tree.leaves(actor_params(want))[0]))
    with pytest.raises(ValueError, match="member: choose one of"):
        resolve(AgentRef(str(responses)))
    with pytest.raises(ValueError, match="no seat"):
        resolve(AgentRef(str(responses), 0, 1))
