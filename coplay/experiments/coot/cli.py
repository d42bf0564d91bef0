"""`coplay coot collect|train|bc|eval|diagnose|report` — the Coordination Transformer end to
end.

    coplay coot collect --out runs/coot-data                       # rollouts of the pool
    coplay coot train --dataset runs/coot-data --out runs/coot/s0 --seed 0
    coplay coot train --out runs/coot/s0 --resume                  # continue a killed run
    coplay coot bc --dataset runs/coot-data --out runs/coot-bc/s0
    coplay coot dagger --dataset runs/coot-data --dagger.start runs/coot/s0 --out runs/dagger
    coplay coot relabel --dataset runs/coot-data --relabel.player runs/coot-bc/s0 \\
        --out runs/coot-data-bcplay                                # BC's games, BR labels
    coplay coot eval --agent coot=runs/coot/s0 coot=runs/coot/s1 bc=runs/coot-bc/s0 \\
        mep-adaptive=runs/mep2 --out runs/coot-eval
    coplay coot report --eval runs/coot-eval
    coplay coot diagnose --diagnose.coot runs/coot/s0 --out runs/coot-diagnose

Presets (``--preset tiny|default|paper``) set every field of the nested ``--coot.*`` /
``--bc.*`` configs; ``--help`` shows the values a run would use.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import tyro

from coplay.algos.bc import BCConfig
from coplay.algos.coot import CootConfig
from coplay.experiments.cli_common import parse_with_preset
from coplay.experiments.coot.dagger import (
    DaggerConfig,
    RelabelConfig,
    relabel_dataset,
    run_dagger,
)
from coplay.experiments.coot.data import CollectConfig, collect
from coplay.experiments.coot.diagnose import DiagnoseConfig, diagnose
from coplay.experiments.coot.eval import EvalConfig, evaluate
from coplay.experiments.coot.presets import (
    BC_PRESETS,
    COLLECT_PRESETS,
    COOT_PRESETS,
    DAGGER_PRESETS,
    DIAGNOSE_PRESETS,
    EVAL_PRESETS,
)
from coplay.experiments.coot.report import write_report
from coplay.experiments.coot.train import (
    BCRunConfig,
    CootRunConfig,
    load_coot_config,
    train_bc_run,
    train_coot,
)
from coplay.runs import RunError, use_cpu_cores


@dataclasses.dataclass(frozen=True)
class CollectArgs:
    """Roll out every training pair in both seats (sampled actions) into a dataset folder."""

    out: Path
    """The dataset folder (rerun with the same --out to continue a killed collection)."""
    collect: CollectConfig = CollectConfig()
    preset: Literal["tiny", "default", "paper"] = "default"
    """tiny (20-step episodes, 4 per seat) / default (the zoo's seed-0 pool) / paper (the
    paper's pool from the zoo: 21 HSP pairs with mid-skill episodes, 15 MEP agents with
    their trained best responses)."""


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train the Coordination Transformer on a dataset (one epoch per checkpoint)."""

    out: Path
    """The run folder."""
    dataset: str = ""
    """The dataset folder (coplay coot collect); not needed with --resume."""
    coot: CootConfig = COOT_PRESETS["default"]
    preset: Literal["tiny", "default", "paper", "release", "release-cpu"] = "default"
    """tiny (tests) / default (this 2-core CPU) / paper (the paper's values: 70 epochs, 125
    contexts per pair; GPU scale) / release (the paper's values plus the released code's
    training details) / release-cpu (those at the default budget)."""
    val_pairs: int = 1
    """Training pairs held out (both seats) for early stopping."""
    seed: int = 0
    """Seed of the split, initialisation, sampling and dropout."""
    select_by: Literal["val-loss", "closed-loop"] = "val-loss"
    """The epoch kept (and early stopping's signal): val-loss (the paper's) or closed-loop
    (not in the paper: return with the training partners over their best responses', checked
    after every epoch)."""
    closed_loop_pairs: int = 0
    """Training pairs of the closed-loop check (0: all)."""
    closed_loop_episodes: int = 3
    """Consecutive episodes per training pair and seat in the closed-loop check."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    set: tuple[str, ...] = ()
    """Override coot fields as FIELD=VALUE (an alias of the --coot.* flags)."""


@dataclasses.dataclass(frozen=True)
class BCArgs:
    """Train the BC baseline (state only) on a dataset, same split as CooT's by seed."""

    dataset: str
    """The dataset folder (coplay coot collect)."""
    out: Path
    """The run folder."""
    bc: BCConfig = BC_PRESETS["default"]
    preset: Literal["tiny", "default"] = "default"
    """tiny / default."""
    val_pairs: int = 1
    """Training pairs held out for early stopping."""
    seed: int = 0
    """Seed of the split and training."""
    set: tuple[str, ...] = ()
    """Override bc fields as FIELD=VALUE (e.g. top_fraction=0.25)."""


