"""PPO for two-player Overcooked, vectorised over population members.

A *member* is one pair of seats (seat 0 and seat 1) trained together on its own EnvParams —
members differ by their hidden-utility weights (``event_weights`` / ``sparse_weight``, read
per *seat*: row s is the utility of the policy in seat s). Self-play is one member with sparse
reward only. The seats either have their own parameters (``share_policy=False``: two
policies, each trained on its seat's data) or share one policy (``share_policy=True``, the
JaxMARL IPPO set-up). With ``randomise_seats`` each episode draws which cook each seat steers.

``make_train(cfg, env, member_params)`` returns a :class:`Trainer` whose ``train_chunk(state)
-> (state, metrics)`` is ONE jitted program: for every member (``jax.vmap``) a ``lax.scan``
over ``updates_per_chunk`` updates of

    rollout (lax.scan over num_steps of num_envs vmapped envs) -> GAE (reverse scan)
    -> update_epochs x num_minibatches clipped-surrogate steps (per policy, vmapped)

With a :class:`FrozenPartner` (MEP stage 2) seat 1 is steered by frozen policies instead and
one learner is trained on seat 0's data only.

Everything in :class:`PPOState` has a leading member axis M; parameters, optimiser states and
value normalisers have a further policy axis G (2 separate, 1 shared). Update u of a member
uses ``fold_in(member_key, u)``, so chunking and resumption do not change the result.
The Python loop around chunks (progress, checkpoints, logs) lives in
:mod:`coplay.experiments.overcooked_ppo`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from coplay.agents.actor_critic import ActorCritic, critic_input, make_network
from coplay.algos.losses import action_log_probs, categorical_entropy, clipped_surrogate_loss
from coplay.algos.returns import gae
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_epochs
from coplay.config import ConfigError, checker
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.rewards import agent_rewards
from coplay.envs.overcooked.state import EnvParams, State

__all__ = ["PPOConfig", "ConfigError", "validate", "make_train", "ppo_losses", "PPOState",
           "UpdateMetrics", "Trainer", "FrozenPartner", "entropy_coef_at", "shaping_scale_at"]


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO for Overcooked. Defaults follow JaxMARL's IPPO feed-forward Overcooked baseline,
    except separate parameters per seat and ZSC-Eval's learning rate (docs/ppo.md)."""

    num_envs: int = 16
    """Parallel environments per member (JaxMARL IPPO: 16; ZSC-Eval: 100-200 threads)."""
    num_steps: int = 128
    """Steps per environment in each rollout (JaxMARL IPPO: 128; ZSC-Eval: 400)."""
    total_steps: int = 5_000_000
    """Environment steps per member (one step moves both cooks), rounded up to whole chunks."""
    updates_per_chunk: int = 10
    """PPO updates per jitted chunk; metrics, progress and checkpoints happen between chunks."""
    update_epochs: int = 4
    """Passes over each rollout (JaxMARL IPPO: 4; ZSC-Eval: 15)."""
    num_minibatches: int = 4
    """Minibatches per pass; must divide the samples per policy and rollout."""
    learning_rate: float = 5e-4
    """Adam learning rate (ZSC-Eval: 5e-4; JaxMARL IPPO: 2.5e-4)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over training (JaxMARL IPPO: yes)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip, per policy."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """PPO ratio clip (and the value clip when `clip_value`)."""
    value_coef: float = 0.5
    """Weight of the value loss (the loss itself is 0.5 * squared error, as JaxMARL)."""
    clip_value: bool = True
    """Clip value updates to +-clip_eps around the rollout's values (JaxMARL IPPO: yes)."""
    huber_delta: float | None = None
    """Huber loss with this delta instead of the squared value error (MAPPO / ZSC-Eval: 10);
    None: squared error (JaxMARL IPPO)."""
    value_norm: bool = False
    """Normalise value targets by running statistics (MAPPO / ZSC-Eval's ValueNorm); the
    critic then predicts normalised values."""
    value_norm_beta: float = 0.99999
    """Decay of the value-normaliser statistics, per update (MAPPO: 0.99999)."""
    advantage_norm: Literal["minibatch", "batch", "none"] = "minibatch"
    """Normalise advantages per minibatch (JaxMARL IPPO), over each policy's whole rollout
    (MAPPO / ZSC-Eval), or not at all."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before advantages and value targets."""
    entropy_coefs: tuple[float, ...] = (0.01,)
    """Entropy-bonus coefficients at `entropy_horizons`, linearly interpolated (one value:
    constant; ZSC-Eval: 0.2, 0.05, 0.001)."""
    entropy_horizons: tuple[float, ...] = (0.0,)
    """Fractions of `total_steps` where `entropy_coefs` apply (ZSC-Eval: 0, 0.6, 1)."""
    shaping_factor: float | None = 1.0
    """Initial weight of the standard shaped reward (placement 3, dish 3, soup 5); None keeps
    each member's EnvParams.shaping_factor."""
    shaping_horizon: int | None = 2_500_000
    """Environment steps over which the shaping weight decays linearly to 0 (JaxMARL IPPO:
    2.5e6); None keeps it constant."""
    share_policy: bool = False
    """One policy for both seats (JaxMARL IPPO); False: separate parameters per seat."""
    randomise_seats: bool = True
    """Draw per episode which cook each seat steers (ZSC-Eval's random_index)."""
    centralised_value: bool = False
    """MAPPO-style critic: it sees both cooks' observations (channel concat)."""
    network: Literal["mlp", "cnn"] = "mlp"
    """Torso of actor and critic: mlp (JaxMARL IPPO) or cnn (ZSC-Eval: 32-64-32, 3x3)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Dense layers of each tower (after the convolutions for cnn)."""
    cnn_filters: tuple[int, ...] = (32, 64, 32)
    """Convolution filters of the cnn torso (3x3, stride 1, SAME)."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation of the dense layers (JaxMARL IPPO: tanh)."""
    horizon: int = 400
    """Episode length in steps (ZSC-Eval: 400)."""
    scan_unroll: int = 1
    """Unroll factor of the rollout scan (speed only)."""
    population_entropy_coef: float = 0.0
    """MEP's population-entropy bonus (Zhao et al. 2023; spec: 0.01): each seat's reward gets
    + coef * -log pi_bar(a|s), pi_bar the mean over population members of the same seat's
    policy at the state (members see each other through the vmapped member axis; the
    un-vmapped ``member_chunk`` then needs ``jax.vmap(..., axis_name="member")``). 0: off."""


