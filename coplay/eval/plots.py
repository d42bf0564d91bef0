"""PNG plots of runs: IPD training and within-episode curves, Overcooked PPO training,
MEP stage-2 partner curves, cross-play heatmaps (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _legend(ax, **kwargs) -> None:
    """A legend when the axes has labelled lines (a panel left empty gets none, no warning)."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(**kwargs)


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
    _legend(axes[1], fontsize=7, loc="best")
    if has_probes:
        axes[2].set_ylabel("learner cooperation vs probe")
        _legend(axes[2], fontsize=7, loc="best")
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
    _legend(axes[-1], fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_crossplay(xp: np.ndarray, path: Path, title: str = "") -> None:
    m = len(xp)
    fig, ax = plt.subplots(figsize=(1.2 + 0.42 * m, 1.0 + 0.38 * m))
    im = ax.imshow(xp, cmap="viridis", vmin=0)
    for i in range(m):
        for j in range(m):
            ax.text(j, i, f"{xp[i, j]:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if xp[i, j] < 0.6 * max(xp.max(), 1e-9) else "black")
    ax.set_xlabel("best response of member j")
    ax.set_ylabel("biased policy of member i")
    ax.set_xticks(range(m))
    ax.set_yticks(range(m))
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, label="sparse return / episode")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_adaptive_training(rows: list[dict], members: list[int], path: Path,
                           title: str = "") -> None:
    """Return per partner (top: running mean, and each chunk's mean) and the sampling
    probabilities set after each chunk (bottom, stacked)."""
    steps = np.array([r["env_steps"] for r in rows], np.float64)
    nan = lambda xs: [np.nan if x is None else x for x in xs]  # noqa: E731
    k_partners = len(members)  # (rows, K) even when there are no rows yet
    running = np.array([nan(r["running_return"]) for r in rows]).reshape(len(rows), k_partners)
    # per-partner learners (best responses) have no sampling: one panel
    sampled = all("probs" in r for r in rows)
    probs = np.array([r["probs"] for r in rows] if sampled else []).reshape(
        len(rows) if sampled else 0, k_partners)
    fig, axes = plt.subplots(2 if sampled else 1, 1, figsize=(7.5, 6.5 if sampled else 4),
                             sharex=True, squeeze=False)
    ax_r, ax_p = axes[0, 0], (axes[1, 0] if sampled else None)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(members), 1)))
    chunk = np.array([nan(r["partner_return"]) for r in rows]).reshape(len(rows), k_partners)
    for k, m in enumerate(members):
        ax_r.plot(steps, running[:, k], color=colours[k], lw=1.2, label=f"member {m}")
        ax_r.plot(steps, chunk[:, k], ".", color=colours[k], ms=2, alpha=0.5)
    ax_r.set_ylabel("sparse return with the partner\n(line: running mean, dots: chunk)")
    ax_r.legend(fontsize=6, ncol=4)
    if ax_p is None:
        ax_r.set_xlabel("env steps")
    else:
        if len(rows):
            ax_p.stackplot(steps, probs.T, colors=colours, step="post")
        ax_p.set_ylim(0, 1)
        ax_p.set_ylabel("sampling probability\n(stacked)")
        ax_p.set_xlabel("env steps")
    ax_r.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ppo_training(rows: list[dict], path: Path, title: str = "") -> None:
    steps = np.array([r["env_steps"] for r in rows]) / 1e6
    ret = np.array([np.mean(r["returned_return"]) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, ret, label="sparse return / episode")
    ax.axhline(150, color="grey", ls=":", lw=1, label="150")
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("sparse return per episode")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["shaping_factor"] for r in rows], color="tab:orange", lw=1,
             label="shaping factor")
    ax2.plot(steps, [np.mean(r["entropy"]) for r in rows], color="tab:green", lw=1,
             label="policy entropy")
    ax2.set_ylabel("shaping factor / entropy (nats)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
