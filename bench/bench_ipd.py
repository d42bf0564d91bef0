"""IPD speed, measured against named anchors in the same process; prints ratios.

1. Environment steps/s: the jitted, vmapped ``IteratedMatrixGame`` (random actions, whole
   episodes in one ``lax.scan``) against a NumPy implementation of the same game vectorised
   over the batch (the strongest non-JAX anchor; a per-episode Python loop would be far slower).
2. A2C training agent-steps/s (rollout + GAE + update, both learners, one program with a
   learner axis) against two one-learner programs dispatched together. JAX dispatches them
   asynchronously, so on a 2-core CPU they run concurrently: the ratio shows how much of the
   machine one training program uses (seeds are therefore best run as parallel processes).

Usage: python bench/bench_ipd.py [--quick]
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from timing import best_time  # bench/timing.py (scripts run from bench/)

from coplay.algos import a2c
from coplay.envs.matrix_games import IteratedMatrixGame, MatrixGameParams
from coplay.experiments.ipd.presets import A2C_PRESETS as PRESETS


def jax_env_steps_per_s(batch: int, rounds: int, repeats: int) -> float:
    env = IteratedMatrixGame(rounds)
    params = MatrixGameParams()

    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(None, 0, 0, None))

    @jax.jit
    def run(key):
        _, state = reset(jax.random.split(key, batch), params)

        def body(carry, k):
            state, total = carry
            actions = jax.random.bernoulli(k, 0.5, (batch, 2)).astype(jnp.int32)
            obs, state, reward, _, _ = step(k, state, actions, params)
            return (state, total + reward + obs), None  # consume obs and reward

        (_, total), _ = jax.lax.scan(body, (state, jnp.zeros((batch, 2))),
                                     jax.random.split(key, rounds))
        return total

    t = best_time(lambda: run(jax.random.PRNGKey(0)).block_until_ready(), repeats)
    return batch * rounds / t


def numpy_env_steps_per_s(batch: int, rounds: int, repeats: int) -> float:
    payoff = np.array([[1.0, -1.0], [2.0, 0.0]])
    rng = np.random.default_rng(0)

    def run():
        total = np.zeros((batch, 2))
        for _ in range(rounds):
            actions = rng.integers(0, 2, (batch, 2))
            other = actions[:, ::-1]
            total += payoff[actions, other] + (1 + 2 * actions + other)
        return total

    return batch * rounds / best_time(run, repeats)


def a2c_agent_steps_per_s(cfg: a2c.A2CConfig, per_learner_programs: bool,
                          repeats: int) -> float:
    """Training throughput. The anchor trains two one-learner programs (self-play), dispatched
    together so that they may run concurrently."""
    if per_learner_programs:
        one = dataclasses.replace(cfg, num_learners=1)
        init, chunk = a2c.make_train(one)
        states = [init(jax.random.PRNGKey(i)) for i in range(cfg.num_learners)]
        key = jax.random.PRNGKey(1)
        run = lambda: jax.block_until_ready([chunk(s, key) for s in states])
    else:
        init, chunk = a2c.make_train(cfg)
        state = init(jax.random.PRNGKey(0))
        key = jax.random.PRNGKey(1)
        run = lambda: jax.block_until_ready(chunk(state, key))
    t = best_time(run, repeats)
    steps = cfg.updates_per_chunk * cfg.num_learners * cfg.episodes_per_update * cfg.num_rounds
    return steps / t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    args = ap.parse_args()
    repeats = 1 if args.quick else 3
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s)")

    print("\n== IPD environment steps/s (100-round episodes, random actions) ==")
    print(f"{'batch':>7} {'coplay (jit+vmap)':>18} {'numpy (vectorised)':>19} {'ratio':>7}")
    for batch in (64, 1024) if args.quick else (64, 1024, 16384):
        ours = jax_env_steps_per_s(batch, 100, repeats)
        ref = numpy_env_steps_per_s(batch, 100, repeats)
        print(f"{batch:>7} {ours:>18.3e} {ref:>19.3e} {ours / ref:>6.1f}x")

    print("\n== A2C training agent-steps/s (rollout + GAE + update, 2 learners) ==")
    print(f"{'hidden':>6} {'episodes':>8} {'coplay':>10} {'per-learner programs':>21}"
          f" {'ratio':>6} {'s/update':>9}")
    sizes = [(64, 256)] if args.quick else [(64, 512), (128, 512), (32, 1024)]
    for hidden, eps in sizes:
        cfg = dataclasses.replace(a2c.A2CConfig(), hidden_size=hidden, episodes_per_update=eps,
                                  updates_per_chunk=2 if args.quick else 5, scan_unroll=1)
        ours = a2c_agent_steps_per_s(cfg, per_learner_programs=False, repeats=repeats)
        ref = a2c_agent_steps_per_s(cfg, per_learner_programs=True, repeats=repeats)
        per_update = cfg.num_learners * eps * cfg.num_rounds / ours
        print(f"{hidden:>6} {eps:>8} {ours:>10.3e} {ref:>21.3e} {ours / ref:>5.2f}x"
              f" {per_update:>9.3f}")

    print("\n== the `default` preset's population against the paper's pair, same total episodes ==")
    print(f"{'learners x episodes':>20} {'agent-steps/s':>14} {'s/update':>9} {'ratio':>6}")
    base = dataclasses.replace(PRESETS["default"], updates_per_chunk=2 if args.quick else 5)
    total = base.episodes_per_update * base.num_learners
    pair = dataclasses.replace(base, num_learners=2, episodes_per_update=total // 2)
    rates = {}
    for cfg in (pair, base):  # the pair is the anchor
        rates[cfg.num_learners] = a2c_agent_steps_per_s(cfg, per_learner_programs=False,
                                                        repeats=repeats)
        per_update = cfg.num_learners * cfg.episodes_per_update * cfg.num_rounds / rates[
            cfg.num_learners]
        print(f"{f'{cfg.num_learners} x {cfg.episodes_per_update}':>20} "
              f"{rates[cfg.num_learners]:>14.3e} {per_update:>9.3f} "
              f"{rates[cfg.num_learners] / rates[2]:>5.2f}x")


if __name__ == "__main__":
    main()
