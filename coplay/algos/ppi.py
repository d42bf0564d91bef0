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

The phase loop (driven from Python by :mod:`coplay.experiments.ipd_ppi`): for k = 1..K,
re-initialise φ, train it on D_{k-1}, play ``trajectories_per_phase`` games with π, and append
them to the dataset. D_0 is games between pairs of random tabular agents.

This module holds the pure parts: config, tokenisation of recorded episodes, the model loss and
its jitted training steps, planning, and the batched game rollout.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from coplay.agents.gru import AgentInput, dummy_input
from coplay.agents.ppi_model import PPIModel, predict_sequence
from coplay.agents.tabular import memory1_act, memory1_log_policy, random_memory1
from coplay.algos.ipd_game import History, game_step, new_game, seat_input
from coplay.algos.ipd_rollout import (
    Opponents,
    RolloutCarry,
    coplayer_action,
    coplayer_values,
    opponent_ids,
    random_pairing,
)
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_steps
from coplay.config import checker
from coplay.envs.matrix_games import START, MatrixGameParams, first_person_tokens


@dataclasses.dataclass(frozen=True)
class PPIConfig:
    """PPI in the mixed pool. Defaults are the paper's values (spec, Algorithm 2)."""

    num_rounds: int = 100
    """Rounds per IPD episode (the paper: 100)."""
    num_learners: int = 2
    """PPI agents trained side by side, each with its own model and dataset."""
    frozen_learners: tuple[int, ...] = ()
    """Learners that play but never retrain (the frozen step-1 victim of step 2)."""
    hidden_size: int = 128
    """GRU hidden size (the paper: 128)."""
    embed_dim: int = 32
    """Embedding size of observation, previous action and previous reward (the paper: 32)."""
    tabular_fraction: float = 0.5
    """Share of each learner's games against a fresh random tabular agent (the paper: 0.5);
    0 is the `no-tabular` ablation."""
    use_opponent_id: bool = False
    """`opponent-id` ablation: the model also reads the tabular co-player's log-policy z
    (zeros for learner co-players), in the data and in planning."""
    num_phases: int = 30
    """Phases k = 1..K (the paper: 30)."""
    d0_trajectories: int = 200_000
    """Size of D_0: trajectories (one per seat) of games between two random tabular agents
    (the paper: 200,000); shared by all learners."""
    trajectories_per_phase: int = 20_000
    """Games each learner plays with its improved policy per phase (the paper: 20,000)."""
    collect_batch: int = 1000
    """Games per learner in one jitted collection call (memory vs. speed; must divide
    `trajectories_per_phase`)."""
    beta: float = 0.01
    """Inverse temperature of the improvement π ∝ p·exp(β·Q̂) (the paper: 0.01)."""
    planning_horizon: int = 15
    """Rounds simulated inside the model per rollout (the paper: 15)."""
    num_rollouts: int = 8
    """Monte-Carlo rollouts per candidate action and decision (unreported in the paper)."""
    planning_noise: Literal["decision", "episode"] = "decision"
    """Random numbers of the planning rollouts: "decision" draws fresh ones at every decision
    (unreported in the paper; the `default`'s choice); "episode" draws one set per game and
    learner and reuses it at every decision of that game, so a learner's Monte-Carlo error is a
    smooth function of the history instead of a fresh coin at every round: a consistent
    persona within a game, a different one in the next (a deviation; see docs/ipd.md)."""
    plan_past_episode_end: bool = False
    """If False (default), rollouts stop counting reward at the episode's last round, so Q̂
    is the return of the real remaining game; True counts the full horizon everywhere."""
    obs_loss_weight: float = 1.0
    """λ_obs on the next-observation cross-entropy (unreported; see docs/ipd.md)."""
    action_loss_weight: float = 1.0
    """λ_act on the own-action cross-entropy (unreported)."""
    reward_loss_weight: float = 0.5
    """λ_rew on the reward squared error (unreported; 0.5 = unit-variance Gaussian NLL)."""
    learning_rate: float = 1e-4
    """AdamW learning rate (the paper: 1e-4)."""
    weight_decay: float = 1e-2
    """AdamW weight decay (the paper: 1e-2)."""
    adam_b1: float = 0.9
    """AdamW beta1 (the paper: 0.9)."""
    adam_b2: float = 0.98
    """AdamW beta2 (the paper: 0.98)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (the paper: 1.0)."""
    epochs: float = 10.0
    """Passes over the cumulative dataset per phase (the paper: 10)."""
    dataset_window: int = 0
    """0 (the paper): phase k trains on the cumulative dataset D_0 ∪ phases 1..k−1. W ≥ 1 keeps
    the base data (D_0, or the inherited dataset of step 3) and only the last W phases, so
    the prior p(a|x) follows the recent improved policies instead of their average over
    every phase (a deviation; see docs/ipd.md)."""
    prior_window: int = 0
    """0 (the paper): the own-action head — the prior p(a|x) of the improved policy and of the
    rollouts — learns from the whole training dataset, like the other heads, so in a learner's
    contexts it is the *average* of every past phase's improved policy (fictitious play). W ≥ 1:
    it learns only from the games of the last W phases (the base data while there are none),
    while the observation and reward heads keep learning from everything, so the prior follows
    the latest improved policy (policy iteration) and the world model keeps every co-player it
    has seen (a deviation; see docs/ipd.md)."""
    batch_size: int = 256
    """Trajectories per gradient step (the paper: 256)."""
    reinit_model: bool = True
    """Re-initialise the model at the start of every phase (the paper: yes). False warm-starts
    it from the previous phase's model, which then needs far fewer steps on D_{k-1}."""
    max_steps_per_phase: int | None = None
    """If set, at most this many gradient steps per phase (the dataset grows every phase)."""
    first_phase_steps: int | None = None
    """If set, phase 1 (training on D_0 alone) takes exactly this many steps instead; with
    `reinit_model` off it is the pre-training that later phases fine-tune."""
    train_chunk_steps: int = 50
    """Gradient steps per jitted call (speed only; steps are rounded up to a multiple)."""
    scan_unroll: int = 1
    """Unroll factor of the per-round scans (speed only)."""


