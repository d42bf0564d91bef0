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
:mod:`coplay.experiments.overcooked.ppo`.

Where is what:

- :mod:`coplay.algos.ppo_config`: :class:`PPOConfig`, :func:`validate`, derived values and
  schedules (updates of a run, entropy coefficient, shaping weight, learning rate);
- :mod:`coplay.algos.ppo_state`: the pytrees (:class:`PPOState`, ``Runner``, ``ValueNorm``,
  :class:`UpdateMetrics`, ``Transition``, ``Batch``);
- :mod:`coplay.algos.ppo_loss`: :func:`ppo_losses` of a minibatch;
- :mod:`coplay.algos.ppo_partner`: :class:`FrozenPartner` and :func:`validate_with_partner`;
- here: seats <-> policies, :func:`make_train` (rollout, GAE, update, chunk) and its
  :class:`Trainer`. The names above are re-exported here, as ``ppo.X`` is how callers read them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from coplay.agents.actor_critic import ActorCritic, critic_input, make_network
from coplay.algos.overcooked_play import by_seat, cooks_of_seats, two_seat_step
from coplay.algos.ppo_config import (
    PPOConfig,
    entropy_coef_at,
    learning_rate_at,
    num_policies,
    num_updates,
    shaping_scale_at,
    steps_per_update,
    validate,
)
from coplay.algos.ppo_loss import ppo_losses
from coplay.algos.ppo_partner import FrozenPartner, validate_with_partner
from coplay.algos.ppo_state import Batch, PPOState, Runner, Transition, UpdateMetrics, ValueNorm
from coplay.algos.returns import gae
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_epochs
from coplay.config import ConfigError
from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.rewards import agent_rewards
from coplay.envs.overcooked.state import EnvParams

__all__ = ["make_train", "Trainer", "stack_params", "to_policies", "from_policies",
           # re-exported from ppo_config / ppo_loss / ppo_partner / ppo_state
           "PPOConfig", "ConfigError", "validate", "validate_with_partner", "num_updates",
           "steps_per_update", "entropy_coef_at", "shaping_scale_at", "ppo_losses", "PPOState",
           "UpdateMetrics", "FrozenPartner"]

MEMBER_AXIS = "member"  # name of the vmapped population axis (MEP's collective)


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


# --- training ---------------------------------------------------------------------------------
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


class Setup(NamedTuple):
    """The static side of a trainer (hashable config, env, network, optimiser, partner): the
    first argument of every function below."""

    cfg: PPOConfig
    env: Overcooked
    net: ActorCritic
    optimizer: optax.GradientTransformation
    partner: FrozenPartner | None

    @property
    def shared(self) -> bool:
        return self.cfg.share_policy

    @property
    def num_policies(self) -> int:
        return num_policies(self.cfg)


