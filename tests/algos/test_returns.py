"""GAE against a plain Python loop."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from coplay.algos.returns import gae


def gae_loop(rewards, values, dones, last_value, gamma, lam):
    T = len(rewards)
    adv = np.zeros(T)
    next_adv, next_value = 0.0, last_value
    for t in reversed(range(T)):
        nd = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * nd - values[t]
        next_adv = delta + gamma * lam * nd * next_adv
        adv[t] = next_adv
        next_value = values[t]
    return adv, adv + values


floats = st.floats(-5, 5, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    rewards=arrays(np.float32, 12, elements=floats),
    values=arrays(np.float32, 12, elements=floats),
    dones=arrays(np.bool_, 12),
    last_value=floats,
    gamma=st.floats(0, 1),
    lam=st.floats(0, 1),
)
def test_gae_matches_loop(rewards, values, dones, last_value, gamma, lam):
    adv, targets = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones),
                       jnp.asarray(last_value), gamma, lam)
    adv_ref, targets_ref = gae_loop(rewards.astype(float), values.astype(float),
                                    dones.astype(float), float(last_value), gamma, lam)
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(targets, targets_ref, rtol=1e-4, atol=1e-3)


def test_gae_lambda_one_is_the_discounted_return_minus_value():
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 0.5, 0.5])
    dones = jnp.array([0, 0, 1])
    adv, targets = gae(r, v, dones, jnp.array(100.0), 0.5, 1.0)
    np.testing.assert_allclose(targets, [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0])
    np.testing.assert_allclose(adv, targets - v)