def validate(cfg: PPOConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field (before anything compiles)."""

    need = checker(cfg, "ppo")

    for f in ("num_envs", "num_steps", "total_steps", "updates_per_chunk", "update_epochs",
              "num_minibatches", "horizon", "scan_unroll"):
        v = getattr(cfg, f)
        need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f,
             "must be an integer >= 1")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.adam_eps > 0, "adam_eps", "must be > 0")
    need(cfg.max_grad_norm > 0, "max_grad_norm", "must be > 0")
    need(0.0 <= cfg.gamma <= 1.0, "gamma", "must be in [0, 1]")
    need(0.0 <= cfg.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
    need(cfg.clip_eps > 0, "clip_eps", "must be > 0")
    need(cfg.value_coef >= 0, "value_coef", "must be >= 0")
    need(cfg.huber_delta is None or cfg.huber_delta > 0, "huber_delta", "must be > 0 or None")
    need(0.0 < cfg.value_norm_beta < 1.0, "value_norm_beta", "must be in (0, 1)")
    need(cfg.reward_scale > 0, "reward_scale", "must be > 0")
    need(cfg.population_entropy_coef >= 0, "population_entropy_coef", "must be >= 0")
    need(len(cfg.entropy_coefs) >= 1 and all(c >= 0 for c in cfg.entropy_coefs),
         "entropy_coefs", "needs at least one value, all >= 0")
    need(len(cfg.entropy_horizons) == len(cfg.entropy_coefs), "entropy_horizons",
         f"needs one fraction per entropy coefficient ({len(cfg.entropy_coefs)})")
    h = cfg.entropy_horizons
    need(all(0.0 <= x <= 1.0 for x in h) and all(a < b for a, b in zip(h, h[1:], strict=False)),
         "entropy_horizons", "must be increasing fractions in [0, 1]")
    need(cfg.shaping_factor is None or cfg.shaping_factor >= 0, "shaping_factor",
         "must be >= 0 or None")
    need(cfg.shaping_horizon is None or cfg.shaping_horizon >= 1, "shaping_horizon",
         "must be >= 1 or None")
    need(cfg.network in ("mlp", "cnn"), "network", "choose mlp or cnn")
    need(cfg.advantage_norm in ("minibatch", "batch", "none"), "advantage_norm",
         "choose minibatch, batch or none")
    need(cfg.activation in ("tanh", "relu"), "activation", "choose tanh or relu")
    need(len(cfg.hidden_sizes) >= 1 and all(int(x) >= 1 for x in cfg.hidden_sizes),
         "hidden_sizes", "needs at least one layer, all sizes >= 1")
    need(len(cfg.cnn_filters) >= 1 and all(int(x) >= 1 for x in cfg.cnn_filters),
         "cnn_filters", "needs at least one layer, all sizes >= 1")
    samples = cfg.num_steps * cfg.num_envs * (2 if cfg.share_policy else 1)
    need(samples % cfg.num_minibatches == 0, "num_minibatches",
         f"must divide the {samples} samples per policy and rollout "
         "(num_steps x num_envs, x2 with share_policy)")


def steps_per_update(cfg: PPOConfig) -> int:
    return cfg.num_envs * cfg.num_steps


def num_updates(cfg: PPOConfig) -> int:
    """Updates of a run: total_steps rounded up to whole chunks."""
    chunks = math.ceil(cfg.total_steps / (steps_per_update(cfg) * cfg.updates_per_chunk))
    return max(chunks, 1) * cfg.updates_per_chunk


def num_policies(cfg: PPOConfig) -> int:
    return 1 if cfg.share_policy else 2


def entropy_coef_at(cfg: PPOConfig, env_steps: jax.Array) -> jax.Array:
    """Piecewise-linear entropy coefficient at a number of env steps (held past the ends)."""
    xs = jnp.asarray(cfg.entropy_horizons, jnp.float32) * cfg.total_steps
    return jnp.interp(jnp.asarray(env_steps, jnp.float32), xs,
                      jnp.asarray(cfg.entropy_coefs, jnp.float32))


def shaping_scale_at(cfg: PPOConfig, env_steps: jax.Array) -> jax.Array:
    """Multiplier of the initial shaping weight: 1 -> 0 linearly over shaping_horizon."""
    if cfg.shaping_horizon is None:
        return jnp.ones((), jnp.float32)
    return jnp.clip(1.0 - jnp.asarray(env_steps, jnp.float32) / cfg.shaping_horizon, 0.0, 1.0)


def learning_rate_at(cfg: PPOConfig, update: jax.Array) -> jax.Array:
    if not cfg.anneal_lr:
        return jnp.asarray(cfg.learning_rate, jnp.float32)
    return cfg.learning_rate * (1.0 - update / num_updates(cfg))


MEMBER_AXIS = "member"  # name of the vmapped population axis (MEP's collective)


# --- state ------------------------------------------------------------------------------------
class ValueNorm(struct.PyTreeNode):
    """Running mean / variance of value targets with debiasing (MAPPO's ValueNorm)."""

    mean: jax.Array  # ()
    mean_sq: jax.Array  # ()
    debias: jax.Array  # ()

    @classmethod
    def create(cls) -> ValueNorm:
        z = jnp.zeros((), jnp.float32)
        return cls(z, z, z)

    def update(self, x: jax.Array, beta: float) -> ValueNorm:
        return ValueNorm(beta * self.mean + (1 - beta) * x.mean(),
                         beta * self.mean_sq + (1 - beta) * jnp.square(x).mean(),
                         beta * self.debias + (1 - beta))

    def stats(self) -> tuple[jax.Array, jax.Array]:
        d = jnp.maximum(self.debias, 1e-5)
        mean = self.mean / d
        var = jnp.maximum(self.mean_sq / d - jnp.square(mean), 1e-2)
        return mean, jnp.sqrt(var)

    def normalise(self, x: jax.Array) -> jax.Array:
        mean, std = self.stats()
        return (x - mean) / std

    def denormalise(self, x: jax.Array) -> jax.Array:
        mean, std = self.stats()
        return x * std + mean


class Runner(struct.PyTreeNode):
    """Environments mid-rollout, carried across updates (N = num_envs)."""

    env_state: State  # leading (N,)
    obs: jax.Array  # (N, 2, H, W, C) per cook
    swap: jax.Array  # (N,) bool: seat 0 steers cook 1 (and seat 1 cook 0)
    ep_sparse: jax.Array  # (N,) team sparse return of the running episode
    ep_reward: jax.Array  # (N, 2) training reward per seat, running episode
    ep_events: jax.Array  # (N, 2, E) int32 event counts per seat, running episode
    last_return: jax.Array  # (N,) sparse return of each env's last finished episode


class PPOState(struct.PyTreeNode):
    """One member's training state (a population stacks these on a leading axis)."""

    params: dict  # (G, ...) policy parameters
    opt_state: optax.OptState  # (G, ...)
    value_norm: ValueNorm  # (G,)
    runner: Runner
    key: jax.Array  # member key; update u uses fold_in(key, u)
    update: jax.Array  # () int32 updates done


class UpdateMetrics(NamedTuple):
    """Per update (and member when vmapped). Episode sums cover episodes that ended in it."""

    returned_return: jax.Array  # () mean over steps and envs of the last finished episode's
    #                             sparse return (JaxMARL LogWrapper's returned_episode_returns)
    episodes: jax.Array  # () episodes that ended during the rollout
    episode_return_sum: jax.Array  # () their summed team sparse returns
    episode_reward_sum: jax.Array  # (2,) their summed training rewards per seat
    episode_events_sum: jax.Array  # (2, E) their summed event counts per seat
    policy_loss: jax.Array  # (G,) last minibatch
    value_loss: jax.Array  # (G,)
    entropy: jax.Array  # (G,)
    entropy_coef: jax.Array  # ()
    shaping_factor: jax.Array  # ()
    learning_rate: jax.Array  # ()


class Transition(NamedTuple):
    """One rollout step, seats in seat order. Shapes (N, 2, ...)."""

    obs: jax.Array  # (N, 2, H, W, C) ego obs of each seat's cook
    action: jax.Array  # (N, 2)
    log_prob: jax.Array  # (N, 2)
    reward: jax.Array  # (N, 2) training reward per seat (scaled)
    done: jax.Array  # (N,)


class Batch(NamedTuple):
    """One policy's training data, flattened to samples (B, ...)."""

    obs: jax.Array
    critic_obs: jax.Array | None
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


# --- losses -----------------------------------------------------------------------------------
def ppo_losses(logits: jax.Array, value: jax.Array, action: jax.Array, old_log_prob: jax.Array,
               old_value: jax.Array, advantage: jax.Array, target: jax.Array, clip_eps: float,
               clip_value: bool, normalize_advantages: bool, huber_delta: float | None = None):
    """(policy_loss, value_loss, entropy) of a minibatch; logits (B, A), the rest (B,).

    policy: -mean(min(r A, clip(r, 1-eps, 1+eps) A)), r = pi(a)/pi_old(a);
    value: 0.5 * mean((v - target)^2), or of the max with the clipped prediction's error;
    with ``huber_delta`` the error is Huber's (quadratic within delta, then linear) instead.
    """
    log_probs, log_prob = action_log_probs(logits, action)  # (B, A), (B,)
    if normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = clipped_surrogate_loss(log_prob, old_log_prob, advantage, clip_eps)
    if huber_delta is None:
        loss = lambda e: 0.5 * jnp.square(e)  # noqa: E731
    else:
        loss = lambda e: optax.huber_loss(e, delta=huber_delta)  # noqa: E731
    err = loss(value - target)
    if clip_value:
        clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        err = jnp.maximum(err, loss(clipped - target))
    value_loss = err.mean()
    entropy = categorical_entropy(log_probs)
    return policy_loss, value_loss, entropy


# --- seats <-> policies -----------------------------------------------------------------------
def to_policies(x: jax.Array, seat_axis: int, shared: bool) -> jax.Array:
    """(..lead, 2, ...) seat-ordered -> (G, ..lead', ...) per policy (shared: seats merged
    into the last lead axis)."""
    x = jnp.moveaxis(x, seat_axis, 0)  # (2, *lead, ...)
    if shared:
        x = jnp.concatenate([x[0], x[1]], axis=seat_axis - 1)[None]
    return x


def from_policies(y: jax.Array, seat_axis: int, shared: bool) -> jax.Array:
    """Inverse of :func:`to_policies`."""
    if shared:
        y = jnp.stack(jnp.split(y[0], 2, axis=seat_axis - 1), axis=0)
    return jnp.moveaxis(y, 0, seat_axis)


def _by_seat(x: jax.Array, cook_of_seat: jax.Array) -> jax.Array:
    """x (N, 2, ...) per cook -> per seat, using cook_of_seat (N, 2)."""
    idx = cook_of_seat.reshape(cook_of_seat.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


# --- training ---------------------------------------------------------------------------------
class FrozenPartner(NamedTuple):
    """Frozen policies that steer seat 1 instead of the trained policy (MEP stage 2).

    The learner is then one policy (``share_policy=True``) trained on seat 0's data only.
    ``params`` is an argument of the jitted chunk (not train state: nothing updates it);
    ``logits(params, runner, obs_seat (N, 2, H, W, C)) -> (N, A)`` gives seat 1's logits, and
    ``after_step(runner, done (N,), sparse_return (N,) of the episodes ending, key) -> runner``
    runs after every step (e.g. draws the next partner of each finished episode). The runner
    may be a subclass of :class:`Runner` with the partner's fields.
    """

    params: Any
    logits: Callable
    after_step: Callable


def validate_with_partner(cfg: PPOConfig) -> None:
    """The extra conditions of training one learner beside a :class:`FrozenPartner`."""
    if not cfg.share_policy:
        raise ConfigError("ppo.share_policy = False: a frozen partner needs share_policy = "
                          "True (one learner, trained on seat 0)")
    if (cfg.num_steps * cfg.num_envs) % cfg.num_minibatches:
        raise ConfigError(f"ppo.num_minibatches = {cfg.num_minibatches}: must divide the "
                          f"{cfg.num_steps * cfg.num_envs} samples of the learner's seat")


class Trainer(NamedTuple):
    """What :func:`make_train` builds.

    - ``init(key) -> PPOState`` (leading member axis M), jitted;
    - ``train_chunk(state) -> (state, UpdateMetrics (M, updates_per_chunk, ...))``, jitted;
    - ``init_member(key, env_params)`` / ``member_chunk(state, env_params, partner_params=None)``:
      the same for one member, neither jitted nor vmapped (tests, custom drivers; with a
      :class:`FrozenPartner` pass its ``params``); member m of ``init(key)`` is
      ``init_member(jax.random.split(key, M)[m], params_m)``.
    """

    init: object
    train_chunk: object
    init_member: object
    member_chunk: object
    network: ActorCritic
    num_members: int


def make_train(cfg: PPOConfig, env: Overcooked, member_params: EnvParams,
               partner: FrozenPartner | None = None) -> Trainer:
    """Build the trainer of a population whose EnvParams are stacked on a leading axis M
    (with ``partner``: every member's seat 1 is steered by the frozen partner)."""
    validate(cfg)
    if partner is not None:
        validate_with_partner(cfg)
    num_members = int(np.shape(member_params.horizon)[0]) if np.ndim(member_params.horizon) \
        else None
    if num_members is None:
        raise ConfigError("member_params must have a leading member axis "
                          "(e.g. jax.tree.map(lambda x: x[None], params))")
    net = make_network(cfg.network, cfg.hidden_sizes, cfg.activation, cfg.cnn_filters,
                       env.num_actions)
    shared = cfg.share_policy
    G = num_policies(cfg)
    N, T = cfg.num_envs, cfg.num_steps
    h, w, c = env.obs_shape
    n_events = env.num_events
    n_upd = num_updates(cfg)
    per_update_opt_steps = cfg.update_epochs * cfg.num_minibatches

    def lr_schedule(count):
        if not cfg.anneal_lr:
            return cfg.learning_rate
        return cfg.learning_rate * (1.0 - (count // per_update_opt_steps) / n_upd)

    optimizer = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                            optax.adam(lr_schedule, eps=cfg.adam_eps))

    def policy_apply(params, obs_seat, seat_axis: int = 1):
        """obs (..., 2, H, W, C) seat-ordered, seats on ``seat_axis`` -> logits (..., 2, A),
        values (..., 2). (Callers that use one output only: XLA drops the other tower.)"""

        def batch(x):  # (G, *lead, H, W, C) -> (G, B, H, W, C)
            return x.reshape((x.shape[0], -1) + x.shape[-3:])

        x = to_policies(obs_seat, seat_axis, shared)
        lead = x.shape[:-3]
        cx = to_policies(critic_input(obs_seat, cfg.centralised_value, seat_axis), seat_axis,
                         shared)
        logits, values = jax.vmap(net.apply)(params, batch(x), batch(cx))
        logits = logits.reshape(lead + logits.shape[-1:])
        return (from_policies(logits, seat_axis, shared),
                from_policies(values.reshape(lead), seat_axis, shared))

    def draw_swap(key):
        if not cfg.randomise_seats:
            return jnp.zeros((N,), bool)
        return jax.random.bernoulli(key, 0.5, (N,))

    def env_params_for(env_params: EnvParams) -> EnvParams:
        return env_params.replace(horizon=jnp.asarray(cfg.horizon, jnp.int32))

    critic_c = 2 * c if cfg.centralised_value else c

    def init_rest(params, key: jax.Array, env_params: EnvParams) -> PPOState:
        """One member's state around its (G, ...) policy parameters."""
        env_params = env_params_for(env_params)
        k_env, k_swap, k_train = jax.random.split(key, 3)
        opt_state = jax.vmap(optimizer.init)(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, N), env_params)
        runner = Runner(env_state, obs, draw_swap(k_swap), jnp.zeros((N,)), jnp.zeros((N, 2)),
                        jnp.zeros((N, 2, n_events), jnp.int32), jnp.zeros((N,)))
        value_norm = jax.vmap(lambda _: ValueNorm.create())(jnp.arange(G))
        return PPOState(params, opt_state, value_norm, runner, k_train, jnp.zeros((), jnp.int32))

    def policy_params(key: jax.Array):
        """(G, ...) parameters. The G inits are unrolled, not vmapped: on jax 0.10.2 / CPU a
        vmapped flax init with flax's own orthogonal initialisers (batched QR) deadlocked."""
        params = [net.init(k, jnp.zeros((1, h, w, c)), jnp.zeros((1, h, w, critic_c)))
                  for k in jax.random.split(key, G)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *params)

    def init_member(key: jax.Array, env_params: EnvParams) -> PPOState:
        k_net, k_rest = jax.random.split(key)
        return init_rest(policy_params(k_net), k_rest, env_params)

    @jax.jit
    def init_all(key: jax.Array, member_params: EnvParams) -> PPOState:
        keys = jax.random.split(key, num_members)
        k_net, k_rest = jax.vmap(jax.random.split, out_axes=1)(keys)  # (M, 2) each
        params = [policy_params(k_net[m]) for m in range(num_members)]
        params = jax.tree.map(lambda *xs: jnp.stack(xs), *params)  # (M, G, ...)
        return jax.vmap(init_rest)(params, k_rest, member_params)

    def rollout(key, params, runner: Runner, env_params: EnvParams, partner_params):
        """T steps of N envs -> (runner, Transition (T, ...), per-step episode stats)."""
        step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        # MEP: every member's policies (gathered over the vmapped member axis), fixed during
        # the rollout, for the population-mean policy pi_bar
        population = (jax.lax.all_gather(params, MEMBER_AXIS)
                      if cfg.population_entropy_coef > 0 else None)  # (M, G, ...)

        def surprise(obs_seat, action):
            """-log pi_bar(a|s) (N, 2) of the seats' actions."""
            probs = jax.vmap(lambda p: jax.nn.softmax(policy_apply(p, obs_seat)[0]))(population)
            p_a = jnp.take_along_axis(probs.mean(0), action[..., None], axis=-1)[..., 0]
            return -jnp.log(jnp.maximum(p_a, 1e-8))
        reward_fn = jax.vmap(agent_rewards, in_axes=(0, 0, 0, None, None, None))

        def step(runner: Runner, key):
            k_act, k_env, k_swap = jax.random.split(key, 3)
            cook_of_seat = jnp.where(runner.swap[:, None], jnp.array([1, 0]), jnp.array([0, 1]))
            obs_seat = _by_seat(runner.obs, cook_of_seat)  # (N, 2, H, W, C)
            logits, _ = policy_apply(params, obs_seat)  # values: after the rollout
            if partner is not None:
                logits = logits.at[:, 1].set(partner.logits(partner_params, runner, obs_seat))
            action = jax.random.categorical(k_act, logits)  # (N, 2) per seat
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None],
                                           axis=-1)[..., 0]
            # a swap is its own inverse: cook c takes the action of seat cook_of_seat[c]
            actions_cook = jnp.take_along_axis(action, cook_of_seat, axis=1)
            obs, env_state, _, done, info = step_env(jax.random.split(k_env, N),
                                                     runner.env_state, actions_cook, env_params)
            events = _by_seat(info["events"], cook_of_seat)  # (N, 2, E) per seat
            shaped = _by_seat(info["shaped_by_agent"], cook_of_seat)  # (N, 2)
            sparse = info["sparse_reward"]  # (N,)
            # EnvParams rows are per seat here (the env's own reward is per cook)
            reward = reward_fn(sparse, shaped, events.astype(jnp.float32),
                               env_params.event_weights, env_params.sparse_weight,
                               env_params.shaping_factor)  # (N, 2)
            if population is not None:
                reward = reward + cfg.population_entropy_coef * surprise(obs_seat, action)
            ep_sparse = runner.ep_sparse + sparse
            ep_reward = runner.ep_reward + reward
            ep_events = runner.ep_events + events
            d = done.astype(jnp.float32)
            last_return = jnp.where(done, ep_sparse, runner.last_return)
            stats = (
                d.sum(),
                (d * ep_sparse).sum(),
                (d[:, None] * ep_reward).sum(0),
                (done[:, None, None] * ep_events).sum(0),
                last_return.mean(),
            )
            keep = 1.0 - d
            new_runner = runner.replace(
                env_state=env_state, obs=obs, swap=jnp.where(done, draw_swap(k_swap), runner.swap),
                ep_sparse=ep_sparse * keep, ep_reward=ep_reward * keep[:, None],
                ep_events=jnp.where(done[:, None, None], 0, ep_events), last_return=last_return)
            if partner is not None:
                new_runner = partner.after_step(new_runner, done, ep_sparse,
                                                jax.random.fold_in(k_swap, 1))
            trans = Transition(obs_seat, action, log_prob, reward * cfg.reward_scale, done)
            return new_runner, (trans, stats)

        runner, (traj, stats) = jax.lax.scan(step, runner, jax.random.split(key, T),
                                             unroll=cfg.scan_unroll)
        return runner, traj, stats

    def loss_fn(params, mb: Batch, ent_coef):
        critic_obs = mb.obs if mb.critic_obs is None else mb.critic_obs
        logits, value = net.apply(params, mb.obs, critic_obs)
        pl, vl, ent = ppo_losses(logits, value, mb.action, mb.log_prob, mb.value, mb.advantage,
                                 mb.target, cfg.clip_eps, cfg.clip_value,
                                 cfg.advantage_norm == "minibatch", cfg.huber_delta)
        return pl + cfg.value_coef * vl - ent_coef * ent, (pl, vl, ent)

    def policy_update(params, opt_state, batch: Batch, key, ent_coef):
        """All epochs / minibatches of one policy on its (B, ...) samples."""
        step = optimiser_step(optimizer, lambda p, mb: loss_fn(p, mb, ent_coef))
        carry, aux = sgd_epochs(key, TrainCarry(params, opt_state), batch, step,
                                cfg.update_epochs, cfg.num_minibatches)
        return carry.params, carry.opt_state, jax.tree.map(lambda a: a[-1, -1], aux)

    def one_update(state: PPOState, env_params: EnvParams, partner_params):
        key = jax.random.fold_in(state.key, state.update)
        k_roll, k_upd = jax.random.split(key)
        env_steps = state.update * (N * T)
        base_shaping = (env_params.shaping_factor if cfg.shaping_factor is None
                        else jnp.asarray(cfg.shaping_factor, jnp.float32))
        shaping = base_shaping * shaping_scale_at(cfg, env_steps)
        env_params = env_params.replace(shaping_factor=shaping)
        ent_coef = entropy_coef_at(cfg, env_steps)

        runner, traj, stats = rollout(k_roll, state.params, state.runner, env_params,
                                      partner_params)
        # --- values of the whole rollout in one batched pass (the parameters did not change),
        # then advantages per seat
        _, raw_values = policy_apply(state.params, traj.obs, seat_axis=2)  # (T, N, 2)
        cook_of_seat = jnp.where(runner.swap[:, None], jnp.array([1, 0]), jnp.array([0, 1]))
        _, last_value = policy_apply(state.params, _by_seat(runner.obs, cook_of_seat))
        vn_seat = lambda v, seat_axis: from_policies(  # noqa: E731
            jax.vmap(ValueNorm.denormalise)(state.value_norm, to_policies(v, seat_axis, shared)),
            seat_axis, shared)
        if cfg.value_norm:
            values, last_value = vn_seat(raw_values, 2), vn_seat(last_value, 1)
        else:
            values = raw_values
        dones = jnp.broadcast_to(traj.done[..., None], traj.reward.shape)  # (T, N, 2)
        advantages, targets = gae(traj.reward, values, dones, last_value, cfg.gamma,
                                  cfg.gae_lambda)  # (T, N, 2)

        # --- per-policy batches (G, B, ...)
        def flat(x):  # (T, N, 2, ...) -> (G, B, ...); with a partner: the learner's seat 0
            x = x[:, :, 0][None] if partner is not None else to_policies(x, 2, shared)
            return x.reshape((x.shape[0], -1) + x.shape[3:])

        value_norm = state.value_norm
        tgt = flat(targets)
        if cfg.value_norm:
            value_norm = jax.vmap(lambda vn, t: vn.update(t, cfg.value_norm_beta))(value_norm, tgt)
            tgt = jax.vmap(ValueNorm.normalise)(value_norm, tgt)
        adv = flat(advantages)  # (G, B)
        if cfg.advantage_norm == "batch":
            adv = (adv - adv.mean(1, keepdims=True)) / (adv.std(1, keepdims=True) + 1e-8)
        critic_obs = (flat(critic_input(traj.obs, True, 2)) if cfg.centralised_value else None)
        batch = Batch(flat(traj.obs), critic_obs, flat(traj.action), flat(traj.log_prob),
                      flat(raw_values), adv, tgt)
        params, opt_state, (pl, vl, ent) = jax.vmap(policy_update, in_axes=(0, 0, 0, 0, None))(
            state.params, state.opt_state, batch, jax.random.split(k_upd, G), ent_coef)

        n_eps, ret_sum, rew_sum, ev_sum, returned = stats
        metrics = UpdateMetrics(
            returned_return=returned.mean(), episodes=n_eps.sum(),
            episode_return_sum=ret_sum.sum(), episode_reward_sum=rew_sum.sum(0),
            episode_events_sum=ev_sum.sum(0), policy_loss=pl, value_loss=vl, entropy=ent,
            entropy_coef=ent_coef, shaping_factor=shaping,
            learning_rate=learning_rate_at(cfg, state.update))
        new_state = PPOState(params, opt_state, value_norm, runner, state.key, state.update + 1)
        return new_state, metrics

    def member_chunk(state: PPOState, env_params: EnvParams, partner_params=None):
        env_params = env_params_for(env_params)
        return jax.lax.scan(lambda s, _: one_update(s, env_params, partner_params), state, None,
                            length=cfg.updates_per_chunk)

    chunk_all = jax.jit(jax.vmap(member_chunk, in_axes=(0, 0, None), axis_name=MEMBER_AXIS))
    partner_params = None if partner is None else partner.params

    def init(key: jax.Array) -> PPOState:
        return init_all(key, member_params)

    def train_chunk(state: PPOState):
        return chunk_all(state, member_params, partner_params)

    return Trainer(init, train_chunk, init_member, member_chunk, net, num_members)


def stack_params(params: list[EnvParams]) -> EnvParams:
    """Stack members' EnvParams on a leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)