def validate(cfg: PPIConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (before anything compiles)."""

    need = checker(cfg, "ppi")

    for f in ("num_rounds", "hidden_size", "embed_dim", "num_phases", "d0_trajectories",
              "trajectories_per_phase", "collect_batch", "planning_horizon", "num_rollouts",
              "batch_size", "train_chunk_steps", "scan_unroll"):
        need(isinstance(getattr(cfg, f), int) and getattr(cfg, f) >= 1, f,
             "must be an integer >= 1")
    need(isinstance(cfg.num_learners, int)
         and (cfg.num_learners == 1 or (cfg.num_learners >= 2 and cfg.num_learners % 2 == 0)),
         "num_learners", "must be 1 (self-play) or an even number >= 2 (learners are paired; "
         "more than two are paired at random in every game)")
    need(all(isinstance(i, int) and 0 <= i < cfg.num_learners for i in cfg.frozen_learners)
         and len(set(cfg.frozen_learners)) < cfg.num_learners, "frozen_learners",
         f"must be distinct learner indices below num_learners ({cfg.num_learners}), "
         "with at least one learner left to train")
    need(0.0 <= cfg.tabular_fraction <= 1.0, "tabular_fraction", "must be in [0, 1]")
    need(cfg.d0_trajectories % 2 == 0, "d0_trajectories",
         "must be even (each random tabular game gives one trajectory per seat)")
    need(cfg.trajectories_per_phase % cfg.collect_batch == 0, "collect_batch",
         f"must divide trajectories_per_phase ({cfg.trajectories_per_phase})")
    need(cfg.beta >= 0, "beta", "must be >= 0")
    need(cfg.planning_noise in ("decision", "episode"), "planning_noise",
         'must be "decision" or "episode"')
    for f in ("obs_loss_weight", "action_loss_weight", "reward_loss_weight", "weight_decay"):
        need(getattr(cfg, f) >= 0, f, "must be >= 0")
    need(cfg.action_loss_weight > 0, "action_loss_weight",
         "must be > 0: the action head is the prior of the improved policy")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(0 <= cfg.adam_b1 < 1 and 0 <= cfg.adam_b2 < 1, "adam_b2", "betas must be in [0, 1)")
    need(cfg.max_grad_norm > 0, "max_grad_norm", "must be > 0")
    need(cfg.epochs > 0, "epochs", "must be > 0")
    need(isinstance(cfg.dataset_window, int) and cfg.dataset_window >= 0, "dataset_window",
         "must be an integer >= 0 (0 = the cumulative dataset)")
    need(isinstance(cfg.prior_window, int) and cfg.prior_window >= 0, "prior_window",
         "must be an integer >= 0 (0 = the prior learns from the whole dataset)")
    for f in ("max_steps_per_phase", "first_phase_steps"):
        need(getattr(cfg, f) is None or getattr(cfg, f) >= 1, f, "must be >= 1")


def make_model(cfg: PPIConfig) -> PPIModel:
    return PPIModel(cfg.hidden_size, cfg.embed_dim, cfg.use_opponent_id)


def init_params(cfg: PPIConfig, key: jax.Array):
    """Fresh parameters of one model (no learner axis)."""
    model = make_model(cfg)
    return model.init(key, model.initial_hidden(1), dummy_input(1))


_init_one = jax.jit(init_params, static_argnums=0)


def init_learners(cfg: PPIConfig, key: jax.Array, num: int):
    """Fresh parameters of ``num`` models on a leading learner axis. (One jitted init per
    model, stacked in NumPy: compiling the vmapped init took ~3x longer on CPU.)"""
    models = [_init_one(cfg, k) for k in jax.random.split(key, num)]
    return jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *models)


def num_learner_games(cfg: PPIConfig, n: int) -> int:
    """Of ``n`` games per learner, how many are against the other learner."""
    return int(round((1.0 - cfg.tabular_fraction) * n))


# -- tokenisation of recorded episodes ----------------------------------------------------------

class Episodes(NamedTuple):
    """Recorded episodes from one seat, batch-major (N, T): what datasets store."""

    action: np.ndarray  # (N, T) int8, own actions
    opponent_action: np.ndarray  # (N, T) int8
    reward: np.ndarray  # (N, T) float16 (IPD rewards are exact in float16)
    opponent_id: np.ndarray  # (N, 10) float16, the co-player's z (zeros for learners)


def tokenize(ep: Episodes):
    """Episodes (N, T) -> model inputs and targets, time-major (T, N).

    Round t's input is (o_t, a_{t-1}, r_{t-1}) with o_0 the start token, a_{-1} = -1 and
    r_{-1} = 0; its targets are a_t, the next observation o_{t+1} (the joint action of round t
    seen first-person) and the reward r_t. Returns ``(AgentInput, actions, next_tokens,
    rewards)``.
    """
    action = jnp.asarray(ep.action, jnp.int32)
    other = jnp.asarray(ep.opponent_action, jnp.int32)
    reward = jnp.asarray(ep.reward, jnp.float32)
    next_tokens = first_person_tokens(jnp.stack([action, other], -1))[..., 0]  # (N, T)
    n = action.shape[0]
    token = jnp.concatenate([jnp.full((n, 1), START, jnp.int32), next_tokens[:, :-1]], 1)
    prev_action = jnp.concatenate([jnp.full((n, 1), -1, jnp.int32), action[:, :-1]], 1)
    prev_reward = jnp.concatenate([jnp.zeros((n, 1), jnp.float32), reward[:, :-1]], 1)
    z = jnp.broadcast_to(jnp.asarray(ep.opponent_id, jnp.float32)[None],
                         (action.shape[1], *ep.opponent_id.shape))
    tm = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    inputs = AgentInput(tm(token), tm(prev_action), tm(prev_reward), z)
    return inputs, tm(action), tm(next_tokens), tm(reward)


# -- model loss and training steps --------------------------------------------------------------

class LossParts(NamedTuple):
    total: jax.Array
    obs: jax.Array  # next-observation cross-entropy (nats)
    action: jax.Array  # own-action cross-entropy (nats)
    reward: jax.Array  # reward squared error


def model_loss(cfg: PPIConfig, params, ep: Episodes,
               action_weight: jax.Array | None = None) -> LossParts:
    """L = λ_obs·CE(o_{t+1}) + λ_act·CE(a_t) + λ_rew·(r̂_t − r_t)², averaged over rounds.

    ``action_weight`` (N,), if given, weights each trajectory's own-action term (the mean is
    over the weighted trajectories; 0 where none is): the `prior_window` option."""
    inputs, actions, next_tokens, rewards = tokenize(ep)
    act_logits, obs_logits, rew = predict_sequence(make_model(cfg), params, inputs, actions,
                                                   next_tokens, cfg.scan_unroll)
    ce_act = optax.softmax_cross_entropy_with_integer_labels(act_logits, actions)  # (T, N)
    if action_weight is None:
        l_act = ce_act.mean()
    else:
        w = jnp.asarray(action_weight, jnp.float32)
        l_act = (ce_act * w).sum() / jnp.maximum(w.sum() * ce_act.shape[0], 1e-6)
    l_obs = optax.softmax_cross_entropy_with_integer_labels(obs_logits, next_tokens).mean()
    l_rew = jnp.square(rew - rewards).mean()
    total = (cfg.obs_loss_weight * l_obs + cfg.action_loss_weight * l_act
             + cfg.reward_loss_weight * l_rew)
    return LossParts(total, l_obs, l_act, l_rew)


def make_optimizer(cfg: PPIConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.adamw(cfg.learning_rate, b1=cfg.adam_b1, b2=cfg.adam_b2,
                    weight_decay=cfg.weight_decay),
    )


def steps_per_phase(cfg: PPIConfig, dataset_size: int, phase: int = 2) -> int:
    """Gradient steps of phase ``phase`` on a dataset of this many trajectories, rounded up to
    whole chunks."""
    steps = max(1, int(np.ceil(cfg.epochs * dataset_size / cfg.batch_size)))
    if cfg.max_steps_per_phase is not None:
        steps = min(steps, cfg.max_steps_per_phase)
    if phase == 1 and cfg.first_phase_steps is not None:
        steps = cfg.first_phase_steps
    chunk = cfg.train_chunk_steps
    return int(np.ceil(steps / chunk)) * chunk


def batch_indices(rng: np.random.Generator, dataset_size: int, steps: int,
                  batch: int) -> np.ndarray:
    """(steps, batch) trajectory indices: consecutive epochs of fresh permutations."""
    need = steps * batch
    perms = [rng.permutation(dataset_size) for _ in range(int(np.ceil(need / dataset_size)))]
    return np.concatenate(perms)[:need].reshape(steps, batch).astype(np.int32)


class TrainingRows(NamedTuple):
    """A learner's training data (cap, ...): its episodes and, with `prior_window`, the weight
    (cap,) of each one's own-action loss (None: unweighted)."""

    episodes: Episodes
    action_weight: jax.Array | None


