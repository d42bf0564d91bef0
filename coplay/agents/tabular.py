"""Tabular memory-1 agents for iterated 2x2 games.

A memory-1 policy is 5 numbers: P(cooperate | token) for the first-person tokens
(start, cc, cd, dc, dd) of :mod:`coplay.envs.matrix_games`. Batches of policies are arrays of
shape ``(..., 5)``; nothing here loops in Python.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.envs.matrix_games import COOPERATE, DEFECT, NUM_TOKENS


def random_memory1(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """The spec's random pool: every one of the 5 probabilities drawn from U(0, 1)."""
    return jax.random.uniform(key, (*shape, NUM_TOKENS))


def memory1_act(key: jax.Array, probs: jax.Array, token: jax.Array) -> jax.Array:
    """Sample actions. probs (..., 5), token (...) int -> actions (...) int32 (0 = C)."""
    p_coop = jnp.take_along_axis(probs, token[..., None], axis=-1)[..., 0]
    cooperate = jax.random.uniform(key, p_coop.shape) < p_coop
    return jnp.where(cooperate, COOPERATE, DEFECT).astype(jnp.int32)


def memory1_log_policy(probs: jax.Array, eps: float = 1e-6, xp=jnp) -> jax.Array:
    """(…, 5) -> (…, 10): log P(C|s), log P(D|s) per token — the spec's opponent-id vector z.

    ``xp`` is the array module: ``jnp`` (default, traceable) or ``np`` for host-side callers,
    which then compute in their arrays' dtype (e.g. float64) with this same formula."""
    p = xp.clip(probs, eps, 1.0 - eps)
    return xp.concatenate([xp.log(p), xp.log1p(-p)], axis=-1)


def zd_extortioner(chi: float = 2.0, phi: float | None = None, p_start: float = 1.0):
    """Press–Dyson extortion strategy for the spec's payoffs (T, R, P, S) = (2, 1, 0, -1).

    p = (1 - phi (chi - 1), 1 - phi (1 + 2 chi), phi (chi + 2), 0) for (cc, cd, dc, dd);
    ``phi`` defaults to half its largest admissible value 1 / (1 + 2 chi).
    """
    if chi < 1:
        raise ValueError(f"chi must be >= 1, got {chi}")
    phi_max = 1.0 / (1.0 + 2.0 * chi)
    phi = 0.5 * phi_max if phi is None else phi
    if not 0 < phi <= phi_max:
        raise ValueError(f"phi must be in (0, {phi_max:.4f}] for chi={chi}, got {phi}")
    return np.array(
        [p_start, 1 - phi * (chi - 1), 1 - phi * (1 + 2 * chi), phi * (chi + 2), 0.0],
        dtype=np.float32,
    )


# Classic strategies: P(C | start, cc, cd, dc, dd), tokens first-person (own action first).
PROBES: dict[str, np.ndarray] = {
    "TFT": np.array([1, 1, 0, 1, 0], np.float32),  # copy the co-player's last move
    "AllC": np.ones(5, np.float32),
    "AllD": np.zeros(5, np.float32),
    "Pavlov": np.array([1, 1, 0, 0, 1], np.float32),  # win-stay, lose-shift
    "GTFT": np.array([1, 1, 1 / 3, 1, 1 / 3], np.float32),  # generous TFT (forgives 1/3)
    "Random": np.full(5, 0.5, np.float32),
    "ZD-Extort": zd_extortioner(2.0),
}
