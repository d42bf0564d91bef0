"""Evaluation metrics of the Coordination Transformer (spec overcooked-coot.md §4).

Pure NumPy, host-side: these run on the returns an evaluation has already collected.

Array conventions (every function checks them and raises ``ValueError`` naming the shapes):

- ``ego``: ``(P, S, N, E)`` float — the ego agent's return per partner ``P``, ego seat ``S``,
  ego seed ``N`` and consecutive episode ``E`` (episode 1 first; context carried over).
- ``br``: the return of each partner's best response, playing in the seat the ego took, either
  ``(P, S)`` (one BR per partner and seat, shared by every ego seed: it is broadcast over
  ``N``) or ``(P, S, N)`` (one BR value per ego seed). Nothing else is broadcast: a ``(P,)``
  or ``(P, 1)`` BR is refused rather than silently stretched over seats.

Metrics:

- :func:`br_prox_paper` — the CooT paper's BR-Prox (ego return / BR return, partners whose BR
  return is 0 skipped), by default the mean over partners of per-partner ratios.
- :func:`br_prox_zsceval` — ZSC-Eval's variant: ``min(1, R_ego / R_BR)`` per partner, seat and
  seed (1 where ``R_BR <= 0``), aggregated by the interquartile mean overall and per seat.
- :func:`iqm` (25 % trimmed mean, ``scipy.stats.trim_mean(x, 0.25)`` semantics) and
  :func:`table10_stats` (min / max / IQR / mean within the IQR, the paper's Table 10).
- :func:`bootstrap_ci`, :func:`bootstrap_diff_ci` — percentile bootstrap over the first axis.
- :func:`adaptation_curve`, :func:`adaptation_gain` — mean return per episode index, and the
  gain from episode ``first`` to episode ``last``, with bootstrap CIs over the
  ``P * S * N`` (partner, seat, seed) units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

# -- shapes -----------------------------------------------------------------------------------


def _check_ego(ego) -> np.ndarray:
    """``ego`` as a float ``(P, S, N, E)`` array with no empty axis."""
    ego = np.asarray(ego, dtype=np.float64)
    if ego.ndim != 4 or 0 in ego.shape:
        raise ValueError(
            f"ego returns must have shape (partners, seats, seeds, episodes) with no empty "
            f"axis; got shape {ego.shape}"
        )
    return ego


def _check_br(br, ego_shape: tuple[int, ...]) -> np.ndarray:
    """``br`` broadcast explicitly to ``(P, S, N)``: a ``(P, S)`` BR is shared by all seeds."""
    br = np.asarray(br, dtype=np.float64)
    p, s, n = ego_shape[:3]
    if br.shape == (p, s):
        return np.broadcast_to(br[:, :, None], (p, s, n))
    if br.shape == (p, s, n):
        return br
    raise ValueError(
        f"BR returns must have shape (partners, seats) = {(p, s)} or (partners, seats, seeds) "
        f"= {(p, s, n)} to match ego returns of shape {tuple(ego_shape)}; got shape {br.shape}"
    )


# -- robust statistics ------------------------------------------------------------------------


def iqm(x, axis: int | None = None, proportion: float = 0.25) -> np.ndarray | float:
    """Interquartile mean: the mean after cutting ``proportion`` of the values at each end.

    Same semantics as ``scipy.stats.trim_mean(x, proportion, axis)``: along ``axis`` (all
    values flattened when ``None``) of length ``n``, sort, drop ``int(proportion * n)`` values
    from each end and average the rest. So ``n = 4`` keeps the middle two, ``n = 5`` drops one
    value each side, ``n < 4`` keeps everything.

    Args:
        x: array of any shape.
        axis: the axis to reduce, or ``None`` for all values.
        proportion: fraction cut from each end, in ``[0, 0.5)``.
    Returns:
        ``x``'s shape without ``axis`` (a float when ``axis`` is ``None``).
    """
    if not 0 <= proportion < 0.5:
        raise ValueError(f"proportion must be in [0, 0.5); got {proportion}")
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError(f"iqm of an empty axis (array of shape {x.shape}, axis {axis})")
    cut = int(proportion * n)
    kept = np.take(np.sort(x, axis=axis), np.arange(cut, n - cut), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if out.ndim == 0 else out


class Table10(NamedTuple):
    """The CooT paper's Table 10 statistics of one set of returns."""

    min: float
    max: float
    iqr: float  # q75 - q25 (numpy's default linear percentile)
    iqr_mean: float  # mean of the values with q25 <= x <= q75
    n: int


