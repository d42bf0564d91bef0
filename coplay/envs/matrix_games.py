"""Iterated 2x2 matrix games (the iterated prisoner's dilemma first), as pure JAX functions.

Actions: 0 = cooperate (C), 1 = defect (D). Two agents on a leading agent axis.

Observations are first-person tokens: at round 0 the start token, afterwards the previous joint
action seen from the agent's own seat, own action first::

    START = 0, cc = 1, cd = 2, dc = 3, dd = 4     (token = 1 + 2 * own + other)

Static facts (number of rounds) live in the environment object, everything one might vmap
over (the payoff table) in :class:`MatrixGameParams`, in the style of gymnax.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

NUM_AGENTS = 2
NUM_ACTIONS = 2
NUM_TOKENS = 5
COOPERATE, DEFECT = 0, 1
START = 0
TOKEN_NAMES = ("start", "cc", "cd", "dc", "dd")


@struct.dataclass
class MatrixGameParams:
    """Payoffs of a symmetric-seat 2x2 game.

    ``payoff[a_row, a_col]`` is the row player's reward when the row player plays ``a_row`` and
    the column player ``a_col``; the column player receives ``payoff[a_col, a_row]`` (the game
    is symmetric). The default is the spec's IPD, the LOLA table shifted by +2:
    CC = (1, 1), CD = (-1, 2), DC = (2, -1), DD = (0, 0), i.e. (T, R, P, S) = (2, 1, 0, -1).
    """

    payoff: jax.Array = struct.field(
        default_factory=lambda: jnp.array([[1.0, -1.0], [2.0, 0.0]], dtype=jnp.float32)
    )


def ipd_params(T: float = 2.0, R: float = 1.0, P: float = 0.0, S: float = -1.0):
    """Prisoner's-dilemma params from (temptation, reward, punishment, sucker)."""
    return MatrixGameParams(payoff=jnp.array([[R, S], [T, P]], dtype=jnp.float32))


class MatrixGameState(NamedTuple):
    round: jax.Array  # () int32, rounds played so far
    last_actions: jax.Array  # (2,) int32, joint action of the previous round (unused at start)


def first_person_tokens(actions: jax.Array) -> jax.Array:
    """(…, 2) joint actions -> (…, 2) first-person tokens (own action first)."""
    own = actions
    other = jnp.flip(actions, axis=-1)
    return (1 + 2 * own + other).astype(jnp.int32)


def joint_rewards(actions: jax.Array, params: MatrixGameParams) -> jax.Array:
    """(…, 2) joint actions -> (…, 2) rewards, each agent from its own seat."""
    other = jnp.flip(actions, axis=-1)
    return params.payoff[actions, other]


class IteratedMatrixGame:
    """Iterated 2x2 game with a fixed number of rounds and no early end.

    ``reset(key, params) -> (obs, state)``;
    ``step(key, state, actions, params) -> (obs, state, rewards, done, info)`` with
    obs ``(2,)`` int32 tokens, rewards ``(2,)`` float32 and ``done`` true after the last round.
    """

    num_agents = NUM_AGENTS
    num_actions = NUM_ACTIONS
    num_tokens = NUM_TOKENS

    def __init__(self, num_rounds: int = 100):
        if num_rounds < 1:
            raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
        self.num_rounds = int(num_rounds)

    @staticmethod
    def default_params() -> MatrixGameParams:
        return MatrixGameParams()

    def reset(self, key: jax.Array, params: MatrixGameParams):
        del key, params  # deterministic start
        state = MatrixGameState(
            round=jnp.zeros((), jnp.int32), last_actions=jnp.zeros((NUM_AGENTS,), jnp.int32)
        )
        obs = jnp.full((NUM_AGENTS,), START, jnp.int32)
        return obs, state

    def step(self, key: jax.Array, state: MatrixGameState, actions: jax.Array, params):
        del key  # the game itself is deterministic
        actions = jnp.asarray(actions, jnp.int32)
        rewards = joint_rewards(actions, params)
        state = MatrixGameState(round=state.round + 1, last_actions=actions)
        done = state.round >= self.num_rounds
        obs = first_person_tokens(actions)
        return obs, state, rewards, done, {"actions": actions}
