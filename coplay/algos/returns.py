"""Advantage estimation shared by the on-policy algorithms."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array,
        gamma: float, lam: float) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a time-major batch.

    rewards, values, dones: (T, ...) where ``dones[t]`` marks that the episode ended *after*
    step t (no bootstrapping through it); last_value: (...) value of the state after step T-1.
    Returns (advantages, value targets), both (T, ...).
    """

    def body(carry, xs):
        next_adv, next_value = carry
        reward, value, done = xs
        not_done = 1.0 - done.astype(rewards.dtype)
        delta = reward + gamma * next_value * not_done - value
        adv = delta + gamma * lam * not_done * next_adv
        return (adv, value), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(body, init, (rewards, values, dones), reverse=True)
    return advantages, advantages + values
