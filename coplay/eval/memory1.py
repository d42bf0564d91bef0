"""Exact play of two memory-1 policies: a Markov chain over the 4 joint outcomes.

Outcomes are indexed from player 1's seat, ``s = 2 * a1 + a2`` (cc, cd, dc, dd); player 2 sees
the swapped outcome. With ``M[s', s]`` the transition matrix and ``s0`` the first-round
distribution, the expected reward at round t is ``r · M^t s0``; the discounted infinite return
is ``r^T (I - gamma M)^{-1} s0`` and the finite-horizon one a sum over T rounds.
Used by tests (Monte-Carlo agrees with it) and by fast evaluation of tabular pairings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from coplay.envs.matrix_games import MatrixGameParams

_SWAP = jnp.array([0, 2, 1, 3])  # cd <-> dc when changing seats


def _joint(p1_coop: jax.Array, p2_coop: jax.Array) -> jax.Array:
    """(4,) distribution over (a1, a2) from the two cooperation probabilities."""
    a = jnp.stack([p1_coop, 1 - p1_coop])
    b = jnp.stack([p2_coop, 1 - p2_coop])
    return (a[:, None] * b[None, :]).reshape(4)


def transition_matrix(p1: jax.Array, p2: jax.Array) -> jax.Array:
    """(4, 4) column-stochastic M[s', s] for memory-1 policies p1, p2 of shape (5,)."""
    p1_coop = p1[1:]  # by outcome s from seat 1
    p2_coop = p2[1:][_SWAP]  # player 2 reads the outcome first-person
    return jax.vmap(_joint, in_axes=(0, 0), out_axes=1)(p1_coop, p2_coop)


def initial_distribution(p1: jax.Array, p2: jax.Array) -> jax.Array:
    return _joint(p1[0], p2[0])


def outcome_rewards(params: MatrixGameParams) -> jax.Array:
    """(2, 4): rewards of player 1 and player 2 for each outcome."""
    a1 = jnp.array([0, 0, 1, 1])
    a2 = jnp.array([0, 1, 0, 1])
    return jnp.stack([params.payoff[a1, a2], params.payoff[a2, a1]])


def outcome_distributions(p1, p2, num_rounds: int) -> jax.Array:
    """(T, 4): distribution of the joint outcome at each round."""
    m = transition_matrix(p1, p2)

    def body(dist, _):
        return m @ dist, dist

    _, dists = jax.lax.scan(body, initial_distribution(p1, p2), None, length=num_rounds)
    return dists


def finite_horizon_returns(p1, p2, params: MatrixGameParams, num_rounds: int,
                           gamma: float = 1.0) -> jax.Array:
    """(2,) expected sum over ``num_rounds`` rounds of gamma^t r_t for both players."""
    dists = outcome_distributions(p1, p2, num_rounds)  # (T, 4)
    discounts = gamma ** jnp.arange(num_rounds)
    return outcome_rewards(params) @ (discounts @ dists)


def discounted_returns(p1, p2, params: MatrixGameParams, gamma: float) -> jax.Array:
    """(2,) infinite-horizon r^T (I - gamma M)^{-1} s0 for both players."""
    m = transition_matrix(p1, p2)
    occupancy = jnp.linalg.solve(jnp.eye(4) - gamma * m, initial_distribution(p1, p2))
    return outcome_rewards(params) @ occupancy


def cooperation_per_round(p1, p2, num_rounds: int) -> jax.Array:
    """(T, 2): probability each player cooperates at each round."""
    dists = outcome_distributions(p1, p2, num_rounds)
    p1_c = dists[:, 0] + dists[:, 1]
    p2_c = dists[:, 0] + dists[:, 2]
    return jnp.stack([p1_c, p2_c], axis=-1)
