"""Policy-gradient loss pieces shared by A2C (IPD) and PPO (Overcooked), written once.

Pure ``jnp`` functions on arrays of any leading shape ``(...)``: A2C passes (T, N) rounds x
episodes, PPO a flat (B,) minibatch. Each mean is over all leading axes.
The value losses are not shared: A2C's is mean((v - target)^2), PPO's 0.5 x that (or Huber,
optionally clipped) -- different formulas, kept with their algorithms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["action_log_probs", "clipped_surrogate_loss", "categorical_entropy"]


def action_log_probs(logits: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(log_probs, log_prob)``: the log-softmax of logits (..., A) and that of the taken
    action (...,) (``action`` (...,) integer)."""
    log_probs = jax.nn.log_softmax(logits)  # (..., A)
    log_prob = jnp.take_along_axis(log_probs, action[..., None], axis=-1)[..., 0]  # (...,)
    return log_probs, log_prob


def clipped_surrogate_loss(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                           clip_eps: float) -> jax.Array:
    """Scalar -mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = pi(a) / pi_old(a) = exp(log_prob
    - old_log_prob); all three (...,). ``clip_eps`` (a Python float) <= 0 disables the clip:
    -mean(r A), the plain policy gradient (A2C's default)."""
    ratio = jnp.exp(log_prob - old_log_prob)  # (...,)
    surrogate = ratio * advantage  # (...,)
    if clip_eps > 0:
        clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage  # (...,)
        surrogate = jnp.minimum(surrogate, clipped)
    return -surrogate.mean()


def categorical_entropy(log_probs: jax.Array) -> jax.Array:
    """Scalar mean entropy (nats) of the categorical distributions with log-probs (..., A)."""
    return -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
