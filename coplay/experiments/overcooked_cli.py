"""`coplay overcooked train` — self-play PPO on one layout."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import tyro

from coplay.algos.ppo import PPOConfig
from coplay.config import ConfigError
from coplay.config import parse_overrides as apply_overrides
from coplay.experiments.overcooked_ppo import PRESETS, OvercookedTrainConfig, Preset, resolve
from coplay.runs import RunError, default_run_dir


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a self-play pair by PPO on an Overcooked layout (run folder with report.md)."""

    layout: str = "cramped_room"
    """Layout name (cramped_room, random1 = Coord. Ring, ...) or a path to an ASCII layout."""
    preset: Preset = "default"
    """tiny (seconds, for tests), default (this 2-core CPU), paper (ZSC-Eval's values)."""
    seed: int = 0
    """Random seed."""
    out: Path | None = None
    """Run folder (default: runs/overcooked-ppo-<preset>/<layout>-seed<seed>)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    set: tuple[str, ...] = ()
    """Override PPO fields of the preset, e.g. --set learning_rate=5e-4 hidden_sizes=128,128."""


def parse_overrides(base: PPOConfig, items: tuple[str, ...]) -> PPOConfig:
    """Apply ``FIELD=VALUE`` strings to a PPOConfig; tuples are comma-separated."""
    return apply_overrides(base, items, "ppo")


def train(argv: list[str], prog: str = "coplay overcooked train") -> int:
    args = tyro.cli(TrainArgs, args=argv, prog=prog)
    from coplay.experiments.overcooked_ppo import train_run

    try:
        base = PRESETS.get(args.preset)
        if base is None:
            raise ConfigError(f"preset = {args.preset!r}: unknown")
        algo = parse_overrides(base, args.set) if args.set else None
        cfg = OvercookedTrainConfig(layout=args.layout, preset=args.preset, seed=args.seed,
                                    ppo=algo)
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
    from rich.console import Console
    from rich.table import Table

    from coplay.experiments.overcooked_ppo import time_to
    from coplay.runs import RunDir, read_json

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
