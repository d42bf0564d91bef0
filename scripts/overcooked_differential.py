"""Long differential run: >= 1,000 full episodes per layout against the Python reference.

Episodes are split evenly between random actions, the noisy scripted cook, and random
actions from random kitchens. Writes a JSON summary (episodes, steps, mismatches per layout).

    python scripts/overcooked_differential.py --episodes 1000 --out runs/overcooked_diff.json
    ZSCEVAL_PATH=... python scripts/overcooked_differential.py --against zsceval --obs

``--against pypi`` (default) uses the PyPI ``overcooked`` package (state, rewards, reference
events); ``--against zsceval`` uses ZSC-Eval's own code (state, all 17 / 29 events, rewards,
and with ``--obs`` the observations).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from coplay.envs.overcooked import Overcooked, layout_names
from coplay.runs import atomic_write_text
from coplay.testing.overcooked_difftest import (
    make_replay,
    run_differential,
    run_differential_random_starts,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--layouts", nargs="*", default=layout_names())
    ap.add_argument("--out", default="runs/overcooked_differential.json")
    ap.add_argument("--against", choices=["pypi", "zsceval"], default="pypi")
    ap.add_argument("--obs", action="store_true", help="also compare observations (zsceval)")
    args = ap.parse_args()
    summary: dict = {"steps_per_episode": args.steps, "against": args.against, "layouts": {}}
    for name in args.layouts:
        env = Overcooked(name)
        replay = make_replay(env)
        done, problems, t0 = 0, [], time.time()
        kinds = ("random", "scripted", "random_start")
        counts = dict.fromkeys(kinds, 0)
        chunk_id = 0
        while done < args.episodes:
            kind = kinds[chunk_id % 3]
            seed = 1000 * chunk_id + 17
            if args.against == "zsceval":
                from coplay.testing.zsceval_ref import run_zsceval_differential

                policy = "scripted" if kind == "scripted" else "random"
                p = run_zsceval_differential(env, args.chunk, args.steps, seed, policy,
                                             kind == "random_start", args.obs, replay=replay)
            elif kind == "random_start":
                p = run_differential_random_starts(env, args.chunk, args.steps, seed,
                                                   replay=replay)
            else:
                p = run_differential(env, args.chunk, args.steps, seed, kind, replay=replay)
            problems += [f"[{kind} seed {seed}] {x}" for x in p]
            done += args.chunk
            counts[kind] += args.chunk
            chunk_id += 1
        summary["layouts"][name] = {
            "episodes": done, "by_kind": counts, "steps": done * args.steps,
            "mismatches": len(problems), "examples": problems[:20],
            "seconds": round(time.time() - t0, 1),
        }
        print(name, summary["layouts"][name], flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.out), json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
