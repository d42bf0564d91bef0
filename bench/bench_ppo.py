"""Self-play PPO on Overcooked vs JaxMARL's IPPO baseline, measured side by side in one run.

(a) Ours: ``coplay overcooked train --preset default`` (the real driver, run folder and all)
    per layout, in a fresh process; from its metrics.jsonl: env steps and wall time (compile
    included) until the logged mean sparse return per 400-step episode first reaches 150, and
    the final return after the preset's step budget (5 M env steps).
(b) JaxMARL: ``baselines/IPPO/ippo_ff_overcooked.py`` of the JaxMARL repository with its
    default config (shared MLP, 16 envs x 128 steps, 5 M steps), run in JaxMARL's own
    virtualenv through ``bench/jaxmarl_ippo_adapter.py``. JaxMARL's Overcooked is its own
    implementation with a different observation (26 channels) and the same layouts
    (coord_ring = our random1). Nothing of JaxMARL is stored here: pass the script's path.
(c) PPO training throughput (env steps/s including learning) of our trainer for 1, 4 and 16
    population members (HSP hidden-utility weights of random1), and its ratio to JaxMARL
    IPPO's steady-state throughput measured in (b).

    python bench/bench_ppo.py --jaxmarl-python /tmp/jaxmarl-venv/bin/python \\
        --jaxmarl-ippo PATH/baselines/IPPO/ippo_ff_overcooked.py

(``JAXMARL_PYTHON`` / ``JAXMARL_IPPO`` work too; without them part (b) is skipped.) Both
"returns" are the same statistic: per update, the mean over the rollout's steps and envs of
each env's last finished episode's sparse return (JaxMARL's LogWrapper
``returned_episode_returns``). Runs are sequential (one heavy process at a time); the machine's
load is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THRESHOLD = 150.0
JAXMARL_LAYOUT = {"cramped_room": "cramped_room", "random1": "coord_ring",
                  "random0": "forced_coord", "random3": "counter_circuit",
                  "unident_s": "asymm_advantages"}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def curve_stats(curve: list[list[float]], final_updates: int = 10) -> dict:
    """curve: [env_steps, wall_s, return] per update, in order."""
    hit = next(((s, t) for s, t, r in curve if r >= THRESHOLD), None)
    final = sum(r for _, _, r in curve[-final_updates:]) / min(final_updates, len(curve))
    k = max(len(curve) // 10, 1)  # steady state: skip the first 10% (compile, warm-up)
    (s0, t0, _), (s1, t1, _) = curve[k], curve[-1]
    return {
        "steps_to_150": hit[0] if hit else None,
        "time_to_150_s": hit[1] if hit else None,
        "final_return": final,
        "total_steps": curve[-1][0],
        "total_s": curve[-1][1],
        "steps_per_s": (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan"),
    }


def run_ours(layout: str, seed: int, total_steps: int | None, workdir: Path) -> dict:
    out = workdir / f"ours-{layout}-seed{seed}"
    cmd = [sys.executable, "-m", "coplay.cli", "overcooked", "train", "--layout", layout,
           "--preset", "default", "--seed", str(seed), "--out", str(out)]
    if total_steps:
        cmd += ["--set", f"total_steps={total_steps}"]
    print(f"  $ {' '.join(cmd[1:])}   [{load()}]", flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = []
    for r in rows:  # per update; the wall time known at the end of its chunk
        spu = r["env_steps"] // r["update"]
        first = r["update"] - len(r["returned_return"]) + 1
        curve += [[(first + i) * spu, r["time_s"], x] for i, x in enumerate(r["returned_return"])]
    stats = curve_stats(curve)
    stats["eval_return"] = json.loads((out / "eval.json").read_text())["sparse_return_mean"]
    return stats


def run_jaxmarl(python: str, script: str, layout: str, total_steps: int | None,
                seed: int | None) -> dict:
    cmd = [python, str(Path(__file__).parent / "jaxmarl_ippo_adapter.py"), "--script", script,
           "--layout", JAXMARL_LAYOUT[layout]]
    if total_steps:
        cmd += ["--total-steps", str(total_steps)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    print(f"  $ jaxmarl_ippo_adapter.py --layout {JAXMARL_LAYOUT[layout]}   [{load()}]",
          flush=True)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    stats = curve_stats(out["curve"])
    stats["seed"] = out["config"]["SEED"]
    return stats


def throughput(members: int, chunks: int = 2) -> float:
    """Env steps/s (all members) of the default preset's train chunk, after compile."""
    import jax

    from coplay.algos import ppo
    from coplay.envs.overcooked import Overcooked, hsp_candidates
    from coplay.experiments.overcooked.presets import PPO_PRESETS as PRESETS

    cfg = PRESETS["default"]
    env = Overcooked("random1")
    w, sparse = hsp_candidates("random1")
    params = [env.default_params(event_weights=w[m % len(w)] * [[1.0], [0.0]],
                                 sparse_weight=[float(sparse[m % len(w)]), 1.0])
              for m in range(members)]  # seat 0 biased, seat 1 its best response
    trainer = ppo.make_train(cfg, env, ppo.stack_params(params))
    state = trainer.init(jax.random.PRNGKey(0))
    state, _ = trainer.train_chunk(state)
    jax.block_until_ready(state)
    t = time.perf_counter()
    for _ in range(chunks):
        state, _ = trainer.train_chunk(state)
    jax.block_until_ready(state)
    steps = members * chunks * cfg.updates_per_chunk * ppo.steps_per_update(cfg)
    return steps / (time.perf_counter() - t)


