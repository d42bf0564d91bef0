"""Play trained Overcooked policies against each other: sparse returns and event counts.

:func:`play` runs one full episode in each of ``num_envs`` environments with policy A in one
seat and policy B in the other (A steers cook 0 in the first half of the envs and cook 1 in the
second half), so self-play evaluation, a pair's evaluation and cross-play are all the same call.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from coplay.agents.actor_critic import ActorCritic, critic_input
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.state import EnvParams


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
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))

    def act(params, obs_seat, seat, key):
        x = obs_seat[:, seat]
        cx = critic_input(obs_seat, centralised, 1)[:, seat]
        logits, _ = net.apply(params, x, cx)
        return jnp.argmax(logits, -1) if greedy else jax.random.categorical(key, logits)

    def body(carry, key):
        state, obs, ret, events = carry
        k_a, k_b, k_env = jax.random.split(key, 3)
        obs_seat = jnp.take_along_axis(obs, cook_of_seat[:, :, None, None, None], axis=1)
        action = jnp.stack([act(params_a, obs_seat, 0, k_a), act(params_b, obs_seat, 1, k_b)],
                           axis=1)  # (N, 2) per seat
        actions_cook = jnp.take_along_axis(action, cook_of_seat, axis=1)
        obs, state, _, _, info = step(jax.random.split(k_env, num_envs), state, actions_cook,
                                      env_params)
        ev = jnp.take_along_axis(info["events"], cook_of_seat[:, :, None], axis=1)
        return (state, obs, ret + info["sparse_reward"], events + ev), None

    init = (state, obs, jnp.zeros((num_envs,)),
            jnp.zeros((num_envs, 2, env.num_events), jnp.int32))
    (_, _, ret, events), _ = jax.lax.scan(body, init, jax.random.split(key, steps))
    return {"sparse_return": ret, "events": events, "a_cook": a_cook}