def table10_stats(x) -> Table10:
    """Min, max, IQR (``q75 - q25``) and the mean of the values inside the IQR.

    Args:
        x: returns of any shape, flattened (the caller decides what one value is, e.g. the
            mean episode return per partner, or every episode of every partner/seat/seed).
    Returns:
        :class:`Table10`; ``iqr_mean`` averages the values between q25 and q75 inclusive
        (quartiles by ``np.percentile``'s linear interpolation).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("table10_stats of an empty array (shape (0,))")
    q25, q75 = np.percentile(x, [25, 75])
    inside = x[(x >= q25) & (x <= q75)]
    return Table10(min=float(x.min()), max=float(x.max()), iqr=float(q75 - q25),
                   iqr_mean=float(inside.mean()), n=int(x.size))


# -- BR-Prox ----------------------------------------------------------------------------------


class BRProx(NamedTuple):
    """The paper's BR-Prox and what went into it."""

    value: float  # NaN when every partner was skipped
    per_partner: np.ndarray  # (P,) ego mean / BR mean per partner; NaN where skipped
    skipped: np.ndarray  # (P,) bool: partner's mean BR return <= 0
    n_skipped: int
    aggregate: str


def br_prox_paper(
    ego, br, aggregate: Literal["mean_of_ratios", "ratio_of_means"] = "mean_of_ratios"
) -> BRProx:
    """The CooT paper's BR-Prox: ego return relative to each partner's best response.

    For partner ``p``, ``ego_p`` is the mean of ``ego[p]`` over seats, seeds and episodes and
    ``br_p`` the mean of ``br[p]`` over seats (and seeds); a ``(P, S)`` ``br`` is broadcast
    over the ego's seeds, which leaves ``br_p`` unchanged. Partners with ``br_p <= 0`` are
    skipped (the spec says "BR return 0"; sparse returns cannot be negative, and a ratio to a
    negative BR means nothing, so negative ones are skipped too) and counted in ``n_skipped``.

    Args:
        ego: ``(P, S, N, E)`` ego returns.
        br: ``(P, S)`` or ``(P, S, N)`` best-response returns.
        aggregate: **default ``"mean_of_ratios"``**: the mean over kept partners of
            ``ego_p / br_p`` (one number per layout, each partner weighted equally).
            ``"ratio_of_means"``: mean of ``ego_p`` over kept partners divided by mean of
            ``br_p`` over kept partners (partners with high BR returns weigh more).
    Returns:
        :class:`BRProx`; ``per_partner`` holds ``ego_p / br_p`` (``(P,)``, NaN where skipped)
        whichever aggregate is chosen. Ratios are not clipped.
    """
    ego = _check_ego(ego)
    br = _check_br(br, ego.shape)  # (P, S, N)
    if aggregate not in ("mean_of_ratios", "ratio_of_means"):
        raise ValueError(
            f"aggregate must be 'mean_of_ratios' or 'ratio_of_means'; got {aggregate!r}"
        )
    ego_p = ego.mean(axis=(1, 2, 3))  # (P,)
    br_p = br.mean(axis=(1, 2))  # (P,)
    skipped = br_p <= 0
    kept = ~skipped
    per_partner = np.full(ego_p.shape, np.nan)
    per_partner[kept] = ego_p[kept] / br_p[kept]
    if not kept.any():
        value = float("nan")
    elif aggregate == "mean_of_ratios":
        value = float(per_partner[kept].mean())
    else:
        value = float(ego_p[kept].mean() / br_p[kept].mean())
    return BRProx(value=value, per_partner=per_partner, skipped=skipped,
                  n_skipped=int(skipped.sum()), aggregate=aggregate)


class ZSCBRProx(NamedTuple):
    """ZSC-Eval's BR-Prox: IQM of clipped ratios, overall and per ego seat."""

    overall: float  # IQM over all P * S * N ratios
    per_seat: np.ndarray  # (S,) IQM over the P * N ratios of each seat
    ratios: np.ndarray  # (P, S, N) min(1, R_ego / R_BR), 1 where R_BR <= 0


