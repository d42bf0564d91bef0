"""`coplay zoo list|verify|export` — the model zoo (compact weights committed under zoo/).

    coplay zoo list                                  # entries of zoo/ (or $COPLAY_ZOO)
    coplay zoo list --prefix random1/
    coplay zoo verify                                # sha256 of every file; non-zero if damaged
    coplay zoo export --pop runs/pop-ring --prefix random1/hsp-s0
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import tyro

from coplay import zoo
from coplay.experiments.zoo_export import export_population
from coplay.runs import RunError


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
    """Write a finished population's members (actor weights, float16) to the zoo."""

    pop: Path
    """Population folder (hsp-population or mep-population, with manifest.json)."""
    prefix: str
    """Entry-name prefix, e.g. random1/hsp-s0 (entries <prefix>/memberNN-biased|-br)."""
    zoo: Path | None = None
    """Zoo folder (default: $COPLAY_ZOO, else the repository's zoo/)."""
    which: str = "final"
    """final or mid (the members' mid-skill snapshots)."""
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


def export(argv: list[str], prog: str = "coplay zoo export") -> int:
    args = tyro.cli(ExportArgs, args=argv, prog=prog)
    try:
        if args.which not in ("final", "mid"):
            raise ValueError(f"--which {args.which!r}: final or mid")
        names = export_population(args.pop, args.prefix, args.zoo, which=args.which,
                                  dtype=args.dtype, overwrite=args.overwrite)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    where = args.zoo or zoo.default_zoo_dir()
    total = sum(int(e["bytes"]) for e in zoo.list_entries(args.zoo).values())
    print(f"{len(names)} entries -> {where} (zoo size {total:,} of {zoo.SIZE_BUDGET:,} bytes)")
    for n in names:
        print(f"  {n}")
    return 0