class EpisodeStats(NamedTuple):
    """What one rollout step adds to the update's episode statistics."""

    episodes: jax.Array  # () episodes that ended
    return_sum: jax.Array  # () their team sparse returns, summed
    reward_sum: jax.Array  # (2,) their per-seat training rewards, summed
    events_sum: jax.Array  # (2, E) their per-seat event counts, summed
    returned: jax.Array  # () mean over envs of the last finished episode's sparse return


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    """Clipped Adam, its learning rate decayed linearly to 0 per update if `anneal_lr`."""
    per_update = cfg.update_epochs * cfg.num_minibatches
    n_upd = num_updates(cfg)

    def lr_schedule(count):
        if not cfg.anneal_lr:
            return cfg.learning_rate
        return cfg.learning_rate * (1.0 - (count // per_update) / n_upd)

    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                       optax.adam(lr_schedule, eps=cfg.adam_eps))


def policy_apply(su: Setup, params, obs_seat: jax.Array, seat_axis: int = 1):
    """obs (..., 2, H, W, C) seat-ordered, seats on ``seat_axis`` -> logits (..., 2, A),
    values (..., 2). (Callers that use one output only: XLA drops the other tower.)"""

    def batch(x):  # (G, *lead, H, W, C) -> (G, B, H, W, C)
        return x.reshape((x.shape[0], -1) + x.shape[-3:])

    x = to_policies(obs_seat, seat_axis, su.shared)
    lead = x.shape[:-3]
    cx = to_policies(critic_input(obs_seat, su.cfg.centralised_value, seat_axis), seat_axis,
                     su.shared)
    logits, values = jax.vmap(su.net.apply)(params, batch(x), batch(cx))
    logits = logits.reshape(lead + logits.shape[-1:])
    return (from_policies(logits, seat_axis, su.shared),
            from_policies(values.reshape(lead), seat_axis, su.shared))


def draw_swap(su: Setup, key: jax.Array) -> jax.Array:
    """(N,) whether seat 0 steers cook 1 in each env (never without `randomise_seats`)."""
    if not su.cfg.randomise_seats:
        return jnp.zeros((su.cfg.num_envs,), bool)
    return jax.random.bernoulli(key, 0.5, (su.cfg.num_envs,))


def training_env_params(su: Setup, env_params: EnvParams) -> EnvParams:
    return env_params.replace(horizon=jnp.asarray(su.cfg.horizon, jnp.int32))


def init_rest(su: Setup, params, key: jax.Array, env_params: EnvParams) -> PPOState:
    """One member's state around its (G, ...) policy parameters."""
    env_params = training_env_params(su, env_params)
    n, g = su.cfg.num_envs, su.num_policies
    k_env, k_swap, k_train = jax.random.split(key, 3)
    opt_state = jax.vmap(su.optimizer.init)(params)
    obs, env_state = jax.vmap(su.env.reset, in_axes=(0, None))(
        jax.random.split(k_env, n), env_params)
    runner = Runner(env_state, obs, draw_swap(su, k_swap), jnp.zeros((n,)), jnp.zeros((n, 2)),
                    jnp.zeros((n, 2, su.env.num_events), jnp.int32), jnp.zeros((n,)))
    value_norm = jax.vmap(lambda _: ValueNorm.create())(jnp.arange(g))
    return PPOState(params, opt_state, value_norm, runner, k_train, jnp.zeros((), jnp.int32))


def policy_params(su: Setup, key: jax.Array):
    """(G, ...) parameters. The G inits are unrolled, not vmapped: on jax 0.10.2 / CPU a
    vmapped flax init with flax's own orthogonal initialisers (batched QR) deadlocked."""
    h, w, c = su.env.obs_shape
    critic_c = 2 * c if su.cfg.centralised_value else c
    params = [su.net.init(k, jnp.zeros((1, h, w, c)), jnp.zeros((1, h, w, critic_c)))
              for k in jax.random.split(key, su.num_policies)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)


def init_member(su: Setup, key: jax.Array, env_params: EnvParams) -> PPOState:
    k_net, k_rest = jax.random.split(key)
    return init_rest(su, policy_params(su, k_net), k_rest, env_params)


def init_members(su: Setup, key: jax.Array, member_params: EnvParams) -> PPOState:
    """Every member's state (leading axis M), member m from ``split(key, M)[m]``."""
    num_members = int(np.shape(member_params.horizon)[0])
    keys = jax.random.split(key, num_members)
    k_net, k_rest = jax.vmap(jax.random.split, out_axes=1)(keys)  # (M, 2) each
    params = [policy_params(su, k_net[m]) for m in range(num_members)]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *params)  # (M, G, ...)
    return jax.vmap(lambda p, k, e: init_rest(su, p, k, e))(params, k_rest, member_params)


def surprise(su: Setup, population, obs_seat: jax.Array, action: jax.Array) -> jax.Array:
    """MEP: -log pi_bar(a|s) (N, 2) of the seats' actions, pi_bar the mean over the
    population's (M, G, ...) policies."""
    probs = jax.vmap(lambda p: jax.nn.softmax(policy_apply(su, p, obs_seat)[0]))(population)
    p_a = jnp.take_along_axis(probs.mean(0), action[..., None], axis=-1)[..., 0]
    return -jnp.log(jnp.maximum(p_a, 1e-8))


def rollout_step(su: Setup, params, population, env_params: EnvParams, partner_params,
                 runner: Runner, key: jax.Array):
    """One step of the N envs through :func:`two_seat_step` -> (runner, (Transition,
    EpisodeStats))."""
    cfg = su.cfg
    k_act, k_env, k_swap = jax.random.split(key, 3)
    cook_of_seat = cooks_of_seats(runner.swap)

    def policy(obs_seat):
        logits, _ = policy_apply(su, params, obs_seat)  # values: after the rollout
        if su.partner is not None:
            logits = logits.at[:, 1].set(su.partner.logits(partner_params, runner, obs_seat))
        action = jax.random.categorical(k_act, logits)  # (N, 2) per seat
        return action, jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None],
                                           axis=-1)[..., 0]

    st = two_seat_step(su.env, env_params, k_env, runner.env_state, runner.obs, cook_of_seat,
                       policy)
    # EnvParams rows are per seat here (the env's own reward is per cook)
    reward = jax.vmap(agent_rewards, in_axes=(0, 0, 0, None, None, None))(
        st.sparse, st.shaped, st.events.astype(jnp.float32), env_params.event_weights,
        env_params.sparse_weight, env_params.shaping_factor)  # (N, 2)
    if population is not None:
        reward = reward + cfg.population_entropy_coef * surprise(su, population, st.obs_seat,
                                                                 st.action)
    ep_sparse = runner.ep_sparse + st.sparse
    ep_reward = runner.ep_reward + reward
    ep_events = runner.ep_events + st.events
    d = st.done.astype(jnp.float32)
    last_return = jnp.where(st.done, ep_sparse, runner.last_return)
    stats = EpisodeStats(d.sum(), (d * ep_sparse).sum(), (d[:, None] * ep_reward).sum(0),
                         (st.done[:, None, None] * ep_events).sum(0), last_return.mean())
    keep = 1.0 - d
    new_runner = runner.replace(
        env_state=st.env_state, obs=st.obs,
        swap=jnp.where(st.done, draw_swap(su, k_swap), runner.swap),
        ep_sparse=ep_sparse * keep, ep_reward=ep_reward * keep[:, None],
        ep_events=jnp.where(st.done[:, None, None], 0, ep_events), last_return=last_return)
    if su.partner is not None:
        new_runner = su.partner.after_step(new_runner, st.done, ep_sparse,
                                           jax.random.fold_in(k_swap, 1))
    trans = Transition(st.obs_seat, st.action, st.aux, reward * cfg.reward_scale, st.done)
    return new_runner, (trans, stats)


