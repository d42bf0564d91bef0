"""PPI planning cost, measured against named anchors in the same process; prints ratios.

1. Improved-policy actions per second: whole games (``num_rounds`` rounds, 2 learners in the
   mixed pool) played with π ∝ p·exp(β·Q̂), every decision planning 2 x K rollouts of H rounds
   inside the model, against the same games played by the model's prior alone (no planning).
   The ratio is the price of planning: 2·K·H simulated rounds per decision, each a GRU step
   plus the observation and reward heads and two samples (an acting step is a GRU step and
   the action head), so the ratio can exceed 2·K·H.
2. The same games with the rollouts' random numbers drawn once per game (``planning_noise =
   "episode"``) against fresh draws at every decision (``"decision"``): the same work, so the
   ratio should be ≈1 (measured 0.95x, --quick, shared machine).
3. One PPI phase of the chosen preset, split into model training (gradient steps on the
   cumulative dataset) and collection (games with planning): seconds and shares.

   With ``--preset paper`` a phase is far too large to run here, so section 3 instead
   times the paper's model on small batches (planning games, training steps) and
   extrapolates what its 30 phases would cost on this machine, against the `default`
   preset's model timed the same way in the same process.

Usage: python bench/bench_ppi.py [--preset default|paper] [--repeats N] [--quick]
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import jax
import numpy as np
from timing import best_time  # bench/timing.py (scripts run from bench/)

from coplay.algos import ppi
from coplay.data.shards import ShardStore
from coplay.envs.matrix_games import MatrixGameParams
from coplay.experiments.ipd.ppi import PhaseRunner
from coplay.experiments.ipd.presets import PPI_PRESETS as PRESETS


def actions_per_s(cfg: ppi.PPIConfig, games: int, plan: bool, repeats: int) -> float:
    params = ppi.init_learners(cfg, jax.random.PRNGKey(0), cfg.num_learners)
    opponents = ppi.sample_opponents(jax.random.PRNGKey(1), cfg, games)
    play = jax.jit(lambda key: ppi.rollout(key, cfg, params, opponents, MatrixGameParams(),
                                           plan=plan).action)
    t = best_time(lambda: play(jax.random.PRNGKey(2)).block_until_ready(), repeats)
    return cfg.num_learners * games * cfg.num_rounds / t


def phase_split(cfg: ppi.PPIConfig) -> dict:
    """Run phases 1 and 2 of ``cfg`` in a scratch folder; report phase 2 (compiled)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ShardStore(tmp)
        d0 = ppi.make_random_pairs(cfg.num_rounds)(jax.random.PRNGKey(0),
                                                   cfg.d0_trajectories // 2)
        store.write("d0", d0._asdict())
        runner = PhaseRunner(cfg, store)
        params = ppi.init_learners(cfg, jax.random.PRNGKey(0), cfg.num_learners)
        no = [False] * cfg.num_learners
        params, _ = runner.run_phase(jax.random.PRNGKey(1), 1, params, no)
        _, row = runner.run_phase(jax.random.PRNGKey(2), 2, params, no)
    return row


def train_steps_per_s(cfg: ppi.PPIConfig, repeats: int, steps: int = 20) -> float:
    """Gradient steps per second of one learner's model at ``cfg.batch_size``."""
    data = ppi.make_random_pairs(cfg.num_rounds)(jax.random.PRNGKey(0), 1024)
    data = jax.tree.map(lambda x: jax.numpy.asarray(x)[None], data)
    params = ppi.init_learners(cfg, jax.random.PRNGKey(1), 1)
    train_steps, optimizer = ppi.make_train_steps(cfg)
    opt_state = jax.vmap(optimizer.init)(params)
    idx = jax.numpy.asarray(ppi.batch_indices(np.random.default_rng(0), 2048, steps,
                                              cfg.batch_size))[None]
    ones = jax.numpy.ones((1, 2048))
    t = best_time(lambda: jax.block_until_ready(train_steps(params, opt_state, data, idx, ones)),
                  repeats)
    return steps / t


def paper_scale_estimate(cfg: ppi.PPIConfig, anchor: ppi.PPIConfig, repeats: int) -> None:
    """Time ``cfg``'s model (planning games, training steps) on small batches, with
    ``anchor``'s timed the same way, and extrapolate ``cfg``'s whole run on this machine."""
    rows = {}
    for name, c in (("paper", cfg), ("default", anchor)):
        rows[name] = (actions_per_s(c, 100, True, repeats), train_steps_per_s(c, repeats))
    (act, steps), (act0, steps0) = rows["paper"], rows["default"]
    print(f"improved-policy actions/s: paper {act:.4g}, default {act0:.4g} "
          f"(paper / default = {act / act0:.3f}x)")
    print(f"gradient steps/s (batch {cfg.batch_size}): paper {steps:.4g}, default "
          f"{steps0:.4g} ({steps / steps0:.3f}x)")
    planning = cfg.num_phases * cfg.num_learners * cfg.trajectories_per_phase * cfg.num_rounds
    grad_steps = sum(np.ceil(cfg.epochs * (cfg.d0_trajectories + (k - 1)
                                           * cfg.trajectories_per_phase) / cfg.batch_size)
                     for k in range(1, cfg.num_phases + 1)) * cfg.num_learners
    print(f"paper run ({cfg.num_phases} phases, {cfg.num_learners} learners): "
          f"{planning:.3g} planned actions -> {planning / act / 3600:.1f} h, "
          f"{grad_steps:.3g} gradient steps -> {grad_steps / steps / 3600:.1f} h "
          f"(one core's worth of this machine per learner stack; extrapolated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--quick", action="store_true", help="smaller batches, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best kept)")
    args = parser.parse_args()
    cfg = PRESETS[args.preset]
    repeats = 1 if args.quick else args.repeats
    print(f"== PPI improved-policy actions/s (preset {args.preset}: hidden {cfg.hidden_size}, "
          f"K = {cfg.num_rollouts} rollouts x H = {cfg.planning_horizon} rounds per action, "
          f"{cfg.num_learners} learners, {cfg.num_rounds} rounds) ==")
    print(f"{'games':>6} {'improved π':>12} {'prior only':>12} {'ratio':>7} "
          f"{'model steps/action':>19}")
    for games in ((50,) if args.quick else (100, cfg.collect_batch)):
        improved = actions_per_s(cfg, games, True, repeats)
        prior = actions_per_s(cfg, games, False, repeats)
        steps = 2 * cfg.num_rollouts * cfg.planning_horizon
        print(f"{games:>6} {improved:>12.4g} {prior:>12.4g} {prior / improved:>6.1f}x "
              f"{steps:>19}")
    games = 50 if args.quick else cfg.collect_batch
    print(f"== planning noise: one draw per game against fresh draws per decision "
          f"({games} games) ==")
    per = {noise: actions_per_s(dataclasses.replace(cfg, planning_noise=noise), games, True,
                                repeats) for noise in ("decision", "episode")}
    print(f"decision {per['decision']:.4g} actions/s, episode {per['episode']:.4g} actions/s: "
          f"episode / decision = {per['episode'] / per['decision']:.2f}x")
    if args.preset == "paper":
        print("== the paper preset's whole run, extrapolated from small batches (anchor: the "
              "default preset's model timed alike) ==")
        paper_scale_estimate(cfg, PRESETS["default"], repeats)
        return
    # phase 1 only prepares phase 2 (its pre-training length is not what a phase costs)
    cfg = dataclasses.replace(cfg, first_phase_steps=cfg.max_steps_per_phase)
    if args.quick:
        cfg = dataclasses.replace(cfg, d0_trajectories=1000, trajectories_per_phase=100,
                                  collect_batch=50, max_steps_per_phase=50, first_phase_steps=50)
    print(f"== one PPI phase (phase 2 of preset {args.preset}: "
          f"{cfg.trajectories_per_phase} games per learner) ==")
    row = phase_split(cfg)
    total = row["train_s"] + row["collect_s"]
    print(f"model training : {row['train_s']:7.1f} s  ({row['train_s'] / total:5.1%})  "
          f"{row['train_steps']} steps on {max(row['dataset_size'])} trajectories")
    print(f"planning games : {row['collect_s']:7.1f} s  ({row['collect_s'] / total:5.1%})  "
          f"{cfg.num_learners * cfg.trajectories_per_phase * cfg.num_rounds / row['collect_s']:.4g}"
          " improved-policy actions/s")
    print(f"planning / training time: {row['collect_s'] / row['train_s']:.2f}x")


if __name__ == "__main__":
    main()