@dataclasses.dataclass(frozen=True)
class DaggerArgs:
    """Not in the paper: DAgger rounds on a trained CooT. Each round plays the current CooT
    with every training pair (context carried over), labels its states with the pair's best
    response, adds them to the dataset and fine-tunes; rerun with the same --out to resume.
    The last round's folder is a CooT run for `coplay coot eval`."""

    out: Path
    """The DAgger folder."""
    dataset: str = ""
    """The base dataset (coplay coot collect), the start CooT's own."""
    dagger: DaggerConfig = DaggerConfig()
    preset: Literal["tiny", "default"] = "default"
    """tiny (tests) / default."""


@dataclasses.dataclass(frozen=True)
class RelabelArgs:
    """Not in the paper: another agent's games with every training pair of a dataset, its
    states labelled by the pair's best response, added to a copy of the dataset (hard links;
    the original is not modified). A CooT trained on the copy sees contexts played by that
    agent while its labels stay the best response's. Rerun with the same --out to resume."""

    dataset: str
    """The dataset (coplay coot collect, or an earlier relabel's --out)."""
    out: Path
    """The new dataset folder."""
    relabel: RelabelConfig = RelabelConfig()


@dataclasses.dataclass(frozen=True)
class EvalArgs:
    """Play agents against the held-out partners; write eval.json and report.md. The games
    run on every CPU core (same numbers); rerun with the same --out to resume."""

    out: Path
    """The evaluation folder."""
    eval: EvalConfig = EvalConfig()
    preset: Literal["tiny", "default", "paper"] = "default"
    """tiny / default / paper."""
    agent: tuple[str, ...] = ()
    """label=REF ... (one flag, several values; added to --eval.agents); a label given twice
    pools its REFs as seeds; the first label is compared with the best of the others."""


@dataclasses.dataclass(frozen=True)
class DiagnoseArgs:
    """Why a CooT does (not) coordinate: BR-Prox with its own / emptied / oracle /
    mismatched-oracle contexts, its agreement with the partners' best responses on its own
    states, and its closed-loop return with training partners (diagnose.json, report.md)."""

    out: Path
    """The diagnosis folder."""
    diagnose: DiagnoseConfig = DiagnoseConfig()
    preset: Literal["tiny", "default"] = "default"
    """tiny (tests) / default (10 episodes per partner, seat and variant)."""


@dataclasses.dataclass(frozen=True)
class ReportArgs:
    """Rewrite report.md and the PNGs of an evaluation folder."""

    eval: Path
    """The evaluation folder (with eval.json)."""


def _run(fn, spread_games: bool = False) -> int:
    """Run a command: RunError / ValueError -> ``error: ...`` and exit status 1.
    ``spread_games``: commands that only play many independent games (collect, eval) split
    them over this machine's cores (:func:`coplay.runs.use_cpu_cores`; the same numbers).
    Not for training: a single computation runs slower beside a second host device."""
    if spread_games:
        use_cpu_cores()
    try:
        fn()
    except (RunError, ValueError) as e:
        print(f"error: {e}")
        return 1
    return 0


