"""`coplay populations train|select|show` — hidden-utility populations on disk.

    coplay populations train --layout random1 --preset default --out runs/pop-ring
    coplay populations train --out runs/pop-ring --resume          # continue a killed run
    coplay populations select --pop runs/pop-ring --eval-size 5 --train-size 8
    coplay populations show --pop runs/pop-ring
    coplay populations train --kind mep --layout random1 --out runs/mep-ring        # MEP 1
    coplay populations train --kind mep-adaptive --pop runs/mep-ring --out runs/mep2  # MEP 2
    coplay populations train --kind hsp-adaptive --pop runs/pop-ring --out runs/hsp2  # HSP 2
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

from coplay import zoo
from coplay.algos.ppo_config import PPOConfig
from coplay.config import ConfigError, parse_overrides
from coplay.experiments.cli_common import flag_value
from coplay.experiments.populations import adaptive
from coplay.experiments.populations.presets import PPO_PRESETS, PPO_PRESETS_ADAPTIVE
from coplay.experiments.populations.train import (
    PopulationConfig,
    default_ppo,
    load_run,
    preset_config,
    resolve,
    train_population,
)
from coplay.populations.selection import select_sets
from coplay.runs import RunDir, RunError, default_run_dir, read_json, write_json


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a population of hidden-utility pairs (biased policy + best response) by PPO,
    MEP stage 1 (--kind mep), MEP stage 2 (--kind mep-adaptive --pop STAGE1_FOLDER), the
    HSP adaptive agent (--kind hsp-adaptive --pop HSP_FOLDER) or a best response to each
    member of a population (--kind mep-responses / hsp-responses --pop FOLDER)."""

    kind: str = "hsp"
    """hsp (hidden-utility pairs), mep (self-play agents + population-entropy bonus),
    mep-adaptive (one learner against the frozen MEP population --pop, partners drawn with
    p ∝ rank(1/return)^alpha, alpha 3) or hsp-adaptive (one learner against the biased
    policies of the HSP population's training pool, selection.json "train" of `coplay
    populations select`; partners drawn uniformly, alpha 0); mep-responses / hsp-responses:
    one learner per partner (the same partners), each trained against its partner alone and
    all of them vmapped (the CooT release's best responses to frozen MEP agents). The --pop
    folder must be of the kind's population (an error names the other kind)."""
    pop: Path | None = None
    """--kind mep-* / hsp-*: the finished MEP stage-1 / HSP population folder,
    or a population in the zoo (zoo:random1/mep-s0, zoo:random1/hsp-s0: its float16 actors);
    its layout is used."""
    layout: str = "random1"
    """Layout with an HSP weight grid (random1 = Coord. Ring, random0, random3, ...)."""
    preset: str = "default"
    """tiny (seconds, for tests) or default (16 pairs on this 2-core CPU)."""
    seed: int = 0
    """Seed of the candidate draw, training and evaluation."""
    num_members: int | None = None
    """Pairs to train (default: the preset's)."""
    candidates: tuple[int, ...] | None = None
    """Indices into the layout's HSP candidates instead of a seeded draw."""
    out: Path | None = None
    """Population folder (default: runs/populations-<kind>-<preset>/<layout>-seed<seed>)."""
    resume: bool = False
    """Continue the population in --out from its last checkpoint."""
    ppo: PPOConfig = PPO_PRESETS["default"]
    """PPO of every pair (hsp, mep) or of the learner (mep-adaptive, hsp-adaptive); the
    defaults shown are those of the --preset and --kind given (MEP: population-entropy bonus
    0.01, one shared policy; adaptive kinds with --pop: the learner's preset with the
    population's network)."""
    set: tuple[str, ...] = ()
    """Override population fields (checkpoint_every, snapshot_every, eval_envs,
    crossplay_envs, gif_steps; mep-adaptive / hsp-adaptive: alpha, return_decay, partners,
    checkpoint_every, eval_envs; hsp-adaptive: pool=all-eligible, every pair that passed the
    selection's return threshold outside the evaluation set, instead of the training pool);
    ppo.FIELD=VALUE is an alias of --ppo.field, e.g. --set snapshot_every=5 or --set alpha=1
    partners=0,3,5."""


