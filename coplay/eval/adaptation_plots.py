"""PNG plots of the Coordination Transformer's evaluation: adaptation curves over consecutive
episodes and BR-Prox bars (matplotlib, Agg backend: no screen needed).

Both functions render into memory and write the PNG atomically (``coplay.runs``'s temp file +
rename), so a killed process leaves the old picture or the new one, never half a file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from coplay.eval.brprox import AdaptationCurve  # noqa: E402
from coplay.runs import atomic_write_bytes  # noqa: E402


def _save(fig, path: Path) -> None:
    """Render ``fig`` to PNG bytes, close it, and write them atomically to ``path``."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


def _curve_arrays(curve) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(episode, mean, lo, hi)``, each ``(E,)``, from an :class:`AdaptationCurve` or a mapping
    with ``mean`` / ``lo`` / ``hi`` (and optionally ``episode``) keys, e.g. read from JSON."""
    if isinstance(curve, AdaptationCurve):
        get = curve._asdict().get
    elif isinstance(curve, Mapping):
        get = curve.get
    else:
        raise TypeError(f"a curve must be an AdaptationCurve or a mapping; got {type(curve)}")
    mean = np.asarray(get("mean"), dtype=float).reshape(-1)
    lo = np.asarray(get("lo", mean), dtype=float).reshape(-1)
    hi = np.asarray(get("hi", mean), dtype=float).reshape(-1)
    ep = get("episode")
    episode = np.arange(1, mean.size + 1) if ep is None else np.asarray(ep).reshape(-1)
    if not (episode.shape == mean.shape == lo.shape == hi.shape):
        raise ValueError(f"curve arrays disagree: episode {episode.shape}, mean {mean.shape}, "
                         f"lo {lo.shape}, hi {hi.shape}")
    return episode, mean, lo, hi


def plot_adaptation(curves: Mapping[str, AdaptationCurve | Mapping], path: Path,
                    title: str = "",
                    paper_reference: Mapping[str, float | Sequence[float]] | None = None,
                    ylabel: str = "sparse return per episode") -> None:
    """Mean return per consecutive episode, one line and CI band per agent.

    Args:
        curves: agent label (``"CooT"``, ``"BC"``, ``"HSP-adaptive"``, ...) -> its curve, an
            :class:`~coplay.eval.brprox.AdaptationCurve` or a mapping with ``mean``, ``lo``,
            ``hi`` (``(E,)`` each) and optionally ``episode``.
        path: the PNG to write (atomically).
        title: figure title.
        paper_reference: optional agent label -> the paper's figure, drawn dashed in that
            agent's colour (grey for a label not in ``curves``): a number is a horizontal
            line (e.g. the paper's average reward), a sequence a curve over episodes 1, 2, ...
        ylabel: the y-axis label.
    """
    arrays = {label: _curve_arrays(curve) for label, curve in curves.items()}  # before a figure
    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[str, str] = {}
    for i, (label, (episode, mean, lo, hi)) in enumerate(arrays.items()):
        c = colors[i % len(colors)]
        color_of[label] = c
        ax.plot(episode, mean, color=c, marker="o", ms=3, label=label)
        ax.fill_between(episode, lo, hi, color=c, alpha=0.2, lw=0)
    for label, ref in (paper_reference or {}).items():
        c = color_of.get(label, "grey")
        ref = np.asarray(ref, dtype=float)
        if ref.ndim == 0:
            ax.axhline(float(ref), color=c, ls="--", lw=1, label=f"{label} (paper)")
        else:
            ax.plot(np.arange(1, ref.size + 1), ref.reshape(-1), color=c, ls="--", lw=1,
                    label=f"{label} (paper)")
    ax.set_xlabel("episode (context carried over)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if curves or paper_reference:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_br_prox_bars(table: Mapping[str, tuple[float, float, float]], path: Path,
                      paper: Mapping[str, float] | None = None, title: str = "",
                      ylabel: str = "BR-Prox") -> None:
    """One bar per agent (or layout) with its CI as whiskers; the paper's value as a marker.

    Args:
        table: label -> ``(value, lo, hi)`` (e.g. ``CI`` fields, or ``(BRProx.value, lo, hi)``);
            a NaN value draws no bar, a NaN bound no whisker on that side.
        path: the PNG to write (atomically).
        paper: optional label -> the paper's figure, drawn as a black diamond over that label
            (labels not in ``table`` get a position of their own, with no bar).
        title: figure title.
        ylabel: the y-axis label.
    """
    paper = dict(paper or {})
    labels = list(table) + [k for k in paper if k not in table]
    x = np.arange(len(labels))
    vals = np.array([table[k] for k in table] if table else np.zeros((0, 3)), dtype=float)
    if vals.shape != (len(table), 3):
        raise ValueError(f"table values must be (value, lo, hi) triples; got an array of shape "
                         f"{vals.shape} for {len(table)} labels")
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * max(len(labels), 1), 4), constrained_layout=True)
    if table:
        value, lo, hi = vals.T
        err = np.nan_to_num(np.stack([value - lo, hi - value]), nan=0.0).clip(min=0)
        ax.bar(x[: len(table)], np.nan_to_num(value, nan=0.0), yerr=err, capsize=4,
               color="tab:blue", alpha=0.8, label="ours (bootstrap CI)")
    if paper:
        px = [labels.index(k) for k in paper]
        ax.plot(px, [float(v) for v in paper.values()], "D", color="black", ms=6,
                label="paper", zorder=3)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if table or paper:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_loss_curves(rows: Sequence[Mapping], path: Path, title: str = "",
                     series: Sequence[tuple[str, str]] = (("train_loss", "train"),
                                                         ("val_loss", "validation")),
                     x: str = "epoch", best: int | None = None) -> None:
    """Supervised training curves (CooT, BC): one line per ``(key, label)`` of ``series``
    over ``rows[i][x]``; ``best`` marks the kept epoch."""
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    xs = [r[x] for r in rows]
    for key, label in series:
        ys = [np.nan if r.get(key) is None else r[key] for r in rows]
        ax.plot(xs, ys, marker="o", ms=3, label=label)
    if best is not None:
        ax.axvline(best, color="grey", ls=":", label=f"kept ({x} {best})")
    handles, labels = ax.get_legend_handles_labels()
    if any("closed_loop" in r for r in rows):  # how it plays, beside what the loss says
        ax2 = ax.twinx()
        ax2.plot(xs, [r.get("closed_loop", np.nan) for r in rows], "s--", ms=3, color="C2",
                 label="closed loop (/ BR, training partners)")
        ax2.set_ylabel("closed-loop return / best response's")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.set_xlabel(x)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, fontsize=8)
    ax.set_title(title)
    _save(fig, path)


def plot_dagger_rounds(history: Sequence[Mapping], path: Path, title: str = "") -> None:
    """DAgger rounds (``coplay coot dagger``): left, each round's mean return with the
    training partners and the agreement with the best responses' labels; right, the return
    by episode of a game (the context carried over), one line per round."""
    fig, (ax, ax_ep) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    rounds = [h["round"] for h in history]
    ax.plot(rounds, [h["return"] for h in history], "o-", label="return / episode")
    ax.set_xlabel("round (played by the model before its fine-tuning)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("return, training partners")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(rounds, [h["agreement"] for h in history], "s--", color="C1",
              label="agreement with BR")
    twin.set_ylabel("agreement with the best response")
    twin.set_ylim(0, 1)
    for h in history:
        ys = h["return_by_episode"]
        ax_ep.plot(range(1, len(ys) + 1), ys, marker="o", ms=3, label=f"round {h['round']}")
    ax_ep.set_xlabel("episode of the game")
    ax_ep.set_ylabel("return")
    ax_ep.grid(alpha=0.3)
    if history:
        ax_ep.legend(fontsize=8)
        ax.legend(fontsize=8, loc="upper left")
        twin.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    _save(fig, path)
