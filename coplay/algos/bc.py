"""Behaviour cloning: the state-only baseline of the Coordination Transformer paper (spec §4).

BC is trained on the CooT dataset (spec §3) without any context: it maps the ego (best-response)
cook's observation (H, W, C) to the best response's action (6 classes) by cross-entropy. The
paper also trains it on the top-10 / 25 / 50 % of each pair's episodes by return
(``top_fraction``). It does not say what network BC uses; the defaults here are our choice.

Data reach this module per episode, the caller's groups (one (pair, seat) of the dataset each)
concatenated: :class:`Episodes` ``obs`` (E, T, H, W, C) uint8, ``action`` (E, T) int, ``ret``
(E,) float, ``group`` (E,) int. Validation is on held-out *groups* the caller passes in.

    params, history = train_bc(cfg, train, val)              # key defaults to cfg.seed
    agent = bc_agent(cfg, params)                             # an Agent like any other

Training is one jitted epoch (a ``lax.scan`` over shuffled minibatches, through
:mod:`coplay.algos.sgd`) driven by a short Python loop that evaluates the validation loss after
every epoch, stops after ``patience`` epochs without improvement and keeps the best params.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from coplay.agents.actor_critic import Torso, orthogonal
from coplay.agents.base import Agent
from coplay.algos.losses import action_log_probs
from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_steps
from coplay.config import ConfigError, checker, is_int, need_positive_ints

__all__ = ["BCConfig", "ConfigError", "validate", "Episodes", "BCModel",
           "make_model", "top_fraction_mask", "flatten_steps", "select_steps", "init_params",
           "make_optimizer", "make_epoch", "make_evaluate", "fit", "train_bc", "bc_agent",
           "NUM_ACTIONS"]

NUM_ACTIONS = 6  # Overcooked's N, S, E, W, STAY, INTERACT


@dataclasses.dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning of the best response. The CooT paper gives no architecture or
    optimiser for BC: the defaults are ours (a 256-256 ReLU MLP, AdamW 1e-3), chosen as the
    usual size of a state-only Overcooked BC policy; ``network="cnn"`` gives ZSC-Eval's
    encoder instead."""

    network: Literal["mlp", "cnn"] = "mlp"
    """Torso: mlp (the observation flattened, then dense layers) or cnn (ZSC-Eval's
    32-64-32 3x3 convolutions, then the dense layers)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Dense layers of the torso (after the convolutions for cnn). Not given by the paper."""
    cnn_filters: tuple[int, ...] = (32, 64, 32)
    """Convolution filters of the cnn torso (3x3, stride 1, SAME); unused by mlp."""
    activation: Literal["tanh", "relu"] = "relu"
    """Activation of the dense layers."""
    learning_rate: float = 1e-3
    """AdamW learning rate (constant)."""
    weight_decay: float = 1e-4
    """AdamW decoupled weight decay."""
    batch_size: int = 256
    """Steps per minibatch (the whole set when it has fewer); each epoch drops the remainder
    of a fresh permutation."""
    epochs: int = 100
    """Most passes over the training steps."""
    max_grad_norm: float | None = 1.0
    """Global gradient-norm clip; None: no clip."""
    patience: int | None = 10
    """Stop after this many epochs without a lower validation loss (and return the best
    epoch's params); None: run all epochs. Without validation data it is not used."""
    top_fraction: float = 1.0
    """Per group, train (and validate) on the ceil(fraction x E_g) episodes of highest return:
    1.0 = all; the paper's subsets are 0.1, 0.25, 0.5."""
    eval_batch_size: int = 1024
    """Steps per chunk when computing the validation loss (memory only, not the result)."""
    seed: int = 0
    """Seed of the key when :func:`train_bc` is given none."""




