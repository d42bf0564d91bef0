"""Zero-determinant analysis: a learner's memory-1 behaviour and its Press–Dyson extortion fit.

A trained sequence agent is not memory-1, but late in an episode its behaviour often is close
to one: ``memory1_profile`` estimates P(C | previous joint outcome) from played rounds (first-
person outcomes cc, cd, dc, dd). ``fit_extortion`` then finds the Press–Dyson extortion
strategy p(χ, φ) = (1 − φ(χ−1), 1 − φ(1+2χ), φ(χ+2), 0) (payoffs (T, R, P, S) = (2, 1, 0, −1),
see :func:`coplay.agents.tabular.zd_extortioner`) closest to it, weighting each outcome by how
often it was seen. χ = 1 is the fair ZD family (TFT-like); χ > 1 claims χ times the co-player's
surplus over mutual defection.
"""

from __future__ import annotations

import numpy as np

from coplay.envs.matrix_games import COOPERATE, START

OUTCOMES = ("cc", "cd", "dc", "dd")
MIN_INFORMATIVE_WEIGHT = 0.05  # share of rounds after cc / cd / dc needed to identify χ


def memory1_profile(tokens: np.ndarray, actions: np.ndarray, from_round: int = 0):
    """P(C | outcome) and counts from rounds ``t >= from_round``.

    tokens, actions: (T, ...) int, what the agent saw before acting (START, cc, cd, dc, dd as
    in :mod:`coplay.envs.matrix_games`) and what it did. Returns ``(p (4,), counts (4,))``
    with NaN where an outcome never occurred.
    """
    tokens = np.asarray(tokens)[from_round:].reshape(-1)
    coop = (np.asarray(actions)[from_round:].reshape(-1) == COOPERATE).astype(np.float64)
    counts = np.array([(tokens == START + 1 + k).sum() for k in range(4)], np.float64)
    sums = np.array([coop[tokens == START + 1 + k].sum() for k in range(4)])
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return p, counts


def extortion_vector(chi: float, phi: float) -> np.ndarray:
    """(4,) Press–Dyson extortion strategy for (cc, cd, dc, dd)."""
    return np.array([1 - phi * (chi - 1), 1 - phi * (1 + 2 * chi), phi * (chi + 2), 0.0])


def fit_extortion(p: np.ndarray, counts: np.ndarray | None = None,
                  chis: np.ndarray | None = None) -> dict:
    """Weighted least-squares fit of (χ, φ) to a memory-1 profile ``p`` (4,).

    For a fixed χ the strategy is affine in φ, so φ has a closed form (clipped to the
    admissible (0, 1/(1+2χ)]); χ is scanned on a grid (default 1 … 20 in steps of 0.01).
    Outcomes never seen (NaN) get weight 0. Returns chi, phi, the fitted vector and the
    weighted RMS error. Every extortioner has P(C | dd) = 0, so a profile seen (almost) only
    after mutual defection fits every χ equally well: when cc, cd and dc together carry less
    than ``MIN_INFORMATIVE_WEIGHT`` of the weight, chi and phi are None (not identifiable).
    """
    p = np.asarray(p, np.float64)
    w = np.ones(4) if counts is None else np.asarray(counts, np.float64)
    w = np.where(np.isnan(p), 0.0, w)
    if w.sum() <= 0:
        raise ValueError("no outcome observed: nothing to fit")
    w = w / w.sum()
    q = np.nan_to_num(p)
    chis = np.arange(1.0, 20.0 + 1e-9, 0.01) if chis is None else np.asarray(chis, np.float64)
    a = np.array([1.0, 1.0, 0.0, 0.0])
    b = np.stack([1 - chis, -1 - 2 * chis, 2 + chis, np.zeros_like(chis)], -1)  # (K, 4)
    phi = ((b * w) @ (q - a)) / np.maximum((b * w * b).sum(-1), 1e-12)
    phi = np.clip(phi, 1e-9, 1.0 / (1.0 + 2.0 * chis))
    fitted = a + phi[:, None] * b
    err = ((fitted - q) ** 2 * w).sum(-1)
    best = int(np.argmin(err))
    if w[:3].sum() < MIN_INFORMATIVE_WEIGHT:
        return {"chi": None, "phi": None, "fitted": None, "rms": None}
    return {"chi": float(chis[best]), "phi": float(phi[best]),
            "fitted": fitted[best].round(4).tolist(), "rms": float(np.sqrt(err[best]))}
