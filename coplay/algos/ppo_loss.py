"""PPO's minibatch loss: clipped surrogate, (clipped, optionally Huber) value error, entropy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from coplay.algos.losses import action_log_probs, categorical_entropy, clipped_surrogate_loss


def ppo_losses(logits: jax.Array, value: jax.Array, action: jax.Array, old_log_prob: jax.Array,
               old_value: jax.Array, advantage: jax.Array, target: jax.Array, clip_eps: float,
               clip_value: bool, normalize_advantages: bool, huber_delta: float | None = None):
    """(policy_loss, value_loss, entropy) of a minibatch; logits (B, A), the rest (B,).

    policy: -mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = pi(a)/pi_old(a);
    value: 0.5 * mean((v - target)^2), or of the max with the clipped prediction's error;
    with ``huber_delta`` the error is Huber's (quadratic within delta, then linear) instead.
    """
    log_probs, log_prob = action_log_probs(logits, action)  # (B, A), (B,)
    if normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = clipped_surrogate_loss(log_prob, old_log_prob, advantage, clip_eps)
    if huber_delta is None:
        loss = lambda e: 0.5 * jnp.square(e)  # noqa: E731
    else:
        loss = lambda e: optax.huber_loss(e, delta=huber_delta)  # noqa: E731
    err = loss(value - target)
    if clip_value:
        clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        err = jnp.maximum(err, loss(clipped - target))
    value_loss = err.mean()
    entropy = categorical_entropy(log_probs)
    return policy_loss, value_loss, entropy