def fmt(x, spec=",.0f", none="not reached"):
    return none if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jaxmarl-python", default=os.environ.get("JAXMARL_PYTHON"),
                    help="python of a virtualenv with jaxmarl (env JAXMARL_PYTHON)")
    ap.add_argument("--jaxmarl-ippo", default=os.environ.get("JAXMARL_IPPO"),
                    help="path of JaxMARL's baselines/IPPO/ippo_ff_overcooked.py "
                         "(env JAXMARL_IPPO)")
    ap.add_argument("--layouts", nargs="+", default=["cramped_room", "random1"])
    ap.add_argument("--seed", type=int, default=0, help="seed of our runs")
    ap.add_argument("--jaxmarl-seed", type=int, default=None,
                    help="SEED of JaxMARL's runs (default: its config's, 30)")
    ap.add_argument("--total-steps", type=int, default=None,
                    help="step budget of both (default: both configs' 5 M)")
    ap.add_argument("--members", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--no-curves", action="store_true", help="only the throughput part")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    have_jaxmarl = bool(args.jaxmarl_python and args.jaxmarl_ippo)
    if not have_jaxmarl:
        print("JaxMARL part skipped: pass --jaxmarl-python and --jaxmarl-ippo "
              "(or JAXMARL_PYTHON / JAXMARL_IPPO)")
    results: dict = {"start": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": load(),
                     "curves": {}, "throughput": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ([] if args.no_curves else args.layouts):
            print(f"{layout}:", flush=True)
            res = {"ours": run_ours(layout, args.seed, args.total_steps, Path(tmp))}
            res["ours"]["load_after"] = load()
            if have_jaxmarl:
                res["jaxmarl"] = run_jaxmarl(args.jaxmarl_python, args.jaxmarl_ippo, layout,
                                             args.total_steps, args.jaxmarl_seed)
                res["jaxmarl"]["load_after"] = load()
            results["curves"][layout] = res
    for m in args.members:
        print(f"throughput, {m} members   [{load()}]", flush=True)
        results["throughput"][m] = throughput(m)
    results["load_end"] = load()

    print(f"\nSelf-play PPO, time to a logged mean sparse return of {THRESHOLD:.0f} per 400-step "
          "episode (compile included)")
    head = (f"{'layout':<13} {'system':<8} {'steps to 150':>13} {'s to 150':>9} "
            f"{'final ret':>9} {'steps':>11} {'wall s':>7} {'steps/s':>8}")
    print(head)
    for layout, res in results["curves"].items():
        for name, r in res.items():
            print(f"{layout:<13} {name:<8} {fmt(r['steps_to_150']):>13} "
                  f"{fmt(r['time_to_150_s'], '.1f'):>9} {r['final_return']:>9.1f} "
                  f"{r['total_steps']:>11,.0f} {r['total_s']:>7.1f} {r['steps_per_s']:>8,.0f}")
        if "jaxmarl" in res:
            o, j = res["ours"], res["jaxmarl"]
            if o["time_to_150_s"] and j["time_to_150_s"]:
                print(f"{'':<13} ratio    time to 150 JaxMARL/ours = "
                      f"{j['time_to_150_s'] / o['time_to_150_s']:.2f}, steps to 150 "
                      f"JaxMARL/ours = {j['steps_to_150'] / o['steps_to_150']:.2f}, "
                      f"final ours/JaxMARL = {o['final_return'] / j['final_return']:.2f}")
    print("\nPPO training throughput, default preset (env steps/s incl. learning, all members)")
    ref = [r["jaxmarl"]["steps_per_s"] for r in results["curves"].values() if "jaxmarl" in r]
    ref_sps = sum(ref) / len(ref) if ref else None
    for m, sps in results["throughput"].items():
        ratio = f"   x{sps / ref_sps:.2f} JaxMARL IPPO (1 run)" if ref_sps else ""
        print(f"  {m:>2} members: {sps:>9,.0f}{ratio}")
    if ref_sps:
        print(f"  JaxMARL IPPO steady state, mean of its runs above: {ref_sps:,.0f}")
    print(f"\n{results['load_start']} at start, {results['load_end']} at end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