def br_prox_zsceval(ego, br) -> ZSCBRProx:
    """ZSC-Eval's BR-Prox (``scripts/overcooked/eval/extract_results.py``).

    Per partner ``p``, seat ``s`` and seed ``n``: ``R_ego`` is the mean of ``ego[p, s, n]``
    over episodes (ZSC-Eval's ``eval_ep_sparse_r``) and the ratio is ``min(1, R_ego / R_BR)``,
    or ``1`` where ``R_BR <= 0`` (a partner nobody can score with counts as matched). Ratios
    are clipped above at 1 only: a negative ego return gives a negative ratio. A ``(P, S)``
    ``br`` is broadcast over seeds, as ZSC-Eval has one BR per partner and seat.

    Args:
        ego: ``(P, S, N, E)`` ego returns.
        br: ``(P, S)`` or ``(P, S, N)`` best-response returns.
    Returns:
        :class:`ZSCBRProx`: ``overall`` the IQM (:func:`iqm`) of all ratios pooled,
        ``per_seat`` ``(S,)`` the IQM of each seat's ``P * N`` ratios, ``ratios`` ``(P, S, N)``.
    """
    ego = _check_ego(ego)
    br = _check_br(br, ego.shape)  # (P, S, N)
    r_ego = ego.mean(axis=3)  # (P, S, N)
    positive = br > 0
    ratios = np.ones_like(r_ego)
    ratios[positive] = np.minimum(1.0, r_ego[positive] / br[positive])
    per_seat = iqm(ratios.transpose(1, 0, 2).reshape(ratios.shape[1], -1), axis=1)  # (S,)
    return ZSCBRProx(overall=float(iqm(ratios)), per_seat=np.atleast_1d(per_seat),
                     ratios=ratios)


# -- bootstrap --------------------------------------------------------------------------------


class CI(NamedTuple):
    """A point estimate with a percentile bootstrap confidence interval."""

    estimate: np.ndarray | float  # stat of the original samples
    lo: np.ndarray | float  # alpha/2 quantile of the bootstrap distribution
    hi: np.ndarray | float  # 1 - alpha/2 quantile


Stat = Callable[..., np.ndarray]
_CHUNK_VALUES = 1 << 22  # resampled values held at once (32 MiB of float64)


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _as_float(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _boot_stats(arrays: list[np.ndarray], stat: Stat, n_boot: int,
                rngs: list[np.random.Generator]) -> list[np.ndarray]:
    """``stat`` of ``n_boot`` resamples of each array's first axis: ``(n_boot, *rest)`` each.

    ``arrays[i]`` is resampled with ``rngs[i]``; passing the same generator object twice is
    not paired — paired callers pass one array of stacked inputs instead.
    """
    outs: list[list[np.ndarray]] = [[] for _ in arrays]
    row = max(int(np.prod(a.shape)) for a in arrays)
    chunk = max(1, _CHUNK_VALUES // max(row, 1))
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        for i, (a, g) in enumerate(zip(arrays, rngs, strict=True)):
            idx = g.integers(0, a.shape[0], size=(m, a.shape[0]))  # (m, n)
            outs[i].append(np.asarray(stat(a[idx], axis=1), dtype=np.float64))
        done += m
    return [np.concatenate(o, axis=0) for o in outs]


def _check_boot_args(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")


def bootstrap_ci(samples, stat: Stat = np.mean, n_boot: int = 2000, alpha: float = 0.05,
                 rng: int | np.random.Generator | None = 0) -> CI:
    """Percentile bootstrap CI of ``stat`` over the first axis of ``samples``.

    Args:
        samples: ``(n, *rest)``: ``n`` resampling units (the caller decides what a unit is,
            e.g. the ``P * S * N`` partner/seat/seed cells flattened), each with any trailing
            shape (e.g. ``(E,)`` episodes: one CI per episode, units resampled jointly).
        stat: a numpy-style reduction accepting ``axis=`` (``np.mean``, ``np.median``,
            :func:`iqm`); called as ``stat(x, axis=1)`` on ``(n_boot, n, *rest)`` resamples
            and as ``stat(samples, axis=0)`` for the estimate.
        n_boot: bootstrap resamples.
        alpha: the interval covers ``1 - alpha``.
        rng: seed or ``np.random.Generator``; the same seed gives the same interval (default
            seed 0, so results are reproducible unless a generator is passed).
    Returns:
        :class:`CI` with ``estimate``, ``lo``, ``hi`` of shape ``rest`` (floats when
        ``samples`` is 1-D).
    """
    _check_boot_args(n_boot, alpha)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 0 or samples.shape[0] == 0:
        raise ValueError(f"bootstrap needs samples of shape (n >= 1, ...); got {samples.shape}")
    (boots,) = _boot_stats([samples], stat, n_boot, [_rng(rng)])
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
    return CI(_as_float(stat(samples, axis=0)), _as_float(lo), _as_float(hi))


def bootstrap_diff_ci(a, b, paired: bool = True, stat: Stat = np.mean, n_boot: int = 2000,
                      alpha: float = 0.05, rng: int | np.random.Generator | None = 0) -> CI:
    """Percentile bootstrap CI of ``stat(a) - stat(b)``.

    Args:
        a, b: ``(n_a, *rest)`` and ``(n_b, *rest)`` samples (units on the first axis).
        paired: when True (the default) ``a[i]`` and ``b[i]`` are the same unit (same partner,
            seat and seed), ``n_a == n_b`` is required and each resample draws the same
            indices for both; when False ``a`` and ``b`` are resampled independently.
        stat, n_boot, alpha, rng: as in :func:`bootstrap_ci`.
    Returns:
        :class:`CI` of the difference, shape ``rest``.
    """
    _check_boot_args(n_boot, alpha)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 0 or b.ndim == 0 or a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError(f"bootstrap needs samples of shape (n >= 1, ...); got a {a.shape}, "
                         f"b {b.shape}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b must agree after the first axis; got a {a.shape}, "
                         f"b {b.shape}")
    if paired and a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs a and b of the same shape; got a {a.shape}, "
                         f"b {b.shape}")
    g = _rng(rng)
    if paired:
        ab = np.stack([a, b], axis=1)  # (n, 2, *rest): one index draw resamples both
        (boots,) = _boot_stats([ab], stat, n_boot, [g])  # (n_boot, 2, *rest)
        diffs = boots[:, 0] - boots[:, 1]
    else:
        boot_a, boot_b = _boot_stats([a, b], stat, n_boot, [g, g])
        diffs = boot_a - boot_b
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2], axis=0)
    estimate = np.asarray(stat(a, axis=0)) - np.asarray(stat(b, axis=0))
    return CI(_as_float(estimate), _as_float(lo), _as_float(hi))


