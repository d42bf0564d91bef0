"""How much of a trained PPI learner's policy is planning noise, and how predictable is it?

For each finished PPI run: play learner-vs-learner and learner-vs-random-tabular games with the
improved policy (as the evaluation does), then re-plan every recorded decision — same history,
same model — with fresh rollout keys, and report

- ``|π₁ − π₂|``: the mean change of π(C | x) between two re-plannings of the same decision
  (0 would be a policy that is a function of the history alone);
- the share of decisions with 0.1 < π(C | x) < 0.9;
- how well each learner's model predicts its co-player's action (log-loss and Brier score),
  next to the same scores of the co-player's own π of that decision — a floor that no
  predictor reaches without knowing the co-player's planning draws, so the gap between the
  two is planning noise plus model error.

Prints a table; writes nothing. ``--rollouts K`` re-plans with K rollouts instead of the
run's own (e.g. to see how the spread shrinks with K).

    python scripts/ppi_planning_noise.py RUN [RUN ...] [--games 128] [--rollouts K]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.ppi_model import PPIModel
from coplay.agents.tabular import random_memory1
from coplay.algos import ppi
from coplay.algos.ipd_rollout import Opponents
from coplay.envs.matrix_games import COOPERATE, MatrixGameParams
from coplay.experiments.ipd.runs import (
    ppi_state_template,
)
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir


def hidden_states(model: PPIModel, params, inputs):
    """Teacher-forced model states (T, N, H) after reading each round's input."""
    def body(hidden, x):
        hidden, feat = model.apply(params, hidden, x, method=PPIModel.step)
        return hidden, (hidden, feat)

    _, (hidden, feat) = jax.lax.scan(body, model.initial_hidden(inputs.token.shape[1]), inputs)
    return hidden, feat


def replanned_coop(algo: ppi.PPIConfig, params, inputs, key) -> jax.Array:
    """π(C | x) (T, N) of every recorded decision of one learner, planned afresh with ``key``."""
    model = ppi.make_model(algo)
    hidden, feat = hidden_states(model, params, inputs)
    t, n = inputs.token.shape
    flat = lambda x: x.reshape(t * n, *x.shape[2:])  # noqa: E731
    rounds = jnp.broadcast_to(jnp.arange(t)[:, None], (t, n)).reshape(-1)
    q = ppi.plan_q(algo, params, flat(hidden), flat(feat), flat(inputs.opponent_id), rounds, key)
    prior = model.apply(params, flat(feat), method=PPIModel.action_logits)
    return jnp.exp(ppi.improved_logits(prior, q, algo.beta)[:, 0]).reshape(t, n)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--games", type=int, default=128, help="games per pairing")
    parser.add_argument("--rollouts", type=int, default=0,
                        help="re-plan with this many rollouts (0: the run's own)")
    args = parser.parse_args()
    print("run | pairing | learner | K | π(C) | |π₁−π₂| | 0.1<π<0.9 | co-player log-loss: "
          "model / own π | Brier: model / own π")
    for path in args.runs:
        _, algo = load_ipd_config(Path(path))
        state, _ = RunDir(Path(path)).load_checkpoint(ppi_state_template(algo))
        replan = (dataclasses.replace(algo, num_rollouts=args.rollouts) if args.rollouts
                  else algo)
        play = jax.jit(lambda key, opp, algo=algo, state=state: ppi.rollout(
            key, algo, state.params, opp, MatrixGameParams()))
        replan_jit = jax.jit(replanned_coop, static_argnums=0)
        for name, is_learner in (("L-L", True), ("L-tab", False)):
            tabular = random_memory1(jax.random.PRNGKey(5), (algo.num_learners, args.games))
            traj = play(jax.random.PRNGKey(7),
                        Opponents(tabular, jnp.full((args.games,), is_learner)))
            for i in range(algo.num_learners):
                params = jax.tree.map(lambda x, i=i: x[i], state.params)
                inputs = jax.tree.map(lambda x, i=i: x[:, i], traj.inputs)
                pi = [np.asarray(replan_jit(replan, params, inputs, jax.random.PRNGKey(100 + r)))
                      for r in range(2)]
                recorded = np.asarray(traj.coop_prob[:, i])
                y = (np.asarray(traj.opponent_action[:, i]) == COOPERATE).astype(np.float64)
                predicted = np.asarray(traj.predicted_coplayer_coop[:, i])
                own = np.asarray(traj.coplayer_coop_prob[:, i])
                print(f"{Path(path).name} | {name} | {i} | {replan.num_rollouts} | "
                      f"{recorded.mean():.3f} | {np.abs(pi[0] - pi[1]).mean():.3f} | "
                      f"{((recorded > 0.1) & (recorded < 0.9)).mean():.2f} | "
                      f"{log_loss(predicted, y):.3f} / {log_loss(own, y):.3f} | "
                      f"{((predicted - y) ** 2).mean():.3f} / {((own - y) ** 2).mean():.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