@dataclasses.dataclass(frozen=True)
class SelectArgs:
    """Choose evaluation partners (k-DPP) and a disjoint training pool (greedy max-L1)."""

    pop: str
    """Population folder (with manifest.json), or zoo:<prefix> of a zoo population."""
    out: str | None = None
    """Where the selection goes: None = the folder's selection.json; for a zoo population a
    new prefix zoo:<prefix> (its population entry shares the members' stored weights; the
    source entry is never rewritten)."""
    eval_size: int = 5
    """Evaluation partners (the paper: 10 per layout, 15 for multi-recipe layouts)."""
    train_size: int = 8
    """Training-pool pairs, chosen among the pairs not in the evaluation set."""
    eval_min_return: float = 10.0
    """Evaluation partners need a pair return above this (ZSC-Eval: 10)."""
    train_min_return: float = 0.1
    """Training-pool pairs need a pair return above this (spec: 0.1)."""
    dpp_exact_limit: int = 100_000
    """Enumerate all subsets when C(n, k) is at most this; otherwise sample the k-DPP."""
    dpp_samples: int = 2000
    """k-DPP samples when not enumerating (the best determinant is kept)."""
    seed: int = 0
    """Seed of the k-DPP sampler (and of the greedy first pick with --first-pick seeded)."""
    features: Literal["pooled", "by-order"] = "pooled"
    """pooled: both seats' event counts over all evaluation episodes (ZSC-Eval); by-order:
    both seats' counts in each cook assignment, concatenated (the CooT release; population
    manifests written before this option lack them: rerun the evaluation with coplay
    populations train --out FOLDER --resume)."""
    first_pick: Literal["max-total", "seeded"] = "max-total"
    """The training pool's first pick: the pair farthest from all (max-total) or one drawn
    with --seed (seeded: the CooT release, seed 0)."""


@dataclasses.dataclass(frozen=True)
class ShowArgs:
    """Print a population's members, returns and selection."""

    pop: Path
    """Population folder (with manifest.json)."""


def _split_set(items: tuple[str, ...], flags: tuple[str, ...]):
    """--set items -> (PPO items without the ``ppo.`` prefix, the other items); fields that
    have their own flag are refused."""
    ppo_items = tuple(x[len("ppo."):] for x in items if x.startswith("ppo."))
    other = tuple(x for x in items if not x.startswith("ppo."))
    for item in other:
        name = item.split("=", 1)[0].strip()
        if name in flags:
            raise ConfigError(f"--set {item!r}: use --{name.replace('_', '-')} instead")
    return ppo_items, other


def default_ppo_of(argv: list[str]) -> PPOConfig:
    """The PPO config the --kind / --preset (/ --pop) on ``argv`` give: the defaults of the
    --ppo.* flags. An unknown preset or an unreadable --pop falls back to the default preset
    (its error is raised when the config is built)."""
    kind, preset = flag_value(argv, "--kind", "hsp"), flag_value(argv, "--preset", "default")
    preset = preset if preset in PPO_PRESETS else "default"
    if kind not in adaptive.KINDS:
        return default_ppo(preset, kind)
    base = PPO_PRESETS_ADAPTIVE[preset]
    pop = flag_value(argv, "--pop", "")
    try:
        return adaptive.default_learner_ppo(preset, load_run(Path(pop))[1]) if pop else base
    except (ConfigError, RunError, OSError, KeyError, TypeError, ValueError):
        return base


def _ppo_of(args: TrainArgs, ppo_items: tuple[str, ...], default: PPOConfig):
    """The PPO flags with the ``--set ppo.*`` items applied; None when that is ``default``
    (the run then records its preset by name)."""
    algo = parse_overrides(args.ppo, ppo_items, "ppo") if ppo_items else args.ppo
    return None if algo == default else algo


def build_config(args: TrainArgs, ppo_default: PPOConfig | None = None):
    base = preset_config(args.preset)
    changes: dict = {"kind": args.kind, "layout": args.layout, "seed": args.seed}
    if args.num_members is not None:
        changes["num_members"] = args.num_members
    if args.candidates is not None:
        changes["candidates"] = tuple(args.candidates)
        changes.setdefault("num_members", len(args.candidates))
    ppo_items, pop_items = _split_set(args.set, ("kind", "layout", "preset", "seed",
                                                 "num_members", "candidates", "ppo"))
    cfg = dataclasses.replace(base, **changes)
    cfg = parse_overrides(cfg, pop_items, "population") if pop_items else cfg
    if cfg.kind not in ("hsp", "mep"):
        raise ConfigError(f"kind = {cfg.kind!r}: choose hsp, mep, mep-adaptive, "
                          "hsp-adaptive, mep-responses or hsp-responses")
    default = default_ppo(cfg.preset, cfg.kind)
    algo = _ppo_of(args, ppo_items, default if ppo_default is None else ppo_default)
    cfg = dataclasses.replace(cfg, ppo=algo)
    if not isinstance(cfg, PopulationConfig):  # pragma: no cover
        raise TypeError(cfg)
    resolve(cfg)
    return cfg


