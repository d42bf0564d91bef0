"""Speed of the JAX Overcooked env vs JaxMARL 0.2.0 and vs the Python reference.

Coord. Ring (random1), uniformly random actions, observations computed and consumed, batch
sizes 64 and 512, one run on this machine. The actions of a whole timed call are drawn in one
``randint`` before its scan (inside the timing, for every contender): drawn step by step,
threefry's 5-round loop on a (batch, 2) array was ≈10 % of our step at batch 512. Two consumers
(``--consume``), the same for every contender: ``accumulate`` adds each step's observations
into a buffer carried by the scan (the observation is materialised and every element read, as a
learner does), ``sum`` adds their sum to a scalar (XLA then fuses the observation into a
reduction and may never materialise it).

    python bench/bench_overcooked.py [--jaxmarl-python /tmp/jaxmarl-venv/bin/python]
    python bench/bench_overcooked.py --kernels   # XLA kernels of the compiled vmapped step
    python bench/bench_overcooked.py --profile   # time per step of each XLA kernel (trace)
    python bench/bench_overcooked.py --work      # elementwise ops per step of each kernel (HLO)

JaxMARL runs in its own virtualenv (it pins other jax versions): give its python with
``--jaxmarl-python`` or the ``JAXMARL_PYTHON`` environment variable; that part is skipped
when absent. The Python reference is the PyPI ``overcooked`` package
(``get_state_transition`` + ``lossless_state_encoding`` per step, one env).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import subprocess
import time

import jax
import jax.numpy as jnp

from coplay.envs.overcooked import Overcooked

# Run inside the JaxMARL virtualenv: the same loop on JaxMARL's overcooked (coord_ring).
JAXMARL_SNIPPET = r"""
import json, sys, time
import jax, jax.numpy as jnp
import jaxmarl
from jaxmarl.environments.overcooked import overcooked_layouts
batch, steps, consume = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
env = jaxmarl.make("overcooked", layout=overcooked_layouts["coord_ring"])
def run(key):
    keys = jax.random.split(key, batch)
    obs, state = jax.vmap(env.reset)(keys)
    def body(carry, xs):
        state, acc = carry
        ks, a = xs
        acts = {"agent_0": a[:, 0], "agent_1": a[:, 1]}
        obs, state, rew, dones, info = jax.vmap(env.step)(jax.random.split(ks, batch), state, acts)
        if consume == "sum":
            acc = acc + obs["agent_0"].sum() + obs["agent_1"].sum() + rew["agent_0"].sum()
        else:
            acc = (acc[0] + obs["agent_0"], acc[1] + obs["agent_1"], acc[2] + rew["agent_0"])
        return (state, acc), None
    acc = 0.0 if consume == "sum" else (jnp.zeros_like(obs["agent_0"], jnp.float32),
                                        jnp.zeros_like(obs["agent_1"], jnp.float32),
                                        jnp.zeros((batch,), jnp.float32))
    ka, kr = jax.random.split(key)
    actions = jax.random.randint(ka, (steps, batch, 2), 0, 6)
    (state, acc), _ = jax.lax.scan(body, (state, acc), (jax.random.split(kr, steps), actions))
    return acc
f = jax.jit(run)
jax.block_until_ready(f(jax.random.PRNGKey(0)))
best = 0.0
for rep in range(3):
    t = time.perf_counter(); jax.block_until_ready(f(jax.random.PRNGKey(rep + 1)))
    best = max(best, batch * steps / (time.perf_counter() - t))