def make_train_steps(cfg: PPIConfig):
    """Jitted ``train_steps(params, opt_state, data: Episodes (cap, T), idx (S, B),
    action_weight (cap,))`` for a stack of learners (leading axis on every argument).
    ``action_weight`` weights each trajectory's own-action loss; it is read only with
    `prior_window` ≥ 1 (pass ones otherwise). Returns the new params, opt_state and the mean
    loss parts over the S steps, per learner."""
    optimizer = make_optimizer(cfg)

    def loss(params, mb: TrainingRows):
        parts = model_loss(cfg, params, mb.episodes, mb.action_weight)
        return parts.total, parts

    step = optimiser_step(optimizer, loss)

    def one_learner(params, opt_state, data: Episodes, idx, action_weight):
        rows = TrainingRows(data, action_weight if cfg.prior_window else None)
        carry, parts = sgd_steps(TrainCarry(params, opt_state), rows, idx, step)
        return carry.params, carry.opt_state, jax.tree.map(jnp.mean, parts)

    return jax.jit(jax.vmap(one_learner)), optimizer


# -- planning inside the model ------------------------------------------------------------------

def token_action_mask(action: jax.Array) -> jax.Array:
    """(…,) own action -> (…, 5) bool: next-observation tokens consistent with it."""
    tokens = jnp.arange(5)
    own = (tokens - 1) // 2
    return (tokens >= 1) & (own == action[..., None])


