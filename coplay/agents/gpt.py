"""The Coordination Transformer's network: a small causal GPT in the nanoGPT manner, over
trajectory tokens, with the context's keys and values cached for deployment.

A *token* is one timestep of the ego cook: ``concat(flattened observation, one-hot own action,
sparse reward)`` (:func:`token_inputs`), embedded by one Dense layer plus a learned position
embedding. The sequence the model reads is ``[context (P tokens) | query (Lq tokens)]``: the
context is the k previous episodes (fixed slots of H steps, oldest first, zero-padded) and the
query the latest ``Lq`` states of the current episode (action and reward zero). Causal
attention throughout.

The context is the same for many queries — all the training queries drawn for one context,
and every step of a deployed episode — so the model is split at that boundary:

    cache = model.apply(p, ctx, method=GPT.encode)          # (P tokens) -> per-layer K, V
    logits = model.apply(p, cache, q, method=GPT.query)     # (G groups of Lq tokens) -> (.., A)

``query`` lets each of G query groups attend to the whole cached context and causally to its
own tokens, never to another group: the block mask ``[context | q_1 | q_2 | ...]`` in which
group j sees the context and itself. ``model.apply(p, tokens)`` is the plain causal forward
pass of one sequence; ``query(encode(ctx), q)`` equals it on ``concat(ctx, q)`` (tested).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coplay.config import ConfigError, checker, need_positive_ints


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """Architecture of the Coordination Transformer (CooT paper: 4 layers, 2 heads, 128)."""

    num_layers: int = 4
    """Transformer blocks."""
    num_heads: int = 2
    """Attention heads per block (width must divide by it)."""
    width: int = 128
    """Embedding width of every token."""
    dropout: float = 0.3
    """Dropout on residual branches and embeddings, and on attention weights unless
    attn_dropout is set (paper: 0.3)."""
    attn_dropout: float | None = None
    """Dropout on attention weights; None: ``dropout`` (the paper gives one rate). The
    released code: 0.21 beside 0.3 elsewhere (preset ``release``)."""
    obs_scale: float = 1.0
    """Factor on the observation part of every token before the embedding (1: the counts as
    they are; the released code divides observations by 255)."""
    max_positions: int = 1006
    """Learned positions: k * H context tokens + the query's length (paper: 5 * 200 + 6)."""
    num_actions: int = 6
    """Logits of the head (Overcooked: 6 actions)."""

    def validate(self) -> GPTConfig:
        need = checker(self, "gpt")
        need_positive_ints(self, "gpt", ("num_layers", "num_heads", "width", "max_positions",
                                         "num_actions"))
        need(self.width % self.num_heads == 0, "width",
             f"must be divisible by num_heads = {self.num_heads}")
        need(isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0, "dropout",
             "must be in [0, 1)")
        need(self.attn_dropout is None or (isinstance(self.attn_dropout, (int, float))
                                           and 0.0 <= self.attn_dropout < 1.0),
             "attn_dropout", "must be None or in [0, 1)")
        need(isinstance(self.obs_scale, (int, float)) and self.obs_scale > 0, "obs_scale",
             "must be > 0")
        return self

    @property
    def attention_dropout(self) -> float:
        return self.dropout if self.attn_dropout is None else self.attn_dropout


def token_inputs(obs: jax.Array, action: jax.Array, reward: jax.Array,
                 num_actions: int = 6) -> jax.Array:
    """One token's input vector per timestep: obs (..., D) or (..., H, W, C), action (...) int
    (a negative action = none: zero one-hot), reward (...) -> (..., D + num_actions + 1)."""
    lead = action.shape
    obs = jnp.reshape(obs, lead + (-1,)).astype(jnp.float32)
    onehot = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)  # -1 -> all zeros
    return jnp.concatenate([obs, onehot, reward.astype(jnp.float32)[..., None]], axis=-1)


def query_indices(t: jax.Array, query_len: int) -> tuple[jax.Array, jax.Array]:
    """Steps of the ``query_len`` latest states up to step ``t`` (...): (steps (..., Lq)
    clipped to >= 0, valid (..., Lq) False where the window reaches before step 0)."""
    idx = t[..., None] - (query_len - 1) + jnp.arange(query_len)
    return jnp.clip(idx, 0), idx >= 0


def query_tokens(obs: jax.Array, valid: jax.Array) -> jax.Array:
    """Query token inputs from states obs (..., Lq, D): action and reward zero, invalid
    (front-padding) positions all zero -> (..., Lq, Din)."""
    obs = jnp.where(valid[..., None], obs, 0)
    return token_inputs(obs, jnp.full(valid.shape, -1), jnp.zeros(valid.shape))


