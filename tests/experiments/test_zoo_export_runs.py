"""Trained agents of the CooT stack into the zoo and back: CooT, BC and adaptive run folders
exported (fp16) and loaded as agents giving their run folders' logits up to fp16 rounding;
refs.resolve / coot eval from zoo entries only; damaged entries, unfinished runs and
other folders refused by name; the `coplay zoo export --run` CLI."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay import zoo
from coplay.agents.base import ipd_input
from coplay.cli import main
from coplay.experiments.coot.eval import read_eval
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.zoo.export import export_ipd_run, export_population, export_run
from coplay.experiments.zoo_agents import zoo_agent
from coplay.runs import RunError


@pytest.fixture(scope="module")
def runs(coot_stack_mep2):
    """The shared tiny stack (tests/experiments/conftest.py): hsp, mep, data, coot, bc, mep2."""
    return coot_stack_mep2


@pytest.fixture(scope="module")
def run_zoo(runs, tmp_path_factory):
    z = tmp_path_factory.mktemp("zoo-runs") / "zoo"
    assert export_run(runs / "coot", "random1/coot-s0", z) == "random1/coot-s0"
    assert export_run(runs / "bc", "random1/bc-s0", z) == "random1/bc-s0"
    assert export_run(runs / "mep2", "random1/mep-adaptive-s1", z) == "random1/mep-adaptive-s1"
    export_population(runs / "hsp", "random1/hsp-s1", z)
    return z


def _obs(shape, n: int, seed: int = 0) -> jax.Array:
    return jax.random.bernoulli(jax.random.PRNGKey(seed), 0.2, (n, *shape)).astype(jnp.float32)


def _coot_logits(agent, episodes) -> np.ndarray:
    """Logits at every step of ``episodes`` (a list of (obs (T, ...), actions (T,), rewards
    (H,))), the actions taken as given, episodes ended with their rewards in between."""
    policy, end = jax.jit(agent.policy), jax.jit(agent.end_episode)
    state = agent.reset(jax.random.PRNGKey(0))
    out = []
    for i, (obs, actions, rewards) in enumerate(episodes):
        for o, a in zip(obs, actions, strict=True):
            logits, state = policy(jax.random.PRNGKey(1), state, o)
            out.append(np.asarray(logits))
            state = state._replace(ep_action=state.ep_action.at[state.t].set(a), t=state.t + 1)
        if i < len(episodes) - 1:
            state = end(state, rewards)
    return np.stack(out)


def test_coot_entry_gives_the_runs_logits_up_to_fp16(runs, run_zoo):
    params, meta = zoo.load_entry("random1/coot-s0", run_zoo)
    cfg = json.loads((runs / "coot" / "config.json").read_text())
    assert meta["agent"] == "coot" and meta["kind"] == "coot" and meta["layout"] == "random1"
    assert meta["gpt"] == cfg["coot"]["gpt"] and meta["context"] == cfg["coot"]["context"]
    assert meta["obs_shape"] == cfg["obs_shape"] and meta["preset"] == "tiny"
    assert meta["seed"] == 0 and meta["source"]["dataset"] == str(runs / "data")
    assert meta["source"]["epochs"] >= 1 and meta["source"]["best_epoch"] >= 0
    assert zoo.list_entries(run_zoo)["random1/coot-s0"]["dtype"] == "float16"
    ref, agent = resolve(str(runs / "coot")), zoo_agent("random1/coot-s0", run_zoo)
    assert agent.spec.num_episodes == 2 and agent.spec.episode_len == 20
    shape = tuple(cfg["obs_shape"])
    rng = np.random.default_rng(0)
    episodes = []
    for e, steps in enumerate((7, 5, 4)):  # two whole (short) episodes, then a third
        rewards = np.zeros(20, np.float32)
        rewards[rng.integers(0, steps)] = 20.0
        episodes.append((_obs(shape, steps, e), rng.integers(0, 6, steps), rewards))
    want, got = _coot_logits(ref, episodes), _coot_logits(agent, episodes)
    assert want.shape == (16, 6)
    np.testing.assert_allclose(got, want, atol=2e-2)
    assert np.abs(want[-1] - want[0]).max() > 1e-4  # the context changed the logits
    a, _ = jax.jit(agent.act)(jax.random.PRNGKey(2), agent.reset(jax.random.PRNGKey(0)),
                              episodes[0][0][0])
    assert 0 <= int(a) < 6


def test_bc_entry_gives_the_runs_logits_up_to_fp16(runs, run_zoo):
    _, meta = zoo.load_entry("random1/bc-s0", run_zoo)
    cfg = json.loads((runs / "bc" / "config.json").read_text())
    assert meta["agent"] == "bc" and meta["kind"] == "coot-bc"
    assert meta["bc"] == cfg["bc"] and meta["obs_shape"] == cfg["obs_shape"]
    obs = _obs(tuple(cfg["obs_shape"]), 8)
    ref, agent = resolve(str(runs / "bc")), zoo_agent("random1/bc-s0", run_zoo)
    want = np.stack([ref.policy(None, ref.reset(jax.random.PRNGKey(0)), o)[0] for o in obs])
    got = np.stack([agent.policy(None, agent.reset(jax.random.PRNGKey(0)), o)[0] for o in obs])
    np.testing.assert_allclose(got, want, atol=2e-2)


def test_adaptive_entry_is_an_actor_critic_with_the_learners_logits(runs, run_zoo):
    params, meta = zoo.load_entry("random1/mep-adaptive-s1", run_zoo)
    assert set(params["params"]) == {"actor", "policy"}  # no critic tower
    assert meta["agent"] == "actor-critic" and meta["kind"] == "mep-adaptive"
    assert meta["role"] == "learner" and meta["layout"] == "random1"
    assert meta["network"]["kind"] == "mlp" and meta["network"]["num_actions"] == 6
    ref = resolve(str(runs / "mep2"))
    agent = zoo_agent("random1/mep-adaptive-s1", run_zoo)
    obs = _obs(tuple(meta["network"]["obs_shape"]), 8)
    want = np.stack([ref.policy(None, None, o)[0] for o in obs])
    got = np.stack([agent.policy(None, None, o)[0] for o in obs])
    np.testing.assert_allclose(got, want, atol=2e-3 * float(np.abs(want).max()) + 1e-6)
    assert "mep-adaptive" in agent.name and "learner" in agent.name


def test_self_play_entry_is_the_runs_seat0_policy(self_play_tiny, tmp_path):
    z = tmp_path / "zoo"
    assert export_run(self_play_tiny, "cramped/self-play-s2", z) == "cramped/self-play-s2"
    params, meta = zoo.load_entry("cramped/self-play-s2", z)
    assert set(params["params"]) == {"actor", "policy"}
    assert meta["kind"] == "overcooked-ppo" and meta["role"] == "self-play seat 0"
    assert meta["seed"] == 2
    ref = resolve(str(self_play_tiny))
    agent = zoo_agent("cramped/self-play-s2", z)
    obs = _obs(tuple(meta["network"]["obs_shape"]), 8)
    want = np.stack([ref.policy(None, None, o)[0] for o in obs])
    got = np.stack([agent.policy(None, None, o)[0] for o in obs])
    np.testing.assert_allclose(got, want, atol=2e-3 * float(np.abs(want).max()) + 1e-6)
    part = tmp_path / "part"
    shutil.copytree(self_play_tiny, part)
    (part / "report.md").unlink()
    with pytest.raises(RunError, match=r"has not finished: .*part/report\.md is missing"):
        export_run(part, "x", z)


def test_resolve_and_coot_eval_from_the_zoo_alone(run_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(run_zoo))
    agent = resolve("zoo:random1/coot-s0")
    assert agent.spec.query_len == 6 and "zoo:random1/coot-s0" in agent.name
    assert resolve("zoo:random1/bc-s0").kind == "overcooked"
    ev = tmp_path / "ev"
    assert main(["coot", "eval", "--preset", "tiny", "--eval.partners", "zoo:random1/hsp-s1",
                 "--agent", "coot=zoo:random1/coot-s0", "bc=zoo:random1/bc-s0",
                 "mep=zoo:random1/mep-adaptive-s1", "--out", str(ev)]) == 0
    doc = read_eval(ev)
    for label in ("coot", "bc", "mep"):
        assert doc["agents"][label]["returns"].shape[:2] == (1, 2)  # (P, S, N, E)


def test_a_damaged_entry_is_refused_by_name(run_zoo, tmp_path):
    z = tmp_path / "zoo"
    shutil.copytree(run_zoo, z)
    f = z / "random1" / "coot-s0.msgpack"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match=r"random1/coot-s0\.msgpack is damaged"):
        zoo_agent("random1/coot-s0", z)
    (z / "random1" / "bc-s0.msgpack").unlink()
    with pytest.raises(zoo.ZooError, match=r"random1/bc-s0\.msgpack is missing"):
        zoo_agent("random1/bc-s0", z)


def test_unfinished_runs_and_other_folders_are_refused(runs, tmp_path):
    for run, missing in (("coot", "model.msgpack"), ("bc", "model.msgpack"),
                         ("mep2", "agent.msgpack")):
        part = tmp_path / run
        shutil.copytree(runs / run, part)
        (part / missing).unlink()
        with pytest.raises(RunError, match=rf"has not finished: .*{run}/{missing} is missing"):
            export_run(part, "x", tmp_path / "zoo")
    with pytest.raises(RunError, match="not a run folder"):
        export_run(tmp_path / "nothing", "x", tmp_path / "zoo")
    with pytest.raises(RunError, match="--pop"):
        export_run(runs / "hsp", "x", tmp_path / "zoo")
    (tmp_path / "ipd").mkdir()
    (tmp_path / "ipd" / "config.json").write_text('{"experiment": "ipd"}')
    with pytest.raises(RunError, match="export_ipd_run"):
        export_run(tmp_path / "ipd", "x", tmp_path / "zoo")
    with pytest.raises(RunError, match="not an IPD run folder"):
        export_ipd_run(tmp_path / "ipd", "x", tmp_path / "zoo")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"experiment": "something"}')
    with pytest.raises(RunError, match="takes coot, coot-bc, mep-adaptive, hsp-adaptive"):
        export_run(tmp_path / "other", "x", tmp_path / "zoo")
    with pytest.raises(ValueError, match="zoo entry name"):
        export_run(runs / "coot", "../x", tmp_path / "zoo")
    assert not (tmp_path / "zoo" / "manifest.json").exists()


def test_ipd_learners_export_one_entry_each_and_act_as_the_run(tmp_path, capsys):
    run = tmp_path / "ipd-tiny"
    assert main(["ipd", "train", "--preset", "tiny", "--seed", "5", "--eval-episodes", "4",
                 "--probe-every", "0", "--out", str(run)]) == 0
    z = tmp_path / "zoo"
    capsys.readouterr()
    assert main(["zoo", "export", "--run", str(run), "--name", "ipd/a2c-tiny-s5",
                 "--zoo", str(z)]) == 0
    out = capsys.readouterr().out
    n = json.loads((run / "config.json").read_text())["resolved"]["num_learners"]
    names = [f"ipd/a2c-tiny-s5/learner{i:02d}" for i in range(n)]
    assert all(name in out for name in names) and n >= 2
    assert sorted(zoo.list_entries(z)) == names
    token = jnp.asarray([0, 1, 2, 3, 4, 1], jnp.int32)
    for i, name in enumerate(names):
        mine, entry = resolve(AgentRef(str(run), member=i)), zoo_agent(name, z)
        assert entry.kind == "ipd" and f"learner {i}" in entry.name
        # the same GRU fed the same game: logits equal up to the fp16 rounding of the weights
        rng = np.random.default_rng(i)
        obs = [(t, rng.normal(size=10).astype(np.float32)) for t in np.asarray(token)]
        s_mine, s_entry = mine.reset(None), entry.reset(None)
        for t, noise in obs:
            from_run, s_mine = mine.policy(None, s_mine, ipd_input(t, noise))
            from_zoo, s_entry = entry.policy(None, s_entry, ipd_input(t, noise))
            np.testing.assert_allclose(from_zoo, from_run, atol=2e-2)
    # learners differ: the entries are not one learner written n times
    p0, p1 = (zoo.load_entry(names[k], z)[0] for k in (0, 1))
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p0),
                                                       jax.tree.leaves(p1), strict=True))


def test_cli_export_run(runs, tmp_path, capsys):
    z = tmp_path / "zoo"
    assert main(["zoo", "export", "--run", str(runs / "coot"), "--name", "random1/coot-s0",
                 "--zoo", str(z)]) == 0
    assert "random1/coot-s0" in capsys.readouterr().out
    assert main(["zoo", "export", "--run", str(runs / "coot"), "--name", "random1/coot-s0",
                 "--zoo", str(z)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["zoo", "export", "--run", str(runs / "coot"), "--name", "random1/coot-s0",
                 "--zoo", str(z), "--overwrite", "--dtype", "bfloat16"]) == 0
    assert zoo.list_entries(z)["random1/coot-s0"]["dtype"] == "bfloat16"
    assert main(["zoo", "list", "--zoo", str(z)]) == 0
    assert "random1/coot-s0" in capsys.readouterr().out
    capsys.readouterr()
    for args in ([], ["--pop", str(runs / "hsp"), "--prefix", "p", "--run", str(runs / "coot")],
                 ["--run", str(runs / "coot")], ["--pop", str(runs / "hsp")],
                 ["--run", str(runs / "coot"), "--prefix", "p"]):
        assert main(["zoo", "export", "--zoo", str(z), *args]) == 2, args
        err = capsys.readouterr().err
        assert "--pop" in err and "--run" in err or "--name" in err or "--prefix" in err, err
    assert main(["zoo", "export", "--run", str(tmp_path), "--name", "x", "--zoo", str(z)]) == 2
    assert "not a run folder" in capsys.readouterr().err
