"""`coplay ipd train | eval | report`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Literal

import tyro

from coplay.algos.a2c import A2CConfig
from coplay.config import ConfigError
from coplay.config import parse_overrides as apply_overrides
from coplay.experiments.ipd import PRESETS, Ablation, IPDTrainConfig, Preset, Stage, resolve
from coplay.runs import RunError, default_run_dir


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train two GRU learners by decentralised A2C (or PPI) in the mixed pool of the IPD paper."""

    algo: Literal["a2c", "ppi"] = "a2c"
    """a2c (independent A2C) | ppi (Predictive Policy Improvement: a sequence model per learner
    retrained in phases on its cumulative dataset, acting by planning inside it; see the PPI
    section of docs/ipd.md). --set then overrides PPIConfig fields."""
    preset: Preset = "default"
    """tiny (seconds, for tests), default (2-core CPU budget; A2C shows the cooperation claim
    on 1 of 4 seeds so far, PPI on 0 of 1 (L-L cooperation 0.36 and rising), see docs/ipd.md),
    paper (the paper's values, GPU scale)."""
    seed: int = 0
    """Random seed."""
    ablation: Ablation = "none"
    """none | no-tabular (learners only meet each other) | opponent-id (tabular agents reveal
    their log-policy)."""
    out: Path | None = None
    """Run folder (default: runs/ipd-[ppi-]<preset>[-<ablation>][-<stage>]/seed<seed>)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    set: tuple[str, ...] = ()
    """Override A2C fields of the preset (PPIConfig fields with --algo ppi), e.g. --set
    learning_rate=1e-3 hidden_size=128."""
    eval_episodes: int | None = None
    """Episodes per pairing in the final evaluation (default: 1024 for a2c, 512 for ppi)."""
    probe_every: int | None = None
    """Every this many chunks (a2c, default 4) or phases (ppi, default 1), log reward and
    2nd-half cooperation vs TFT / AllC / AllD in metrics.jsonl and the training plot
    (0: never)."""
    stage: Stage = "mixed"
    """mixed (the paper's mixed pool) | the three-step mechanism: step1 (tabular co-players
    only), step2 (a fresh learner vs the frozen step-1 agent: --init-from STEP1_RUN), step3
    (two step-2 agents vs each other: --init-from STEP2_RUN_A STEP2_RUN_B)."""
    init_from: tuple[str, ...] = ()
    """Run folders whose learners start this run, PATH or PATH:INDEX (see --stage)."""


def parse_overrides(base: A2CConfig, items: tuple[str, ...]) -> A2CConfig:
    """Apply ``FIELD=VALUE`` strings to an A2CConfig, converting to the field's type."""
    return apply_overrides(base, items, "a2c")


def _fail(e: Exception) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def train(argv: list[str], prog: str = "coplay ipd train") -> int:
    args = tyro.cli(TrainArgs, args=argv, prog=prog)
    if args.algo == "ppi":
        return _train_ppi(args)
    from coplay.experiments.ipd import train_run

    try:
        base = PRESETS.get(args.preset)
        if base is None:
            raise ConfigError(f"preset = {args.preset!r}: unknown")
        algo = parse_overrides(base, args.set) if args.set else None
        cfg = IPDTrainConfig(preset=args.preset, seed=args.seed, ablation=args.ablation,
                             a2c=algo, eval_episodes=_default(args.eval_episodes, 1024),
                             probe_every=_default(args.probe_every, 4), stage=args.stage,
                             init_from=args.init_from)
        resolve(cfg)  # every config error surfaces here, before anything compiles
        out = args.out or default_run_dir(_experiment_name(args), f"seed{args.seed}")
        train_run(cfg, out, resume=args.resume)
    except (ConfigError, RunError) as e:
        return _fail(e)
    _print_summary(Path(out))
    return 0


def _default(value, default):
    return default if value is None else value


def _experiment_name(args: TrainArgs) -> str:
    return (f"ipd-{'ppi-' if args.algo == 'ppi' else ''}{args.preset}"
            + ("" if args.ablation == "none" else f"-{args.ablation}")
            + ("" if args.stage == "mixed" else f"-{args.stage}"))


def _train_ppi(args: TrainArgs) -> int:
    from coplay.experiments import ipd_ppi

    try:
        base = ipd_ppi.PRESETS.get(args.preset)
        if base is None:
            raise ConfigError(f"preset = {args.preset!r}: unknown")
        algo = apply_overrides(base, args.set, "ppi") if args.set else None
        cfg = ipd_ppi.PPITrainConfig(
            preset=args.preset, seed=args.seed, ablation=args.ablation, ppi=algo,
            eval_episodes=_default(args.eval_episodes, 512),
            probe_every=_default(args.probe_every, 1), stage=args.stage,
            init_from=args.init_from)
        ipd_ppi.resolve(cfg)  # every config error surfaces here, before anything compiles
        out = args.out or default_run_dir(_experiment_name(args), f"seed{args.seed}")
        ipd_ppi.train_run(cfg, out, resume=args.resume)
    except (ConfigError, RunError) as e:
        return _fail(e)
    _print_summary(Path(out))
    return 0


def _print_summary(path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from coplay.runs import read_json

    ev = read_json(path / "eval.json")
    table = Table(title=f"{path} (update {ev['update']})")
    for col in ("pairing", "reward/round", "cooperation", "coop 2nd half"):
        table.add_column(col)
    rows = [("learner vs learner", ev["learner_vs_learner"]),
            ("learner vs tabular", ev["learner_vs_tabular"])]
    rows += [(f"vs {n}", s) for n, s in ev["probes"].items()]
    for name, s in rows:
        table.add_row(name, f"{s['reward']:.3f}", f"{s['cooperation']:.3f}",
                      f"{s['cooperation_second_half']:.3f}")
    Console().print(table)
    print(f"report: {path / 'report.md'}")


@dataclasses.dataclass(frozen=True)
class EvalArgs:
    """Evaluate a trained IPD run folder (writes eval.json, plots, report.md)."""

    run_dir: tyro.conf.Positional[Path]
    """The run folder written by `coplay ipd train`."""
    episodes: int | None = None
    """Episodes per pairing (default: the run's eval_episodes)."""


def evaluate(argv: list[str], prog: str = "coplay ipd eval") -> int:
    args = tyro.cli(EvalArgs, args=argv, prog=prog)
    from coplay.experiments.ipd_eval import evaluate_run

    try:
        if not args.run_dir.is_dir():
            raise RunError(f"{args.run_dir} is not a folder")
        evaluate_run(args.run_dir, episodes=args.episodes)
    except (ConfigError, RunError) as e:
        return _fail(e)
    _print_summary(args.run_dir)
    return 0


@dataclasses.dataclass(frozen=True)
class ReportArgs:
    """Combine several evaluated IPD runs (e.g. seeds) into one report with plots."""

    run_dirs: tyro.conf.Positional[tuple[Path, ...]]
    """Evaluated run folders."""
    out: Path = Path("runs/ipd-report")
    """Folder for the combined report.md and PNGs."""


def report(argv: list[str], prog: str = "coplay ipd report") -> int:
    args = tyro.cli(ReportArgs, args=argv, prog=prog)
    from coplay.experiments.ipd_report import write_combined_report

    try:
        path = write_combined_report(args.run_dirs, args.out)
    except (ConfigError, RunError) as e:
        return _fail(e)
    print(f"report: {path}")
    return 0
