"""A CooT's closed-loop return with training partners, over their best responses' (issue 38:
select and report agents by how they play, not by a teacher-forced loss).

:func:`prepare` plays every pair's best response with its partner once (``br_episodes`` per
seat: the denominators) and stacks the partners by architecture; :meth:`ClosedLoop.score`
then plays an agent with every partner in both seats, ``episodes`` consecutive episodes from an
empty context (its memory carried over, as deployed), on the same games every time (one key):
per pair, the agent's return over the best response's (seats and episodes pooled), and their
mean. Training partners only — never the held-out ones.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.base import Agent
from coplay.envs.overcooked import Overcooked
from coplay.eval.in_context import play_episodes
from coplay.experiments.coot.data import Pair


class ClosedLoop(NamedTuple):
    """A prepared check: the pairs, their partners stacked by architecture, the denominators."""

    env: Overcooked
    names: list[str]
    groups: list[tuple[Agent, np.ndarray]]  # (partners stacked, their pair indices)
    br: np.ndarray  # (P, 2) best response's mean return per seat
    episodes: int
    episode_len: int
    key: jax.Array

    def score(self, agent: Agent) -> dict:
        """``ratio`` (the mean over pairs of return / best response's), ``per_pair`` and
        ``returns`` (P, 2, E) of ``agent`` on the check's games."""
        p = len(self.names)
        returns = np.zeros((p, 2, self.episodes))
        params = self.env.default_params(horizon=self.episode_len)
        for stacked, idx in self.groups:
            n = len(idx)
            index = jnp.repeat(jnp.arange(n, dtype=jnp.int32), 2)  # (partner, seat) games
            cooks = jnp.tile(jnp.arange(2, dtype=jnp.int32), n)
            r = play_episodes(self.env, params, agent, stacked, index, cooks, self.key,
                              episodes=self.episodes, steps=self.episode_len)
            returns[idx] = np.asarray(r["returns"]).T.reshape(n, 2, self.episodes)
        per_pair = returns.mean((1, 2)) / np.maximum(self.br.mean(1), 1e-9)
        return {"ratio": float(per_pair.mean()), "per_pair": per_pair.round(4).tolist(),
                "returns": returns}


def _arch(agent: Agent):
    """What must agree for partners to share one stacked program (the name need not)."""
    leaves = jax.tree.leaves(agent.params)
    return (agent.replace(params=None, name=""), jax.tree.structure(agent.params),
            tuple((np.shape(x), np.asarray(x).dtype.str) for x in leaves))


def prepare(pairs: list[Pair], layout: str, episodes: int, episode_len: int,
            br_episodes: int, seed: int = 0, br: np.ndarray | None = None) -> ClosedLoop:
    """Load the pairs' partners and play their best responses once (``br``: their returns per
    pair and seat (P, 2), where the caller has played them already)."""
    if not pairs:
        raise ValueError("a closed-loop check needs at least one training pair")
    env = Overcooked(layout)
    params = env.default_params(horizon=episode_len)
    key = jax.random.PRNGKey(seed)
    partners = [pair.partner.load() for pair in pairs]
    if br is None:
        br = np.zeros((len(pairs), 2))
        cooks = jnp.repeat(jnp.arange(2, dtype=jnp.int32), br_episodes)
        for i, (pair, partner) in enumerate(zip(pairs, partners, strict=True)):
            one = partner.replace(params=jax.tree.map(lambda x: jnp.asarray(x)[None],
                                                      partner.params))
            r = play_episodes(env, params, pair.br.load(), one, jnp.zeros_like(cooks), cooks,
                              jax.random.fold_in(key, i), episodes=1, steps=episode_len)
            br[i] = np.asarray(r["returns"][0]).reshape(2, br_episodes).mean(1)
    elif np.shape(br) != (len(pairs), 2):
        raise ValueError(f"br of shape {np.shape(br)}, expected {(len(pairs), 2)}")
    by_arch: dict = {}
    for i, partner in enumerate(partners):
        by_arch.setdefault(_arch(partner), []).append(i)
    groups = []
    for idx in by_arch.values():
        members = [partners[i] for i in idx]
        stacked = members[0].replace(params=jax.tree.map(
            lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *[m.params for m in members]))
        groups.append((stacked, np.asarray(idx)))
    return ClosedLoop(env, [p.name for p in pairs], groups, br, episodes, episode_len,
                      jax.random.fold_in(key, 1_000_000))