def validate(cfg: BCConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field."""
    need = checker(cfg, "bc")
    need(cfg.network in ("mlp", "cnn"), "network", "choose mlp or cnn")
    need(cfg.activation in ("tanh", "relu"), "activation", "choose tanh or relu")
    need(len(cfg.hidden_sizes) >= 1 and all(is_int(x) and x >= 1 for x in cfg.hidden_sizes),
         "hidden_sizes", "needs at least one layer, all sizes integers >= 1")
    need(len(cfg.cnn_filters) >= 1 and all(is_int(x) and x >= 1 for x in cfg.cnn_filters),
         "cnn_filters", "needs at least one layer, all sizes integers >= 1")
    need(cfg.learning_rate > 0, "learning_rate", "must be > 0")
    need(cfg.weight_decay >= 0, "weight_decay", "must be >= 0")
    need_positive_ints(cfg, "bc", ("batch_size", "epochs", "eval_batch_size"))
    need(cfg.max_grad_norm is None or cfg.max_grad_norm > 0, "max_grad_norm",
         "must be > 0 or None")
    need(cfg.patience is None or (is_int(cfg.patience) and cfg.patience >= 1), "patience",
         "must be an integer >= 1 or None")
    need(0.0 < cfg.top_fraction <= 1.0, "top_fraction", "must be in (0, 1]")
    need(is_int(cfg.seed), "seed", "must be an integer")


# --- data ---------------------------------------------------------------------------------------
class Episodes(NamedTuple):
    """Episodes of the dataset, groups concatenated (NumPy arrays)."""

    obs: np.ndarray  # (E, T, H, W, C) uint8: the ego (BR) cook's observation
    action: np.ndarray  # (E, T) int: the BR's action
    ret: np.ndarray  # (E,) float: the episode's sparse return
    group: np.ndarray  # (E,) int: the (pair, seat) group of the episode


def top_fraction_mask(ret: np.ndarray, group: np.ndarray, fraction: float) -> np.ndarray:
    """(E,) bool: per group the ceil(fraction x E_g) episodes with the highest return (at
    least one), ties broken by the lower index."""
    ret, group = np.asarray(ret), np.asarray(group)
    if ret.shape != group.shape or ret.ndim != 1:
        raise ValueError(f"ret {ret.shape} and group {group.shape} must both be (E,)")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction = {fraction!r}: must be in (0, 1]")
    index = np.arange(len(ret))
    order = np.lexsort((index, -ret, group))  # by group, then return descending, then index
    keep = np.zeros(len(ret), bool)
    for g in np.unique(group):
        rows = order[group[order] == g]  # the group's episodes, best first
        # the 1e-9 keeps float noise (0.3 x 10 = 3.0000000000000004) from adding an episode
        n = max(1, math.ceil(fraction * len(rows) - 1e-9))
        keep[rows[:n]] = True
    return keep


def flatten_steps(obs: np.ndarray, action: np.ndarray,
                  keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Episodes (E, T, H, W, C) and actions (E, T) -> steps (N, H, W, C) uint8 (cast to
    float32 by the model) and labels (N,) int32, N = T x (kept episodes); ``keep`` (E,)
    bool selects episodes. The observation keeps its grid shape, so the cnn torso can use
    it (the mlp flattens it itself)."""
    obs, action = np.asarray(obs), np.asarray(action)
    if obs.shape[:2] != action.shape:
        raise ValueError(f"obs {obs.shape} and action {action.shape} disagree on (E, T)")
    if keep is not None:
        obs, action = obs[np.asarray(keep, bool)], action[np.asarray(keep, bool)]
    return (obs.reshape((-1,) + obs.shape[2:]).astype(np.uint8),
            action.reshape(-1).astype(np.int32))


def select_steps(episodes: Episodes, top_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The steps (N, H, W, C) and labels (N,) of each group's top ``top_fraction`` episodes."""
    keep = top_fraction_mask(episodes.ret, episodes.group, top_fraction)
    return flatten_steps(episodes.obs, episodes.action, keep)


# --- model --------------------------------------------------------------------------------------
class BCModel(nn.Module):
    """(B, H, W, C) observations (any dtype) -> (B, 6) action logits: a Torso and Dense(6)."""

    conv_filters: Sequence[int] = ()
    """() = MLP; (32, 64, 32) = ZSC-Eval's CNN."""
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    num_actions: int = NUM_ACTIONS

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32)  # entries are small counts: no scaling
        x = Torso(tuple(self.conv_filters), tuple(self.hidden_sizes), self.activation,
                  name="torso")(x)  # (B, F)
        return nn.Dense(self.num_actions, kernel_init=orthogonal(0.01), name="head")(x)


def make_model(cfg: BCConfig) -> BCModel:
    filters = tuple(cfg.cnn_filters) if cfg.network == "cnn" else ()
    return BCModel(filters, tuple(cfg.hidden_sizes), cfg.activation)


def init_params(key: jax.Array, model: BCModel, obs_shape: tuple[int, ...]):
    """Parameters for observations of shape (H, W, C)."""
    return model.init(key, jnp.zeros((1,) + tuple(obs_shape), jnp.float32))


def make_optimizer(cfg: BCConfig) -> optax.GradientTransformation:
    adamw = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)
    if cfg.max_grad_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), adamw)


