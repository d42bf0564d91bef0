"""`coplay overcooked train` — self-play PPO on one layout."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

import tyro

from coplay.algos.ppo import ConfigError, PPOConfig
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
    hints = typing.get_type_hints(PPOConfig)
    names = {f.name for f in dataclasses.fields(PPOConfig)}
    changes = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
        name, raw = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in names:
            raise ConfigError(f"--set {item!r}: ppo has no field {name!r} "
                              f"(fields: {', '.join(sorted(names))})")
        changes[name] = _convert(hints[name], raw, item)
    return dataclasses.replace(base, **changes)


def _convert(hint, raw: str, item: str):
    args = typing.get_args(hint)
    try:
        if raw.lower() == "none" and type(None) in args:
            return None
        if hint is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if typing.get_origin(hint) is tuple:
            kind = args[0]
            return tuple(kind(float(x)) if kind is int else kind(x)
                         for x in raw.split(",") if x.strip())
        if typing.get_origin(hint) is typing.Literal:
            if raw not in args:
                raise ValueError(raw)
            return raw
        kinds = [t for t in args if t is not type(None)] or [hint]
        kind = kinds[0]
        if kind is int:
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        return kind(raw)
    except ValueError:
        raise ConfigError(f"--set {item!r}: {raw!r} is not a valid {hint}") from None


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
