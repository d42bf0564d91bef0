"""PPO's pytrees: the training state of one member (:class:`PPOState` with its
:class:`Runner` of environments mid-rollout and :class:`ValueNorm`), the per-update
:class:`UpdateMetrics`, and the rollout's :class:`Transition` and the update's :class:`Batch`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from coplay.envs.overcooked.state import State


class ValueNorm(struct.PyTreeNode):
    """Running mean / variance of value targets with debiasing (MAPPO's ValueNorm)."""

    mean: jax.Array  # ()
    mean_sq: jax.Array  # ()
    debias: jax.Array  # ()

    @classmethod
    def create(cls) -> ValueNorm:
        z = jnp.zeros((), jnp.float32)
        return cls(z, z, z)

    def update(self, x: jax.Array, beta: float) -> ValueNorm:
        return ValueNorm(beta * self.mean + (1 - beta) * x.mean(),
                         beta * self.mean_sq + (1 - beta) * jnp.square(x).mean(),
                         beta * self.debias + (1 - beta))

    def stats(self) -> tuple[jax.Array, jax.Array]:
        d = jnp.maximum(self.debias, 1e-5)
        mean = self.mean / d
        var = jnp.maximum(self.mean_sq / d - jnp.square(mean), 1e-2)
        return mean, jnp.sqrt(var)

    def normalise(self, x: jax.Array) -> jax.Array:
        mean, std = self.stats()
        return (x - mean) / std

    def denormalise(self, x: jax.Array) -> jax.Array:
        mean, std = self.stats()
        return x * std + mean


class Runner(struct.PyTreeNode):
    """Environments mid-rollout, carried across updates (N = num_envs)."""

    env_state: State  # leading (N,)
    obs: jax.Array  # (N, 2, H, W, C) per cook
    swap: jax.Array  # (N,) bool: seat 0 steers cook 1 (and seat 1 cook 0)
    ep_sparse: jax.Array  # (N,) team sparse return of the running episode
    ep_reward: jax.Array  # (N, 2) training reward per seat, running episode
    ep_events: jax.Array  # (N, 2, E) int32 event counts per seat, running episode
    last_return: jax.Array  # (N,) sparse return of each env's last finished episode


class PPOState(struct.PyTreeNode):
    """One member's training state (a population stacks these on a leading axis)."""

    params: dict  # (G, ...) policy parameters
    opt_state: optax.OptState  # (G, ...)
    value_norm: ValueNorm  # (G,)
    runner: Runner
    key: jax.Array  # member key; update u uses fold_in(key, u)
    update: jax.Array  # () int32 updates done


class UpdateMetrics(NamedTuple):
    """Per update (and member when vmapped). Episode sums cover episodes that ended in it."""

    returned_return: jax.Array  # () mean over steps and envs of the last finished episode's
    #                             sparse return (JaxMARL LogWrapper's returned_episode_returns)
    episodes: jax.Array  # () episodes that ended during the rollout
    episode_return_sum: jax.Array  # () their summed team sparse returns
    episode_reward_sum: jax.Array  # (2,) their summed training rewards per seat
    episode_events_sum: jax.Array  # (2, E) their summed event counts per seat
    policy_loss: jax.Array  # (G,) last minibatch
    value_loss: jax.Array  # (G,)
    entropy: jax.Array  # (G,)
    entropy_coef: jax.Array  # ()
    shaping_factor: jax.Array  # ()
    learning_rate: jax.Array  # ()


class Transition(NamedTuple):
    """One rollout step, seats in seat order. Shapes (N, 2, ...)."""

    obs: jax.Array  # (N, 2, H, W, C) ego obs of each seat's cook
    action: jax.Array  # (N, 2)
    log_prob: jax.Array  # (N, 2)
    reward: jax.Array  # (N, 2) training reward per seat (scaled)
    done: jax.Array  # (N,)


class Batch(NamedTuple):
    """One policy's training data, flattened to samples (B, ...)."""

    obs: jax.Array
    critic_obs: jax.Array | None
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array

