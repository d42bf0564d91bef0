"""The Agent interface: network agents equal their modules, jit == eager, vmap == loop (over
games and over a population's parameters), the Player loop, IPD observations, memory-1
strategies, and the scripted cook reading the kitchen from its observation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.actor_critic import make_network
from coplay.agents.base import (
    Agent,
    Player,
    actor_critic_agent,
    gru_agent,
    ipd_input,
    stack_params,
    with_action_noise,
)
from coplay.agents.classic import classic_agent, memory1_agent, scripted_cook, snapshot_from_obs
from coplay.agents.gru import GRUAgent, dummy_input, sequence
from coplay.agents.tabular import PROBES, memory1_act
from coplay.envs.matrix_games import ipd_params
from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.scripted import scripted_action, scripted_actions, snapshot_jax


def _gru(use_opponent_id=False, seed=0):
    module = GRUAgent(8, 4, use_opponent_id)
    params = module.init(jax.random.PRNGKey(seed), module.initial_hidden(1), dummy_input(1))
    return module, params


def _ipd_obs(n: int, seed: int = 0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    token = jax.random.randint(k1, (n,), 0, 5)
    return jax.vmap(ipd_input)(token, jax.random.normal(k2, (n, 10)))


def _actor_critic(centralised: bool):
    env = Overcooked("cramped_room")
    net = make_network("mlp", (16,), "tanh")
    c = env.obs_shape[-1]
    x = jnp.zeros((1, *env.obs_shape))
    params = net.init(jax.random.PRNGKey(1), x, jnp.zeros((1, *env.obs_shape[:-1],
                                                           c * (1 + centralised))))
    return env, net, params


def _oc_obs(env, n: int, seed: int = 0):
    return jax.random.bernoulli(jax.random.PRNGKey(seed), 0.2, (n, *env.obs_shape)).astype(
        jnp.float32)


def _agents():
    """(agent, batch of observations) of every kind built here."""
    module, params = _gru(use_opponent_id=True)
    env, net, ac_params = _actor_critic(False)
    return {
        "gru": (gru_agent(module, params), _ipd_obs(3)),
        "memory-1": (classic_agent("GTFT"), _ipd_obs(4, 1)),
        "actor-critic": (actor_critic_agent(net, ac_params, env.obs_shape[-1]), _oc_obs(env, 5)),
    }


# --- the interface ------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["gru", "memory-1", "actor-critic"])
def test_jit_equals_eager_and_vmap_equals_loop(which):
    agent, obs = _agents()[which]
    n = obs[0].shape[0] if isinstance(obs, tuple) else obs.shape[0]
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    states = jax.vmap(agent.reset)(keys)
    acts, new = jax.vmap(agent.act)(keys, states, obs)
    logits_v, _ = jax.vmap(agent.policy)(keys, states, obs)
    greedy_v, _ = jax.vmap(lambda k, s, o: agent.act(k, s, o, greedy=True))(keys, states, obs)
    jit_act = jax.jit(agent.act)
    for i in range(n):
        s_i, o_i = (jax.tree.map(lambda x, i=i: x[i], t) for t in (states, obs))
        a, s = agent.act(keys[i], s_i, o_i)
        a_jit, s_jit = jit_act(keys[i], s_i, o_i)
        assert int(a) == int(a_jit) == int(acts[i])
        logits, _ = agent.policy(keys[i], s_i, o_i)
        np.testing.assert_allclose(logits, logits_v[i], atol=1e-6)
        assert int(greedy_v[i]) == int(jnp.argmax(logits))
        for x, y, z in zip(jax.tree.leaves(s), jax.tree.leaves(s_jit), jax.tree.leaves(new),
                           strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)
            np.testing.assert_allclose(x, z[i], atol=1e-6)
        assert agent.end_episode(s, {"return": 1.0}) is s  # identity for these agents
    assert logits_v.shape == (n, agent.num_actions)


def test_gru_agent_steps_as_the_module_over_a_recorded_game():
    module, params = _gru()
    agent = gru_agent(module, params)
    obs = jax.tree.map(lambda x: x[:, None], _ipd_obs(12))  # (T, B = 1, ...)
    logits_seq, _ = sequence(module, params, obs)
    state = agent.reset(jax.random.PRNGKey(0))
    assert state.shape == (8,) and not state.any()
    for t in range(12):
        logits, state = agent.policy(None, state, jax.tree.map(lambda x, t=t: x[t, 0], obs))
        np.testing.assert_allclose(logits, logits_seq[t, 0], atol=1e-6)


@pytest.mark.parametrize("centralised", [False, True])
def test_actor_critic_agent_logits_are_the_networks(centralised):
    env, net, params = _actor_critic(centralised)
    agent = actor_critic_agent(net, params, env.obs_shape[-1], centralised)
    obs = _oc_obs(env, 4)
    critic = jnp.concatenate([obs, obs[::-1]], -1) if centralised else obs
    direct, _ = net.apply(params, obs, critic)
    logits, _ = jax.vmap(agent.policy, in_axes=(None, None, 0))(None, (), obs)
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-6)
    assert (agent.kind, agent.num_actions, agent.reset(None)) == ("overcooked", 6, ())


def test_action_noise_is_the_agent_at_zero_and_uniform_at_one():
    env, net, params = _actor_critic(False)
    agent = actor_critic_agent(net, params, env.obs_shape[-1])
    obs = _oc_obs(env, 1)[0]
    keys = jax.random.split(jax.random.PRNGKey(3), 3000)

    def actions(a):
        return np.asarray(jax.vmap(lambda k: a.act(k, (), obs, False)[0])(keys))

    # epsilon 0: the wrapped agent's own draws, key for key (its key is the first split)
    own = np.asarray(jax.vmap(lambda k: agent.act(jax.random.split(k, 3)[0], (), obs,
                                                  False)[0])(keys))
    np.testing.assert_array_equal(actions(with_action_noise(agent, 0.0)), own)
    # epsilon 1: uniform over the 6 actions whatever the policy says
    counts = np.bincount(actions(with_action_noise(agent, 1.0)), minlength=6) / len(keys)
    np.testing.assert_allclose(counts, 1 / 6, atol=0.03)
    # in between: the mixture (1 - eps) * policy + eps / 6
    probs = np.asarray(jax.nn.softmax(agent.policy(None, (), obs)[0]))
    counts = np.bincount(actions(with_action_noise(agent, 0.5)), minlength=6) / len(keys)
    np.testing.assert_allclose(counts, 0.5 * probs + 0.5 / 6, atol=0.03)
    with pytest.raises(ValueError, match="epsilon"):
        with_action_noise(agent, 1.5)


def test_a_population_is_a_vmap_over_stacked_parameters():
    agents = [memory1_agent(PROBES[n], n) for n in ("TFT", "AllD", "GTFT")]
    stacked = stack_params(agents)
    obs = ipd_input(jnp.int32(2))  # cd: the co-player defected
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    one = agents[0]
    acts, _ = jax.vmap(lambda p, k: one.replace(params=p).act(k, (), obs))(stacked, keys)
    assert acts.tolist() == [int(a.act(k, (), obs)[0]) for a, k in zip(agents, keys,
                                                                        strict=True)]
    modules = [_gru(seed=s) for s in range(3)]
    grus = [gru_agent(m, p) for m, p in modules]
    g = grus[0]
    logits, _ = jax.vmap(lambda p: g.replace(params=p).policy(None, g.reset(None),
                                                              ipd_input(0)))(stack_params(grus))
    for i, a in enumerate(grus):
        np.testing.assert_allclose(logits[i], a.policy(None, a.reset(None), ipd_input(0))[0],
                                   atol=1e-6)


def test_player_holds_key_and_state_for_a_python_loop():
    module, params = _gru()
    agent = gru_agent(module, params)
    player = Player(agent, seed=4)
    tokens = [0, 1, 2, 4, 3, 1]
    got = [player.step(ipd_input(t)) for t in tokens]
    key = jax.random.PRNGKey(4)
    key, k = jax.random.split(key)
    state = agent.reset(k)
    want = []
    for t in tokens:
        key, k = jax.random.split(key)
        a, state = agent.act(k, state, ipd_input(t))
        want.append(int(a))
    assert got == want and all(isinstance(a, int) for a in got)
    np.testing.assert_allclose(player.state, state, atol=1e-6)
    player.end_episode(None)
    np.testing.assert_allclose(player.state, state, atol=1e-6)
    player.reset()
    assert not np.asarray(player.state).any()
    greedy = Player(agent, seed=0, greedy=True)
    logits, _ = agent.policy(None, agent.reset(None), ipd_input(0))
    assert greedy.step(ipd_input(0)) == int(jnp.argmax(logits))


def test_agent_kind_is_checked():
    with pytest.raises(ValueError, match="kind 'chess'"):
        Agent((), lambda *a: None, "x", "chess", 2)


# --- IPD observations and strategies -----------------------------------------------------------
def test_ipd_input_from_the_token():
    """start: no previous action or reward; cc, cd, dc, dd: own action first, the spec's
    payoffs R, S, T, P; another payoff table where given."""
    expect = {0: (-1, 0.0), 1: (0, 1.0), 2: (0, -1.0), 3: (1, 2.0), 4: (1, 0.0)}
    for token, (prev_action, prev_reward) in expect.items():
        x = ipd_input(token)
        assert (int(x.token), int(x.prev_action), float(x.prev_reward)) == (
            token, prev_action, prev_reward)
        assert x.opponent_id.shape == (10,) and not x.opponent_id.any()
    assert float(ipd_input(3, env_params=ipd_params(T=5.0)).prev_reward) == 5.0


def test_memory1_agent_draws_as_the_rollouts_tabular_agents():
    probs = jnp.array([0.9, 0.3, 0.5, 0.1, 0.7])
    agent = memory1_agent(probs)
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    tokens = jnp.arange(500) % 5
    acts, _ = jax.vmap(lambda k, t: agent.act(k, (), ipd_input(t)))(keys, tokens)
    want = jax.vmap(lambda k, t: memory1_act(k, probs, t))(keys, tokens)
    np.testing.assert_array_equal(acts, want)
    logits, _ = agent.policy(None, (), ipd_input(1))
    np.testing.assert_allclose(jax.nn.softmax(logits), [0.3, 0.7], atol=1e-6)
    assert int(classic_agent("AllD").act(keys[0], (), ipd_input(0))[0]) == 1
    assert int(classic_agent("TFT").act(keys[0], (), ipd_input(3))[0]) == 0  # dc: C again
    with pytest.raises(ValueError, match="unknown IPD strategy 'Grim'"):
        classic_agent("Grim")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        memory1_agent([0.5, 0.5])


# --- the scripted cook ------------------------------------------------------------------------
def _scripted_states(layout: str, steps: int, seed: int = 1):
    env = Overcooked(layout)
    params = env.default_params(horizon=steps + 1)
    step, get_obs = jax.jit(env.step_env), jax.jit(env.get_obs)
    rng = np.random.default_rng(seed)
    _, state = env.reset(None, params)
    for t in range(steps):
        yield env, params, state, np.asarray(get_obs(state, params))
        a = scripted_actions(snapshot_jax(state, env.layout), env.layout, rng, 0.05,
                             np.asarray(params.recipe_time))
        _, state, *_ = step(jax.random.PRNGKey(t), state, jnp.asarray(a), params)


@pytest.mark.parametrize("layout", ["cramped_room", "random1_m"])  # old and new dynamics
def test_the_kitchen_is_read_back_from_each_cooks_observation(layout):
    """Along a scripted episode (pots filled, cooking, soups carried and served) every field
    of the state snapshot the script reads, from either cook's observation."""
    seen = set()
    for env, params, state, obs in _scripted_states(layout, 130, seed=4):
        snap = snapshot_jax(state, env.layout)
        seen |= {k for k, c in (("cooking", (snap["pot_tick"] >= 0).any()),
                                ("idle pot", ((snap["obj"] == 4) & (snap["pot_tick"] < 0)
                                              & (env.layout.terrain == 2)).any()),
                                ("soup held", (snap["held"] == 4).any())) if c}
        for cook in (0, 1):
            got = snapshot_from_obs(obs[cook], env.layout, np.asarray(params.recipe_time))
            for k, v in snap.items():
                want = v[[cook, 1 - cook]] if k in ("pos", "dir", "held", "held_soup") else v
                np.testing.assert_array_equal(got[k], want, err_msg=f"{layout} {k}")
    assert seen == {"cooking", "idle pot", "soup held"}
    with pytest.raises(ValueError, match="observation of shape"):
        snapshot_from_obs(obs[0][:, :-1], env.layout)


