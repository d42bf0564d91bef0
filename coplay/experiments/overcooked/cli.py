"""`coplay overcooked train` — self-play PPO on one layout."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError
from coplay.experiments.cli_common import override_or_none, parse_with_preset
from coplay.experiments.overcooked.ppo import (
    OvercookedTrainConfig,
    Preset,
    resolve,
    time_to,
    train_run,
)
from coplay.experiments.overcooked.presets import PPO_PRESETS
from coplay.runs import RunDir, RunError, default_run_dir, read_json


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a self-play pair by PPO on an Overcooked layout (run folder with report.md)."""

    layout: str = "cramped_room"
    """Layout name (cramped_room, random1 = Coord. Ring, ...) or a path to an ASCII layout."""
    preset: Preset = "default"
    """tiny (seconds, for tests), default (this 2-core CPU), paper (ZSC-Eval's values). Sets
    the defaults of the --ppo.* flags."""
    seed: int = 0
    """Random seed."""
    out: Path | None = None
    """Run folder (default: runs/overcooked-ppo-<preset>/<layout>-seed<seed>)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    checkpoint_every: int = OvercookedTrainConfig.checkpoint_every
    """Write a checkpoint, and the metrics rows since the last one, every this many chunks."""
    eval_envs: int = OvercookedTrainConfig.eval_envs
    """Episodes of the final evaluation (half with each seat arrangement)."""
    set: tuple[str, ...] = ()
    """Alias for the --ppo.* flags, e.g. --set learning_rate=5e-4 hidden_sizes=128,128."""
    ppo: PPOConfig = PPO_PRESETS["default"]
    """PPO hyperparameters (defaults: the --preset's)."""


def train(argv: list[str], prog: str = "coplay overcooked train") -> int:
    try:
        args = parse_with_preset(TrainArgs, argv, prog, "ppo", PPO_PRESETS)
        cfg = OvercookedTrainConfig(layout=args.layout, preset=args.preset, seed=args.seed,
                                    ppo=override_or_none(args.ppo, PPO_PRESETS, args.preset),
                                    checkpoint_every=args.checkpoint_every,
                                    eval_envs=args.eval_envs)
        resolve(cfg)  # every config error surfaces here, before anything compiles
        out = args.out or default_run_dir(f"overcooked-ppo-{args.preset}",
                                          f"{Path(args.layout).stem}-seed{args.seed}")
        train_run(cfg, out, resume=args.resume)
    except (ConfigError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _print_summary(Path(out))
    return 0


def _print_summary(path: Path) -> None:
    ev = read_json(path / "eval.json")
    rows = RunDir(path).read_metrics()
    hit = time_to(rows, 150.0)
    table = Table(title=f"{path} ({ev['env_steps']:,} env steps)")
    for col in ("measure", "value"):
        table.add_column(col)
    table.add_row("eval sparse return / episode", f"{ev['sparse_return_mean']:.1f} "
                  f"± {ev['sparse_return_std']:.1f} ({ev['episodes']} episodes)")
    last = rows[-1]["returned_return"]
    table.add_row("logged return at the end", f"{sum(last) / len(last):.1f}")
    table.add_row("first reached 150", f"{hit[0]:,} steps, {hit[1]:.0f} s" if hit else "never")
    table.add_row("wall time", f"{rows[-1]['time_s']:.0f} s")
    Console().print(table)
    print(f"report: {path / 'report.md'}")
