"""Diversity features and the two selections of a population (spec §2, ZSC-Eval).

- :func:`event_features`: per pair, the event counts per episode of both seats (biased and
  best response) in the pair's evaluation episodes, each column divided by its max + 1e-3.
- :func:`greedy_select`: the training pool, greedily maximising the total L1 distance.
- :func:`dpp_select`: evaluation partners, the size-k subset with the largest det(L_S) of the
  linear kernel L = F Fᵀ: exact enumeration when C(n, k) is small, else the best of k-DPP
  samples (Kulesza & Taskar 2011, Alg. 1 with the elementary symmetric polynomials of §5.2).
- :func:`select_sets`: evaluation set first (DPP over pairs with return > 10), then the
  training pool (greedy over the remaining pairs with return > 0.1): disjoint by construction.
- :func:`mid_skill`: the snapshot whose return is closest to half the final return.

Plain NumPy: it runs on a few dozen vectors outside any jitted program.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

FEATURE_EPS = 1e-3


def event_features(events: np.ndarray) -> np.ndarray:
    """(M, 2, E) mean event counts per episode (seats: biased, BR) -> (M, 2E) features, each
    column divided by its max over members + 1e-3 (so every entry lies in [0, 1))."""
    f = np.asarray(events, np.float64).reshape(len(events), -1)
    return f / (np.abs(f).max(axis=0, keepdims=True) + FEATURE_EPS)


def l1_distances(features: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) pairwise L1 distances."""
    f = np.asarray(features, np.float64)
    return np.abs(f[:, None, :] - f[None, :, :]).sum(-1)


def diversity_score(features: np.ndarray) -> float:
    """Mean pairwise L1 distance of normalised features (0 when all profiles are equal)."""
    n = len(features)
    if n < 2:
        return 0.0
    return float(l1_distances(features).sum() / (n * (n - 1)))


def greedy_select(features: np.ndarray, k: int, candidates=None,
                  first_seed: int | None = None) -> list[int]:
    """Greedy max-total-L1 subset of size k among ``candidates`` (default: all rows).

    The first pick is the candidate with the largest summed L1 distance to all candidates,
    or (``first_seed``, the CooT release's way) one drawn uniformly with that seed; each next
    pick maximises the summed L1 distance to those already picked. Ties go to the lowest
    index. Returns row indices in pick order."""
    cand = list(range(len(features))) if candidates is None else [int(c) for c in candidates]
    if k > len(cand):
        raise ValueError(f"cannot select {k} from {len(cand)} candidates")
    if k <= 0:
        return []
    d = l1_distances(features)
    sub = d[np.ix_(cand, cand)]
    first = (int(np.argmax(sub.sum(1))) if first_seed is None
             else int(np.random.default_rng(first_seed).integers(len(cand))))
    chosen = [first]  # positions in cand
    while len(chosen) < k:
        score = sub[:, chosen].sum(1)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return [cand[i] for i in chosen]


def log_det(kernel: np.ndarray, subset) -> float:
    """log det of the principal submatrix (-inf when singular)."""
    s = list(subset)
    if not s:
        return 0.0
    sign, ld = np.linalg.slogdet(kernel[np.ix_(s, s)])
    return float(ld) if sign > 0 else -math.inf


def _elementary_symmetric(lam: np.ndarray, k: int) -> np.ndarray:
    """E[l, n] = e_l(lam_1..lam_n), l = 0..k, n = 0..N."""
    n = len(lam)
    e = np.zeros((k + 1, n + 1))
    e[0, :] = 1.0
    for ll in range(1, k + 1):
        for m in range(1, n + 1):
            e[ll, m] = e[ll, m - 1] + lam[m - 1] * e[ll - 1, m - 1]
    return e