def rollout(su: Setup, key: jax.Array, params, runner: Runner, env_params: EnvParams,
            partner_params):
    """T steps of N envs -> (runner, Transition (T, ...), EpisodeStats (T, ...))."""
    # MEP: every member's policies (gathered over the vmapped member axis), fixed during
    # the rollout, for the population-mean policy pi_bar
    population = (jax.lax.all_gather(params, MEMBER_AXIS)
                  if su.cfg.population_entropy_coef > 0 else None)  # (M, G, ...)
    runner, (traj, stats) = jax.lax.scan(
        lambda r, k: rollout_step(su, params, population, env_params, partner_params, r, k),
        runner, jax.random.split(key, su.cfg.num_steps), unroll=su.cfg.scan_unroll)
    return runner, traj, stats


def loss(su: Setup, params, mb: Batch, ent_coef):
    """One policy's loss on a minibatch, and its (policy, value, entropy) terms."""
    cfg = su.cfg
    critic_obs = mb.obs if mb.critic_obs is None else mb.critic_obs
    logits, value = su.net.apply(params, mb.obs, critic_obs)
    pl, vl, ent = ppo_losses(logits, value, mb.action, mb.log_prob, mb.value, mb.advantage,
                             mb.target, cfg.clip_eps, cfg.clip_value,
                             cfg.advantage_norm == "minibatch", cfg.huber_delta)
    return pl + cfg.value_coef * vl - ent_coef * ent, (pl, vl, ent)


def policy_update(su: Setup, params, opt_state, batch: Batch, key, ent_coef):
    """All epochs / minibatches of one policy on its (B, ...) samples."""
    step = optimiser_step(su.optimizer, lambda p, mb: loss(su, p, mb, ent_coef))
    carry, aux = sgd_epochs(key, TrainCarry(params, opt_state), batch, step,
                            su.cfg.update_epochs, su.cfg.num_minibatches)
    return carry.params, carry.opt_state, jax.tree.map(lambda a: a[-1, -1], aux)


def advantages(su: Setup, state: PPOState, traj: Transition, runner: Runner):
    """(raw values, advantages, targets) (T, N, 2) per seat: the whole rollout's values in
    one batched pass (the parameters did not change), denormalised with `value_norm`, GAE."""
    cfg = su.cfg
    _, raw_values = policy_apply(su, state.params, traj.obs, seat_axis=2)  # (T, N, 2)
    _, last_value = policy_apply(su, state.params, by_seat(runner.obs,
                                                           cooks_of_seats(runner.swap)))

    def denormalise(v, seat_axis):
        per_policy = to_policies(v, seat_axis, su.shared)
        return from_policies(jax.vmap(ValueNorm.denormalise)(state.value_norm, per_policy),
                             seat_axis, su.shared)

    if cfg.value_norm:
        values, last_value = denormalise(raw_values, 2), denormalise(last_value, 1)
    else:
        values = raw_values
    dones = jnp.broadcast_to(traj.done[..., None], traj.reward.shape)  # (T, N, 2)
    adv, targets = gae(traj.reward, values, dones, last_value, cfg.gamma, cfg.gae_lambda)
    return raw_values, adv, targets


