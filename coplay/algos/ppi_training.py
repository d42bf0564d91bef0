"""PPI's model training: fresh parameters per learner, the self-supervised model loss
(:func:`model_loss`), the optimiser, the steps of a phase and its minibatch indices, and the
jitted training steps of a stack of learners (:func:`make_train_steps`)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from coplay.agents.gru import dummy_input
from coplay.agents.ppi_model import predict_sequence
from coplay.algos.ppi_config import PPIConfig, make_model
from coplay.algos.ppi_episodes import Episodes, tokenize
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_steps


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

