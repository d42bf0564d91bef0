"""Predictive Policy Improvement (PPI) for sequence-model agents in the IPD (spec: Algorithm 2).

Every learner owns one sequence model p_φ (:class:`coplay.agents.ppi_model.PPIModel`) over
its interleaved (o, r, a) stream, trained self-supervised on its cumulative dataset. It acts
with the improved policy

    π(a | x≤t) ∝ p_φ(a | x≤t) · exp(β · Q̂(x≤t, a)),

where Q̂(x≤t, a) is the mean return of ``num_rollouts`` Monte-Carlo rollouts of
``planning_horizon`` rounds *inside the model*: the first action is a, the co-player's replies
(next observations) and the rewards are sampled / predicted by p_φ, the agent's own later
actions are sampled from the prior p_φ(a | x). All rollouts of all games are one batch, scanned
over the horizon in one jitted program.

The phase loop (driven from Python by :mod:`coplay.experiments.ipd.ppi`): for k = 1..K,
re-initialise φ, train it on D_{k-1}, play ``trajectories_per_phase`` games with π, and append
them to the dataset. D_0 is games between pairs of random tabular agents.

Where is what (all pure; the names are re-exported here, as ``ppi.X`` is how callers read
them):

- :mod:`coplay.algos.ppi_config`: :class:`PPIConfig`, :func:`validate`, :func:`make_model`;
- :mod:`coplay.algos.ppi_episodes`: recorded :class:`Episodes`, :func:`tokenize`, D_0
  (:func:`make_random_pairs`);
- :mod:`coplay.algos.ppi_training`: model parameters, :func:`model_loss` and the jitted
  training steps (:func:`make_train_steps`);
- :mod:`coplay.algos.ppi_planning`: :func:`plan_q` and :func:`improved_logits`;
- here: the batched game rollout with the improved policy (:func:`rollout`), the mixed pool
  of co-players (:func:`sample_opponents`) and a rollout's games as dataset rows.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.gru import AgentInput
from coplay.agents.ppi_model import PPIModel
from coplay.agents.tabular import memory1_log_policy, random_memory1
from coplay.algos.ipd_game import History, game_step, new_game, seat_input
from coplay.algos.ipd_rollout import (
    Opponents,
    RolloutCarry,
    coplayer_action,
    coplayer_values,
    opponent_ids,
    random_pairing,
)
from coplay.algos.ppi_config import PPIConfig, make_model, num_learner_games, validate
from coplay.algos.ppi_episodes import Episodes, make_random_pairs, tokenize
from coplay.algos.ppi_planning import improved_logits, plan_q, predicted_coplayer_coop
from coplay.algos.ppi_training import (
    batch_indices,
    init_learners,
    init_params,
    make_train_steps,
    model_loss,
    steps_per_phase,
)
from coplay.envs.matrix_games import MatrixGameParams

__all__ = ["PPITrajectory", "rollout", "sample_opponents", "episodes_of",
           # re-exported from ppi_config / ppi_episodes / ppi_training / ppi_planning
           "PPIConfig", "validate", "make_model", "Episodes", "tokenize", "make_random_pairs",
           "init_params", "init_learners", "model_loss", "steps_per_phase", "batch_indices",
           "make_train_steps", "plan_q", "predicted_coplayer_coop", "improved_logits"]


# -- playing the game ---------------------------------------------------------------------------

class PPITrajectory(NamedTuple):
    """A rollout, time-major (T, L, N, ...); field names as :class:`ipd_rollout.Trajectory`
    where they mean the same, so the IPD evaluation reads both."""

    inputs: AgentInput
    action: jax.Array  # (T, L, N) int32
    log_prob: jax.Array  # (T, L, N) log π(a|x) of the improved policy
    prior_coop: jax.Array  # (T, L, N) p(C | x) of the model's prior
    coop_prob: jax.Array  # (T, L, N) π(C | x)
    q: jax.Array  # (T, L, N, 2) Q̂(x, C), Q̂(x, D)
    reward: jax.Array  # (T, L, N)
    opponent_action: jax.Array  # (T, L, N) int32
    # the model's P(co-player plays C | x, a) for the action taken, and the co-player's true
    # P(C) at that decision (the other learner's π(C | x), or the tabular agent's memory-1
    # entry): how well each learner's model infers whom it plays
    predicted_coplayer_coop: jax.Array  # (T, L, N)
    coplayer_coop_prob: jax.Array  # (T, L, N)


def rollout(key: jax.Array, cfg: PPIConfig, params, opponents: Opponents,
            env_params: MatrixGameParams, beta: float | None = None,
            plan: bool = True) -> PPITrajectory:
    """Play ``cfg.num_rounds`` rounds of L x N games with the improved policies.

    ``params`` has a leading learner axis L; ``opponents`` as in :mod:`ipd_rollout` (a
    learner-vs-learner game is one game seen from both seats). ``beta`` overrides cfg.beta
    (0 plays the prior); ``plan=False`` skips planning altogether (Q̂ = 0: the prior, at the
    cost of the model alone — the anchor of ``bench/bench_ppi.py``).
    """
    beta = cfg.beta if beta is None else beta
    model = make_model(cfg)
    num_learners, n = opponents.tabular.shape[:2]
    z = (opponent_ids(opponents) if cfg.use_opponent_id
         else jnp.zeros((num_learners, n, 10), jnp.float32))

    def decide(params, hidden, x: AgentInput, t, key):
        """One learner's (N,) decisions: model step, planning, improved policy; and the
        model's P(co-player C) for either own action (N, 2)."""
        hidden, feat = model.apply(params, hidden, x, method=PPIModel.step)
        prior = model.apply(params, feat, method=PPIModel.action_logits)
        predicted = jnp.stack([predicted_coplayer_coop(
            model.apply(params, feat, a, method=PPIModel.obs_logits), a)
            for a in (jnp.zeros(feat.shape[:-1], jnp.int32),
                      jnp.ones(feat.shape[:-1], jnp.int32))], -1)
        if not plan:
            return hidden, prior, jnp.zeros_like(prior), predicted
        q = plan_q(cfg, params, hidden, feat, x.opponent_id, t, key)
        return hidden, prior, q, predicted

    decide_all = jax.vmap(decide, in_axes=(0, 0, 0, None, 0))

    if cfg.planning_noise == "episode":
        # one key per learner for the whole game: the same rollout draws at every decision
        key, k_episode = jax.random.split(key)
        episode_plan_keys = jax.random.split(k_episode, num_learners)

    def step(carry: RolloutCarry, t):
        key, k_plan, k_act, k_tab = jax.random.split(carry.key, 4)
        plan_keys = (episode_plan_keys if cfg.planning_noise == "episode"
                     else jax.random.split(k_plan, num_learners))

        def policy(history: History):
            inputs = seat_input(history, z)
            hidden, prior, q, predicted = decide_all(params, carry.hidden, inputs, t, plan_keys)
            logits = improved_logits(prior, q, beta)
            action = jax.random.categorical(k_act, logits).astype(jnp.int32)  # (L, N)
            joint = jnp.stack([action, coplayer_action(k_tab, opponents, history, action)], -1)
            return joint, (inputs, hidden, prior, q, predicted, logits)

        history, (inputs, hidden, prior, q, predicted, logits) = game_step(
            carry.history, policy, env_params)
        action = history.action[..., 0]
        log_prob = jnp.take_along_axis(logits, action[..., None], -1)[..., 0]
        coop_prob = jnp.exp(logits[..., 0])
        tab_token = carry.history.token[..., 1]
        tab_coop = jnp.take_along_axis(opponents.tabular, tab_token[..., None], -1)[..., 0]
        out = PPITrajectory(inputs, action, log_prob, jax.nn.softmax(prior)[..., 0],
                            coop_prob, q, history.reward[..., 0], history.action[..., 1],
                            jnp.take_along_axis(predicted, action[..., None], -1)[..., 0],
                            coplayer_values(opponents, coop_prob, tab_coop))
        return RolloutCarry(hidden, history, key), out

    init = RolloutCarry(jnp.zeros((num_learners, n, cfg.hidden_size), jnp.float32),
                        new_game((num_learners, n)), key)
    _, traj = jax.lax.scan(step, init, jnp.arange(cfg.num_rounds))
    return traj


