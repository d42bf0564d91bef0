"""Decentralised A2C for GRU agents in the iterated prisoner's dilemma (spec: Algorithm 1).

Every learner has its own parameters and optimiser state, stacked on a leading learner axis
and updated in the same jitted program: nothing is shared between learners but the games they
play.
``make_train(config)`` returns ``init(key) -> A2CState`` and a jitted
``train_chunk(state, key) -> (state, metrics)`` that runs ``updates_per_chunk`` updates
(rollout -> GAE -> epochs of full-batch or minibatch gradient steps) as one ``lax.scan``.
The Python loop that drives chunks, checkpoints and progress lives in
:mod:`coplay.experiments.ipd.train`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from coplay.agents.gru import GRUAgent, dummy_input, sequence
from coplay.agents.tabular import random_memory1
from coplay.algos.ipd_rollout import (
    Opponents,
    Trajectory,
    random_pairing,
    rollout_with_final_value,
)
from coplay.algos.losses import action_log_probs, categorical_entropy, clipped_surrogate_loss
from coplay.algos.returns import gae
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_epochs
from coplay.config import checker
from coplay.envs.matrix_games import COOPERATE, MatrixGameParams


@dataclasses.dataclass(frozen=True)
class A2CConfig:
    """Independent A2C in the mixed pool. Defaults are the paper's mixed-pool values."""

    num_rounds: int = 100
    """Rounds per IPD episode (the paper: 100)."""
    num_learners: int = 2
    """Learning agents trained side by side (the paper: 2). 1 = self-play; with more than
    2 (an even number) the learners are paired at random in every learner episode, so each
    learner meets a mixture of the others."""
    frozen_learners: tuple[int, ...] = ()
    """Indices of learners that play but are never updated (e.g. the frozen step-1 agent that
    a fresh agent learns to extort in the paper's step 2)."""
    hidden_size: int = 128
    """GRU hidden size (the paper: 128)."""
    embed_dim: int = 32
    """Size of the observation / previous-action / previous-reward embeddings (the paper: 32)."""
    episodes_per_update: int = 4096
    """Episodes each learner plays per update (the paper's batch: 4096)."""
    tabular_fraction: float = 0.5
    """Share of each learner's episodes against a fresh random tabular agent (paper: 0.5);
    0 is the `no-tabular` ablation."""
    use_opponent_id: bool = False
    """`opponent-id` ablation: feed the tabular co-player's log-policy (zeros for learners)."""
    critic_opponent_id: bool = False
    """Privileged critic (not in the paper): the value head also sees the tabular co-player's
    log-policy z (zeros for learners); the policy still sees only the history. Lowers the
    variance of advantages; test-time behaviour is unaffected (the critic is not used)."""
    num_updates: int = 200_000
    """Total updates (the paper: ~200k iterations)."""
    updates_per_chunk: int = 100
    """Updates per jitted chunk; metrics, progress and checkpoints happen between chunks."""
    learning_rate: float = 1e-3
    """Adam learning rate (the paper: 1e-3)."""
    learning_rate_final: float | None = None
    """If set, the learning rate decays linearly to this value from `entropy_decay_start` to
    the end of the run (the paper: constant)."""
    adam_eps: float = 1e-5
    """Adam epsilon (the paper: 1e-5)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (the paper: 1.0)."""
    gamma: float = 0.99
    """Discount (the paper: 0.99)."""
    gae_lambda: float = 1.0
    """GAE lambda (the paper: 1.0, Monte-Carlo advantages)."""
    bootstrap_at_horizon: bool = False
    """Treat the end of the T-round episode as a time limit rather than a terminal state: the
    last advantage bootstraps from the critic's value of the whole history (partial-episode
    bootstrapping, Pardo et al. 2018, "Time limits in reinforcement learning"). The agent
    never observes the round number, so with a terminal end its critic and policy must guess
    the remaining horizon from the history, and what they learn to exploit is the end of the
    episode (end-game defection). The paper does not say (spec: T = 100, "no early end");
    off = terminal end."""
    value_coef: float = 0.5
    """Weight c_v of the squared TD error (the paper: 0.5)."""
    entropy_coef: float = 0.01
    """Entropy bonus c_e at the start of training (the paper: 0.01, constant)."""
    entropy_coef_final: float | None = None
    """If set, c_e decays linearly to this value over `entropy_decay_updates`."""
    entropy_decay_start: int = 0
    """Update at which the linear decay of the entropy bonus begins (it is held before)."""
    entropy_decay_updates: int | None = None
    """Updates over which the entropy bonus decays (default: the rest of `num_updates`)."""
    entropy_target: float | None = None
    """If set (nats per decision), from `entropy_decay_start` on each learner's c_e is adapted
    instead of scheduled: c_e <- c_e * exp(`entropy_adapt_rate` * (target - H)), H the mean
    policy entropy of its last batch (dual ascent on a minimum-entropy constraint, as SAC's
    temperature). Keeps exploration alive without fixing how much bonus that takes."""
    entropy_target_final: float | None = None
    """If set, the entropy target anneals linearly to this value over the last
    `entropy_target_anneal_updates` updates: exploration that survives learning, then is let
    go, so the final policies are not held at the target's randomness when evaluated."""
    entropy_target_anneal_updates: int = 1000
    """Updates at the end of the run over which the target anneals to `entropy_target_final`."""
    entropy_adapt_rate: float = 0.02
    """Step size of that adaptation (in log c_e per nat of entropy error, per update)."""
    reward_scale: float = 0.02
    """Rewards are multiplied by this before advantages and value targets (the paper: 0.02)."""
    normalize_advantages: bool = True
    """Normalise advantages over each batch (the paper: yes)."""
    update_epochs: int = 1
    """Gradient passes over each batch. 1 is A2C as in the paper; more reuse each rollout
    PPO-style (with `clip_eps` > 0)."""
    num_minibatches: int = 1
    """Minibatches per epoch (split over episodes)."""
    clip_eps: float = 0.0
    """PPO ratio clip; 0 disables clipping (plain A2C, exact when `update_epochs` = 1)."""
    scan_unroll: int = 4
    """Unroll factor of the per-round scans (speed only: results are identical)."""
    lookahead_sync_period: int = 0
    """If > 0, each learner's optimiser is Lookahead (Zhang et al. 2019, `optax.lookahead`)
    around the clipped Adam: every this many optimiser steps the slow weights move
    `lookahead_step` of the way to the fast ones and the fast weights restart from there.
    In games, Lookahead damps the rotational (cycling) part of simultaneous gradient play
    (Chavdarova et al. 2021, "Taming GANs with Lookahead-Minmax"). The fast weights are the
    ones played (A2C stays on-policy); they equal the slow weights after every sync, and runs
    end on a sync. 0 = plain Adam (the paper)."""
    lookahead_step: float = 0.5
    """Lookahead's slow step size alpha (the Lookahead papers' default: 0.5)."""


