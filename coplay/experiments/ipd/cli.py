"""`coplay ipd train | eval | report | axelrod`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Literal

import tyro
from rich.console import Console
from rich.table import Table

from coplay.algos.a2c import A2CConfig
from coplay.algos.ppi_config import PPIConfig
from coplay.config import ConfigError
from coplay.experiments.cli_common import flag_value, override_or_none, parse_with_preset
from coplay.experiments.ipd import axelrod as ipd_axelrod
from coplay.experiments.ipd import ppi as ipd_ppi
from coplay.experiments.ipd.eval import evaluate_run
from coplay.experiments.ipd.presets import A2C_PRESETS, PPI_PRESETS
from coplay.experiments.ipd.report import write_combined_report
from coplay.experiments.ipd.runs import Ablation, Preset, Stage
from coplay.experiments.ipd.train import IPDTrainConfig, resolve, train_run
from coplay.runs import RunError, default_run_dir, read_json


@dataclasses.dataclass(frozen=True)
class _RunArgs:
    algo: Literal["a2c", "ppi"] = "a2c"
    """a2c (independent A2C) | ppi (Predictive Policy Improvement: a sequence model per learner
    retrained in phases on its cumulative dataset, acting by planning inside it; see the PPI
    section of docs/ipd.md). `--algo ppi --help` lists the PPI fields."""
    preset: Preset = "default"
    """tiny (seconds, for tests), default (this 2-core CPU; results with every seed in
    docs/ipd.md), paper (the paper's values, GPU scale). Sets the defaults of the algorithm
    flags below."""
    seed: int = 0
    """Random seed."""
    ablation: Ablation = "none"
    """none | no-tabular (learners only meet each other) | opponent-id (tabular agents reveal
    their log-policy)."""
    stage: Stage = "mixed"
    """mixed (the paper's mixed pool) | the three-step mechanism: step1 (tabular co-players
    only), step2 (a fresh learner vs the frozen step-1 agent: --init-from STEP1_RUN), step3
    (two step-2 agents vs each other: --init-from STEP2_RUN_A STEP2_RUN_B)."""
    init_from: tuple[str, ...] = ()
    """Run folders whose learners start this run, PATH or PATH:INDEX (see --stage)."""
    out: Path | None = None
    """Run folder (default: runs/ipd-[ppi-]<preset>[-<ablation>][-<stage>]/seed<seed>)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    set: tuple[str, ...] = ()
    """Alias for the algorithm flags: FIELD=VALUE items applied to them, e.g.
    --set learning_rate=1e-3 hidden_size=128."""


@dataclasses.dataclass(frozen=True)
class A2CTrainArgs(_RunArgs):
    """Train GRU learners by decentralised A2C in the IPD mixed pool (the paper's Fig. 1)."""

    eval_episodes: int = IPDTrainConfig.eval_episodes
    """Episodes per pairing in the final evaluation."""
    probe_every: int = IPDTrainConfig.probe_every
    """Every this many chunks, log reward and 2nd-half cooperation vs TFT / AllC / AllD in
    metrics.jsonl and the training plot (0: never)."""
    probe_episodes: int = IPDTrainConfig.probe_episodes
    """Episodes per probe for those checks."""
    checkpoint_every: int = IPDTrainConfig.checkpoint_every
    """Write a checkpoint every this many chunks."""
    a2c: A2CConfig = A2C_PRESETS["default"]
    """A2C hyperparameters (defaults: the --preset's)."""


@dataclasses.dataclass(frozen=True)
class PPITrainArgs(_RunArgs):
    """Train GRU learners by PPI (Predictive Policy Improvement) in the IPD mixed pool."""

    eval_episodes: int = ipd_ppi.PPITrainConfig.eval_episodes
    """Games per pairing in the final evaluation (each decision plans: costly)."""
    probe_every: int = ipd_ppi.PPITrainConfig.probe_every
    """Every this many phases, log reward and 2nd-half cooperation vs TFT / AllC / AllD with
    the improved policy (0: never)."""
    probe_episodes: int = ipd_ppi.PPITrainConfig.probe_episodes
    """Games per probe for those checks."""
    ppi: PPIConfig = PPI_PRESETS["default"]
    """PPI hyperparameters (defaults: the --preset's)."""


def _fail(e: Exception) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def train(argv: list[str], prog: str = "coplay ipd train") -> int:
    try:
        if flag_value(argv, "--algo", "a2c") == "ppi":
            args = parse_with_preset(PPITrainArgs, argv, prog, "ppi", PPI_PRESETS)
            cfg = ipd_ppi.PPITrainConfig(
                preset=args.preset, seed=args.seed, ablation=args.ablation,
                ppi=override_or_none(args.ppi, PPI_PRESETS, args.preset),
                eval_episodes=args.eval_episodes, probe_every=args.probe_every,
                probe_episodes=args.probe_episodes, stage=args.stage, init_from=args.init_from)
            ipd_ppi.resolve(cfg)  # every config error surfaces here, before anything compiles
            run = ipd_ppi.train_run
        else:
            args = parse_with_preset(A2CTrainArgs, argv, prog, "a2c", A2C_PRESETS)
            cfg = IPDTrainConfig(
                preset=args.preset, seed=args.seed, ablation=args.ablation,
                a2c=override_or_none(args.a2c, A2C_PRESETS, args.preset),
                eval_episodes=args.eval_episodes, probe_every=args.probe_every,
                probe_episodes=args.probe_episodes, checkpoint_every=args.checkpoint_every,
                stage=args.stage, init_from=args.init_from)
            resolve(cfg)  # every config error surfaces here, before anything compiles
            run = train_run
        out = args.out or default_run_dir(_experiment_name(args), f"seed{args.seed}")
        run(cfg, out, resume=args.resume)
    except (ConfigError, RunError) as e:
        return _fail(e)
    _print_summary(Path(out))
    return 0


def _experiment_name(args: _RunArgs) -> str:
    return (f"ipd-{'ppi-' if args.algo == 'ppi' else ''}{args.preset}"
            + ("" if args.ablation == "none" else f"-{args.ablation}")
            + ("" if args.stage == "mixed" else f"-{args.stage}"))


def _print_summary(path: Path) -> None:
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
    try:
        path = write_combined_report(args.run_dirs, args.out)
    except (ConfigError, RunError) as e:
        return _fail(e)
    print(f"report: {path}")
    return 0


def axelrod(argv: list[str], prog: str = "coplay ipd axelrod") -> int:
    cfg = tyro.cli(ipd_axelrod.AxelrodConfig, args=argv, prog=prog)
    try:
        path = ipd_axelrod.run_axelrod(cfg)
    except (ConfigError, RunError, ValueError, ipd_axelrod.AxelrodMissing) as e:
        return _fail(e)
    print(f"report: {path}")
    return 0
