"""Exact memory-1 returns: hand-computed cases, Monte-Carlo agreement, Press–Dyson."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coplay.agents.tabular import PROBES, memory1_act, random_memory1, zd_extortioner
from coplay.envs.matrix_games import IteratedMatrixGame, MatrixGameParams
from coplay.eval.memory1 import (
    cooperation_per_round,
    discounted_returns,
    finite_horizon_returns,
)

PARAMS = MatrixGameParams()


def monte_carlo_returns(key, p1, p2, num_rounds, num_episodes, gamma):
    """Step the real environment with two sampled memory-1 agents."""
    env = IteratedMatrixGame(num_rounds)
    table = jnp.stack([p1, p2])  # (2, 5)

    def episode(key):
        obs, state = env.reset(key, PARAMS)

        def body(carry, t):
            obs, state, key = carry
            key, k = jax.random.split(key)
            actions = memory1_act(k, table, obs)
            obs, state, reward, _, _ = env.step(k, state, actions, PARAMS)
            return (obs, state, key), reward * gamma**t

        _, rewards = jax.lax.scan(body, (obs, state, key), jnp.arange(num_rounds))
        return rewards.sum(0)

    return jax.vmap(episode)(jax.random.split(key, num_episodes))  # (episodes, 2)


def test_hand_computed_pairings():
    tft, allc, alld = (jnp.asarray(PROBES[n]) for n in ("TFT", "AllC", "AllD"))
    np.testing.assert_allclose(finite_horizon_returns(tft, tft, PARAMS, 100), [100, 100])
    np.testing.assert_allclose(finite_horizon_returns(alld, allc, PARAMS, 10), [20, -10])
    # TFT vs AllD: suckered once, then mutual defection
    np.testing.assert_allclose(finite_horizon_returns(tft, alld, PARAMS, 10), [-1, 2])
    np.testing.assert_allclose(discounted_returns(allc, allc, PARAMS, 0.9), [10, 10], rtol=1e-5)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), gamma=st.sampled_from([1.0, 0.9]))
def test_monte_carlo_agrees_with_exact_finite_horizon(seed, gamma):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    p1, p2 = random_memory1(k1), random_memory1(k2)
    exact = finite_horizon_returns(p1, p2, PARAMS, 30, gamma)
    returns = np.asarray(monte_carlo_returns(k3, p1, p2, 30, 20_000, gamma))
    # within 5 standard errors of the Monte-Carlo mean (measured from the samples)
    stderr = returns.std(axis=0) / np.sqrt(len(returns))
    assert np.all(np.abs(returns.mean(axis=0) - np.asarray(exact)) <= 5 * stderr + 1e-3)


def test_discounted_is_the_long_finite_horizon_limit():
    p1, p2 = random_memory1(jax.random.PRNGKey(3)), random_memory1(jax.random.PRNGKey(4))
    np.testing.assert_allclose(discounted_returns(p1, p2, PARAMS, 0.95),
                               finite_horizon_returns(p1, p2, PARAMS, 2000, 0.95), rtol=1e-4)


def test_cooperation_curve_of_tft_against_alternating_start():
    tft, alld = jnp.asarray(PROBES["TFT"]), jnp.asarray(PROBES["AllD"])
    curve = cooperation_per_round(tft, alld, 5)
    np.testing.assert_allclose(curve[:, 0], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(curve[:, 1], 0)


def test_zd_extortioner_enforces_its_linear_relation():
    """Press–Dyson: against any co-player, (s_X - P) = chi (s_Y - P), long-run averages."""
    chi = 3.0
    zd = jnp.asarray(zd_extortioner(chi, 0.1))
    for seed in range(5):
        other = random_memory1(jax.random.PRNGKey(seed))
        gamma = 0.99999
        s = (1 - gamma) * discounted_returns(zd, other, PARAMS, gamma)
        np.testing.assert_allclose(s[0] - 0.0, chi * (s[1] - 0.0), atol=2e-3)
