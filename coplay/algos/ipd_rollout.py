"""Batched IPD rollouts of learning agents against a mixed pool, as one ``lax.scan``.

There are ``L`` learners (2 in the paper) on a leading agent axis, each playing ``N`` episodes.
Episode ``e`` of learner ``l`` is either against a tabular memory-1 agent
(``opponents.tabular[l, e]``) or, where ``opponents.is_learner[e]``, against another
learner: by default the flip of the agent axis (with 2 learners, the other one), or
``opponents.partner[l, e]`` (a pairing of the learners, drawn per episode). Episode ``e`` of
learner ``l`` and episode ``e`` of its partner are then the same game seen from the two seats,
so one rollout yields both learners' data. All arrays are time-major: ``(T, L, N, ...)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.gru import AgentInput, GRUAgent
from coplay.agents.tabular import memory1_act, memory1_log_policy
from coplay.algos.ipd_game import History, game_step, new_game, seat_input
from coplay.envs.matrix_games import MatrixGameParams


class Opponents(NamedTuple):
    tabular: jax.Array  # (L, N, 5) memory-1 policies, used where is_learner is False
    is_learner: jax.Array  # (N,) bool: episode e is learner-vs-learner
    # (L, N) int32 learner co-player of each learner episode, an involution over the learner
    # axis for every e; None: the flip of the agent axis (learner l plays learner L-1-l)
    partner: jax.Array | None = None


class Trajectory(NamedTuple):
    """What one rollout records, time-major (T, L, N, ...)."""

    inputs: AgentInput  # what the learner saw before acting
    action: jax.Array  # (T, L, N) int32
    log_prob: jax.Array  # (T, L, N) float32, behaviour log pi(a|x)
    value: jax.Array  # (T, L, N)
    reward: jax.Array  # (T, L, N) raw game reward
    opponent_action: jax.Array  # (T, L, N) int32


def random_pairing(key: jax.Array, num_learners: int, num_episodes: int) -> jax.Array:
    """(L, N) int32: for every episode an independent uniform perfect matching of the L
    (even) learners; entry [l, e] is the partner of learner l, so partner[partner[l]] = l."""
    order = jnp.argsort(jax.random.uniform(key, (num_episodes, num_learners)), axis=1)
    seat = jnp.argsort(order, axis=1)  # seat[e, l]: where learner l sits in episode e's order
    partner = jnp.take_along_axis(order, seat ^ 1, axis=1)  # seats 2i and 2i+1 play each other
    return partner.T.astype(jnp.int32)


def partner_values(x: jax.Array, partner: jax.Array | None) -> jax.Array:
    """(L, N) -> what each learner's learner co-player has in that episode: the flip of the
    agent axis when ``partner`` is None (with one learner, the agent itself: self-play), else
    the entry of the episode's drawn partner."""
    if partner is None:
        return jnp.flip(x, 0)
    return jnp.take_along_axis(x, partner, axis=0)


def opponent_ids(opponents: Opponents) -> jax.Array:
    """(L, N, 10): the spec's z vector — tabular log-policy, zeros for learner co-players."""
    z = memory1_log_policy(opponents.tabular)
    return jnp.where(opponents.is_learner[None, :, None], 0.0, z)


def rollout(key: jax.Array, agent: GRUAgent, params, opponents: Opponents,
            env_params: MatrixGameParams, num_rounds: int, use_opponent_id: bool = False,
            unroll: int = 1) -> Trajectory:
    """Play ``num_rounds`` rounds of all L x N episodes. ``params`` has a leading L axis.

    ``use_opponent_id`` fills the inputs' opponent-id vectors (else zeros); whether the agent
    reads them is the agent's business (its policy, its critic, or neither).
    """
    return rollout_with_final_value(key, agent, params, opponents, env_params, num_rounds,
                                    use_opponent_id, unroll)[0]


def coplayer_values(opponents: Opponents, learner: jax.Array, tabular: jax.Array) -> jax.Array:
    """(L, N) what each learner's co-player has: its learner partner's entry of ``learner``
    (L, N) in learner episodes (:func:`partner_values`), else the entry of ``tabular``."""
    return jnp.where(opponents.is_learner[None, :], partner_values(learner, opponents.partner),
                     tabular)


def coplayer_action(key: jax.Array, opponents: Opponents, history: History,
                    learner_action: jax.Array) -> jax.Array:
    """(L, N) int32 the co-players' actions in seat 1 of ``history`` (L, N, 2): the learner
    partner's ``learner_action``, or a draw of the tabular agent on its own token."""
    tabular = memory1_act(key, opponents.tabular, history.token[..., 1])
    return coplayer_values(opponents, learner_action, tabular)


class RolloutCarry(NamedTuple):
    """Between rounds of a learners' rollout (A2C's :func:`rollout_with_final_value`, PPI's
    ``ppi.rollout``)."""

    hidden: jax.Array  # (L, N, H) learners' GRU states
    history: History  # (L, N, 2) learner in seat 0, co-player in seat 1
    key: jax.Array


def rollout_with_final_value(key: jax.Array, agent: GRUAgent, params, opponents: Opponents,
                             env_params: MatrixGameParams, num_rounds: int,
                             use_opponent_id: bool = False,
                             unroll: int = 1) -> tuple[Trajectory, jax.Array]:
    """:func:`rollout`, plus each learner's value (L, N) of the whole history after the last
    round — what an advantage bootstraps from when the horizon is a time limit."""
    num_learners, num_episodes = opponents.tabular.shape[:2]
    z = opponent_ids(opponents) if use_opponent_id else jnp.zeros(
        (num_learners, num_episodes, 10), jnp.float32
    )
    apply_step = jax.vmap(agent.apply)  # over the learner axis

    def step(carry: RolloutCarry, _):
        key, k_act, k_tab = jax.random.split(carry.key, 3)

        def policy(history: History):
            inputs = seat_input(history, z)  # what the learner sees before acting
            hidden, (logits, value) = apply_step(params, carry.hidden, inputs)
            action = jax.random.categorical(k_act, logits).astype(jnp.int32)  # (L, N)
            joint = jnp.stack([action, coplayer_action(k_tab, opponents, history, action)], -1)
            return joint, (inputs, hidden, logits, value)

        history, (inputs, hidden, logits, value) = game_step(carry.history, policy, env_params)
        action = history.action[..., 0]
        log_prob = jnp.take_along_axis(
            jax.nn.log_softmax(logits), action[..., None], axis=-1
        )[..., 0]
        out = Trajectory(inputs, action, log_prob, value, history.reward[..., 0],
                         history.action[..., 1])
        return RolloutCarry(hidden, history, key), out

    init = RolloutCarry(jnp.zeros((num_learners, num_episodes, agent.hidden_size), jnp.float32),
                        new_game((num_learners, num_episodes)), key)
    last, traj = jax.lax.scan(step, init, None, length=num_rounds, unroll=unroll)
    _, (_, final_value) = apply_step(params, last.hidden, seat_input(last.history, z))
    return traj, final_value