def plan_q(cfg: PPIConfig, params, hidden: jax.Array, feat: jax.Array,
           opponent_id: jax.Array, round_index: jax.Array, key: jax.Array) -> jax.Array:
    """Q̂ (B, 2) of both actions at B decision points, one learner's model.

    ``hidden`` and ``feat`` (B, H) are the model's state after reading x≤t; ``round_index``
    () or (B,) is t. Each of the B x 2 x K rollouts starts with the candidate action, samples
    the next observation among those consistent with the action taken (the agent sees its own
    move), adds the predicted reward, feeds (o, a, r̂) back into the GRU and draws its next own
    action from the prior; ``planning_horizon`` rounds in one ``lax.scan``. Rollout i of C and
    rollout i of D share their random numbers (common random numbers; samples are
    argmax(logits + Gumbel), i.e. exact categorical draws).
    """
    model = make_model(cfg)
    b, k, h = hidden.shape[0], cfg.num_rollouts, cfg.planning_horizon
    m = b * 2 * k
    expand = lambda x: jnp.broadcast_to(x[:, None, None], (b, 2, k, *x.shape[1:])).reshape(  # noqa: E731
        m, *x.shape[1:])
    action = jnp.broadcast_to(jnp.arange(2)[None, :, None], (b, 2, k)).reshape(m)
    t0 = expand(jnp.broadcast_to(jnp.asarray(round_index, jnp.int32), (b,)))
    z = expand(opponent_id)
    apply = lambda method, *a: model.apply(params, *a, method=method)  # noqa: E731

    def shared_gumbel(key, n):
        """(m, n) Gumbel noise equal for the two candidate actions of a rollout: common
        random numbers, so Q̂(C) - Q̂(D) is not blurred by independent luck."""
        g = jax.random.gumbel(key, (b, 1, k, n))
        return jnp.broadcast_to(g, (b, 2, k, n)).reshape(m, n)

    def body(carry, xs):
        hidden, feat, action, ret = carry
        j, key = xs
        k_obs, k_act = jax.random.split(key)
        logits = apply(PPIModel.obs_logits, feat, action)
        logits = jnp.where(token_action_mask(action), logits, -jnp.inf)
        token = jnp.argmax(logits + shared_gumbel(k_obs, logits.shape[-1]), -1).astype(
            jnp.int32)
        reward = apply(PPIModel.reward, feat, action, token)
        live = (t0 + j < cfg.num_rounds) | cfg.plan_past_episode_end
        ret = ret + jnp.where(live, reward, 0.0)
        hidden, feat = apply(PPIModel.step, hidden, AgentInput(token, action, reward, z))
        prior = apply(PPIModel.action_logits, feat)
        action = jnp.argmax(prior + shared_gumbel(k_act, prior.shape[-1]), -1)
        return (hidden, feat, action.astype(jnp.int32), ret), None

    init = (expand(hidden), expand(feat), action, jnp.zeros((m,), jnp.float32))
    (_, _, _, ret), _ = jax.lax.scan(body, init, (jnp.arange(h), jax.random.split(key, h)),
                                     unroll=cfg.scan_unroll)
    return ret.reshape(b, 2, k).mean(-1)


