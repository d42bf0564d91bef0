"""Evaluate an IPD run folder (A2C or PPI): ``eval.json``, plots and ``report.md``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from coplay.algos import a2c
from coplay.eval.ipd import evaluate_learners
from coplay.eval.plots import plot_training_curves, plot_within_episode
from coplay.experiments.ipd.runs import (
    is_ppi,
    make_ppi_play,
    state_template,
    trained_steps,
)
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir, atomic_write_text, read_json, write_json


def evaluate_run(path: str | Path, state=None, episodes: int | None = None) -> dict:
    """Evaluate the run's final (or given) state — A2C by its policies, PPI by its improved
    policy; write eval.json, plots and report.md (the same keys for both)."""
    path = Path(path)
    cfg, algo = load_ipd_config(path)
    if state is None:
        state, _ = RunDir(path).load_checkpoint(state_template(algo))
    ppi_run = is_ppi(cfg)
    episodes = episodes or cfg.get("eval_episodes", 512 if ppi_run else 1024)
    key = jax.random.fold_in(jax.random.PRNGKey(cfg["seed"]), 10_000_019)  # not a train key
    if ppi_run:
        results = evaluate_learners(key, None, state.params, algo.num_rounds, episodes,
                                    algo.use_opponent_id, play=make_ppi_play(algo))
    else:
        results = evaluate_learners(key, a2c.make_agent(algo), state.params, algo.num_rounds,
                                    episodes, algo.use_opponent_id)
    results = {"seed": cfg["seed"], "update": trained_steps(state), "episodes": episodes,
               "preset": cfg["preset"], "ablation": cfg["ablation"],
               **({"algo": "ppi"} if ppi_run else {}), **results}
    write_json(path / "eval.json", results)
    write_run_report(path)
    return results


def write_run_report(path: Path) -> None:
    """Plots and report.md of one run folder (from metrics.jsonl and eval.json)."""
    path = Path(path)
    cfg, algo = load_ipd_config(path)
    rows = RunDir(path).read_metrics()
    ev = read_json(path / "eval.json") if (path / "eval.json").exists() else None
    label = f"seed {cfg['seed']}"
    plot_training_curves({label: rows}, path / "training.png")
    if ev is not None:
        plot_within_episode({label: ev}, path / "within_episode.png")
    atomic_write_text(path / "report.md", render_report(cfg, algo, rows, ev))


def _fmt(x, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def _memory1_table(pairings) -> list[str]:
    """Each learner's P(C | previous outcome) over the 2nd half and its ZD extortion fit."""
    out = ["## Memory-1 behaviour late in the episode (2nd half) and ZD fit", "",
           "P(C | cc, cd, dc, dd) from the learner's seat; χ of the closest Press–Dyson "
           "extortioner (χ = 1 fair / TFT-like, χ > 1 extortionate), rms = its distance.", "",
           "| pairing | learner | P(C\\|cc) | P(C\\|cd) | P(C\\|dc) | P(C\\|dd) | χ | rms |",
           "|---|---|---|---|---|---|---|---|"]
    for name, stats in pairings:
        for i, m in enumerate(stats.get("memory1_second_half", [])):
            fit = m["zd_fit"] or {}
            ps = " | ".join(_fmt(x) for x in m["p"])
            chi, rms = fit.get("chi"), fit.get("rms")
            chi = "– (only dd seen)" if fit and chi is None else _fmt(chi, ".2f")
            out.append(f"| {name} | {i} | {ps} | {chi} | {_fmt(rms, '.3f')} |")
    return out + [""]


def render_report(cfg: dict, algo, rows: list[dict], ev: dict | None) -> str:
    lines = [
        f"# IPD run — preset `{cfg['preset']}`, seed {cfg['seed']}, ablation `{cfg['ablation']}`",
        "",
    ]
    if rows:
        last = rows[-1]
        unit = "PPI phases" if cfg.get("algo") == "ppi" else "updates"
        lines += [f"Trained {last['update']} {unit} in {last['time_s'] / 60:.1f} min "
                  f"(wall clock, this machine).", ""]
    if ev is not None:
        lines += [
            "## Final evaluation",
            "",
            f"{ev['episodes']} episodes per pairing, actions sampled from the policies.",
            "",
            "| pairing | reward / round | cooperation | coop. 2nd half |",
            "|---|---|---|---|",
        ]
        pairings = [("learner vs learner", ev["learner_vs_learner"]),
                    ("learner vs random tabular", ev["learner_vs_tabular"])]
        pairings += [(f"learner vs {n}", s) for n, s in ev["probes"].items()]
        for name, s in pairings:
            lines.append(f"| {name} | {_fmt(s['reward'])} | {_fmt(s['cooperation'])} | "
                         f"{_fmt(s['cooperation_second_half'])} |")
        lines += ["", "![within episode](within_episode.png)", ""]
        lines += _memory1_table(pairings[:2] + [(n, ev["probes"][k]) for n, k in
                                               (("learner vs TFT", "TFT"),) if k in ev["probes"]])
    lines += ["## Training", "", "![training](training.png)", "", "## Config", "", "```"]
    lines += [f"{f.name} = {getattr(algo, f.name)!r}" for f in dataclasses.fields(algo)]
    lines += ["```", ""]
    return "\n".join(lines)
