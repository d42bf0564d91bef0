"""One round of the iterated matrix game, written once, the seats' policies a callback.

Every IPD loop in the package — A2C's rollout (training and evaluation), PPI's collection of
games with its improved policy, and D0's games between random tabular pairs — is a
``lax.scan`` of :func:`game_step` over rounds. What a seat has seen of the game is its
:class:`History` (first person: its own token, its own last action and reward); the callback
``policy(history) -> (joint_action (..., 2), aux)`` chooses both seats' actions at once (so a
joint draw, as D0's, keeps its random numbers), the step scores the joint action and writes
the next history. Keys stay with the callers: each draws them in its own order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.gru import AgentInput
from coplay.envs.matrix_games import START, MatrixGameParams, first_person_tokens, joint_rewards

__all__ = ["History", "new_game", "game_step", "seat_input"]


class History(NamedTuple):
    """What each seat has seen so far, seat on the last axis (..., 2), seat 0 first."""

    token: jax.Array  # (..., 2) int32 first-person token of the last round (START before any)
    action: jax.Array  # (..., 2) int32 own action of the last round (-1 before any)
    reward: jax.Array  # (..., 2) float32 own reward of the last round (0 before any)


def new_game(shape: tuple[int, ...]) -> History:
    """The history before the first round of games of batch shape ``shape``: (*shape, 2)."""
    seats = (*shape, 2)
    return History(jnp.full(seats, START, jnp.int32), jnp.full(seats, -1, jnp.int32),
                   jnp.zeros(seats, jnp.float32))


def game_step(history: History, policy: Callable[[History], tuple[jax.Array, Any]],
              env_params: MatrixGameParams) -> tuple[History, Any]:
    """One round: ``policy(history) -> (joint action (..., 2) int32, aux)``, then the payoffs
    and first-person tokens of that joint action. Returns the next history (whose ``action``
    and ``reward`` are this round's) and the policy's aux."""
    joint, aux = policy(history)
    reward = joint_rewards(joint, env_params)  # (..., 2), each seat from its own side
    return History(first_person_tokens(joint), joint, reward), aux


def seat_input(history: History, opponent_id: jax.Array, seat: int = 0) -> AgentInput:
    """A sequence agent's input in ``seat``: its token, last action and reward, and the
    co-player's id vector ``opponent_id`` (..., 10) (zeros unless the ablation is on)."""
    return AgentInput(history.token[..., seat], history.action[..., seat],
                      history.reward[..., seat], opponent_id)
