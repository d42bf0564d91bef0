"""Play trained Overcooked policies against each other: sparse returns and event counts.

:func:`play` runs one full episode in each of ``num_envs`` environments with policy A in one
seat and policy B in the other (A steers cook 0 in the first half of the envs and cook 1 in the
second half), so self-play evaluation, a pair's evaluation and cross-play are all the same call.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.actor_critic import ActorCritic
from coplay.algos.overcooked_play import pair_policy, two_seat_step
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.state import EnvParams, State


class PlayCarry(NamedTuple):
    """Between steps of :func:`play` (N = num_envs)."""

    env_state: State  # (N, ...)
    obs: jax.Array  # (N, 2, H, W, C) per cook
    sparse_return: jax.Array  # (N,) team sparse return so far
    events: jax.Array  # (N, 2, E) int32 event counts so far, per seat (A, B)


@partial(jax.jit, static_argnames=("env", "net", "steps", "num_envs", "centralised", "greedy"))
def play(env: Overcooked, env_params: EnvParams, net: ActorCritic, params_a, params_b,
         key: jax.Array, steps: int = 400, num_envs: int = 16, centralised: bool = False,
         greedy: bool = False):
    """One episode of ``steps`` steps per env (no auto-reset). Returns a dict of
    ``sparse_return`` (num_envs,), ``events`` (num_envs, 2, E) per seat (A, B) and
    ``a_cook`` (num_envs,) the cook A steered. Actions are sampled unless ``greedy``."""
    a_cook = (jnp.arange(num_envs) >= num_envs // 2).astype(jnp.int32)
    cook_of_seat = jnp.stack([a_cook, 1 - a_cook], axis=1)  # (N, 2)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs),
                                                      env_params)
    obs = jax.vmap(env.get_obs, in_axes=(0, None))(state, env_params)

    def body(carry: PlayCarry, key):
        k_a, k_b, k_env = jax.random.split(key, 3)
        policy = pair_policy(net, params_a, params_b, k_a, k_b, centralised, greedy)
        s = two_seat_step(env, env_params, k_env, carry.env_state, carry.obs, cook_of_seat,
                          policy, auto_reset=False)
        return PlayCarry(s.env_state, s.obs, carry.sparse_return + s.sparse,
                         carry.events + s.events), None

    init = PlayCarry(state, obs, jnp.zeros((num_envs,)),
                     jnp.zeros((num_envs, 2, env.num_events), jnp.int32))
    out, _ = jax.lax.scan(body, init, jax.random.split(key, steps))
    return {"sparse_return": out.sparse_return, "events": out.events, "a_cook": a_cook}
