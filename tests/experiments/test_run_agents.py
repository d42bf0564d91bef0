"""The run-folder readers, through refs.resolve: tiny runs of every kind -> Agents
that play exactly as the project's own rollouts and networks do; unrelated, unfinished and
corrupt folders -> RunError naming the file."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from coplay.agents.base import ipd_input, stack_params
from coplay.agents.classic import memory1_agent
from coplay.agents.tabular import random_memory1
from coplay.algos import a2c, ppi
from coplay.algos.ipd_rollout import Opponents, rollout
from coplay.algos.ppo_config import PPOConfig
from coplay.cli import main
from coplay.config import config_from_json
from coplay.envs.matrix_games import MatrixGameParams
from coplay.envs.overcooked import Overcooked
from coplay.experiments.ipd.presets import PPI_PRESETS
from coplay.experiments.ipd.runs import PPIState, load_state
from coplay.experiments.populations.train import load_run as load_population_run
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.run_agents import ppi_agent
from coplay.populations.members import load_params, member_policies, network_of
from coplay.runs import RunDir, RunError, write_json

ROUNDS = 20  # the tiny presets' game


@pytest.fixture(scope="module")
def ipd_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agents") / "ipd"
    assert main(["ipd", "train", "--preset", "tiny", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def overcooked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agents") / "overcooked"
    assert main(["overcooked", "train", "--preset", "tiny", "--layout", "cramped_room",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def population_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agents") / "population"
    assert main(["populations", "train", "--preset", "tiny", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def ppi_run(tmp_path_factory):
    """A PPI run folder as the PPI driver writes it (config.json, a PPIState checkpoint),
    with fresh models: training one costs ~20 s and adds nothing to what is loaded."""
    out = tmp_path_factory.mktemp("agents") / "ppi"
    algo = PPI_PRESETS["tiny"]
    run = RunDir(out)
    run.start({"experiment": "ipd", "algo": "ppi", "preset": "tiny", "resolved": algo}, False)
    params = ppi.init_learners(algo, jax.random.PRNGKey(3), algo.num_learners)
    run.save_checkpoint(PPIState(params, jnp.asarray(2, jnp.int32)), {"phases": 2})
    return out


def _obs_batch(env: Overcooked, n: int = 24, seed: int = 0) -> jax.Array:
    """(n, H, W, C) random 0/1 grids of the env's observation shape (the networks' inputs)."""
    return jax.random.bernoulli(jax.random.PRNGKey(seed), 0.2, (n, *env.obs_shape)).astype(
        jnp.float32)


def _check_jit_and_vmap(agent, obs_batch):
    """jit(act) == act, and vmap(act) over games == a loop over them."""
    n = jax.tree.leaves(obs_batch)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(7), n)
    states = jax.vmap(agent.reset)(keys)
    acts, new_states = jax.vmap(agent.act)(keys, states, obs_batch)
    jit_act = jax.jit(agent.act)
    for i in range(n):
        state_i, obs_i = (jax.tree.map(lambda x, i=i: x[i], t) for t in (states, obs_batch))
        a, s = agent.act(keys[i], state_i, obs_i)
        a_jit, s_jit = jit_act(keys[i], state_i, obs_i)
        assert int(a) == int(a_jit) == int(acts[i])
        for x, y, z in zip(jax.tree.leaves(s), jax.tree.leaves(s_jit),
                           jax.tree.leaves(new_states), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)
            np.testing.assert_allclose(x, z[i], atol=1e-6)


# --- IPD ------------------------------------------------------------------------------------
def test_a2c_learner_plays_the_rollouts_game_with_the_same_keys(ipd_run):
    """Each loaded learner, stepped in a Python loop against a memory-1 agent, takes exactly
    the 20 actions (and meets exactly the co-player actions) of the project's rollout of that
    learner against that agent from the same key: the loop splits keys as the rollout's scan
    does (one game: a batch of one draws the same numbers)."""
    _, algo, _ = load_state(ipd_run)
    probs = random_memory1(jax.random.PRNGKey(11))
    tab = memory1_agent(probs)
    for learner in range(algo.num_learners):
        agent = resolve(AgentRef(str(ipd_run), member=learner))
        key = jax.random.PRNGKey(100 + learner)
        traj = rollout(key, a2c.make_agent(algo), jax.tree.map(lambda x: x[None], agent.params),
                       Opponents(probs[None, None], jnp.zeros((1,), bool)), MatrixGameParams(),
                       ROUNDS)
        state, tab_state = agent.reset(key), tab.reset(key)
        obs = tab_obs = ipd_input(0)
        act, tab_act = jax.jit(agent.act), jax.jit(tab.act)
        actions, coplayer = [], []
        for t in range(ROUNDS):
            np.testing.assert_allclose(
                [float(x) for x in obs[:3]],
                [float(x[t, 0, 0]) for x in traj.inputs[:3]])  # what the learner saw
            key, k_act, k_tab = jax.random.split(key, 3)
            a, state = act(k_act, state, obs)
            b, tab_state = tab_act(k_tab, tab_state, tab_obs)
            actions.append(int(a))
            coplayer.append(int(b))
            obs, tab_obs = ipd_input(1 + 2 * a + b), ipd_input(1 + 2 * b + a)
        assert actions == np.asarray(traj.action[:, 0, 0]).tolist()
        assert coplayer == np.asarray(traj.opponent_action[:, 0, 0]).tolist()


def test_a2c_learners_give_the_rollouts_probabilities_learner_vs_learner(ipd_run):
    """Learner vs learner, both agents vmapped over 8 games and fed the rounds the rollout
    recorded: log pi(a_t) equal to the rollout's behaviour log-probabilities. (One key draws
    both learners' actions there, so single-agent keys cannot reproduce the draws; the
    probabilities they are drawn from must agree.) The template-free parameters equal the
    project's checkpoint loader's."""
    _, algo, state = load_state(ipd_run)
    agents = [resolve(AgentRef(str(ipd_run), member=i)) for i in range(algo.num_learners)]
    stacked = stack_params(agents)
    for x, y in zip(jax.tree.leaves(stacked), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(x, y)
    n = 8
    traj = rollout(jax.random.PRNGKey(5), a2c.make_agent(algo), stacked,
                   Opponents(jnp.full((2, n, 5), 0.5), jnp.ones((n,), bool)),
                   MatrixGameParams(), ROUNDS)
    for i, agent in enumerate(agents):
        policy = jax.jit(jax.vmap(agent.policy))
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        states = jax.vmap(agent.reset)(keys)
        for t in range(ROUNDS):
            obs = jax.tree.map(lambda x, t=t, i=i: x[t, i], traj.inputs)  # (N, ...)
            logits, states = policy(keys, states, obs)
            log_p = jnp.take_along_axis(jax.nn.log_softmax(logits),
                                        traj.action[t, i][:, None], -1)[:, 0]
            np.testing.assert_allclose(log_p, traj.log_prob[t, i], atol=1e-5)
        _check_jit_and_vmap(agent, jax.tree.map(lambda x, i=i: x[3, i, :4], traj.inputs))


@pytest.mark.parametrize("noise", ["decision", "episode"])
def test_ppi_learner_decides_as_the_ppi_rollout(ppi_run, noise):
    """The PPI agent's improved policy, planning inside its model with the rollout's planning
    keys, gives the rollout's log pi and, sampled with its action keys, its actions: 20
    rounds against a memory-1 agent, for both kinds of planning noise."""
    loaded = resolve(AgentRef(str(ppi_run), member=1))
    cfg = dataclasses.replace(PPI_PRESETS["tiny"], planning_noise=noise)
    agent = ppi_agent(cfg, loaded.params)
    probs = random_memory1(jax.random.PRNGKey(12))
    tab = memory1_agent(probs)
    key = jax.random.PRNGKey(21)
    traj = ppi.rollout(key, cfg, jax.tree.map(lambda x: x[None], agent.params),
                       Opponents(probs[None, None], jnp.zeros((1,), bool)), MatrixGameParams())
    episode_key = None
    if noise == "episode":
        key, k_episode = jax.random.split(key)
        episode_key = jax.random.split(k_episode, 1)[0]
    state, tab_state = agent.reset(episode_key), tab.reset(key)
    obs = tab_obs = ipd_input(0)
    policy, tab_act = jax.jit(agent.policy), jax.jit(tab.act)
    for t in range(ROUNDS):
        key, k_plan, k_act, k_tab = jax.random.split(key, 4)
        logits, state = policy(jax.random.split(k_plan, 1)[0], state, obs)
        a = jax.random.categorical(k_act, logits)
        b, tab_state = tab_act(k_tab, tab_state, tab_obs)
        np.testing.assert_allclose(jax.nn.log_softmax(logits)[a], traj.log_prob[t, 0, 0],
                                   atol=1e-5)
        assert (int(a), int(b)) == (int(traj.action[t, 0, 0]),
                                    int(traj.opponent_action[t, 0, 0]))
        obs, tab_obs = ipd_input(1 + 2 * a + b), ipd_input(1 + 2 * b + a)
    assert loaded.name.startswith("ipd ppi learner 1")


# --- Overcooked -----------------------------------------------------------------------------
def test_self_play_agent_logits_are_the_networks(overcooked_run):
    raw = json.loads((overcooked_run / "config.json").read_text())
    algo = config_from_json(PPOConfig, raw["resolved"])
    assert not algo.centralised_value  # the critic's input is then the actor's
    env = Overcooked("cramped_room")
    net = network_of(algo, env)
    params = load_params(overcooked_run / "checkpoint.msgpack")["params"]  # (M, G, ...)
    obs = _obs_batch(env)
    keys = jax.random.split(jax.random.PRNGKey(0), obs.shape[0])
    logits_by_seat = []
    for seat in (0, 1):
        agent = resolve(AgentRef(str(overcooked_run), seat=seat))
        assert (agent.kind, agent.num_actions) == ("overcooked", 6)
        direct, _ = net.apply(jax.tree.map(lambda x, s=seat: x[0, s], params), obs, obs)
        logits, _ = jax.vmap(agent.policy)(keys, jax.vmap(agent.reset)(keys), obs)
        np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-6)
        logits_by_seat.append(logits)
    assert not np.allclose(*logits_by_seat)  # two policies: the seat chose one
    _check_jit_and_vmap(resolve(str(overcooked_run)), obs[:6])


def test_population_member_seats_are_the_members_policies(population_run):
    cfg, algo, _ = load_population_run(population_run)
    env = Overcooked(cfg.layout)
    net = network_of(algo, env)
    obs = _obs_batch(env, 8)
    for member in (0, 2):
        policies = member_policies(population_run, member)
        for seat in (0, 1):
            agent = resolve(AgentRef(str(population_run), member=member, seat=seat))
            direct, _ = net.apply(policies[seat], obs, obs)
            logits, _ = jax.vmap(agent.policy, in_axes=(None, None, 0))(
                jax.random.PRNGKey(0), (), obs)
            np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-6)
    mid = member_policies(population_run, 1, "mid")[1]
    agent = resolve(AgentRef(str(population_run), member=1, seat=1, which="mid"))
    np.testing.assert_allclose(agent.policy(None, (), obs[0])[0],
                               net.apply(mid, obs[:1], obs[:1])[0][0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="member: choose one of"):
        resolve(AgentRef(str(population_run), seat=0))
    with pytest.raises(ValueError, match="seat: choose one of .*best response"):
        resolve(AgentRef(str(population_run), member=0))
    with pytest.raises(ValueError, match="member = 3"):
        resolve(AgentRef(str(population_run), member=3, seat=0))


def test_mep_stage2_agent_is_the_learner_of_agent_msgpack(overcooked_run, tmp_path):
    """A MEP stage-2 folder as finish_adaptive writes it (config.json with the resolved PPO
    config and the layout; agent.msgpack: the learner's (G = 1, ...) parameters)."""
    raw = json.loads((overcooked_run / "config.json").read_text())
    env = Overcooked("cramped_room")
    algo = dataclasses.replace(config_from_json(PPOConfig, raw["resolved"]), share_policy=True)
    params = load_params(overcooked_run / "checkpoint.msgpack")["params"]
    learner = jax.tree.map(lambda x: x[0, 1:2], params)  # (G = 1, ...)
    out = tmp_path / "stage2"
    RunDir(out).start({"experiment": "mep-adaptive", "layout": "cramped_room",
                       "resolved": algo}, False)
    with pytest.raises(RunError, match="no agent.msgpack"):
        resolve(str(out))
    (out / "agent.msgpack").write_bytes(serialization.to_bytes(learner))
    agent = resolve(str(out))
    obs = _obs_batch(env, 6)
    direct, _ = network_of(algo, env).apply(jax.tree.map(lambda x: x[0], learner), obs, obs)
    logits, _ = jax.vmap(agent.policy, in_axes=(None, None, 0))(jax.random.PRNGKey(0), (), obs)
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-6)


