"""One step of two policies in seats of a batch of Overcooked kitchens, written once.

A *seat* is a policy's place in the pair (seat 0, seat 1); which *cook* it steers is
``cook_of_seat`` (N, 2): the identity, or swapped for the envs where seat 0 steers cook 1.
:func:`two_seat_step` hands each seat its cook's observation, asks the policy callback for
the seats' actions, gives each cook the action of its seat, steps the N environments and
returns what happened per seat. PPO's rollouts, the pair / cross-play evaluations and the
episodes drawn as GIFs all play through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.actor_critic import ActorCritic, critic_input
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.state import EnvParams, State

__all__ = ["cooks_of_seats", "by_seat", "SeatedStep", "two_seat_step", "seat_action",
           "pair_policy"]


def cooks_of_seats(swap: jax.Array) -> jax.Array:
    """(N,) bool, True where seat 0 steers cook 1 -> (N, 2) int32 the cook of each seat."""
    return jnp.where(swap[:, None], jnp.array([1, 0]), jnp.array([0, 1]))


def by_seat(x: jax.Array, cook_of_seat: jax.Array) -> jax.Array:
    """x (N, 2, ...) per cook -> per seat, using cook_of_seat (N, 2). A swap is its own
    inverse, so the same call maps per-seat arrays back to cooks."""
    idx = cook_of_seat.reshape(cook_of_seat.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


class SeatedStep(NamedTuple):
    """One step of N envs. Per-seat fields in seat order."""

    obs: jax.Array  # (N, 2, H, W, C) per cook, after the step (as the env returns it)
    env_state: State  # (N, ...) after the step
    obs_seat: jax.Array  # (N, 2, H, W, C) what each seat saw before acting
    action: jax.Array  # (N, 2) per seat
    done: jax.Array  # (N,)
    sparse: jax.Array  # (N,) team sparse reward of the step
    events: jax.Array  # (N, 2, E) int32 event flags per seat
    shaped: jax.Array  # (N, 2) standard shaped reward per seat
    aux: Any  # what the policy returned beside the actions


def two_seat_step(env: Overcooked, env_params: EnvParams, key: jax.Array, env_state: State,
                  obs: jax.Array, cook_of_seat: jax.Array,
                  policy: Callable[[jax.Array], tuple[jax.Array, Any]],
                  auto_reset: bool = True) -> SeatedStep:
    """``policy(obs_seat (N, 2, H, W, C)) -> (actions (N, 2) per seat, aux)``, then one step
    of the N envs (``env.step``, which resets at the horizon, or ``env.step_env`` with
    ``auto_reset=False``); ``key`` is split into the N envs' keys."""
    n = cook_of_seat.shape[0]
    obs_seat = by_seat(obs, cook_of_seat)
    action, aux = policy(obs_seat)
    actions_cook = by_seat(action, cook_of_seat)  # cook c takes the action of its seat
    step = jax.vmap(env.step if auto_reset else env.step_env, in_axes=(0, 0, 0, None))
    obs, env_state, _, done, info = step(jax.random.split(key, n), env_state, actions_cook,
                                         env_params)
    return SeatedStep(obs, env_state, obs_seat, action, done, info["sparse_reward"],
                      by_seat(info["events"], cook_of_seat),
                      by_seat(info["shaped_by_agent"], cook_of_seat), aux)


def seat_action(net: ActorCritic, params, obs_seat: jax.Array, seat: int, key: jax.Array,
                centralised: bool = False, greedy: bool = False) -> jax.Array:
    """(N,) actions of one seat's policy ``params`` (one tower, no policy axis): sampled from
    its logits, or their argmax if ``greedy``. The critic input (both cooks with a
    centralised value) is built for the network's signature; XLA drops the unused tower."""
    cx = critic_input(obs_seat, centralised, 1)[:, seat]
    logits, _ = net.apply(params, obs_seat[:, seat], cx)
    return jnp.argmax(logits, -1) if greedy else jax.random.categorical(key, logits)


def pair_policy(net: ActorCritic, params_a, params_b, k_a: jax.Array, k_b: jax.Array,
                centralised: bool = False,
                greedy: bool = False) -> Callable[[jax.Array], tuple[jax.Array, None]]:
    """The ``policy`` of :func:`two_seat_step` for policy A in seat 0 (drawing with ``k_a``)
    and B in seat 1 (``k_b``)."""

    def policy(obs_seat):
        return jnp.stack([seat_action(net, params_a, obs_seat, 0, k_a, centralised, greedy),
                          seat_action(net, params_b, obs_seat, 1, k_b, centralised, greedy)],
                         axis=1), None

    return policy