def build_adaptive_config(args: TrainArgs, ppo_default: PPOConfig | None = None):
    """The stage-2 config of ``--kind mep-adaptive`` / ``hsp-adaptive`` (validated)."""
    pop_kind = args.kind.split("-")[0]
    if args.pop is None:
        raise ConfigError(f"--kind {args.kind} needs --pop, a finished "
                          f"{adaptive.POPULATION_NAMES[pop_kind]} folder (coplay populations "
                          f"train --kind {pop_kind})")
    if args.num_members is not None or args.candidates is not None:
        raise ConfigError(f"--num-members / --candidates: not for --kind {args.kind} (the "
                          "partners are the population's members; --set partners=0,2 picks)")
    ppo_items, items = _split_set(args.set, ("population", "preset", "seed", "ppo",
                                             "learners"))
    cfg = adaptive.preset_config(args.preset, population=str(args.pop), seed=args.seed,
                                 learners="per-partner" if args.kind in adaptive.RESPONSE_KINDS
                                 else "one")
    cfg = parse_overrides(cfg, items, args.kind) if items else cfg
    pop = adaptive.load_population(cfg, pop_kind)
    default = adaptive.default_learner_ppo(cfg.preset, pop.algo)
    algo = _ppo_of(args, ppo_items, default if ppo_default is None else ppo_default)
    if algo is not None:
        cfg = dataclasses.replace(cfg, ppo=algo)
    adaptive.resolve(cfg)
    return cfg


def train_adaptive(args: TrainArgs, ppo_default: PPOConfig | None = None) -> Path:
    """``--kind mep-adaptive`` / ``hsp-adaptive`` (or resuming such a run): train, then print
    the evaluation."""
    cfg = (adaptive.load_config(args.out) if args.resume
           else build_adaptive_config(args, ppo_default))
    out = args.out or default_run_dir(f"populations-{args.kind}-{cfg.preset}",
                                      f"{Path(cfg.population).name}-seed{cfg.seed}")
    adaptive.train_adaptive(cfg, out, resume=args.resume)
    return Path(out)


def _print_adaptive(path: Path) -> None:
    ev = read_json(path / "eval.json")
    s = ev["summary"]
    kind = read_json(path / "manifest.json")["kind"]
    own = "self-play" if kind.startswith("mep") else "with its best response"
    who = "learners (one per partner)" if kind in adaptive.RESPONSE_KINDS else "learner"
    print(f"{path}: {adaptive.TITLES[kind]} {who}, {s['env_steps']:,} env steps; return "
          f"with each partner ({ev['episodes_per_partner']} episodes):")
    for p in ev["partners"]:
        print(f"  member {p['member']:>3}: {p['return']:7.1f}   (partner {own} "
              f"{p['partner_self_play_return']:.1f}, final p {p['final_prob']})")
    print(f"mean {s['mean_return']:.1f}, worst partner {s['worst_partner_return']:.1f}  "
          f"report: {path / 'report.md'}")


def parse_train_args(argv: list[str], prog: str = "coplay populations train"):
    """(TrainArgs, the default of its --ppo.* flags) for ``argv``."""
    ppo_default = default_ppo_of(argv)
    return tyro.cli(TrainArgs, args=argv, prog=prog,
                    default=TrainArgs(ppo=ppo_default)), ppo_default


