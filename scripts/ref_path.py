"""The modules an agent reference passes through on its way from `coot eval` to an Agent, and
how often that path climbs back to a module higher in the import order.

    python scripts/ref_path.py RUN_FOLDER_OR_ZOO_REF [--layout random1]

Runs what `coplay coot eval` does with one ``label=REF`` before any game is played (the
layout check, loading, the observation check) under a profiler, keeps the calls into the
driver layer, the zoo, run plumbing and configs up to the first call of the agent's own
module (consecutive calls in one module count once), and ranks every module by its
import height (0: imports no coplay module; else 1 + the highest module it imports). A climb
is a step of the path into a module of greater height than the one before it: a return to a
driver after a reader, or a reader calling back up.
"""

from __future__ import annotations

import argparse
import ast
import sys
from functools import cache
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "coplay"


def import_graph() -> dict[str, set[str]]:
    mods = {".".join(f.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for f in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for n in names:
                while n and n not in mods:
                    n = n.rpartition(".")[0]
                if n and n != m and n != "coplay":
                    graph[m].add(n)
    return graph


def heights(graph: dict[str, set[str]]) -> dict[str, int]:
    @cache
    def h(m: str) -> int:
        return 1 + max((h(t) for t in graph[m]), default=-1)

    sys.setrecursionlimit(10_000)
    return {m: h(m) for m in graph}


# the reference's handling: drivers, readers and run plumbing, and the agent constructor reached
KEEP = ("coplay.experiments", "coplay.zoo", "coplay.runs", "coplay.config", "coplay.agents.")


def trace(fn) -> list[str]:
    path: list[str] = []

    def prof(frame, event, arg):
        if event != "call":
            return
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith(KEEP) or (path and path[-1] == mod):
            return
        if mod.startswith("coplay.agents.") and any(m.startswith("coplay.agents.") for m in path):
            return  # the agent is built: its own insides (networks, tracing) are not the path
        path.append(mod)

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("--layout", default="random1")
    args = ap.parse_args()
    from coplay.envs.overcooked import Overcooked

    env = Overcooked(args.layout)
    try:  # today's resolver
        from coplay.experiments.refs import check_obs, locate, resolve

        def load():
            src = locate(args.ref)
            assert src.layout in (None, args.layout)
            check_obs(resolve(src, layout=args.layout, name="x"), env, src.ref)
    except ImportError:  # before it (commit 894036e and earlier)
        from coplay.experiments.coot_data import check_obs
        from coplay.experiments.coot_eval import load_ref, parse_ref, trained_layout

        def load():
            assert trained_layout(args.ref) in (None, args.layout)
            check_obs(load_ref(args.ref, "x"), env, parse_ref(args.ref))

    path = trace(load)
    height = heights(import_graph())
    steps = zip(path, path[1:], strict=False)
    climbs = [(a, b) for a, b in steps if height.get(b, 0) > height.get(a, 0)]
    rooms = list(dict.fromkeys(path))
    print(f"{len(rooms)} modules, {len(path)} steps, {len(climbs)} climbs")
    print("path: " + " > ".join(m.removeprefix("coplay.") for m in path))
    for a, b in climbs:
        print(f"  climb {a.removeprefix('coplay.')} ({height[a]}) -> "
              f"{b.removeprefix('coplay.')} ({height[b]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