def sample_k_dpp(kernel: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """One exact sample of a k-DPP with PSD ``kernel`` (Kulesza & Taskar 2011)."""
    lam, vecs = np.linalg.eigh(kernel)
    lam = np.clip(lam, 0.0, None)
    if (lam > 1e-10 * max(lam.max(), 1e-300)).sum() < k:
        raise ValueError(f"kernel rank < {k}: no subset of size {k} has a positive determinant")
    e = _elementary_symmetric(lam, k)
    # phase 1: pick k eigenvectors
    picked, remaining = [], k
    for n in range(len(lam), 0, -1):
        if remaining == 0:
            break
        if n == remaining or rng.random() < lam[n - 1] * e[remaining - 1, n - 1] / e[remaining, n]:
            picked.append(n - 1)
            remaining -= 1
    v = vecs[:, picked]  # (N, k)
    # phase 2: sample items from the projection DPP spanned by v
    items = []
    while v.shape[1] > 0:
        p = (v ** 2).sum(1)
        p = np.clip(p, 0, None) / p.sum()
        i = int(rng.choice(len(p), p=p))
        items.append(i)
        j = int(np.argmax(np.abs(v[i])))
        vj = v[:, j]
        v = v - np.outer(vj, v[i] / vj[i])
        v = np.delete(v, j, axis=1)
        if v.shape[1]:
            v, _ = np.linalg.qr(v)
    return sorted(items)


def dpp_select(features: np.ndarray, k: int, candidates=None, exact_limit: int = 100_000,
               num_samples: int = 2000, seed: int = 0) -> tuple[list[int], float, str]:
    """Size-k subset of ``candidates`` with the largest det of L = F Fᵀ.

    Returns (row indices sorted, log det, "exact" or "sampled"). With C(n, k) <= exact_limit
    every subset is scored; otherwise ``num_samples`` k-DPP samples are drawn (seeded) and the
    best is kept."""
    cand = list(range(len(features))) if candidates is None else [int(c) for c in candidates]
    if k > len(cand):
        raise ValueError(f"cannot select {k} from {len(cand)} candidates")
    if k <= 0:
        return [], 0.0, "exact"
    f = np.asarray(features, np.float64)[cand]
    kernel = f @ f.T
    if math.comb(len(cand), k) <= exact_limit:
        best, best_ld, how = None, -math.inf, "exact"
        for s in itertools.combinations(range(len(cand)), k):
            ld = log_det(kernel, s)
            if best is None or ld > best_ld:
                best, best_ld = s, ld
    else:
        rng = np.random.default_rng(seed)
        best, best_ld, how = None, -math.inf, "sampled"
        for _ in range(num_samples):
            s = sample_k_dpp(kernel, k, rng)
            ld = log_det(kernel, s)
            if best is None or ld > best_ld:
                best, best_ld = s, ld
    return sorted(cand[i] for i in best), best_ld, how


def select_sets(features: np.ndarray, returns: np.ndarray, train_size: int, eval_size: int,
                train_min_return: float = 0.1, eval_min_return: float = 10.0,
                exact_limit: int = 100_000, num_samples: int = 2000, seed: int = 0,
                first_seed: int | None = None) -> dict:
    """Evaluation partners by k-DPP among pairs with return > ``eval_min_return``, then the
    training pool greedily among the *other* pairs with return > ``train_min_return``
    (``first_seed``: its first pick drawn with that seed, see :func:`greedy_select`).

    Sizes shrink to what is eligible (reported). Returns a dict with ``eval``, ``train``
    (member indices), ``eval_log_det``, ``eval_method``, the eligible sets and the
    features' diversity scores."""
    returns = np.asarray(returns, np.float64)
    eval_ok = [i for i in range(len(returns)) if returns[i] > eval_min_return]
    k_eval = min(eval_size, len(eval_ok))
    eval_set, ld, how = dpp_select(features, k_eval, eval_ok, exact_limit, num_samples, seed)
    train_ok = [i for i in range(len(returns))
                if returns[i] > train_min_return and i not in eval_set]
    k_train = min(train_size, len(train_ok))
    train_set = greedy_select(features, k_train, train_ok, first_seed)
    assert not set(train_set) & set(eval_set)
    return {
        "eval": eval_set, "train": train_set, "eval_log_det": ld, "eval_method": how,
        "eval_eligible": eval_ok, "train_eligible": train_ok,
        "diversity_all": diversity_score(features),
        "diversity_train": diversity_score(np.asarray(features)[train_set]) if train_set else 0.0,
        "diversity_eval": diversity_score(np.asarray(features)[eval_set]) if eval_set else 0.0,
    }


def mid_skill(returns: np.ndarray, final: float) -> int:
    """Index of the snapshot whose return is closest to final / 2 (earliest on ties)."""
    r = np.asarray(returns, np.float64)
    return int(np.argmin(np.abs(r - final / 2.0)))
