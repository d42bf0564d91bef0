"""PPI's data: recorded :class:`Episodes` (what datasets store), their tokenisation into model
inputs and targets (:func:`tokenize`), and D_0, games between random tabular pairs
(:func:`make_random_pairs`)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.gru import AgentInput
from coplay.agents.tabular import memory1_act, memory1_log_policy, random_memory1
from coplay.algos.ipd_game import History, game_step, new_game
from coplay.envs.matrix_games import START, MatrixGameParams, first_person_tokens


class Episodes(NamedTuple):
    """Recorded episodes from one seat, batch-major (N, T): what datasets store."""

    action: np.ndarray  # (N, T) int8, own actions
    opponent_action: np.ndarray  # (N, T) int8
    reward: np.ndarray  # (N, T) float16 (IPD rewards are exact in float16)
    opponent_id: np.ndarray  # (N, 10) float16, the co-player's z (zeros for learners)


def tokenize(ep: Episodes):
    """Episodes (N, T) -> model inputs and targets, time-major (T, N).

    Round t's input is (o_t, a_{t-1}, r_{t-1}) with o_0 the start token, a_{-1} = -1 and
    r_{-1} = 0; its targets are a_t, the next observation o_{t+1} (the joint action of round t
    seen first-person) and the reward r_t. Returns ``(AgentInput, actions, next_tokens,
    rewards)``.
    """
    action = jnp.asarray(ep.action, jnp.int32)
    other = jnp.asarray(ep.opponent_action, jnp.int32)
    reward = jnp.asarray(ep.reward, jnp.float32)
    next_tokens = first_person_tokens(jnp.stack([action, other], -1))[..., 0]  # (N, T)
    n = action.shape[0]
    token = jnp.concatenate([jnp.full((n, 1), START, jnp.int32), next_tokens[:, :-1]], 1)
    prev_action = jnp.concatenate([jnp.full((n, 1), -1, jnp.int32), action[:, :-1]], 1)
    prev_reward = jnp.concatenate([jnp.zeros((n, 1), jnp.float32), reward[:, :-1]], 1)
    z = jnp.broadcast_to(jnp.asarray(ep.opponent_id, jnp.float32)[None],
                         (action.shape[1], *ep.opponent_id.shape))
    tm = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    inputs = AgentInput(tm(token), tm(prev_action), tm(prev_reward), z)
    return inputs, tm(action), tm(next_tokens), tm(reward)


# -- D0: random tabular pairs -------------------------------------------------------------------

def make_random_pairs(num_rounds: int, env_params: MatrixGameParams | None = None):
    """Jitted ``play(key, n) -> Episodes`` of 2n trajectories: n games between two fresh U(0,1)
    memory-1 agents, each game seen from both seats (rows [0, n) seat 0, [n, 2n) seat 1)."""
    env_params = MatrixGameParams() if env_params is None else env_params

    def play(key, n):
        k_tab, k_play = jax.random.split(key)
        probs = random_memory1(k_tab, (n, 2))  # (n, seat, 5)

        def step(history: History, key):
            pair = lambda h: (memory1_act(key, probs, h.token), None)  # noqa: E731  (n, 2)
            history, _ = game_step(history, pair, env_params)
            return history, (history.action, history.reward)

        _, (actions, rewards) = jax.lax.scan(step, new_game((n,)),
                                             jax.random.split(k_play, num_rounds))
        seat = lambda x: jnp.concatenate([x[..., 0].T, x[..., 1].T], 0)  # noqa: E731
        z = memory1_log_policy(probs)  # (n, seat, 10): each seat's own log-policy
        return (seat(actions), seat(jnp.flip(actions, -1)), seat(rewards),
                jnp.concatenate([z[:, 1], z[:, 0]], 0))  # a seat's co-player is the other seat

    jitted = jax.jit(play, static_argnums=1)

    def run(key, n) -> Episodes:
        a, b, r, z = jitted(key, n)
        return Episodes(np.asarray(a, np.int8), np.asarray(b, np.int8),
                        np.asarray(r, np.float16), np.asarray(z, np.float16))

    return run

