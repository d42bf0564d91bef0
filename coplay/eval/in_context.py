"""Consecutive episodes of an ego agent with fixed partners, its memory carried over.

:func:`play_episodes` is the evaluation of every Overcooked agent against partners, the
Coordination Transformer and its baselines alike: N games at once (partners x seats x
repeats), ``episodes`` episodes of ``steps`` steps in each, the ego agent's state kept across
the episodes of a game (``end_episode`` between them, with that episode's sparse rewards), so
an in-context learner adapts while a memoryless policy plays the same every episode. The
partner of game n is entry ``partner_index[n]`` of the partners' stacked parameters, and the
ego steers cook ``ego_cook[n]``.

With ``record=True`` it also returns the ego's trajectories (observations as uint8, actions,
rewards): the rollouts the CooT dataset is made of.

The games are independent, so where JAX has several devices (a GPU box, or this CPU's cores
as host devices: :func:`coplay.runs.use_cpu_cores`) they are split over them
(:func:`games_sharding`): each device plays its share of the games, every number as on one
device (tested), ×1.8 on two cores for the CooT, whose per-game context caches (4 MB each)
make one core wait on memory.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from coplay.agents.base import Agent
from coplay.algos.overcooked_play import two_seat_step
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.state import EnvParams


class Trajectories(NamedTuple):
    """The ego's side of every step, (episodes, N, steps, ...)."""

    obs: jax.Array  # (E, N, T, H, W, C) uint8
    action: jax.Array  # (E, N, T) int8 ego action
    partner_action: jax.Array  # (E, N, T) int8
    reward: jax.Array  # (E, N, T) float32 team sparse reward


def _ego_cooks(ego_cook: jax.Array) -> jax.Array:
    # seat 0 = the ego, seat 1 = the partner -> (N, 2) the cook of each seat
    return jnp.stack([ego_cook, 1 - ego_cook], axis=1).astype(jnp.int32)


def games_sharding(num_games: int, max_devices: int | None = None) -> NamedSharding | None:
    """The games axis split evenly over the most local devices (at most ``max_devices``) that
    divide ``num_games``; None where that is one device (nothing to split)."""
    devices = jax.local_devices()[:max_devices]
    count = max(d for d in range(1, len(devices) + 1) if num_games % d == 0)
    if count == 1:
        return None
    return NamedSharding(Mesh(np.array(devices[:count]), ("games",)), PartitionSpec("games"))


def play_episodes(env: Overcooked, env_params: EnvParams, ego: Agent, partner: Agent,
                  partner_index: jax.Array, ego_cook: jax.Array, key: jax.Array,
                  episodes: int, steps: int, greedy: bool = False, record: bool = False,
                  partner_greedy: bool = False, max_devices: int | None = None):
    """Returns a dict: ``returns`` (E, N) sparse return of every episode, ``events`` (E, N, 2,
    Ev) event counts per seat (ego, partner), and ``trajectories`` (:class:`Trajectories`)
    when ``record``. ``partner.params`` carry a leading axis (one entry per partner); the ego's
    are shared by all games. Actions are sampled unless ``greedy`` (the ego) /
    ``partner_greedy`` (the partners: sampled in every evaluation, their own behaviour).
    The games are split over up to ``max_devices`` devices (default: all); the numbers do
    not depend on it."""
    # names are static fields of an Agent: drop them so that agents of one architecture
    # (every member of a population) share one compiled program
    return _play(env, env_params, ego.replace(name="ego"), partner.replace(name="partner"),
                 partner_index, ego_cook, key, episodes, steps, greedy, record, partner_greedy,
                 games_sharding(partner_index.shape[0], max_devices))


@partial(jax.jit, static_argnames=("env", "episodes", "steps", "greedy", "record",
                                   "partner_greedy", "sharding"))
def _play(env, env_params, ego, partner, partner_index, ego_cook, key, episodes, steps,
          greedy, record, partner_greedy, sharding):
    n = partner_index.shape[0]

    def spread(tree):  # leading games axis over the devices (GSPMD partitions the rest)
        if sharding is None:
            return tree
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)

    cook_of_seat = spread(_ego_cooks(ego_cook))
    partner_params = spread(jax.tree.map(lambda x: x[partner_index], partner.params))  # (N, ...)
    k_reset, k_eps = jax.random.split(key)
    ego_state = spread(jax.vmap(ego.reset)(jax.random.split(k_reset, n)))
    partner_state = spread(jax.vmap(lambda p, k: partner.replace(params=p).reset(k))(
        partner_params, jax.random.split(jax.random.fold_in(k_reset, 1), n)))

    def partner_act(p, k, s, o):
        return partner.replace(params=p).act(k, s, o, partner_greedy)

    def episode(carry, key):
        ego_state, partner_state = carry
        k_env, k_steps = jax.random.split(key)
        _, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, n),
                                                              env_params)
        env_state = spread(env_state)
        obs = spread(jax.vmap(env.get_obs, in_axes=(0, None))(env_state, env_params))

        def step(c, key):
            env_state, obs, ego_state, partner_state = c
            k_ego, k_partner, k_step = jax.random.split(key, 3)

            def policy(obs_seat):
                a_ego, s_ego = jax.vmap(lambda k, s, o: ego.act(k, s, o, greedy))(
                    jax.random.split(k_ego, n), ego_state, obs_seat[:, 0])
                a_par, s_par = jax.vmap(partner_act)(partner_params, jax.random.split(
                    k_partner, n), partner_state, obs_seat[:, 1])
                return jnp.stack([a_ego, a_par], axis=1), (s_ego, s_par)

            s = two_seat_step(env, env_params, k_step, env_state, obs, cook_of_seat, policy,
                              auto_reset=False)
            out = (s.sparse, s.events)
            if record:
                out += (s.obs_seat[:, 0].astype(jnp.uint8), s.action.astype(jnp.int8))
            return spread((s.env_state, s.obs) + s.aux), out

        (_, _, ego_state, partner_state), out = jax.lax.scan(
            step, (env_state, obs, ego_state, partner_state), jax.random.split(k_steps, steps))
        sparse, events = out[0], out[1]  # (T, N), (T, N, 2, Ev)
        ego_state = spread(jax.vmap(ego.end_episode)(ego_state, sparse.T))
        partner_state = spread(jax.vmap(
            lambda p, s, r: partner.replace(params=p).end_episode(s, r))(
            partner_params, partner_state, sparse.T))
        result = {"returns": sparse.sum(0), "events": events.sum(0)}
        if record:
            obs_ego, actions = out[2], out[3]  # (T, N, H, W, C), (T, N, 2)
            result["trajectories"] = Trajectories(
                jnp.moveaxis(obs_ego, 0, 1), actions[..., 0].T, actions[..., 1].T, sparse.T)
        return (ego_state, partner_state), result

    _, results = jax.lax.scan(episode, (ego_state, partner_state),
                              jax.random.split(k_eps, episodes))
    return results