def test_scripted_cook_acts_as_the_script_from_its_observation():
    cook = scripted_cook("cramped_room", eps=0.0)
    act = jax.jit(cook.act)
    for t, (env, _, state, obs) in enumerate(_scripted_states("cramped_room", 40)):
        key = jax.random.PRNGKey(t)
        seed = np.asarray(jax.random.bits(jax.random.fold_in(key, 1), (2,), jnp.uint32))
        for c in (0, 1):
            want = scripted_action(snapshot_jax(state, env.layout), env.layout, c,
                                   np.random.default_rng(seed), 0.0)
            assert int(act(key, (), obs[c])[0]) == want
    noisy = scripted_cook("cramped_room", eps=0.3)
    logits, _ = noisy.policy(jax.random.PRNGKey(0), (), obs[0])
    probs = np.sort(np.asarray(jax.nn.softmax(logits)))
    np.testing.assert_allclose(probs, [0.05] * 5 + [0.75], atol=1e-6)
    with pytest.raises(ValueError, match="eps"):
        scripted_cook("cramped_room", eps=2.0)


def test_two_scripted_cooks_deliver_soup_through_the_agent_interface():
    """Both cooks steered by vmapped agents inside one jitted episode (host callbacks)."""
    env = Overcooked("cramped_room")
    params = env.default_params(horizon=200)
    cook = scripted_cook(env.layout, eps=0.05)

    def body(state, key):
        obs = env.get_obs(state, params)
        actions, _ = jax.vmap(cook.act, in_axes=(0, None, 0))(jax.random.split(key, 2), (), obs)
        _, state, _, _, info = env.step_env(key, state, actions, params)
        return state, info["sparse_reward"]

    _, state = env.reset(None, params)
    _, sparse = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, 200)))(
        state, jax.random.PRNGKey(0))
    assert float(sparse.sum()) >= 20.0  # at least one onion soup served
