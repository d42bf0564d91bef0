"""`coplay zoo list|verify|export` — the model zoo (compact weights committed under zoo/).

    coplay zoo list                                  # entries of zoo/ (or $COPLAY_ZOO)
    coplay zoo list --prefix random1/
    coplay zoo verify                                # sha256 of every file; non-zero if damaged
    coplay zoo export --pop runs/pop-ring --prefix random1/hsp-s0
    coplay zoo export --run runs/coot/random1-s0 --name random1/coot-s0
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import tyro

from coplay import zoo
from coplay.experiments.zoo.export import (
    RESPONSE_KINDS,
    RUN_KINDS,
    export_ipd_run,
    export_population,
    export_responses,
    export_run,
    run_kind,
)
from coplay.runs import RunError, read_json


@dataclasses.dataclass(frozen=True)
class ListArgs:
    """List the zoo's entries."""

    zoo: Path | None = None
    """Zoo folder (default: $COPLAY_ZOO, else the repository's zoo/)."""
    prefix: str = ""
    """Only the entries whose name starts with this."""


@dataclasses.dataclass(frozen=True)
class VerifyArgs:
    """Check every zoo file against the manifest's sha256 (exit 1 naming any damaged,
    missing or stray file)."""

    zoo: Path | None = None
    """Zoo folder (default: $COPLAY_ZOO, else the repository's zoo/)."""


@dataclasses.dataclass(frozen=True)
class ExportArgs:
    """Write trained agents (float16) to the zoo: a finished population's members (--pop,
    --prefix) or one finished run's agent (--run, --name: coot, coot-bc, mep-adaptive,
    hsp-adaptive, self-play overcooked-ppo, or an A2C IPD run: one entry per learner, or a
    mep-/hsp-responses run: one entry per best response and their index)."""

    pop: Path | None = None
    """Population folder (hsp-population or mep-population, with manifest.json)."""
    prefix: str | None = None
    """With --pop: entry-name prefix, e.g. random1/hsp-s0 (entries <prefix>/memberNN-biased|-br)."""
    run: Path | None = None
    """A finished run folder: coot (model.msgpack), coot-bc, mep-adaptive or hsp-adaptive
    (agent.msgpack), overcooked-ppo (self-play: its seat-0 policy), ipd (A2C: entries
    <name>/learnerNN)."""
    name: str | None = None
    """With --run: the entry's name, e.g. random1/coot-s0 (an IPD run: the entries' prefix)."""
    zoo: Path | None = None
    """Zoo folder (default: $COPLAY_ZOO, else the repository's zoo/)."""
    which: str = "final"
    """With --pop: final or mid (the members' mid-skill snapshots)."""
    mid: str = "none"
    """With --pop (HSP, --which final): also the mid-skill snapshots of the training pool
    (train: the selection's train set) or of every member (all), as
    <prefix>/memberNN-biased-mid / -br-mid; none: final policies only."""
    dtype: str = "float16"
    """float16 or bfloat16."""
    overwrite: bool = False
    """Replace entries of the same names."""


def list_(argv: list[str], prog: str = "coplay zoo list") -> int:
    args = tyro.cli(ListArgs, args=argv, prog=prog)
    try:
        entries = zoo.list_entries(args.zoo, args.prefix)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    where = args.zoo or zoo.default_zoo_dir()
    print(f"{where}: {len(entries)} entries" + (f" under {args.prefix!r}" if args.prefix
                                               else ""))
    width = max((len(n) for n in entries), default=4)
    if entries:
        print(f"  {'name':<{width}}  {'format':<7} {'dtype':<8} {'bytes':>10}  layout / role "
              "/ return")
    for name, e in entries.items():  # plain lines: names stay whole and copyable
        meta = e.get("meta") or {}
        ret = meta.get("return")
        print(f"  {name:<{width}}  {e.get('format', 'msgpack'):<7} "
              f"{e.get('dtype') or '-':<8} {int(e['bytes']):>10,}  "
              f"{meta.get('layout', '-')} / {meta.get('role', '-')} / "
              f"{'-' if ret is None else f'{ret:.1f}'}")
    total = sum(int(e["bytes"]) for e in zoo.list_entries(args.zoo).values())
    print(f"zoo size {total:,} of {zoo.SIZE_BUDGET:,} bytes")
    return 0


def verify(argv: list[str], prog: str = "coplay zoo verify") -> int:
    args = tyro.cli(VerifyArgs, args=argv, prog=prog)
    try:
        results = zoo.verify(args.zoo)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = [(n, msg) for n, ok, msg in results if not ok]
    for _, msg in bad:
        print(f"FAILED {msg}", file=sys.stderr)
    where = args.zoo or zoo.default_zoo_dir()
    print(f"{where}: {len(results) - len(bad)} ok, {len(bad)} failed")
    return 1 if bad else 0


def _export(args: ExportArgs) -> list[str]:
    if (args.pop is None) == (args.run is None):
        raise ValueError("give exactly one of --pop (a population folder, with --prefix) and "
                         f"--run (a {', '.join(RUN_KINDS)} run folder, with --name)")
    if args.pop is not None:
        if args.prefix is None or args.name is not None:
            raise ValueError("--pop takes --prefix (entries <prefix>/memberNN...), not --name")
        if args.which not in ("final", "mid"):
            raise ValueError(f"--which {args.which!r}: final or mid")
        if args.mid not in ("none", "train", "all"):
            raise ValueError(f"--mid {args.mid!r}: none, train or all")
        mids: tuple[int, ...] = ()
        if args.mid == "all":
            mids = tuple(range(len(read_json(args.pop / "manifest.json")["members"])))
        elif args.mid == "train":
            sel = args.pop / "selection.json"
            if not sel.is_file():
                raise ValueError(f"--mid train: {args.pop} has no selection.json (coplay "
                                 "populations select first)")
            mids = tuple(int(m) for m in read_json(sel)["train"])
        return export_population(args.pop, args.prefix, args.zoo, which=args.which,
                                 dtype=args.dtype, overwrite=args.overwrite, mid_members=mids)
    if args.name is None or args.prefix is not None:
        raise ValueError("--run takes --name (the entry's name, e.g. random1/coot-s0), not "
                         "--prefix")
    if args.which != "final":
        raise ValueError("--which is for --pop (population members' snapshots)")
    if run_kind(args.run) == "ipd":  # one entry per learner: <name>/learnerNN
        return export_ipd_run(args.run, args.name, args.zoo, dtype=args.dtype,
                              overwrite=args.overwrite)
    if run_kind(args.run) in RESPONSE_KINDS:  # <name>/responseNN + <name>/responses
        return export_responses(args.run, args.name, args.zoo, dtype=args.dtype,
                                overwrite=args.overwrite)
    return [export_run(args.run, args.name, args.zoo, dtype=args.dtype,
                       overwrite=args.overwrite)]


def export(argv: list[str], prog: str = "coplay zoo export") -> int:
    args = tyro.cli(ExportArgs, args=argv, prog=prog)
    try:
        names = _export(args)
    except (RunError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    where = args.zoo or zoo.default_zoo_dir()
    total = sum(int(e["bytes"]) for e in zoo.list_entries(args.zoo).values())
    print(f"{len(names)} entries -> {where} (zoo size {total:,} of {zoo.SIZE_BUDGET:,} bytes)")
    for n in names:
        print(f"  {n}")
    return 0
