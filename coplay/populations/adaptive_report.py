"""After MEP stage 2: evaluate the learner with every partner, plot the training curves and
sampling probabilities, write ``agent.msgpack``, ``eval.json``, ``manifest.json``,
``training.png`` and ``report.md`` of the run folder."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay.algos.ppo import PPOState
from coplay.populations.adaptive import load_config, make_trainer, resolve
from coplay.populations.crossplay import evaluate_pairs, take
from coplay.populations.finish import load_params, network_of
from coplay.runs import RunDir, atomic_write_bytes, write_json

AGENT_FILE = "agent.msgpack"


def finish_adaptive(path: str | Path, state: PPOState | None = None) -> dict:
    """Evaluate a trained stage-2 folder and write its agent, evaluation, plot and report."""
    path = Path(path)
    cfg = load_config(path)
    algo, pop = resolve(cfg)
    _, env, partners = make_trainer(algo, pop)
    params = (load_params(path / RunDir.CHECKPOINT)["params"] if state is None
              else jax.tree.map(np.asarray, state.params))
    agent = take(params, 0)  # (G = 1, ...): the learner, as a population member's file
    atomic_write_bytes(path / AGENT_FILE, serialization.to_bytes(agent))

    # --- the learner (seat 0) with each partner (seat 1), each cook half the episodes
    learner = take(agent, 0)
    pairs = jax.tree.map(lambda a, p: jnp.stack([jnp.broadcast_to(a, p.shape), p], axis=1),
                         learner, partners)  # (K, 2, ...)
    ev = evaluate_pairs(env, algo, network_of(algo, env), pairs,
                        jax.random.PRNGKey(cfg.seed + 10_000), cfg.eval_envs)
    returns = ev["sparse_return"]  # (K, N)
    rows = RunDir(path).read_metrics()
    last = rows[-1] if rows else {}
    partners_out = []
    for k, m in enumerate(pop.members):
        partners_out.append({
            "partner": k, "member": m,
            "checkpoint": str(pop.path / pop.manifest["members"][m]["checkpoint"]),
            "return": float(returns[k].mean()), "return_std": float(returns[k].std()),
            "partner_self_play_return": pop.manifest["members"][m]["return"],
            "running_return": (last.get("running_return") or [None] * len(pop.members))[k],
            "final_prob": (last.get("probs") or [None] * len(pop.members))[k],
        })
    summary = {
        "mean_return": float(returns.mean()),
        "worst_partner_return": float(returns.mean(1).min()),
        "best_partner_return": float(returns.mean(1).max()),
        "env_steps": last.get("env_steps", 0),
        "train_time_s": last.get("time_s"),
    }
    write_json(path / "eval.json", {"episodes_per_partner": cfg.eval_envs,
                                    "steps_per_episode": algo.horizon, "partners": partners_out,
                                    "summary": summary})
    manifest = {"kind": "mep-adaptive", "layout": pop.cfg.layout, "population": str(pop.path),
                "agent": AGENT_FILE, "seats": {"0": "the MEP stage-2 learner",
                                               "1": "a frozen stage-1 member"},
                "alpha": cfg.alpha, "partner_members": pop.members, "summary": summary}
    write_json(path / "manifest.json", manifest)
    plot_training(rows, pop.members, path / "training.png",
                  title=f"MEP stage 2, {pop.cfg.layout}: alpha {cfg.alpha:g}")
    write_report(path, cfg, manifest, partners_out)
    return manifest


def plot_training(rows: list[dict], members: list[int], path: Path, title: str = "") -> None:
    """Return per partner (top: running mean, and each chunk's mean) and the sampling
    probabilities set after each chunk (bottom, stacked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["env_steps"] for r in rows], np.float64)
    nan = lambda xs: [np.nan if x is None else x for x in xs]  # noqa: E731
    running = np.array([nan(r["running_return"]) for r in rows]).reshape(len(rows), -1)
    probs = np.array([r["probs"] for r in rows]).reshape(len(rows), -1)
    fig, (ax_r, ax_p) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(members), 1)))
    chunk = np.array([nan(r["partner_return"]) for r in rows]).reshape(len(rows), -1)
    for k, m in enumerate(members):
        ax_r.plot(steps, running[:, k], color=colours[k], lw=1.2, label=f"member {m}")
        ax_r.plot(steps, chunk[:, k], ".", color=colours[k], ms=2, alpha=0.5)
    ax_r.set_ylabel("sparse return with the partner\n(line: running mean, dots: chunk)")
    ax_r.legend(fontsize=6, ncol=4)
    if len(rows):
        ax_p.stackplot(steps, probs.T, colors=colours, step="post")
    ax_p.set_ylim(0, 1)
    ax_p.set_ylabel("sampling probability\n(stacked)")
    ax_p.set_xlabel("env steps")
    ax_r.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path: Path, cfg, manifest: dict, partners: list[dict]) -> None:
    s = manifest["summary"]
    lines = [
        f"# MEP stage 2 — {manifest['layout']}, preset `{cfg.preset}`, seed {cfg.seed}",
        "",
        f"- one PPO learner, {s['env_steps']:,} env steps, trained in "
        f"{s['train_time_s'] or 0:.0f} s (wall clock, compile included), against "
        f"{len(partners)} frozen members of `{manifest['population']}`",
        f"- partners drawn per episode with p ∝ rank(1/return)^α, α = {cfg.alpha:g}, running "
        f"mean decay {cfg.return_decay:g} per chunk",
        f"- evaluation ({cfg.eval_envs} episodes per partner, sampled actions, team sparse "
        f"return): mean {s['mean_return']:.1f}, worst partner {s['worst_partner_return']:.1f}, "
        f"best {s['best_partner_return']:.1f}",
        "",
        "![training](training.png)",
        "",
        "| member | learner + partner return | partner self-play return | final running return "
        "| final p |",
        "|---|---|---|---|---|",
    ]
    for p in partners:
        run = "-" if p["running_return"] is None else f"{p['running_return']:.1f}"
        prob = "-" if p["final_prob"] is None else f"{p['final_prob']:.3f}"
        lines.append(f"| {p['member']} | {p['return']:.1f} ± {p['return_std']:.1f} | "
                     f"{p['partner_self_play_return']:.1f} | {run} | {prob} |")
    (path / "report.md").write_text("\n".join(lines) + "\n")
