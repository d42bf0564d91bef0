"""Supervised training of the Coordination Transformer on best responses' trajectories.

One training step draws ``contexts_per_batch`` contexts (each from one training group: a
partner with its best response in one seat) and ``queries_per_context`` queries for each
(:mod:`coplay.data.context`). Each context is encoded once; its queries attend to it through
the block mask of :meth:`GPT.query` — the paper's one-query-per-example loss at a fraction of
the cost (:func:`per_example_loss` is that reference; the two are equal, tested; the speed-up
is in ``bench/bench_coot.py``). Cross-entropy summed over a query's positions (padding
masked), mean over queries; AdamW with warm-up then cosine decay, global-norm clip.

An *epoch* is ``contexts_per_group`` contexts of every training group, in a shuffled order;
:func:`make_trainer` jits one epoch as a ``lax.scan`` of steps and the validation loss on
held-out groups, so a driver checkpoints, early-stops and draws curves between epochs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from coplay.agents.gpt import GPT, GPTConfig, init_gpt, make_gpt
from coplay.algos.sgd import TrainCarry, optimiser_step
from coplay.config import checker, need_positive_ints
from coplay.data.context import Batch, ContextSpec, Episodes, check_episodes, sample_batch


@dataclasses.dataclass(frozen=True)
class CootConfig:
    """Model, examples and optimiser of a Coordination Transformer run (paper values noted)."""

    gpt: GPTConfig = GPTConfig()
    context: ContextSpec = ContextSpec()
    contexts_per_batch: int = 2
    """Contexts per gradient step; a step sees contexts_per_batch * queries_per_context
    examples (paper: batch 128 examples; 2 * 70 = 140 here)."""
    contexts_per_group: int = 125
    """Contexts of each training group (a pair with its best response in one seat) per
    epoch (paper: 125 per pair, seats pooled)."""
    batch_from_one_group: bool = False
    """Every batch's contexts from one group (the released code: 120 examples of one pair,
    each with its own context: contexts_per_batch 120, context.queries_per_context 1); an
    epoch then has ceil(contexts_per_group / contexts_per_batch) batches per group."""
    epochs: int = 70
    """Epochs at most (paper: 70)."""
    patience: int = 25
    """Early stopping: epochs without a better validation loss (paper: 25)."""
    val_contexts_per_group: int = 4
    """Contexts drawn (once, fixed) from every held-out group for the validation loss."""
    learning_rate: float = 5e-5
    """AdamW peak learning rate (paper: 5e-5)."""
    beta1: float = 0.9
    """AdamW beta1 (paper: 0.9)."""
    beta2: float = 0.95
    """AdamW beta2 (paper: 0.95)."""
    weight_decay: float = 1e-3
    """AdamW weight decay on matrices (not biases, norms, positions; paper: 1e-3)."""
    max_grad_norm: float = 0.25
    """Global gradient-norm clip (paper: 0.25)."""
    warmup_fraction: float = 0.05
    """Linear warm-up over this fraction of the steps (paper: warm-up, length not given)."""
    min_lr_ratio: float = 0.1
    """Cosine decay to this fraction of the peak (paper: decay, shape not given; nanoGPT's)."""
    step_mask_max: float = 0.2
    """Step masking grows linearly from 0 to this probability over training (paper: grows,
    end value not given); with ``context.step_mask_unit = "count"``: see step_mask_count."""
    step_mask_count: tuple[float, float] = (10.0, 70.0)
    """With ``context.step_mask_unit = "count"``: context steps masked per context, grown
    from the first to the second value on a logarithmic curriculum (the released code)."""

    def validate(self) -> CootConfig:
        need = checker(self, "coot")
        need_positive_ints(self, "coot", ("contexts_per_batch", "contexts_per_group", "epochs",
                                          "patience", "val_contexts_per_group"))
        for f in ("learning_rate", "max_grad_norm"):
            need(getattr(self, f) > 0, f, "must be > 0")
        for f in ("beta1", "beta2"):
            need(0.0 <= getattr(self, f) < 1.0, f, "must be in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(0.0 <= self.warmup_fraction < 1.0, "warmup_fraction", "must be in [0, 1)")
        need(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")
        need(0.0 <= self.step_mask_max < 1.0, "step_mask_max", "must be in [0, 1)")
        need(len(self.step_mask_count) == 2 and 0 < self.step_mask_count[0]
             <= self.step_mask_count[1], "step_mask_count", "must be (start, end), "
             "0 < start <= end")
        self.gpt.validate()
        self.context.validate()
        if self.context.sequence_len > self.gpt.max_positions:
            raise ValueError(
                f"a context of {self.context.num_episodes} x {self.context.episode_len} steps "
                f"plus {self.context.query_len} query tokens needs "
                f"{self.context.sequence_len} positions; gpt.max_positions = "
                f"{self.gpt.max_positions}")
        return self


def step_mask_schedule(cfg: CootConfig, progress: jax.Array) -> jax.Array:
    """The step-mask value at training progress in [0, 1]: a probability growing linearly to
    ``step_mask_max``, or (count) a number of steps growing geometrically from
    ``step_mask_count[0]`` to ``[1]``."""
    if cfg.context.step_mask_unit == "count":
        lo, hi = (math.log(x) for x in cfg.step_mask_count)
        return jnp.exp(lo + (hi - lo) * progress)
    return cfg.step_mask_max * progress


# --- losses -----------------------------------------------------------------------------------
def _cross_entropy(logits: jax.Array, label: jax.Array, mask: jax.Array):
    # logits (..., Lq, A), label / mask (..., Lq) -> per query: summed CE (...), last-position hit
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, label)
    hit = (jnp.argmax(logits[..., -1, :], -1) == label[..., -1]).astype(jnp.float32)
    return jnp.sum(jnp.where(mask, ce, 0.0), axis=-1), hit


def shared_context_loss(model: GPT, params, batch: Batch, key: jax.Array | None = None):
    """Mean over the batch's C x Q queries of the summed cross-entropy of their positions;
    each context encoded once. ``key`` = dropout key (None: no dropout). Returns (loss,
    accuracy of the last query position)."""
    det = key is None
    rngs = {} if det else {"dropout": key}
    cache = model.apply(params, batch.context, det, method=GPT.encode, rngs=rngs)
    logits = model.apply(params, cache, batch.query, det, method=GPT.query, rngs=rngs)
    ce, hit = _cross_entropy(logits, batch.label, batch.label_mask)  # (C, Q)
    return ce.mean(), hit.mean()


def per_example_loss(model: GPT, params, batch: Batch):
    """The same loss, one full causal pass over ``concat(context, query)`` per query: the
    reference for :func:`shared_context_loss` (no dropout) and its speed anchor."""
    c, q, lq, d = batch.query.shape
    ctx = jnp.repeat(batch.context, q, axis=0)  # (C * Q, P, Din)
    seq = jnp.concatenate([ctx, batch.query.reshape(c * q, lq, d)], axis=1)
    logits = model.apply(params, seq)[:, -lq:]  # (C * Q, Lq, A)
    ce, hit = _cross_entropy(logits, batch.label.reshape(c * q, lq),
                             batch.label_mask.reshape(c * q, lq))
    return ce.mean(), hit.mean()


# --- optimiser --------------------------------------------------------------------------------
def _decay_mask(params):
    # decay matrices only (nanoGPT): kernels of Dense layers; not biases, norms, positions
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x.ndim >= 2 and getattr(path[-1], "key", "") == "kernel", params)


def make_schedule(cfg: CootConfig, total_steps: int) -> optax.Schedule:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to
    ``min_lr_ratio`` of the peak."""
    warmup = int(cfg.warmup_fraction * total_steps)
    return optax.warmup_cosine_decay_schedule(
        0.0 if warmup else cfg.learning_rate, cfg.learning_rate, warmup,
        max(total_steps, warmup + 1), cfg.learning_rate * cfg.min_lr_ratio)


def make_optimizer(cfg: CootConfig, total_steps: int) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(cfg.max_grad_norm),
        optax.adamw(make_schedule(cfg, total_steps), cfg.beta1, cfg.beta2,
                    weight_decay=cfg.weight_decay, mask=_decay_mask))


# --- the trainer ------------------------------------------------------------------------------
class TrainState(struct.PyTreeNode):
    """Everything a resumed run needs to continue exactly."""

    params: dict
    opt_state: optax.OptState
    key: jax.Array
    epoch: jax.Array  # () int32 epochs done
    best_params: dict  # at the best validation loss so far
    best_val: jax.Array  # () float32
    best_epoch: jax.Array  # () int32 (0 = none yet)


class EpochMetrics(NamedTuple):
    train_loss: jax.Array  # () mean over the epoch's steps
    train_accuracy: jax.Array
    val_loss: jax.Array
    val_accuracy: jax.Array
    step_mask: jax.Array  # () the probability in use at the epoch's end
    learning_rate: jax.Array


class Trainer(NamedTuple):
    """What :func:`make_trainer` builds: ``init(key, params=None) -> state`` (``params``: start
    from these instead of a fresh initialisation); ``epoch(state, data) -> (state,
    EpochMetrics)`` (jitted; updates best_* on a better validation loss)."""

    config: CootConfig
    model: GPT
    init: callable
    epoch: callable
    steps_per_epoch: int
    input_dim: int


def batch_groups(cfg: CootConfig, key: jax.Array, train_groups: jax.Array) -> jax.Array:
    """The group of every context of an epoch, (steps, contexts_per_batch): each group
    ``contexts_per_group`` times, shuffled (the last batch wraps around), or with
    ``batch_from_one_group`` whole batches of one group, the batches shuffled."""
    c, n = cfg.contexts_per_batch, int(train_groups.shape[0])
    if cfg.batch_from_one_group:
        per_group = -(-cfg.contexts_per_group // c)
        order = jax.random.permutation(key, jnp.repeat(train_groups, per_group))
        return jnp.broadcast_to(order[:, None], (n * per_group, c))
    steps = -(-n * cfg.contexts_per_group // c)
    order = jax.random.permutation(key, jnp.repeat(train_groups, cfg.contexts_per_group))
    return jnp.resize(order, (steps * c,)).reshape(steps, c)


def make_trainer(cfg: CootConfig, train_groups: jax.Array, val_groups: jax.Array,
                 obs_dim: int) -> Trainer:
    """A trainer over groups ``train_groups`` / ``val_groups`` (int arrays of group indices
    into the :class:`Episodes` passed to ``epoch``) for observations of ``obs_dim`` values."""
    cfg.validate()
    train_groups = jnp.asarray(train_groups, jnp.int32)
    val_groups = jnp.asarray(val_groups, jnp.int32)
    if train_groups.size == 0 or val_groups.size == 0:
        raise ValueError(f"{train_groups.size} training and {val_groups.size} validation "
                         "groups: both need at least one")
    model = make_gpt(cfg.gpt)
    input_dim = obs_dim + cfg.gpt.num_actions + 1
    steps = batch_groups(cfg, jax.random.PRNGKey(0), train_groups).shape[0]
    total_steps = steps * cfg.epochs
    optimizer = make_optimizer(cfg, total_steps)
    schedule_lr = make_schedule(cfg, total_steps)  # for the metrics

    def init(key: jax.Array, params: dict | None = None) -> TrainState:
        # params: start from these (fine-tuning) instead of a fresh initialisation
        k_init, k_run = jax.random.split(key)
        if params is None:
            params = init_gpt(cfg.gpt, k_init, input_dim)
        return TrainState(params, optimizer.init(params), k_run, jnp.int32(0), params,
                          jnp.float32(jnp.inf), jnp.int32(0))

    def val_loss(params, data: Episodes):
        n = int(val_groups.size) * cfg.val_contexts_per_group
        groups = jnp.repeat(val_groups, cfg.val_contexts_per_group)
        # a fixed draw (the same every epoch) without augmentation beyond the spec's masks
        keys = jax.random.split(jax.random.PRNGKey(12345), n)

        def one(_, xs):
            g, k = xs
            batch = sample_batch(k, data, g[None], cfg.context, 0.0)
            return None, shared_context_loss(model, params, batch)

        _, (loss, acc) = jax.lax.scan(one, None, (groups, keys))
        return loss.mean(), acc.mean()

    def epoch(state: TrainState, data: Episodes) -> tuple[TrainState, EpochMetrics]:
        check_episodes(data, cfg.context)
        k_perm, k_steps, k_next = jax.random.split(state.key, 3)
        order = batch_groups(cfg, k_perm, train_groups)
        first = state.epoch * steps

        def loss_fn(params, xs):
            groups, key, step_mask = xs
            k_batch, k_drop = jax.random.split(key)
            batch = sample_batch(k_batch, data, groups, cfg.context, step_mask)
            return shared_context_loss(model, params, batch, k_drop)

        update = optimiser_step(optimizer, lambda p, xs: _with_aux(loss_fn, p, xs))
        progress = (first + jnp.arange(steps)) / max(total_steps - 1, 1)
        step_mask = step_mask_schedule(cfg, progress)
        carry, (loss, acc) = jax.lax.scan(
            update, TrainCarry(state.params, state.opt_state),
            (order, jax.random.split(k_steps, steps), step_mask))
        v_loss, v_acc = val_loss(carry.params, data)
        better = v_loss < state.best_val
        epoch_no = state.epoch + 1
        new = TrainState(
            carry.params, carry.opt_state, k_next, epoch_no,
            jax.tree.map(lambda b, p: jnp.where(better, p, b), state.best_params, carry.params),
            jnp.where(better, v_loss, state.best_val),
            jnp.where(better, epoch_no, state.best_epoch))
        return new, EpochMetrics(loss.mean(), acc.mean(), v_loss, v_acc, step_mask[-1],
                                 schedule_lr(first + steps - 1))

    return Trainer(cfg, model, init, jax.jit(epoch), steps, input_dim)


def _with_aux(loss_fn, params, xs):
    loss, acc = loss_fn(params, xs)
    return loss, (loss, acc)