def validate(cfg: A2CConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (before anything compiles)."""

    need = checker(cfg, "a2c")

    for f in ("num_rounds", "hidden_size", "embed_dim", "episodes_per_update", "num_updates",
              "updates_per_chunk", "update_epochs", "num_minibatches", "scan_unroll"):
        need(isinstance(getattr(cfg, f), int) and getattr(cfg, f) >= 1, f,
             "must be an integer >= 1")
    need(isinstance(cfg.num_learners, int)
         and (cfg.num_learners == 1 or (cfg.num_learners >= 2 and cfg.num_learners % 2 == 0)),
         "num_learners", "must be 1 (self-play) or an even number >= 2 (learners are paired)")
    need(all(isinstance(i, int) and 0 <= i < cfg.num_learners for i in cfg.frozen_learners)
         and len(set(cfg.frozen_learners)) < cfg.num_learners, "frozen_learners",
         f"must be distinct learner indices below num_learners ({cfg.num_learners}), "
         "with at least one learner left to train")
    need(0.0 <= cfg.tabular_fraction <= 1.0, "tabular_fraction", "must be in [0, 1]")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.learning_rate_final is None or cfg.learning_rate_final > 0, "learning_rate_final",
         "must be > 0")
    need(cfg.adam_eps > 0, "adam_eps", "must be > 0")
    need(cfg.max_grad_norm > 0, "max_grad_norm", "must be > 0")
    need(0.0 <= cfg.gamma <= 1.0, "gamma", "must be in [0, 1]")
    need(0.0 <= cfg.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
    need(cfg.value_coef >= 0, "value_coef", "must be >= 0")
    need(cfg.entropy_coef >= 0, "entropy_coef", "must be >= 0")
    need(cfg.entropy_coef_final is None or cfg.entropy_coef_final >= 0, "entropy_coef_final",
         "must be >= 0")
    need(cfg.entropy_decay_start >= 0, "entropy_decay_start", "must be >= 0")
    need(cfg.entropy_decay_updates is None or cfg.entropy_decay_updates >= 1,
         "entropy_decay_updates", "must be >= 1")
    need(cfg.entropy_target is None or 0.0 < cfg.entropy_target < 0.6931, "entropy_target",
         "must be in (0, log 2) nats: the entropy of a two-action policy")
    need(cfg.entropy_target_final is None or (cfg.entropy_target is not None
                                              and 0.0 < cfg.entropy_target_final < 0.6931),
         "entropy_target_final", "needs entropy_target, and must be in (0, log 2) nats")
    need(cfg.entropy_target_anneal_updates >= 1, "entropy_target_anneal_updates",
         "must be >= 1")
    need(cfg.entropy_adapt_rate > 0, "entropy_adapt_rate", "must be > 0")
    need(cfg.reward_scale > 0, "reward_scale", "must be > 0")
    need(cfg.clip_eps >= 0, "clip_eps", "must be >= 0")
    need(cfg.episodes_per_update % cfg.num_minibatches == 0, "num_minibatches",
         f"must divide episodes_per_update ({cfg.episodes_per_update})")
    need(isinstance(cfg.lookahead_sync_period, int) and cfg.lookahead_sync_period >= 0,
         "lookahead_sync_period", "must be an integer >= 0 (0 = off)")
    need(cfg.lookahead_sync_period == 0
         or cfg.num_updates * cfg.update_epochs * cfg.num_minibatches
         % cfg.lookahead_sync_period == 0, "lookahead_sync_period",
         f"must divide the run's optimiser steps ({cfg.num_updates} updates x "
         f"{cfg.update_epochs * cfg.num_minibatches} steps), so the run ends synced")
    need(0.0 < cfg.lookahead_step <= 1.0, "lookahead_step", "must be in (0, 1]")
    need(cfg.update_epochs == 1 or cfg.clip_eps > 0, "update_epochs",
         "more than one epoch per batch needs clip_eps > 0 (PPO-style), else the policy "
         "runs away from the data")


def num_learner_episodes(cfg: A2CConfig) -> int:
    """Episodes per learner and update played against the other learner."""
    return int(round((1.0 - cfg.tabular_fraction) * cfg.episodes_per_update))


class A2CState(struct.PyTreeNode):
    params: dict  # leading learner axis (L, ...)
    opt_state: optax.OptState  # leading learner axis
    update: jax.Array  # () int32, updates done
    entropy_coef: jax.Array  # (L,) float32, c_e of each learner for the next update
    # Lookahead's slow weights (leading learner axis), None without Lookahead; `params` are
    # the fast weights, the ones played
    slow_params: dict | None = None


class LearnerBatch(NamedTuple):
    """One learner's training data, time-major (T, N, ...): episodes on axis 1."""

    traj: Trajectory
    advantage: jax.Array  # (T, N)
    target: jax.Array  # (T, N)


class UpdateMetrics(NamedTuple):
    """Per update, per learner (L,). Pairing metrics are NaN when the pairing has no episode."""

    reward_vs_learner: jax.Array
    coop_vs_learner: jax.Array
    reward_vs_tabular: jax.Array
    coop_vs_tabular: jax.Array
    entropy: jax.Array
    value_loss: jax.Array
    policy_loss: jax.Array
    entropy_coef: jax.Array


def make_agent(cfg: A2CConfig) -> GRUAgent:
    return GRUAgent(cfg.hidden_size, cfg.embed_dim, cfg.use_opponent_id, cfg.critic_opponent_id)


def learning_rate_schedule(cfg: A2CConfig):
    """Learning rate as a function of the optimiser's step count (one step per minibatch)."""
    steps_per_update = cfg.update_epochs * cfg.num_minibatches
    final = cfg.learning_rate if cfg.learning_rate_final is None else cfg.learning_rate_final
    horizon = max(cfg.num_updates - cfg.entropy_decay_start, 1)

    def schedule(count):
        frac = jnp.clip((count // steps_per_update - cfg.entropy_decay_start) / horizon, 0.0, 1.0)
        return cfg.learning_rate + frac * (final - cfg.learning_rate)

    return schedule


def make_optimizer(cfg: A2CConfig) -> optax.GradientTransformation:
    """Clipped Adam; wrapped in Lookahead (which then takes `optax.LookaheadParams`) when
    `lookahead_sync_period` > 0."""
    adam = optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.adam(learning_rate_schedule(cfg), eps=cfg.adam_eps),
    )
    if cfg.lookahead_sync_period == 0:
        return adam
    return optax.lookahead(adam, cfg.lookahead_sync_period, cfg.lookahead_step)


def entropy_schedule(cfg: A2CConfig, update: jax.Array) -> jax.Array:
    if cfg.entropy_coef_final is None:
        return jnp.asarray(cfg.entropy_coef, jnp.float32)
    horizon = cfg.entropy_decay_updates or max(cfg.num_updates - cfg.entropy_decay_start, 1)
    frac = jnp.clip((update - cfg.entropy_decay_start) / horizon, 0.0, 1.0)
    return cfg.entropy_coef + frac * (cfg.entropy_coef_final - cfg.entropy_coef)


ENTROPY_COEF_BOUNDS = (1e-4, 1.0)


def entropy_target_at(cfg: A2CConfig, update: jax.Array) -> jax.Array:
    """The entropy target (nats) at ``update``: constant, then annealed over the run's end."""
    if cfg.entropy_target_final is None:
        return jnp.asarray(cfg.entropy_target, jnp.float32)
    start = cfg.num_updates - cfg.entropy_target_anneal_updates
    frac = jnp.clip((update - start) / cfg.entropy_target_anneal_updates, 0.0, 1.0)
    return cfg.entropy_target + frac * (cfg.entropy_target_final - cfg.entropy_target)


def next_entropy_coef(cfg: A2CConfig, update: jax.Array, coef: jax.Array,
                      entropy: jax.Array) -> jax.Array:
    """c_e (L,) for update ``update`` + 1, given this update's c_e and policy entropy (L,)."""
    scheduled = jnp.broadcast_to(entropy_schedule(cfg, update + 1), coef.shape)
    if cfg.entropy_target is None:
        return scheduled
    adapted = jnp.clip(coef * jnp.exp(cfg.entropy_adapt_rate * (entropy_target_at(cfg, update)
                                                                 - entropy)),
                       *ENTROPY_COEF_BOUNDS)
    return jnp.where(update + 1 > cfg.entropy_decay_start, adapted, scheduled)


def sample_opponents(key: jax.Array, cfg: A2CConfig) -> Opponents:
    n = cfg.episodes_per_update
    tabular = random_memory1(key, (cfg.num_learners, n))
    is_learner = jnp.arange(n) < num_learner_episodes(cfg)
    if cfg.num_learners <= 2:  # the pairing is fixed: the flip of the agent axis
        return Opponents(tabular, is_learner)
    return Opponents(tabular, is_learner,
                     random_pairing(jax.random.fold_in(key, 1), cfg.num_learners, n))


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over (T, N) of x (T, L, N) where mask (N,) is true; NaN if the mask is empty."""
    m = mask[None, None, :].astype(x.dtype)
    count = m.sum() * x.shape[0]  # rounds x selected episodes
    total = (x * m).sum(axis=(0, 2))
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)


def pairing_metrics(traj: Trajectory, is_learner: jax.Array):
    """Reward per round and cooperation rate of each learner, by pairing type."""
    coop = (traj.action == COOPERATE).astype(jnp.float32)
    return (
        _masked_mean(traj.reward, is_learner),
        _masked_mean(coop, is_learner),
        _masked_mean(traj.reward, ~is_learner),
        _masked_mean(coop, ~is_learner),
    )


def learner_loss(cfg: A2CConfig, agent, params, mb: LearnerBatch, ent_coef):
    """One learner's loss on (T, n) data, and its (policy, value, entropy) terms."""
    logits, values = sequence(agent, params, mb.traj.inputs, cfg.scan_unroll)
    log_probs, log_prob = action_log_probs(logits, mb.traj.action)  # (T, n, 2), (T, n)
    policy_loss = clipped_surrogate_loss(log_prob, mb.traj.log_prob, mb.advantage, cfg.clip_eps)
    value_loss = jnp.square(values - mb.target).mean()
    entropy = categorical_entropy(log_probs)
    loss = policy_loss + cfg.value_coef * value_loss - ent_coef * entropy
    return loss, (policy_loss, value_loss, entropy)


def learner_advantages(cfg: A2CConfig, traj: Trajectory, final_value: jax.Array):
    """(advantages, value targets) (T, n) of one learner's batch: GAE on the scaled rewards,
    the game's end as terminal unless `bootstrap_at_horizon` (then ``final_value`` (n,), the
    critic's value after the last round), normalised if `normalize_advantages`."""
    rewards = traj.reward * cfg.reward_scale
    if cfg.bootstrap_at_horizon:
        dones, last_value = jnp.zeros_like(rewards), final_value
    else:
        dones = jnp.zeros_like(rewards).at[-1].set(1.0)
        last_value = jnp.zeros_like(rewards[0])
    advantages, targets = gae(rewards, traj.value, dones, last_value, cfg.gamma, cfg.gae_lambda)
    if cfg.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return advantages, targets


def keep_frozen(cfg: A2CConfig, new, old):
    """``new`` with the `frozen_learners`' entries (leading learner axis) taken from ``old``
    (None leaves stay None)."""
    frozen = jnp.isin(jnp.arange(cfg.num_learners), jnp.asarray(cfg.frozen_learners))

    def keep(n, o):
        return jnp.where(frozen.reshape((-1,) + (1,) * (n.ndim - 1)), o, n)

    return jax.tree.map(keep, new, old)


def make_train(cfg: A2CConfig, env_params: MatrixGameParams | None = None,
               opponent_sampler=None):
    """Build ``(init, train_chunk)`` for a validated config.

    ``opponent_sampler(key, cfg) -> Opponents`` draws each update's co-players; the default is
    the spec's mixed pool (:func:`sample_opponents`). Experiments with other pools (fixed
    probes, curricula) pass their own.
    """
    validate(cfg)
    env_params = MatrixGameParams() if env_params is None else env_params
    opponent_sampler = sample_opponents if opponent_sampler is None else opponent_sampler
    agent = make_agent(cfg)
    optimizer = make_optimizer(cfg)
    lookahead = cfg.lookahead_sync_period > 0

    def init(key: jax.Array) -> A2CState:
        keys = jax.random.split(key, cfg.num_learners)
        params = jax.vmap(lambda k: agent.init(k, agent.initial_hidden(1), dummy_input(1)))(keys)
        update = jnp.zeros((), jnp.int32)
        coef = jnp.full((cfg.num_learners,), entropy_schedule(cfg, update), jnp.float32)
        slow = params if lookahead else None  # Lookahead starts synced
        own = optax.LookaheadParams(params, slow) if lookahead else params
        return A2CState(params, jax.vmap(optimizer.init)(own), update, coef, slow)

    def learner_update(params, opt_state, traj: Trajectory, final_value, key, ent_coef):
        """All epochs / minibatches of one learner on its (T, N) batch; ``final_value`` (N,)
        is its critic's value after the last round (used with `bootstrap_at_horizon`).
        With Lookahead ``params`` is an `optax.LookaheadParams` (gradients are taken at the
        fast weights)."""
        advantages, targets = learner_advantages(cfg, traj, final_value)
        step = optimiser_step(optimizer, lambda p, mb: learner_loss(cfg, agent, p, mb, ent_coef),
                              (lambda p: p.fast) if lookahead else (lambda p: p))
        carry, aux = sgd_epochs(key, TrainCarry(params, opt_state),
                                LearnerBatch(traj, advantages, targets), step, cfg.update_epochs,
                                cfg.num_minibatches, batch_axis=1, shuffle_full_batch=False)
        return carry.params, carry.opt_state, jax.tree.map(lambda a: a[-1, -1], aux)

    def one_update(state: A2CState, key: jax.Array):
        k_opp, k_roll, k_upd = jax.random.split(key, 3)
        opponents = opponent_sampler(k_opp, cfg)
        traj, final_value = rollout_with_final_value(
            k_roll, agent, state.params, opponents, env_params, cfg.num_rounds,
            cfg.use_opponent_id or cfg.critic_opponent_id, cfg.scan_unroll)
        ent_coef = state.entropy_coef  # (L,)
        per_learner = jax.tree.map(lambda x: jnp.moveaxis(x, 1, 0), traj)  # (L, T, N, ...)
        own = (optax.LookaheadParams(state.params, state.slow_params) if lookahead
               else state.params)
        params, opt_state, (pl, vl, ent) = jax.vmap(learner_update)(
            own, state.opt_state, per_learner, final_value,
            jax.random.split(k_upd, cfg.num_learners), ent_coef)
        slow = None
        if lookahead:
            params, slow = params.fast, params.slow
        metrics = UpdateMetrics(*pairing_metrics(traj, opponents.is_learner), ent, vl, pl,
                                ent_coef)
        next_coef = next_entropy_coef(cfg, state.update, ent_coef, ent)
        if cfg.frozen_learners:
            params, opt_state, slow = keep_frozen(cfg, (params, opt_state, slow),
                                                  (state.params, state.opt_state,
                                                   state.slow_params))
        return A2CState(params, opt_state, state.update + 1, next_coef, slow), metrics

    @jax.jit
    def train_chunk(state: A2CState, key: jax.Array):
        """``updates_per_chunk`` updates; update u uses ``fold_in(key, u)`` so that the
        result does not depend on how updates are split into chunks (exact resumption)."""

        def body(state, _):
            return one_update(state, jax.random.fold_in(key, state.update))

        return jax.lax.scan(body, state, None, length=cfg.updates_per_chunk)

    return init, train_chunk