@functools.partial(jax.jit, static_argnums=(1, 2))
def sample_opponents(key: jax.Array, cfg: PPIConfig, n: int) -> Opponents:
    """The mixed pool for ``n`` games per learner: the first share against the other learner
    (with more than two learners, a partner drawn at random for every game), the rest against
    fresh U(0, 1) memory-1 agents."""
    tabular = random_memory1(key, (cfg.num_learners, n))
    is_learner = jnp.arange(n) < num_learner_games(cfg, n)
    if cfg.num_learners <= 2:
        return Opponents(tabular, is_learner)
    return Opponents(tabular, is_learner,
                     random_pairing(jax.random.fold_in(key, 1), cfg.num_learners, n))


def episodes_of(traj: PPITrajectory, opponents: Opponents, learner: int) -> Episodes:
    """One learner's games of a rollout as dataset rows (N, T); the co-player's z is stored
    always (whether the model reads it is the config's `use_opponent_id`)."""
    return Episodes(
        action=np.asarray(traj.action[:, learner].T, np.int8),
        opponent_action=np.asarray(traj.opponent_action[:, learner].T, np.int8),
        reward=np.asarray(traj.reward[:, learner].T, np.float16),
        opponent_id=_opponent_ids_np(opponents, learner),
    )


def _opponent_ids_np(opponents: Opponents, learner: int) -> np.ndarray:
    """(N, 10) float16: :func:`ipd_rollout.opponent_ids` of one learner, in NumPy (float64
    before the cast, as it always was: the float32 jnp path rounds differently at the clip)."""
    z = memory1_log_policy(np.asarray(opponents.tabular[learner], np.float64), xp=np)
    return np.where(np.asarray(opponents.is_learner)[:, None], 0.0, z).astype(np.float16)