class LayerKV(NamedTuple):
    """One block's cached keys and values of the context."""

    k: jax.Array  # (B, nh, P, hd)
    v: jax.Array  # (B, nh, P, hd)


def _init(scale: float = 0.02):
    return nn.initializers.normal(stddev=scale)


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention over groups of tokens, optionally after a cached prefix."""

    cfg: GPTConfig

    @nn.compact
    def __call__(self, x: jax.Array, prefix: LayerKV | None, deterministic: bool,
                 last_only: bool = False):
        # x (B, G, L, C): G independent groups of L tokens; prefix K, V (B, nh, P, hd) shared
        # by every group of a batch row. last_only: the output of each group's last token only
        # (it still attends to all L), (B, G, 1, C)
        cfg = self.cfg
        b, g, length, c = x.shape
        nh, hd = cfg.num_heads, c // cfg.num_heads
        qkv = nn.Dense(3 * c, kernel_init=_init(), name="qkv")(x)  # (B, G, L, 3C)
        # heads lead so that each head's queries of all groups are one (G * L, hd) matrix
        # (B, nh, G, L, hd) each
        q, k, v = qkv.reshape(b, g, length, 3, nh, hd).transpose(3, 0, 4, 1, 2, 5)
        if last_only:
            q = q[:, :, :, -1:]  # (B, nh, G, 1, hd)
        lq = q.shape[3]
        q = q * (1.0 / math.sqrt(hd))
        # one softmax over [prefix | own] without concatenating them: a shared max and sum
        own = jnp.einsum("bhgld,bhgmd->bhglm", q, k)  # (B, nh, G, Lq, L)
        causal = jnp.tril(jnp.ones((lq, length), bool), length - lq)  # query i is token L - Lq + i
        own = jnp.where(causal, own, jnp.finfo(own.dtype).min)
        top = jnp.max(own, axis=-1, keepdims=True)  # (B, nh, G, Lq, 1)
        if prefix is not None:
            pre = jnp.einsum("bhgld,bhpd->bhglp", q, prefix.k.astype(q.dtype))  # (.., Lq, P)
            top = jnp.maximum(top, jnp.max(pre, axis=-1, keepdims=True))
        e_own = jnp.exp(own - top)
        total = jnp.sum(e_own, axis=-1, keepdims=True)
        if prefix is not None:
            e_pre = jnp.exp(pre - top)
            total = total + jnp.sum(e_pre, axis=-1, keepdims=True)
        if not deterministic and cfg.attention_dropout > 0:
            # the mask nn.Dropout would draw for the weights (B, G, nh, Lq, P + L)
            p = 0 if prefix is None else prefix.k.shape[2]
            mask = nn.Dropout(cfg.attention_dropout)(
                jnp.ones((b, g, nh, lq, p + length), q.dtype), False)
            mask = mask.transpose(0, 2, 1, 3, 4)  # (B, nh, G, Lq, P + L)
            e_own = e_own * mask[..., p:]
            if prefix is not None:
                e_pre = e_pre * mask[..., :p]
        y = jnp.einsum("bhglm,bhgmd->bhgld", e_own, v)  # (B, nh, G, Lq, hd)
        if prefix is not None:
            y = y + jnp.einsum("bhglp,bhpd->bhgld", e_pre, prefix.v.astype(v.dtype))
        y = y / total
        y = y.transpose(0, 2, 3, 1, 4).reshape(b, g, lq, c)  # (B, G, Lq, C)
        # nanoGPT: residual projections scaled by 1 / sqrt(2 * layers)
        y = nn.Dense(c, kernel_init=_init(0.02 / math.sqrt(2 * cfg.num_layers)),
                     name="proj")(y)
        y = nn.Dropout(cfg.dropout)(y, deterministic=deterministic)
        return y, (k, v)


class MLP(nn.Module):
    cfg: GPTConfig

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        c = self.cfg.width
        h = nn.gelu(nn.Dense(4 * c, kernel_init=_init(), name="fc")(x))
        h = nn.Dense(c, kernel_init=_init(0.02 / math.sqrt(2 * self.cfg.num_layers)),
                     name="proj")(h)
        return nn.Dropout(self.cfg.dropout)(h, deterministic=deterministic)


class Block(nn.Module):
    """Pre-norm transformer block; returns the new residual stream and its own K, V."""

    cfg: GPTConfig

    @nn.compact
    def __call__(self, x: jax.Array, prefix: LayerKV | None, deterministic: bool,
                 last_only: bool = False):
        # x (B, G, L, C) -> (B, G, L, C), or (B, G, 1, C) for each group's last token only
        a, kv = CausalSelfAttention(self.cfg, name="attn")(nn.LayerNorm(name="ln1")(x),
                                                          prefix, deterministic, last_only)
        x = (x[:, :, -1:] if last_only else x) + a
        x = x + MLP(self.cfg, name="mlp")(nn.LayerNorm(name="ln2")(x), deterministic)
        return x, kv


class GPT(nn.Module):
    """Causal GPT over token input vectors (see the module docstring for its three entries)."""

    cfg: GPTConfig

    def setup(self):
        cfg = self.cfg
        self.embed = nn.Dense(cfg.width, kernel_init=_init(), name="embed")
        self.positions = self.param("positions", _init(), (cfg.max_positions, cfg.width))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = [Block(cfg, name=f"block{i}") for i in range(cfg.num_layers)]
        self.ln_f = nn.LayerNorm(name="ln_f")
        self.head = nn.Dense(cfg.num_actions, kernel_init=_init(), name="head")

    def _check_length(self, length: int) -> None:
        if length > self.cfg.max_positions:
            raise ValueError(f"sequence of {length} tokens is longer than the model's "
                             f"{self.cfg.max_positions} positions (gpt.max_positions)")

    def _stream(self, inputs: jax.Array, start: int, deterministic: bool) -> jax.Array:
        # inputs (B, G, L, Din) at positions start .. start + L - 1 -> (B, G, L, C)
        length = inputs.shape[-2]
        self._check_length(start + length)
        pos = jax.lax.dynamic_slice_in_dim(self.positions, start, length)  # (L, C)
        if self.cfg.obs_scale != 1.0:  # the obs part: all but the action one-hot and reward
            d = inputs.shape[-1] - self.cfg.num_actions - 1
            inputs = inputs * jnp.concatenate([jnp.full((d,), self.cfg.obs_scale, inputs.dtype),
                                               jnp.ones((inputs.shape[-1] - d,), inputs.dtype)])
        return self.drop(self.embed(inputs) + pos, deterministic=deterministic)

    def _logits(self, x: jax.Array) -> jax.Array:
        return self.head(self.ln_f(x))

    def __call__(self, inputs: jax.Array, deterministic: bool = True) -> jax.Array:
        """Full causal pass: inputs (B, L, Din) -> logits (B, L, A)."""
        x = self._stream(inputs[:, None], 0, deterministic)  # (B, 1, L, C)
        for block in self.blocks:
            x, _ = block(x, None, deterministic)
        return self._logits(x)[:, 0]

    def encode(self, inputs: jax.Array, deterministic: bool = True) -> tuple[LayerKV, ...]:
        """The context's keys and values in every block: inputs (B, P, Din) -> per block
        K, V (B, nh, P, hd)."""
        x = self._stream(inputs[:, None], 0, deterministic)  # (B, 1, P, C)
        cache = []
        for block in self.blocks:
            x, (k, v) = block(x, None, deterministic)
            cache.append(LayerKV(k[:, :, 0], v[:, :, 0]))  # (B, nh, G = 1, P, hd) -> (B, nh, P, hd)
        return tuple(cache)

    def query(self, cache: tuple[LayerKV, ...], inputs: jax.Array,
              deterministic: bool = True, last_only: bool = False) -> jax.Array:
        """Query groups after the cached context: inputs (B, G, Lq, Din) at positions
        P .. P + Lq - 1 -> logits (B, G, Lq, A). Groups do not see each other.
        ``last_only``: the logits of each group's last token only, (B, G, 1, A) — the last
        block then computes that token's output alone (deployment: one action per step)."""
        x = self._stream(inputs, cache[0].k.shape[2], deterministic)
        last = len(self.blocks) - 1
        for i, (block, kv) in enumerate(zip(self.blocks, cache, strict=True)):
            x, _ = block(x, kv, deterministic, last_only and i == last)
        return self._logits(x)


def make_gpt(cfg: GPTConfig) -> GPT:
    cfg.validate()
    return GPT(cfg)


def init_gpt(cfg: GPTConfig, key: jax.Array, input_dim: int) -> dict:
    """Parameters of the GPT for token inputs of ``input_dim`` (all positions initialised)."""
    model = make_gpt(cfg)
    if not isinstance(input_dim, int) or input_dim < 1:
        raise ConfigError(f"input_dim = {input_dim!r}: must be an integer >= 1")
    return model.init(key, jnp.zeros((1, 1, input_dim), jnp.float32))