def policy_batches(su: Setup, value_norm, traj: Transition, raw_values, adv, targets):
    """(value normalisers updated on the targets, per-policy Batch (G, B, ...))."""
    cfg = su.cfg

    def flat(x):  # (T, N, 2, ...) -> (G, B, ...); with a partner: the learner's seat 0
        x = x[:, :, 0][None] if su.partner is not None else to_policies(x, 2, su.shared)
        return x.reshape((x.shape[0], -1) + x.shape[3:])

    tgt = flat(targets)
    if cfg.value_norm:
        value_norm = jax.vmap(lambda vn, t: vn.update(t, cfg.value_norm_beta))(value_norm, tgt)
        tgt = jax.vmap(ValueNorm.normalise)(value_norm, tgt)
    adv = flat(adv)  # (G, B)
    if cfg.advantage_norm == "batch":
        adv = (adv - adv.mean(1, keepdims=True)) / (adv.std(1, keepdims=True) + 1e-8)
    critic_obs = flat(critic_input(traj.obs, True, 2)) if cfg.centralised_value else None
    return value_norm, Batch(flat(traj.obs), critic_obs, flat(traj.action), flat(traj.log_prob),
                             flat(raw_values), adv, tgt)


def one_update(su: Setup, state: PPOState, env_params: EnvParams, partner_params):
    """Rollout, advantages, every policy's epochs: one PPO update of one member."""
    cfg = su.cfg
    key = jax.random.fold_in(state.key, state.update)
    k_roll, k_upd = jax.random.split(key)
    env_steps = state.update * (cfg.num_envs * cfg.num_steps)
    base_shaping = (env_params.shaping_factor if cfg.shaping_factor is None
                    else jnp.asarray(cfg.shaping_factor, jnp.float32))
    shaping = base_shaping * shaping_scale_at(cfg, env_steps)
    env_params = env_params.replace(shaping_factor=shaping)
    ent_coef = entropy_coef_at(cfg, env_steps)

    runner, traj, stats = rollout(su, k_roll, state.params, state.runner, env_params,
                                  partner_params)
    raw_values, adv, targets = advantages(su, state, traj, runner)
    value_norm, batch = policy_batches(su, state.value_norm, traj, raw_values, adv, targets)
    params, opt_state, (pl, vl, ent) = jax.vmap(
        lambda p, o, b, k: policy_update(su, p, o, b, k, ent_coef))(
        state.params, state.opt_state, batch, jax.random.split(k_upd, su.num_policies))
    metrics = UpdateMetrics(
        returned_return=stats.returned.mean(), episodes=stats.episodes.sum(),
        episode_return_sum=stats.return_sum.sum(), episode_reward_sum=stats.reward_sum.sum(0),
        episode_events_sum=stats.events_sum.sum(0), policy_loss=pl, value_loss=vl,
        entropy=ent, entropy_coef=ent_coef, shaping_factor=shaping,
        learning_rate=learning_rate_at(cfg, state.update))
    new_state = PPOState(params, opt_state, value_norm, runner, state.key, state.update + 1)
    return new_state, metrics


def member_chunk(su: Setup, state: PPOState, env_params: EnvParams, partner_params=None):
    """`updates_per_chunk` updates of one member (a lax.scan)."""
    env_params = training_env_params(su, env_params)
    return jax.lax.scan(lambda s, _: one_update(su, s, env_params, partner_params), state,
                        None, length=su.cfg.updates_per_chunk)


def make_train(cfg: PPOConfig, env: Overcooked, member_params: EnvParams,
               partner: FrozenPartner | None = None) -> Trainer:
    """Build the trainer of a population whose EnvParams are stacked on a leading axis M
    (with ``partner``: every member's seat 1 is steered by the frozen partner, or by its own
    one when ``partner.per_member``)."""
    validate(cfg)
    if partner is not None:
        validate_with_partner(cfg)
    if not np.ndim(member_params.horizon):
        raise ConfigError("member_params must have a leading member axis "
                          "(e.g. jax.tree.map(lambda x: x[None], params))")
    num_members = int(np.shape(member_params.horizon)[0])
    net = make_network(cfg.network, cfg.hidden_sizes, cfg.activation, cfg.cnn_filters,
                       env.num_actions)
    su = Setup(cfg, env, net, make_optimizer(cfg), partner)
    init_all = jax.jit(lambda key, mp: init_members(su, key, mp))
    partner_axis = 0 if partner is not None and partner.per_member else None
    chunk_all = jax.jit(jax.vmap(lambda s, e, p: member_chunk(su, s, e, p),
                                 in_axes=(0, 0, partner_axis), axis_name=MEMBER_AXIS))
    partner_params = None if partner is None else partner.params
    return Trainer(init=lambda key: init_all(key, member_params),
                   train_chunk=lambda state: chunk_all(state, member_params, partner_params),
                   init_member=lambda key, env_params: init_member(su, key, env_params),
                   member_chunk=lambda state, env_params, partner_params=None: member_chunk(
                       su, state, env_params, partner_params),
                   network=net, num_members=num_members)


def stack_params(params: list[EnvParams]) -> EnvParams:
    """Stack members' EnvParams on a leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)