def _loss_fn(model: BCModel) -> Callable:
    def loss(params, minibatch):
        x, y = minibatch  # (B, H, W, C), (B,)
        logits = model.apply(params, x)  # (B, A)
        _, log_prob = action_log_probs(logits, y)
        accuracy = (jnp.argmax(logits, -1) == y).mean()
        return -log_prob.mean(), (-log_prob.mean(), accuracy)

    return loss


# --- training -----------------------------------------------------------------------------------
def make_epoch(model: BCModel, optimizer: optax.GradientTransformation,
               batch_size: int) -> Callable:
    """Jitted ``epoch(carry, key, x (N, H, W, C), y (N,)) -> (carry, (loss (S,), accuracy
    (S,)))``: S = N // B minibatches of B = min(batch_size, N) steps of a fresh permutation
    (the remainder dropped), one AdamW step each."""
    update = optimiser_step(optimizer, _loss_fn(model))

    @jax.jit
    def epoch(carry: TrainCarry, key: jax.Array, x: jax.Array, y: jax.Array):
        n = x.shape[0]
        b = min(batch_size, n)
        s = n // b
        idx = jax.random.permutation(key, n)[: s * b].reshape(s, b)  # (S, B)
        return sgd_steps(carry, (x, y), idx, update)

    return epoch