# -- adaptation over consecutive episodes -----------------------------------------------------


class AdaptationCurve(NamedTuple):
    """Mean return per episode index with a bootstrap CI over partner/seat/seed units."""

    episode: np.ndarray  # (E,) 1, 2, ..., E
    mean: np.ndarray  # (E,)
    lo: np.ndarray  # (E,)
    hi: np.ndarray  # (E,)
    n_units: int  # P * S * N


def _units(ego) -> np.ndarray:
    """``(P, S, N, E)`` -> ``(P * S * N, E)``: one row per partner/seat/seed unit."""
    ego = _check_ego(ego)
    return ego.reshape(-1, ego.shape[3])


def adaptation_curve(ego, episodes: int = 10, n_boot: int = 2000, alpha: float = 0.05,
                     rng: int | np.random.Generator | None = 0) -> AdaptationCurve:
    """Mean ego return at episode 1, 2, ..., ``episodes`` of the consecutive run.

    Args:
        ego: ``(P, S, N, E)`` ego returns, episodes in play order, ``E >= episodes``.
        episodes: how many leading episodes to report (e.g. 10 or 50).
        n_boot, alpha, rng: as in :func:`bootstrap_ci`; the ``P * S * N`` units are resampled
            jointly across episodes.
    Returns:
        :class:`AdaptationCurve` with ``(episodes,)`` arrays.
    """
    units = _units(ego)
    if not 1 <= episodes <= units.shape[1]:
        raise ValueError(f"episodes must be in 1..{units.shape[1]} for ego returns of shape "
                         f"{np.shape(ego)}; got {episodes}")
    ci = bootstrap_ci(units[:, :episodes], np.mean, n_boot, alpha, rng)
    return AdaptationCurve(episode=np.arange(1, episodes + 1), mean=np.atleast_1d(ci.estimate),
                           lo=np.atleast_1d(ci.lo), hi=np.atleast_1d(ci.hi),
                           n_units=int(units.shape[0]))


def adaptation_gain(ego, first: int = 1, last: int = 10, n_boot: int = 2000,
                    alpha: float = 0.05, rng: int | np.random.Generator | None = 0) -> CI:
    """Mean return at episode ``last`` minus episode ``first`` (1-based), paired CI.

    Args:
        ego: ``(P, S, N, E)`` ego returns, ``1 <= first, last <= E``.
        first, last: 1-based episode indices.
        n_boot, alpha, rng: as in :func:`bootstrap_ci`; the bootstrap is paired over the
            ``P * S * N`` units (each unit's two episodes stay together).
    Returns:
        :class:`CI` of the gain (floats).
    """
    units = _units(ego)
    e = units.shape[1]
    if not (1 <= first <= e and 1 <= last <= e):
        raise ValueError(f"first and last must be in 1..{e} for ego returns of shape "
                         f"{np.shape(ego)}; got first={first}, last={last}")
    return bootstrap_diff_ci(units[:, last - 1], units[:, first - 1], paired=True,
                             n_boot=n_boot, alpha=alpha, rng=rng)
