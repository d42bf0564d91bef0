"""The in-context CooT agent: every cached step's logits equal a full causal pass over the
context it has accumulated (FIFO, oldest first) and the current query window."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.coot_agent import coot_agent, empty_context, with_context, with_keep
from coplay.agents.gpt import (
    GPTConfig,
    init_gpt,
    make_gpt,
    query_indices,
    query_tokens,
    token_inputs,
)

K, H, LQ, D = 2, 7, 3, 5
CFG = GPTConfig(num_layers=2, num_heads=2, width=16, max_positions=K * H + LQ)


def _full_logits(model, params, episodes, cur_obs, t):
    """The reference: slots of the last K finished episodes (zeros before), the window."""
    slots = [(np.zeros((H, D)), -np.ones(H, int), np.zeros(H))] * K + episodes
    slots = slots[-K:]
    ctx = jnp.concatenate([token_inputs(jnp.asarray(o, jnp.float32), jnp.asarray(a),
                                        jnp.asarray(r, jnp.float32)) for o, a, r in slots])
    steps, valid = query_indices(jnp.int32(t), LQ)
    q = query_tokens(jnp.asarray(cur_obs, jnp.float32)[steps], valid)
    return model.apply(params, jnp.concatenate([ctx, q])[None])[0, -1]


def test_cached_steps_equal_the_full_pass():
    model = make_gpt(CFG)
    params = init_gpt(CFG, jax.random.PRNGKey(0), D + 7)
    agent = coot_agent(model, params, K, H, LQ, D)
    policy, act, end = jax.jit(agent.policy), jax.jit(agent.act), jax.jit(agent.end_episode)
    rng = np.random.default_rng(0)
    state = agent.reset(jax.random.PRNGKey(0))
    done = []
    key = jax.random.PRNGKey(1)
    for ep in range(K + 2):  # the FIFO evicts the oldest after K episodes
        obs = rng.integers(0, 3, (H, D)).astype(np.float32)
        actions = []
        for t in range(H):
            key, k = jax.random.split(key)
            logits, _ = policy(k, state, obs[t])
            np.testing.assert_allclose(logits, _full_logits(model, params, done, obs, t),
                                       atol=2e-5, err_msg=f"episode {ep} step {t}")
            a, state = act(k, state, obs[t])
            actions.append(int(a))
        rewards = rng.choice([0.0, 20.0], H)
        state = end(state, rewards)
        done.append((obs, np.array(actions), rewards))


def test_context_too_long_for_the_model_is_refused():
    model = make_gpt(CFG)
    params = init_gpt(CFG, jax.random.PRNGKey(0), D + 7)
    with pytest.raises(ValueError, match="needs 19 positions; the model has 17"):
        coot_agent(model, params, K, H + 1, LQ, D)


@pytest.mark.parametrize("mode", ["frozen", "fifo"])
def test_a_given_context_is_kept_or_pushed_out_as_the_full_pass_says(mode):
    """with_context: every step's logits equal the full causal pass over the given context
    (frozen: every episode; fifo: then the agent's own episodes pushed in)."""
    model = make_gpt(CFG)
    params = init_gpt(CFG, jax.random.PRNGKey(0), D + 7)
    rng = np.random.default_rng(1)
    given = [(rng.integers(0, 3, (H, D)).astype(np.float32), rng.integers(0, 6, H),
              rng.choice([0.0, 20.0], H)) for _ in range(K)]
    agent = with_context(coot_agent(model, params, K, H, LQ, D),
                         *(jnp.asarray(np.stack(x)) for x in zip(*given, strict=True)), mode)
    state = agent.reset(jax.random.PRNGKey(0))
    done, key = list(given), jax.random.PRNGKey(1)
    for ep in range(K + 1):
        obs = rng.integers(0, 3, (H, D)).astype(np.float32)
        actions = []
        for t in range(H):
            key, k = jax.random.split(key)
            logits, _ = agent.policy(k, state, obs[t])
            np.testing.assert_allclose(logits, _full_logits(model, params, done, obs, t),
                                       atol=2e-5, err_msg=f"{mode}: episode {ep} step {t}")
            a, state = agent.act(k, state, obs[t])
            actions.append(int(a))
        rewards = rng.choice([0.0, 20.0], H)
        state = agent.end_episode(state, rewards)
        if mode == "fifo":
            done.append((obs, np.array(actions), rewards))


def test_an_empty_frozen_context_forgets_every_episode():
    model = make_gpt(CFG)
    params = init_gpt(CFG, jax.random.PRNGKey(0), D + 7)
    plain = coot_agent(model, params, K, H, LQ, D)
    forget = with_context(plain, *empty_context(plain), "frozen")
    obs = np.random.default_rng(2).integers(0, 3, (H, D)).astype(np.float32)
    first, _ = plain.policy(None, plain.reset(None), obs[0])
    state = forget.reset(None)
    for _ in range(3):
        for t in range(H):
            _, state = forget.act(jax.random.PRNGKey(t), state, obs[t])
        state = forget.end_episode(state, np.full(H, 20.0))
        np.testing.assert_allclose(forget.policy(None, state, obs[0])[0], first, atol=1e-6)
    with pytest.raises(ValueError, match="context of shapes"):
        with_context(plain, jnp.zeros((K + 1, H, D)), jnp.zeros((K, H)), jnp.zeros((K, H)))


def _keep_best_reference(slots, episode):
    """keep-best in plain Python: slots oldest first, None = empty."""
    returns = [-np.inf if x is None else x[2].sum() for x in slots]
    drop = int(np.argmin(returns))
    if episode[2].sum() >= returns[drop]:
        return slots[:drop] + slots[drop + 1:] + [episode]
    return slots


@pytest.mark.parametrize("given", [False, True])
def test_keep_best_keeps_the_best_return_episodes_as_the_full_pass_says(given):
    """Episodes of returns 20, 60, 0, 40, 60 (2 slots): the context holds the two best so far,
    in the order played, the oldest out among equals; from a given context too (fifo)."""
    model = make_gpt(CFG)
    params = init_gpt(CFG, jax.random.PRNGKey(0), D + 7)
    rng = np.random.default_rng(3)
    plain = coot_agent(model, params, K, H, LQ, D)
    slots = [None] * K
    if given:  # a given context of returns 0 and 80
        slots = [(rng.integers(0, 3, (H, D)).astype(np.float32), rng.integers(0, 6, H),
                  np.eye(H)[0] * r) for r in (0.0, 80.0)]
        plain = with_context(plain, *(jnp.asarray(np.stack(x)) for x in zip(*slots, strict=True)),
                             "fifo")
    agent = with_keep(plain, "keep-best")
    act, end = jax.jit(agent.act), jax.jit(agent.end_episode)
    state, key = agent.reset(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)
    for ep, ret in enumerate((20.0, 60.0, 0.0, 40.0, 60.0)):
        obs = rng.integers(0, 3, (H, D)).astype(np.float32)
        actions = []
        for t in range(H):
            key, k = jax.random.split(key)
            done = [x for x in slots if x is not None]
            logits, _ = agent.policy(k, state, obs[t])
            np.testing.assert_allclose(logits, _full_logits(model, params, done, obs, t),
                                       atol=2e-5, err_msg=f"episode {ep} step {t}")
            a, state = act(k, state, obs[t])
            actions.append(int(a))
        rewards = np.zeros(H)
        rewards[ep % H] = ret
        state = end(state, rewards)
        slots = _keep_best_reference(slots, (obs, np.array(actions), rewards))
    kept = sorted(x[2].sum() for x in slots)
    assert kept == ([60.0, 80.0] if given else [60.0, 60.0])
    np.testing.assert_allclose(np.asarray(state.ctx_reward).sum(-1),
                               [x[2].sum() for x in slots])
    with pytest.raises(ValueError, match="choose one of"):
        with_keep(plain, "best")
