"""PNG plots of IPD runs (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _series(rows: list[dict], name: str) -> np.ndarray:
    """(chunks, learners) float array; None -> NaN."""
    return np.array(
        [[np.nan if v is None else v for v in row[name]] for row in rows], dtype=float
    )


PROBE_CURVES = (("vs_TFT_coop_2nd_half", "-", "coop vs TFT (2nd half)"),
                ("vs_AllD_coop_2nd_half", ":", "coop vs AllD (2nd half)"),
                ("vs_AllC_coop_2nd_half", "--", "coop vs AllC (2nd half)"))


def plot_training_curves(runs: dict[str, list[dict]], path: Path) -> None:
    """Paper Fig. 1 analogue: reward and cooperation over training, per pairing type.

    ``runs`` maps a label (e.g. "seed 0") to that run's metrics rows. When the rows hold the
    periodic probe checks (``vs_TFT_coop_2nd_half`` ...), a third panel shows the in-context
    best response forming: cooperation against TFT, AllD and AllC over training.
    """
    has_probes = any(PROBE_CURVES[0][0] in r for rows in runs.values() for r in rows)
    ncols = 3 if has_probes else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, rows) in enumerate(runs.items()):
        if not rows:
            continue
        x = np.array([r["update"] for r in rows])
        c = colors[i % len(colors)]
        for ax, kind in zip(axes[:2], ("reward", "coop"), strict=True):
            for pairing, style in (("learner", "-"), ("tabular", "--")):
                series = _series(rows, f"{kind}_vs_{pairing}")
                if np.isnan(series).all():  # e.g. no tabular episodes in `no-tabular`
                    continue
                ax.plot(x, np.nanmean(series, axis=1), color=c, ls=style,
                        label=f"{label}: learner vs {pairing}")
        if has_probes:
            probe_rows = [r for r in rows if PROBE_CURVES[0][0] in r]
            px = np.array([r["update"] for r in probe_rows])
            for name, style, text in PROBE_CURVES:
                if probe_rows:
                    axes[2].plot(px, _series(probe_rows, name).mean(axis=1), color=c, ls=style,
                                 label=f"{label}: {text}")
    axes[0].set_ylabel("reward per round")
    axes[1].set_ylabel("cooperation rate")
    for ax in axes[1:]:
        ax.set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    if has_probes:
        axes[2].set_ylabel("learner cooperation vs probe")
        axes[2].legend(fontsize=7, loc="best")
    fig.suptitle("IPD training: solid = learner vs learner, dashed = learner vs random tabular"
                 + ("; right: probe checks" if has_probes else ""))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_within_episode(evals: dict[str, dict], path: Path,
                        probes: tuple[str, ...] = ("TFT", "AllC", "AllD")) -> None:
    """Paper Fig. 2 analogue: the learner's cooperation per round against each probe."""
    fig, axes = plt.subplots(1, len(probes), figsize=(4 * len(probes), 3.4), sharey=True,
                             constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, probe in zip(axes, probes, strict=True):
        for label, ev in evals.items():
            stats = ev["probes"].get(probe)
            if stats is None:
                continue
            ax.plot(np.arange(len(stats["cooperation_curve"])), stats["cooperation_curve"],
                    label=label)
        ax.set_title(f"learner vs {probe}")
        ax.set_xlabel("round")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("learner cooperation")
    axes[-1].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