def make_evaluate(model: BCModel, batch_size: int) -> Callable:
    """Jitted ``evaluate(params, x (N, H, W, C), y (N,)) -> (mean loss, accuracy)`` over all
    N steps, in chunks of ``batch_size`` (padding masked out)."""

    @jax.jit
    def evaluate(params, x: jax.Array, y: jax.Array):
        n = x.shape[0]
        b = min(batch_size, n)
        chunks = -(-n // b)
        pad = chunks * b - n
        xs = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape((chunks, b) + x.shape[1:])
        ys = jnp.pad(y, (0, pad)).reshape(chunks, b)
        ws = (jnp.arange(chunks * b) < n).reshape(chunks, b).astype(jnp.float32)

        def chunk(total, batch):
            xb, yb, wb = batch
            logits = model.apply(params, xb)  # (b, A)
            _, log_prob = action_log_probs(logits, yb)
            correct = (jnp.argmax(logits, -1) == yb).astype(jnp.float32)
            return (total[0] - (log_prob * wb).sum(), total[1] + (correct * wb).sum()), None

        (loss, correct), _ = jax.lax.scan(chunk, (jnp.zeros(()), jnp.zeros(())), (xs, ys, ws))
        return loss / n, correct / n

    return evaluate


def fit(key: jax.Array, cfg: BCConfig, x: np.ndarray, y: np.ndarray,
        val_x: np.ndarray | None = None, val_y: np.ndarray | None = None,
        log: Callable[[dict], None] | None = None) -> tuple[Any, list[dict]]:
    """Train on steps ``x`` (N, H, W, C) / labels ``y`` (N,), early-stopping on the
    validation steps if given. Returns (params, history): the params of the epoch with the
    lowest validation loss (the last epoch's without validation data) and one dict per epoch
    run — ``epoch`` (1-based), ``train_loss`` / ``train_accuracy`` (means over the epoch's
    minibatches), ``val_loss`` / ``val_accuracy`` (None without validation data).
    ``log(entry)`` is called after every epoch (outside jit). A pure function of ``key``."""
    validate(cfg)
    if len(x) == 0:
        raise ValueError("no training steps (empty dataset after top_fraction?)")
    if (val_x is None) != (val_y is None):
        raise ValueError("pass both val_x and val_y, or neither")
    has_val = val_x is not None and len(val_x) > 0
    model, optimizer = make_model(cfg), make_optimizer(cfg)
    init_key, shuffle_key = jax.random.split(key)
    params = init_params(init_key, model, x.shape[1:])
    carry = TrainCarry(params, optimizer.init(params))
    epoch_fn = make_epoch(model, optimizer, cfg.batch_size)
    evaluate = make_evaluate(model, cfg.eval_batch_size)
    x, y = jnp.asarray(x, jnp.uint8), jnp.asarray(y, jnp.int32)
    if has_val:
        val_x, val_y = jnp.asarray(val_x, jnp.uint8), jnp.asarray(val_y, jnp.int32)

    history: list[dict] = []
    best_params, best_loss, since_best = carry.params, math.inf, 0
    for e in range(cfg.epochs):
        carry, (loss, acc) = epoch_fn(carry, jax.random.fold_in(shuffle_key, e), x, y)
        entry = {"epoch": e + 1, "train_loss": float(loss.mean()),
                 "train_accuracy": float(acc.mean()), "val_loss": None, "val_accuracy": None}
        if has_val:
            vl, va = evaluate(carry.params, val_x, val_y)
            entry["val_loss"], entry["val_accuracy"] = float(vl), float(va)
        history.append(entry)
        if log is not None:
            log(entry)
        if not has_val:
            best_params = carry.params
            continue
        if entry["val_loss"] < best_loss:
            best_params, best_loss, since_best = carry.params, entry["val_loss"], 0
        else:
            since_best += 1
            if cfg.patience is not None and since_best >= cfg.patience:
                break
    return best_params, history


def train_bc(cfg: BCConfig, train: Episodes, val: Episodes | None = None,
             key: jax.Array | None = None,
             log: Callable[[dict], None] | None = None) -> tuple[Any, list[dict]]:
    """BC on the training groups' episodes (each group's top ``cfg.top_fraction`` by return),
    early-stopped on the validation groups' (the same per-group selection). ``key`` defaults
    to ``PRNGKey(cfg.seed)``. Returns (params, history) as :func:`fit`."""
    validate(cfg)
    key = jax.random.PRNGKey(cfg.seed) if key is None else key
    x, y = select_steps(train, cfg.top_fraction)
    val_x = val_y = None
    if val is not None:
        val_x, val_y = select_steps(val, cfg.top_fraction)
    return fit(key, cfg, x, y, val_x, val_y, log)


# --- agent --------------------------------------------------------------------------------------
def _bc_policy(model: BCModel, params, key, state, obs):
    del key
    logits = model.apply(params, jnp.asarray(obs)[None])  # (1, A)
    return logits[0], state


def bc_agent(config_or_module: BCConfig | BCModel, params, name: str = "bc") -> Agent:
    """A trained BC policy as an :class:`~coplay.agents.base.Agent` (kind "overcooked": acts
    on its cook's (H, W, C) observation; no state)."""
    if isinstance(config_or_module, BCConfig):
        validate(config_or_module)
        model = make_model(config_or_module)
    elif isinstance(config_or_module, BCModel):
        model = config_or_module
    else:
        raise TypeError(f"bc_agent needs a BCConfig or a BCModel, got "
                        f"{type(config_or_module).__name__}")
    return Agent(params, _bc_policy, name, "overcooked", model.num_actions, model)