print(json.dumps({"steps_per_s": best, "jax": jax.__version__}))
"""


def our_loop(batch: int, steps: int, layout: str = "random1", consume: str = "accumulate"):
    """The jitted bench loop on our env: ``steps`` vmapped steps with random actions."""
    env = Overcooked(layout)
    params = env.default_params()

    def run(key):
        keys = jax.random.split(key, batch)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
        step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

        def body(carry, xs):
            state, acc = carry
            ks, a = xs
            obs, state, rew, _, _ = step(jax.random.split(ks, batch), state, a, params)
            if consume == "sum":
                return (state, acc + obs.sum() + rew.sum()), None
            return (state, (acc[0] + obs, acc[1] + rew)), None

        acc = 0.0 if consume == "sum" else (jnp.zeros_like(obs), jnp.zeros((batch, 2)))
        ka, kr = jax.random.split(key)
        actions = jax.random.randint(ka, (steps, batch, 2), 0, 6)
        (_, acc), _ = jax.lax.scan(body, (state, acc), (jax.random.split(kr, steps), actions))
        return acc

    f = jax.jit(run)
    jax.block_until_ready(f(jax.random.PRNGKey(0)))  # compile outside the timing
    return f


def bench_ours(batch: int, steps: int, layout: str = "random1",
               consume: str = "accumulate") -> float:
    f = our_loop(batch, steps, layout, consume)
    best = 0.0
    for rep in range(3):
        t = time.perf_counter()
        jax.block_until_ready(f(jax.random.PRNGKey(rep + 1)))
        best = max(best, batch * steps / (time.perf_counter() - t))
    return best


def count_kernels(batch: int, layout: str = "random1") -> dict[str, int]:
    """Ops of the compiled, vmapped ``step`` (entry computation) that launch a kernel on CPU."""
    env = Overcooked(layout)
    params = env.default_params()
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.zeros((batch, 2), jnp.int32)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    text = step.lower(keys, state, actions, params).compile().as_text()
    entry = text[text.index("\nENTRY"):]
    ops = collections.Counter(re.findall(r"= \S+ ([a-z\-]+)\(", entry))
    free = ("parameter", "constant", "get-tuple-element", "tuple", "bitcast")
    return {k: v for k, v in ops.items() if k not in free}


def _hlo_computations(text: str) -> dict[str, list[str]]:
    """Instruction lines of each computation of an optimised HLO module's text."""
    comps: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"^(?:ENTRY )?%?(\S+) .*\{$", line)
        if head:
            current = comps.setdefault(head.group(1), [])
        elif current is not None and line.strip() not in ("", "}"):
            current.append(line)
    return comps


def count_work(batch: int, layout: str = "random1",
               consume: str = "accumulate") -> list[tuple[int, str, str]]:
    """Elementwise operations per kernel of one vmapped step plus the consumer (default: the
    accumulating one),
    counted in the optimised HLO: every non-trivial instruction of a fused computation counts
    its output's element count. A proxy for work that does not depend on the machine's load
    (it finds recomputation: XLA duplicating a chain into several kernels, or evaluating a
    per-env value once per grid cell). Returns (ops, kernel, output shape), largest first.
    """
    env = Overcooked(layout)
    params = env.default_params()
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def step(keys, state, actions, acc):
        obs, state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, actions,
                                                                      params)
        return state, (acc + obs.sum()) if consume == "sum" else (acc + obs)

    acc = jnp.zeros(() if consume == "sum" else (batch, 2) + env.obs_shape)
    actions = jnp.zeros((batch, 2), jnp.int32)
    text = jax.jit(step).lower(keys, state, actions, acc).compile().as_text()
    comps = _hlo_computations(text)
    free = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "broadcast",
            "iota", "reshape", "copy"}

    def ops(name: str) -> int:
        total = 0
        for line in comps.get(name, []):
            m = re.search(r"= (\w+\[[0-9,]*\])\S* ([a-z\-]+)\(", line)
            if not m or m.group(2) in free:
                continue
            called = re.search(r"calls=%?([\w.\-]+)", line)
            if m.group(2) == "fusion" and called:
                total += ops(called.group(1))
                continue
            dims = [int(d) for d in re.findall(r"\d+", m.group(1).split("[")[1])]
            total += int(math.prod(dims))
        return total

    entry = comps[re.search(r"\nENTRY %?(\S+) ", text).group(1)]
    rows = []
    for line in entry:
        m = re.match(r"\s*(?:ROOT )?%?(\S+) = (\S+) fusion\(.*calls=%?([\w.\-]+)", line)
        if m:
            rows.append((ops(m.group(3)), m.group(1), m.group(2).split("{")[0]))
    return sorted(rows, reverse=True)


def profile_kernels(batch: int, steps: int = 50, top: int = 15, layout: str = "random1",
                    consume: str = "accumulate") -> list[tuple[str, float]]:
    """Per-step time of each XLA kernel of the bench loop, from a ``jax.profiler`` trace.

    Shows where a step's time goes (e.g. which fusion builds the observation); the absolute
    figures include tracing overhead and the machine's load, compare them with each other.
    """
    import gzip
    import tempfile
    from pathlib import Path

    f = our_loop(batch, steps, layout, consume)
    reps = 3
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp)
        for rep in range(reps):
            jax.block_until_ready(f(jax.random.PRNGKey(rep + 1)))
        jax.profiler.stop_trace()
        trace = next(Path(tmp).rglob("*.trace.json.gz"))
        events = json.load(gzip.open(trace))["traceEvents"]
    total: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        # Kernels only: XLA fusions / ops, not the runtime's own spans or Python frames.
        if e.get("ph") == "X" and not name.startswith(("$", "ThunkExecutor", "Pjit", "Common")):
            total[name] += e["dur"]
    return [(name, us / (reps * steps)) for name, us in total.most_common(top)]