def train(argv: list[str], prog: str = "coplay populations train") -> int:
    args, ppo_default = parse_train_args(argv, prog)
    try:
        if args.resume and args.out is None:
            raise ConfigError("--resume needs --out (the population folder to continue)")
        adaptive_run = (read_json(args.out / RunDir.CONFIG).get("experiment")
                        if args.resume else args.kind) in adaptive.KINDS
        if adaptive_run:
            out = train_adaptive(args, ppo_default)
        else:
            cfg = load_run(args.out)[0] if args.resume else build_config(args, ppo_default)
            out = args.out or default_run_dir(f"populations-{args.kind}-{args.preset}",
                                              f"{Path(args.layout).stem}-seed{args.seed}")
            train_population(cfg, out, resume=args.resume)
    except (ConfigError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (_print_adaptive if adaptive_run else _print_members)(Path(out))
    return 0


def select(argv: list[str], prog: str = "coplay populations select") -> int:
    args = tyro.cli(SelectArgs, args=argv, prog=prog)
    try:
        for f in ("eval_size", "train_size", "dpp_exact_limit", "dpp_samples"):
            if getattr(args, f) < 0 or (f.startswith("dpp") and getattr(args, f) < 1):
                raise ConfigError(f"{f} = {getattr(args, f)}: must be >= "
                                  f"{1 if f.startswith('dpp') else 0}")
        if zoo.is_ref(args.pop):
            if not zoo.is_ref(args.out):
                raise ConfigError(f"out = {args.out!r}: a zoo population's selection goes to a "
                                  "new zoo prefix, --out zoo:<prefix>")
            man, _ = zoo.load_population_entry(zoo.ref_name(args.pop))
        else:
            if args.out is not None:
                raise ConfigError(f"out = {args.out!r}: a folder's selection is its "
                                  "selection.json (leave --out out)")
            man = read_json(Path(args.pop) / "manifest.json")
        key = "features" if args.features == "pooled" else "features_by_order"
        if any(key not in m for m in man["members"]):
            raise ConfigError(f"features = {args.features!r}: {args.pop}'s manifest has no "
                              f"{key} (written by coplay populations train since 2026-12-07; "
                              f"rerun its evaluation with --out {args.pop} --resume)")
        feats = np.array([m[key] for m in man["members"]])
        rets = np.array([m["return"] for m in man["members"]])
        sel = select_sets(feats, rets, args.train_size, args.eval_size, args.train_min_return,
                          args.eval_min_return, args.dpp_exact_limit, args.dpp_samples,
                          args.seed, args.seed if args.first_pick == "seeded" else None)
        sel["args"] = {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in dataclasses.asdict(args).items()}
        if len(sel["eval"]) < args.eval_size or len(sel["train"]) < args.train_size:
            print(f"note: only {len(sel['eval'])} evaluation partners and {len(sel['train'])} "
                  "training pairs were eligible", file=sys.stderr)
        if zoo.is_ref(args.pop):
            where = zoo.ref_of(zoo.reselect_population(zoo.ref_name(args.pop),
                                                   zoo.ref_name(args.out), sel))
        else:
            where = Path(args.pop) / "selection.json"
            write_json(where, sel)
    except (ConfigError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"evaluation partners (k-DPP, {sel['eval_method']}, log det "
          f"{sel['eval_log_det']:.2f}): {sel['eval']}")
    print(f"training pool (greedy max-L1): {sel['train']}")
    print(f"diversity: all {sel['diversity_all']:.2f}, train {sel['diversity_train']:.2f}, "
          f"eval {sel['diversity_eval']:.2f}  -> {where}")
    return 0


def show(argv: list[str], prog: str = "coplay populations show") -> int:
    args = tyro.cli(ShowArgs, args=argv, prog=prog)
    try:
        _print_members(args.pop)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _print_members(path: Path) -> None:
    man = read_json(path / "manifest.json")
    sel = read_json(path / "selection.json") if (path / "selection.json").exists() else None
    s = man["summary"]
    table = Table(title=f"{path}: {man['num_members']} pairs on {man['layout']}, "
                        f"{s['env_steps_per_member']:,} steps each")
    for col in ("member", "hidden utility", "return", "mid-skill", "role"):
        table.add_column(col)
    fixed = {"USEFUL_DISH_PICKUP", "SOUP_PICKUP", "PLACEMENT_IN_POT"}
    for e in man["members"]:
        role = ""
        if sel:
            role = "eval" if e["member"] in sel["eval"] else \
                "train" if e["member"] in sel["train"] else ""
        table.add_row(str(e["member"]),
                      ", ".join(f"{k} {v:g}" for k, v in e["weights"].items() if k not in fixed),
                      f"{e['return']:.1f}", str(e.get("mid_skill", {}).get("update", "-")), role)
    Console().print(table)
    print(f"best-response return >= 40: {s['members_with_br_return_ge_40']}/{man['num_members']}"
          f"  diversity score {s['diversity_score']:.2f}  "
          f"cross-play own {s['crossplay_diagonal_mean']:.1f} / "
          f"others {s['crossplay_off_diagonal_mean']:.1f}")
    print(f"report: {path / 'report.md'}")
