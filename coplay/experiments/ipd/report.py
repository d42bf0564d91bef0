"""One report over several IPD runs (seeds, ablations): every seed listed, spread shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coplay.eval.plots import plot_training_curves, plot_within_episode
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir, RunError, atomic_write_text, read_json

# The thresholds of the IPD issue, checked per run and shown as pass / fail.
CLAIMS = (
    ("learner vs learner cooperation >= 0.8", lambda e: e["learner_vs_learner"]["cooperation"],
     0.8),
    ("learner vs learner reward >= 0.8", lambda e: e["learner_vs_learner"]["reward"], 0.8),
    ("learner vs tabular reward >= 0.8", lambda e: e["learner_vs_tabular"]["reward"], 0.8),
    ("vs AllC reward >= 1.8", lambda e: e["probes"]["AllC"]["reward"], 1.8),
    ("vs TFT cooperation, 2nd half >= 0.8",
     lambda e: e["probes"]["TFT"]["cooperation_second_half"], 0.8),
)


# The paper's ablations, under which the learners defect: without tabular co-players, and
# with the tabular co-player's identity in the input (no in-context inference left to shape).
ABLATIONS_THAT_DEFECT = ("no-tabular", "opponent-id")


def claim_lines(labels: list[str], cfgs: dict, evals: dict) -> list[str]:
    """The issue's claims: the mixed-pool ones over the plain mixed-pool runs (no ablation,
    no stage), counted and summarised over those runs only; each ablation's own claim
    (learner-vs-learner cooperation <= 0.3) over its runs."""
    def kind(label):
        cfg = cfgs[label]
        return cfg["ablation"] if cfg.get("stage", "mixed") == "mixed" else "stage"

    lines = []
    mixed = [label for label in labels if kind(label) == "none"]
    if mixed:
        lines += ["", "## Claims (per mixed-pool run)", "",
                  "| claim | " + " | ".join(mixed) + " | passing |",
                  "|---" * (len(mixed) + 2) + "|"]
        for name, get, threshold in CLAIMS:
            vals = [get(evals[label]) for label in mixed]
            marks = [f"{v:.3f} {'✓' if v >= threshold else '✗'}" for v in vals]
            lines.append(f"| {name} | " + " | ".join(marks) +
                         f" | {sum(v >= threshold for v in vals)}/{len(vals)} |")
        ll = np.array([evals[label]["learner_vs_learner"]["cooperation"] for label in mixed])
        lines += ["", f"Learner-vs-learner cooperation over these runs: mean {ll.mean():.3f}, "
                  f"min {ll.min():.3f}, max {ll.max():.3f} (n = {len(ll)})."]
    for label in labels:
        if kind(label) in ABLATIONS_THAT_DEFECT:
            v = evals[label]["learner_vs_learner"]["cooperation"]
            lines += ["", f"`{kind(label)}` ({label}): learner vs learner cooperation <= 0.3: "
                      f"{v:.3f} {'✓' if v <= 0.3 else '✗'}"]
    return lines


def _chis(stats: dict) -> str:
    fits = [m.get("zd_fit") for m in stats.get("memory1_second_half", [])]
    return " / ".join("–" if f["chi"] is None else f"{f['chi']:.2f}" for f in fits if f) or "–"


def config_label(cfg: dict) -> str:
    """What a run is, from its config: seed, algorithm, ablation, stage."""
    label = f"seed {cfg['seed']}"
    if cfg.get("algo") == "ppi":
        label = f"ppi {label}"
    if cfg["ablation"] != "none":
        label = f"{cfg['ablation']} {label}"
    if cfg.get("stage", "mixed") != "mixed":
        label = f"{cfg['stage']} {label}"
    return label


def unique_labels(runs: list[tuple[Path, str]]) -> list[str]:
    """One label per run: the config's label, plus the folder where two runs share it (e.g.
    the same seed of two experiments), the whole path if folder names collide too."""
    bases = [base for _, base in runs]
    labels = [base if bases.count(base) == 1 else f"{base} [{d.name}]" for d, base in runs]
    return [label if labels.count(label) == 1 else f"{base} [{d}]"
            for (d, base), label in zip(runs, labels, strict=True)]


def write_combined_report(run_dirs, out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not run_dirs:
        raise RunError("no run folders given")
    runs = []  # (folder, config, label from the config)
    for d in run_dirs:
        d = Path(d)
        cfg, _ = load_ipd_config(d)
        if not (d / "eval.json").exists():
            raise RunError(f"{d} has no eval.json: run `coplay ipd eval {d}` first")
        runs.append((d, cfg, config_label(cfg)))
    labels = unique_labels([(d, base) for d, _, base in runs])
    metrics, evals, cfgs = {}, {}, {}
    for (d, cfg, _), label in zip(runs, labels, strict=True):
        metrics[label] = RunDir(d).read_metrics()
        evals[label] = read_json(d / "eval.json")
        cfgs[label] = cfg
    plot_training_curves(metrics, out / "training.png")
    plot_within_episode(evals, out / "within_episode.png")

    lines = ["# IPD runs", "", "| run | preset | updates | minutes | L-L coop | L-L reward | "
             "L-tab reward | vs AllC reward | vs TFT coop (2nd half) | vs AllD coop | "
             "L-L ZD χ per learner |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        e, rows = evals[label], metrics[label]
        minutes = rows[-1]["time_s"] / 60 if rows else float("nan")
        lines.append(
            f"| {label} | {cfgs[label]['preset']} | {e['update']} | {minutes:.1f} | "
            f"{e['learner_vs_learner']['cooperation']:.3f} | "
            f"{e['learner_vs_learner']['reward']:.3f} | {e['learner_vs_tabular']['reward']:.3f} | "
            f"{e['probes']['AllC']['reward']:.3f} | "
            f"{e['probes']['TFT']['cooperation_second_half']:.3f} | "
            f"{e['probes']['AllD']['cooperation']:.3f} | {_chis(e['learner_vs_learner'])} |"
        )
    lines += claim_lines(labels, cfgs, evals)
    lines += ["", "![training](training.png)", "", "![within episode](within_episode.png)", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
