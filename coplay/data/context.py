"""Context / query examples of the Coordination Transformer, drawn from recorded episodes.

The data are the episodes of every training *group* — one (partner, best response) pair with
the best response in one seat — as arrays of equal shape per group (:class:`Episodes`). One
training example (spec §3):

- a **context**: ``k`` episodes of the group drawn with replacement, oldest -> newest, each a
  fixed slot of ``H`` steps; tokens ``(obs, own action, sparse reward)`` of the ego (the best
  response);
- **queries**: from another episode of the same group (never a context-only one, see
  ``Episodes.query_ok``), the ``Lq`` latest states up to a random step ``t`` (zero-padded
  in front when ``t < Lq - 1``), with action and reward zero;
- **labels**: the best response's actions at those states (padding masked out).

Augmentations (the paper's): *rollout masking* zeros the first m context slots, p(m) ∝
(m + 1)^-1.5 for m = 0..k (m = k is the empty context a deployed model starts from); *step
masking* zeros action and reward of context steps with probability ``step_mask`` (the trainer
grows it over training); *shuffling* permutes steps (``"step"``) or chunks of ``chunk_len``
steps (``"chunk"``) within each context slot, or nothing (``"none"``, the paper's main runs).

Everything is a pure function of a key, jittable, with static shapes.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.gpt import query_indices, query_tokens, token_inputs
from coplay.config import checker, need_positive_ints

SHUFFLES = ("none", "step", "chunk")
STEP_MASK_UNITS = ("probability", "count")


class Episodes(NamedTuple):
    """Recorded episodes of G groups, E episodes each, T steps (leading axes (G, E, T))."""

    obs: jax.Array  # (G, E, T, D) uint8 ego observation, flattened
    action: jax.Array  # (G, E, T) int ego action
    reward: jax.Array  # (G, E, T) float sparse team reward of the step
    query_ok: jax.Array | None = None  # (G, E) bool: False = a context-only episode (None: all)
    label: jax.Array | None = None  # (G, E, T) int the best response's action at each state,
    # where the ego of the episode was another agent (relabelled rollouts); None: = action


class Batch(NamedTuple):
    """C contexts, each with Q query groups of Lq tokens."""

    context: jax.Array  # (C, k * H, Din) token inputs
    query: jax.Array  # (C, Q, Lq, Din)
    label: jax.Array  # (C, Q, Lq) int32 best-response actions
    label_mask: jax.Array  # (C, Q, Lq) bool, False at front padding


@dataclasses.dataclass(frozen=True)
class ContextSpec:
    """How contexts and queries are cut from the episodes."""

    num_episodes: int = 5
    """k: episodes in a context (paper: 5)."""
    episode_len: int = 200
    """H: steps per context slot (paper: 200, the CooT episode length)."""
    query_len: int = 6
    """Lq: latest states of the current episode in a query (paper: 6)."""
    queries_per_context: int = 70
    """Q: queries drawn for each context (paper: 70)."""
    rollout_mask: bool = True
    """Zero the first m context slots, p(m) ∝ (m + 1)^-power, m = 0..k (paper: on)."""
    rollout_mask_power: float = 1.5
    """The exponent of rollout masking (paper: 1.5)."""
    shuffle: str = "none"
    """Shuffle within context slots: none (paper's main runs), step, or chunk."""
    chunk_len: int = 20
    """Steps per chunk of chunk-wise shuffling (paper: 20)."""
    shuffle_keep_first: bool = False
    """Chunk-wise shuffling leaves each slot's first chunk in place (the released code)."""
    step_mask_unit: str = "probability"
    """What the trainer's step-mask value is: a probability per context step (this
    library's reading of the paper), or a count of context steps masked per context (the
    released code: 10 -> 70, on a logarithmic curriculum)."""

    @property
    def context_len(self) -> int:
        return self.num_episodes * self.episode_len

    @property
    def sequence_len(self) -> int:
        """Positions the model needs: k * H + Lq."""
        return self.context_len + self.query_len

    def validate(self) -> ContextSpec:
        need = checker(self, "context")
        need_positive_ints(self, "context", ("num_episodes", "episode_len", "query_len",
                                             "queries_per_context", "chunk_len"))
        need(self.shuffle in SHUFFLES, "shuffle", f"choose one of {SHUFFLES}")
        need(self.shuffle != "chunk" or self.episode_len % self.chunk_len == 0, "chunk_len",
             f"must divide episode_len = {self.episode_len} for chunk-wise shuffling")
        need(self.rollout_mask_power >= 0, "rollout_mask_power", "must be >= 0")
        need(self.step_mask_unit in STEP_MASK_UNITS, "step_mask_unit",
             f"choose one of {STEP_MASK_UNITS}")
        return self


def check_episodes(data: Episodes, spec: ContextSpec) -> None:
    """Shapes the sampler needs, with errors naming what is wrong."""
    g, e, t, _ = data.obs.shape
    if data.action.shape != (g, e, t) or data.reward.shape != (g, e, t):
        raise ValueError(f"episodes: obs {data.obs.shape}, action {data.action.shape} and "
                         f"reward {data.reward.shape} disagree on (groups, episodes, steps)")
    if t != spec.episode_len:
        raise ValueError(f"episodes have {t} steps but context.episode_len = "
                         f"{spec.episode_len}; collect with the same episode length")
    if e < 2:
        raise ValueError(f"{e} episode per group: a query needs an episode besides the context")
    if data.query_ok is not None:
        if data.query_ok.shape != (g, e):
            raise ValueError(f"episodes: query_ok {data.query_ok.shape}, expected {(g, e)}")
    if data.label is not None and data.label.shape != (g, e, t):
        raise ValueError(f"episodes: label {data.label.shape}, expected {(g, e, t)}")


def rollout_mask_probs(k: int, power: float) -> jax.Array:
    """p(m) for m = 0..k zeroed context slots: (k + 1,)."""
    w = (jnp.arange(k + 1) + 1.0) ** -power
    return w / w.sum()


def _slot_order(key: jax.Array, spec: ContextSpec, shape: tuple[int, ...]) -> jax.Array:
    """Step indices (..., H) of each slot after shuffling."""
    h = spec.episode_len
    if spec.shuffle == "none":
        return jnp.broadcast_to(jnp.arange(h), shape + (h,))
    if spec.shuffle == "step":
        return jnp.argsort(jax.random.uniform(key, shape + (h,)), axis=-1)
    n = h // spec.chunk_len
    if spec.shuffle_keep_first:  # chunk 0 stays first, the others are shuffled behind it
        rest = 1 + jnp.argsort(jax.random.uniform(key, shape + (n - 1,)), axis=-1)
        chunks = jnp.concatenate([jnp.zeros(shape + (1,), rest.dtype), rest], axis=-1)
    else:
        chunks = jnp.argsort(jax.random.uniform(key, shape + (n,)), axis=-1)  # (..., n)
    steps = chunks[..., :, None] * spec.chunk_len + jnp.arange(spec.chunk_len)
    return steps.reshape(shape + (h,))


def sample_context(key: jax.Array, data: Episodes, group: jax.Array, spec: ContextSpec,
                   step_mask: jax.Array | float = 0.0) -> tuple[jax.Array, jax.Array]:
    """Contexts for groups (C,): (token inputs (C, k * H, Din), the episodes drawn (C, k))."""
    k_ep, k_mask, k_step, k_shuf = jax.random.split(key, 4)
    c, k, h = group.shape[0], spec.num_episodes, spec.episode_len
    e = data.obs.shape[1]
    episodes = jax.random.randint(k_ep, (c, k), 0, e)  # with replacement
    steps = _slot_order(k_shuf, spec, (c, k))  # (C, k, H)
    g_ix, e_ix = group[:, None, None], episodes[:, :, None]
    obs = data.obs[g_ix, e_ix, steps]  # (C, k, H, D)
    action = data.action[g_ix, e_ix, steps].astype(jnp.int32)
    reward = data.reward[g_ix, e_ix, steps]
    if spec.rollout_mask:
        m = jax.random.choice(k_mask, k + 1, (c,), p=rollout_mask_probs(k, spec.rollout_mask_power))
        keep_slot = jnp.arange(k)[None, :] >= m[:, None]  # (C, k)
    else:
        keep_slot = jnp.ones((c, k), bool)
    u = jax.random.uniform(k_step, (c, k, h))
    if spec.step_mask_unit == "count":  # exactly round(step_mask) steps of each context
        rank = jnp.argsort(jnp.argsort(u.reshape(c, k * h), axis=-1), axis=-1)
        keep_step = (rank >= jnp.round(step_mask)).reshape(c, k, h)
    else:
        keep_step = u >= step_mask  # (C, k, H)
    obs = jnp.where(keep_slot[..., None, None], obs, 0)
    act_ok = keep_slot[..., None] & keep_step
    action = jnp.where(act_ok, action, -1)
    reward = jnp.where(act_ok, reward, 0.0)
    tokens = token_inputs(obs, action, reward)  # (C, k, H, Din)
    return tokens.reshape(c, k * h, -1), episodes


def sample_batch(key: jax.Array, data: Episodes, group: jax.Array, spec: ContextSpec,
                 step_mask: jax.Array | float = 0.0) -> Batch:
    """One batch: a context per entry of ``group`` (C,) and ``spec.queries_per_context``
    queries for each, from episodes of the same group that are not in its context."""
    k_ctx, k_qep, k_t = jax.random.split(key, 3)
    context, episodes = sample_context(k_ctx, data, group, spec, step_mask)
    c, q = group.shape[0], spec.queries_per_context
    _, e, t_len, _ = data.obs.shape
    # another episode than the context's (when the group has enough of them), never a
    # context-only one
    ok = (jnp.ones((c, e), bool) if data.query_ok is None else data.query_ok[group])  # (C, E)
    bad = (episodes[:, :, None] == jnp.arange(e)).any(axis=1) | ~ok  # (C, E)
    bad = jnp.where(bad.all(axis=1, keepdims=True), ~ok, bad)
    logits = jnp.where(bad, -jnp.inf, 0.0)
    q_ep = jax.random.categorical(k_qep, logits[:, None, :], shape=(c, q))  # (C, Q)
    t = jax.random.randint(k_t, (c, q), 0, t_len)
    steps, valid = query_indices(t, spec.query_len)  # (C, Q, Lq)
    g_ix, e_ix = group[:, None, None], q_ep[:, :, None]
    tokens = query_tokens(data.obs[g_ix, e_ix, steps], valid)  # (C, Q, Lq, Din)
    labels = data.action if data.label is None else data.label
    label = labels[g_ix, e_ix, steps].astype(jnp.int32)
    return Batch(context, tokens, label, valid)