def bench_reference(n_steps: int) -> float | None:
    try:
        import numpy as np
        from overcooked.mdp.actions import Action

        from coplay.envs.overcooked.layouts import get_layout
        from coplay.testing.overcooked_reference import reference_mdp
    except ImportError:
        return None
    mdp = reference_mdp(get_layout("random1"))
    rng = np.random.default_rng(0)
    state = mdp.get_standard_start_state()
    acc = 0.0
    t = time.perf_counter()
    for k in range(n_steps):
        if k % 400 == 0:
            state = mdp.get_standard_start_state()
        joint = tuple(Action.INDEX_TO_ACTION[int(x)] for x in rng.integers(0, 6, 2))
        state, info = mdp.get_state_transition(state, joint)
        obs = mdp.lossless_state_encoding(state, horizon=400)
        acc += float(obs[0].sum()) + sum(info["sparse_reward_by_agent"])
    return n_steps / (time.perf_counter() - t)


def bench_jaxmarl(python: str | None, batch: int, steps: int,
                  consume: str = "accumulate") -> dict | None:
    if not python or not os.path.exists(python):
        return None
    proc = subprocess.run([python, "-c", JAXMARL_SNIPPET, str(batch), str(steps), consume],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print("JaxMARL run failed:\n" + proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, nargs="*", default=[64, 512])
    ap.add_argument("--steps", type=int, default=400, help="scan length per timed call")
    ap.add_argument("--ref-steps", type=int, default=2000)
    ap.add_argument("--jaxmarl-python", default=os.environ.get("JAXMARL_PYTHON"))
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved rounds (ours, JaxMARL, reference); best of each is kept")
    ap.add_argument("--consume", choices=["accumulate", "sum", "both"], default="both",
                    help="how the loop consumes each step's observations: added into a "
                         "running buffer (materialised, as a learner reads them) or summed")
    ap.add_argument("--kernels", action="store_true",
                    help="only print the XLA kernel count of the compiled vmapped step")
    ap.add_argument("--work", action="store_true",
                    help="only print the elementwise ops per step of each XLA kernel (HLO)")
    ap.add_argument("--profile", action="store_true",
                    help="only print the per-step time of the slowest XLA kernels (trace)")
    args = ap.parse_args()
    if args.profile:
        for b in args.batch:
            print(f"batch {b}: microseconds per step of the slowest kernels")
            for name, us in profile_kernels(b, consume=args.consume.replace("both", "accumulate")):
                print(f"  {us:8.1f}  {name}")
        return
    if args.work:
        for b in args.batch:
            rows = count_work(b, consume=args.consume.replace("both", "accumulate"))
            print(f"batch {b}: {sum(r[0] for r in rows):,} elementwise ops per step "
                  f"in {len(rows)} kernels; the largest:")
            for n, name, shape in rows[:12]:
                print(f"  {n:>10,}  {name:32s} {shape}")
        return
    if args.kernels:
        for b in args.batch:
            ops = count_kernels(b)
            print(f"batch {b:4d}: {sum(ops.values())} kernels {ops}")
        return
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, layout random1 (Coord. Ring)")
    consumers = ["accumulate", "sum"] if args.consume == "both" else [args.consume]
    # Interleave the contenders and keep each one's best round: the machine is shared.
    runs = [(c, b) for c in consumers for b in args.batch]
    ref, ours, jms = None, {r: 0.0 for r in runs}, {r: None for r in runs}
    for _ in range(args.rounds):
        r = bench_reference(args.ref_steps)
        ref = r if ref is None or (r and r > ref) else ref
        for c, b in runs:
            ours[c, b] = max(ours[c, b], bench_ours(b, args.steps, consume=c))
            jm = bench_jaxmarl(args.jaxmarl_python, b, args.steps, consume=c)
            if jm and (jms[c, b] is None or jm["steps_per_s"] > jms[c, b]["steps_per_s"]):
                jms[c, b] = jm
    if ref is None:
        print("Python reference: `overcooked` not installed, skipped")
    else:
        print(f"Python reference (1 env): {ref:,.0f} steps/s")
    for c, b in runs:
        line = f"obs {c:10s} batch {b:4d}: coplay {ours[c, b]:,.0f} steps/s"
        if ref:
            line += f" | x{ours[c, b] / ref:,.0f} the Python reference"
        jm = jms[c, b]
        if jm:
            line += (f" | JaxMARL 0.2.0 (jax {jm['jax']}) {jm['steps_per_s']:,.0f} steps/s,"
                     f" ratio x{ours[c, b] / jm['steps_per_s']:.2f}")
        else:
            line += " | JaxMARL: skipped (no --jaxmarl-python)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