# --- folders that hold no agent -------------------------------------------------------------
def test_unrelated_unfinished_and_corrupt_folders_raise_run_errors(ipd_run, population_run,
                                                                  tmp_path):
    with pytest.raises(RunError, match="no such run folder"):
        resolve(str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunError, match="not a run folder: no config.json"):
        resolve(str(tmp_path))
    other = tmp_path / "other"
    write_json(other / "config.json", {"experiment": "bench", "x": 1})
    with pytest.raises(RunError, match="experiment 'bench' holds no agent"):
        resolve(str(other))
    (other / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config.json is not valid JSON"):
        resolve(str(other))

    broken = tmp_path / "ipd"
    shutil.copytree(ipd_run, broken)
    ckpt = broken / "checkpoint.msgpack"
    ckpt.write_bytes(ckpt.read_bytes()[: 200])
    with pytest.raises(RunError, match=r"checkpoint\.msgpack is corrupt"):
        resolve(str(broken))
    ckpt.write_bytes(b"not msgpack at all")
    with pytest.raises(RunError, match=r"checkpoint\.msgpack"):
        resolve(str(broken))
    ckpt.unlink()
    with pytest.raises(RunError, match=r"checkpoint\.msgpack does not exist"):
        resolve(str(broken))

    resized = tmp_path / "resized"
    shutil.copytree(ipd_run, resized)
    cfg = json.loads((resized / "config.json").read_text())
    cfg["resolved"]["hidden_size"] = 24
    write_json(resized / "config.json", cfg)
    with pytest.raises(RunError, match=r"checkpoint\.msgpack: its parameters do not fit .*"
                                       r"has shape \(2, 16"):
        resolve(str(resized))
    with pytest.raises(ValueError, match="learner = 2"):
        resolve(AgentRef(str(ipd_run), member=2))
    with pytest.raises(ValueError, match="is a ipd folder: no seat to choose"):
        resolve(AgentRef(str(ipd_run), seat=1))

    pop = tmp_path / "population"
    shutil.copytree(population_run, pop)
    (pop / "members" / "m01.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match=r"members/m01\.msgpack"):
        resolve(AgentRef(str(pop), member=1, seat=0))
    (pop / "manifest.json").unlink()
    with pytest.raises(RunError, match="has not finished"):
        resolve(AgentRef(str(pop), member=0, seat=0))
