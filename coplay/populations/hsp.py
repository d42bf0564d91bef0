"""Hidden-utility (HSP) pairs as population members of the PPO trainer.

A member is one pair trained jointly (spec §2, CooT §4.2): seat 0 is the biased policy π_w,
paid its hidden utility r_w = w · events + w_sparse · sparse (the HSP grid's fixed entries —
useful dish pickup 3, soup pickup 5, placement in pot 3 — are part of w and are not
annealed); seat 1 is its best response π_BR, paid the team sparse reward plus the standard
shaping, annealed to 0. All of it lives in the member's :class:`EnvParams`, read per seat by
:mod:`coplay.algos.ppo`: ``event_weights`` (2, E) = [w, 0], ``sparse_weight`` (2,) =
[w_sparse, 1], ``shaping_factor`` (2,) = [0, 1] (the trainer multiplies it by the annealing
schedule when ``PPOConfig.shaping_factor`` is None). Self-play is the special case
w = 0, w_sparse = 1.
"""

from __future__ import annotations

import numpy as np

from coplay.algos import ppo
from coplay.envs.overcooked import Overcooked, hsp_candidates
from coplay.envs.overcooked.state import EnvParams

BIASED, BR = 0, 1  # seats of a pair


def pair_params(env: Overcooked, event_weights: np.ndarray, sparse_weight: float,
                horizon: int = 400) -> EnvParams:
    """EnvParams of one pair: seat 0 on r_w, seat 1 on sparse + (annealed) standard shaping."""
    w = np.zeros((2, env.num_events), np.float32)
    w[BIASED] = np.asarray(event_weights, np.float32)
    return env.default_params(horizon=horizon, event_weights=w,
                              sparse_weight=np.array([sparse_weight, 1.0], np.float32),
                              shaping_factor=np.array([0.0, 1.0], np.float32))


def population_params(env: Overcooked, event_weights: np.ndarray, sparse_weights: np.ndarray,
                      horizon: int = 400) -> EnvParams:
    """Stacked EnvParams (M, ...) of M pairs; ``event_weights`` (M, E), ``sparse_weights`` (M,)."""
    return ppo.stack_params([pair_params(env, w, s, horizon)
                             for w, s in zip(event_weights, sparse_weights, strict=True)])


def choose_candidates(layout: str, num_members: int, seed: int,
                      indices: tuple[int, ...] | None = None) -> np.ndarray:
    """Indices into ``hsp_candidates(layout)`` of the members to train: ``indices`` as given,
    else ``num_members`` drawn without replacement by a NumPy generator seeded with ``seed``
    (sorted), so nothing about the weights' difficulty steers the choice."""
    w, _ = hsp_candidates(layout)
    n = len(w)
    if indices is not None:
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"candidate indices must lie in [0, {n}) for {layout}")
        return idx
    if num_members > n:
        raise ValueError(f"{layout} has {n} HSP candidates, fewer than {num_members} members")
    return np.sort(np.random.default_rng(seed).choice(n, num_members, replace=False))


def describe_weights(event_names: tuple[str, ...], w: np.ndarray, sparse: float) -> dict:
    """The non-zero entries of a weight vector by event name (and ``sparse``)."""
    out = {name: float(x) for name, x in zip(event_names, w, strict=True) if x != 0}
    out["sparse"] = float(sparse)
    return out