def collect_cmd(argv: list[str], prog: str = "coplay coot collect") -> int:
    args = parse_with_preset(CollectArgs, argv, prog, "collect", COLLECT_PRESETS,
                             out=Path("runs/coot-data"))
    return _run(lambda: print(f"dataset: {collect(args.collect, args.out)}"), spread_games=True)


def train_cmd(argv: list[str], prog: str = "coplay coot train") -> int:
    args = parse_with_preset(TrainArgs, argv, prog, "coot", COOT_PRESETS, out=Path("runs/coot"))

    def go():
        if args.resume:
            cfg, _ = load_coot_config(args.out)
        else:
            if not args.dataset:
                raise RunError("--dataset is needed (the folder of coplay coot collect)")
            cfg = CootRunConfig(args.dataset, args.coot, args.preset, args.val_pairs, args.seed,
                                select_by=args.select_by,
                                closed_loop_pairs=args.closed_loop_pairs,
                                closed_loop_episodes=args.closed_loop_episodes)
        path = train_coot(cfg, args.out, resume=args.resume)
        print(f"report: {path / 'report.md'}")

    return _run(go)


def bc_cmd(argv: list[str], prog: str = "coplay coot bc") -> int:
    args = parse_with_preset(BCArgs, argv, prog, "bc", BC_PRESETS, dataset="",
                             out=Path("runs/coot-bc"))

    def go():
        if not args.dataset:
            raise RunError("--dataset is needed (the folder of coplay coot collect)")
        cfg = BCRunConfig(args.dataset, args.bc, args.preset, args.val_pairs, args.seed)
        print(f"report: {train_bc_run(cfg, args.out) / 'report.md'}")

    return _run(go)


def dagger_cmd(argv: list[str], prog: str = "coplay coot dagger") -> int:
    args = parse_with_preset(DaggerArgs, argv, prog, "dagger", DAGGER_PRESETS,
                             out=Path("runs/coot-dagger"))

    def go():
        if not args.dataset:
            raise RunError("--dataset is needed (the start CooT's dataset, coplay coot collect)")
        print(f"report: {run_dagger(args.dagger, args.dataset, args.out) / 'report.md'}")

    # not spread over host devices: that costs its fine-tuning (one device) more than its
    # play gains
    return _run(go)


def relabel_cmd(argv: list[str], prog: str = "coplay coot relabel") -> int:
    args = tyro.cli(RelabelArgs, args=argv, prog=prog)

    def go():
        out = relabel_dataset(args.relabel, args.dataset, args.out)
        print(f"dataset: {out}")

    return _run(go, spread_games=True)


def eval_cmd(argv: list[str], prog: str = "coplay coot eval") -> int:
    args = parse_with_preset(EvalArgs, argv, prog, "eval", EVAL_PRESETS,
                             out=Path("runs/coot-eval"))
    cfg = dataclasses.replace(args.eval, agents=tuple(args.eval.agents) + tuple(args.agent))

    def go():
        out = evaluate(cfg, args.out)
        print(f"report: {write_report(out)}")

    return _run(go, spread_games=True)


def diagnose_cmd(argv: list[str], prog: str = "coplay coot diagnose") -> int:
    args = parse_with_preset(DiagnoseArgs, argv, prog, "diagnose", DIAGNOSE_PRESETS,
                             out=Path("runs/coot-diagnose"))

    def go():
        out = diagnose(args.diagnose, args.out, pools=COLLECT_PRESETS)
        print((out / "report.md").read_text())
        print(f"report: {out / 'report.md'}")

    return _run(go, spread_games=True)


def report_cmd(argv: list[str], prog: str = "coplay coot report") -> int:
    args = tyro.cli(ReportArgs, args=argv, prog=prog)
    return _run(lambda: print(f"report: {write_report(args.eval)}"))
