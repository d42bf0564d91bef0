"""Turns per second of a coplay IPD learner exported as an ``axelrod.Player`` in a ``Match``
against the library's TitForTat, with anchors measured in the same process: the library's own
TitForTat vs TitForTat (the Axelrod loop alone) and one jitted empty call per turn (the JAX
dispatch floor).

The learner is the run's learner 0 (``--run RUN_DIR``), or, without a run, a freshly
initialised GRU of the ``default`` preset's size (hidden 32; what it has learnt does not change
the cost of a turn). Each figure is the best of ``--repeats`` matches of ``--turns`` turns after
one warm-up match (compilation). The machine is shared: read the ratios beside the figures.

    python bench/bench_axelrod.py [--run runs/ipd-default/seed0] [--turns 2000]
"""

from __future__ import annotations

import argparse
import os
import time

import axelrod as axl
import jax
import jax.numpy as jnp

from coplay.agents.base import gru_agent
from coplay.agents.gru import dummy_input
from coplay.algos import a2c
from coplay.experiments.ipd.axelrod import LearnerPlayer, axelrod_game, learner_agents
from coplay.experiments.ipd.presets import A2C_PRESETS as PRESETS


def _default_learner():
    module = a2c.make_agent(PRESETS["default"])
    params = module.init(jax.random.PRNGKey(0), module.initial_hidden(1), dummy_input(1))
    return gru_agent(module, params, "default-size GRU (untrained)")


def turns_per_second(make_players, turns: int, repeats: int) -> float:
    axl.Match(make_players(), turns=turns, seed=0, game=axelrod_game()).play()  # warm-up
    best = float("inf")
    for r in range(repeats):
        match = axl.Match(make_players(), turns=turns, seed=r + 1, game=axelrod_game())
        t0 = time.perf_counter()
        match.play()
        best = min(best, time.perf_counter() - t0)
    return turns / best


def dispatch_floor(turns: int) -> float:
    f = jax.jit(lambda x: x + 1)
    x = jnp.zeros((), jnp.int32)
    int(f(x))
    t0 = time.perf_counter()
    for _ in range(turns):
        x = f(x)
        int(x)  # a turn reads its action back to Python
    return turns / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="IPD run folder (default: an untrained GRU)")
    p.add_argument("--turns", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    agent = learner_agents(args.run, (0,))[0] if args.run else _default_learner()
    learner = turns_per_second(lambda: (LearnerPlayer(agent, "learner"), axl.TitForTat()),
                               args.turns, args.repeats)
    library = turns_per_second(lambda: (axl.TitForTat(), axl.TitForTat()), args.turns,
                               args.repeats)
    floor = dispatch_floor(args.turns)
    print(f"axelrod {axl.__version__}, jax {jax.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; {args.turns} turns, best of {args.repeats}")
    print(f"learner ({agent.name}) vs TitForTat: {learner:,.0f} turns/s")
    print(f"TitForTat vs TitForTat (library only): {library:,.0f} turns/s "
          f"({library / learner:.1f}x the learner's)")
    print(f"empty jitted call + read-back per turn: {floor:,.0f} calls/s "
          f"(learner's turn = {floor / learner:.1f} empty calls)")


if __name__ == "__main__":
    main()