def predicted_coplayer_coop(obs_logits: jax.Array, action: jax.Array) -> jax.Array:
    """(…, 5) next-observation logits given own action a (…,) -> (…,) the model's P(co-player
    plays C this round): the mass of token (a, C) among the tokens consistent with a."""
    probs = jax.nn.softmax(jnp.where(token_action_mask(action), obs_logits, -jnp.inf))
    return jnp.take_along_axis(probs, (1 + 2 * action)[..., None], -1)[..., 0]


def improved_logits(prior_logits: jax.Array, q: jax.Array, beta: float) -> jax.Array:
    """log π = log p(a|x) + β·Q̂ − log Z, over the last axis."""
    return jax.nn.log_softmax(jax.nn.log_softmax(prior_logits) + beta * q)


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


# -- D0: random tabular pairs -------------------------------------------------------------------

def make_random_pairs(num_rounds: int, env_params: MatrixGameParams | None = None):
    """Jitted ``play(key, n) -> Episodes`` of 2n trajectories: n games between two fresh U(0,1)
    memory-1 agents, each game seen from both seats (rows [0, n) seat 0, [n, 2n) seat 1)."""
    env_params = MatrixGameParams() if env_params is None else env_params

    def play(key, n):
        k_tab, k_play = jax.random.split(key)
        probs = random_memory1(k_tab, (n, 2))  # (n, seat, 5)

        def step(history: History, key):
            pair = lambda h: (memory1_act(key, probs, h.token), None)  # noqa: E731  (n, 2)
            history, _ = game_step(history, pair, env_params)
            return history, (history.action, history.reward)

        _, (actions, rewards) = jax.lax.scan(step, new_game((n,)),
                                             jax.random.split(k_play, num_rounds))
        seat = lambda x: jnp.concatenate([x[..., 0].T, x[..., 1].T], 0)  # noqa: E731
        z = memory1_log_policy(probs)  # (n, seat, 10): each seat's own log-policy
        return (seat(actions), seat(jnp.flip(actions, -1)), seat(rewards),
                jnp.concatenate([z[:, 1], z[:, 0]], 0))  # a seat's co-player is the other seat

    jitted = jax.jit(play, static_argnums=1)

    def run(key, n) -> Episodes:
        a, b, r, z = jitted(key, n)
        return Episodes(np.asarray(a, np.int8), np.asarray(b, np.int8),
                        np.asarray(r, np.float16), np.asarray(z, np.float16))

    return run

