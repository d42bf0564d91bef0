"""The Coordination Transformer as an :class:`~coplay.agents.base.Agent`: in-context play.

State: the k context slots (the previous episodes with this partner, oldest first, all-zero
while empty), their keys / values in every block (computed once per episode, at its end), the
current episode as far as it went, and the window of the latest ``Lq`` observations. Each step
feeds only the ``Lq`` query tokens through the model, attending to the cached context
(:meth:`GPT.query`), and reads the logits of the newest one; no parameter changes.

    state = agent.reset(key)                       # empty context: a partner never met
    action, state = agent.act(key, state, obs)     # H steps of an episode
    state = agent.end_episode(state, rewards)      # (H,) sparse rewards -> FIFO context

``end_episode`` appends the finished episode (its first H steps; a shorter one is padded with
zero steps) as the newest slot and evicts the oldest (``fifo``, the paper's). Not in the paper,
a deployment option (:func:`with_keep`): ``keep-best`` keeps the k best-return episodes so far
— a finished episode replaces the worst slot (empty slots first, the oldest among equals)
when its return is at least that slot's, and is dropped otherwise; the slots stay in the
order they were played. Unbatched and jittable; vmap over partner-seats.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from coplay.agents.base import Agent
from coplay.agents.gpt import GPT, LayerKV, query_indices, query_tokens, token_inputs


class CootSpec(NamedTuple):
    """Static: the model and the context's shape."""

    model: GPT
    num_episodes: int  # k
    episode_len: int  # H
    query_len: int  # Lq
    obs_dim: int  # D
    keep: str = "fifo"  # which episodes the context keeps: fifo (paper) or keep-best


class CootState(NamedTuple):
    ctx_obs: jax.Array  # (k, H, D) float32
    ctx_action: jax.Array  # (k, H) int32, -1 = none
    ctx_reward: jax.Array  # (k, H) float32
    cache: tuple[LayerKV, ...]  # per block K^T (nh, hd, k * H), V (nh, k * H, hd)
    ep_obs: jax.Array  # (H, D) this episode's observations so far
    ep_action: jax.Array  # (H,) int32
    window: jax.Array  # (Lq, D) the latest observations, newest last
    t: jax.Array  # () int32 steps of this episode so far


def _encode(spec: CootSpec, params, obs, action, reward) -> tuple[LayerKV, ...]:
    tokens = token_inputs(obs, action, reward, spec.model.cfg.num_actions)  # (k, H, Din)
    cache = spec.model.apply(params, tokens.reshape(1, -1, tokens.shape[-1]),
                             method=GPT.encode)
    # keys stored transposed, (nh, hd, P): the layout the scores' matmul reads them in, so
    # that XLA does not copy-transpose the whole cache at every step
    return tuple(LayerKV(kv.k[0].swapaxes(-1, -2), kv.v[0]) for kv in cache)


def _init(spec: CootSpec, params, key) -> CootState:
    del key
    k, h, d = spec.num_episodes, spec.episode_len, spec.obs_dim
    obs, action, reward = jnp.zeros((k, h, d)), jnp.full((k, h), -1, jnp.int32), jnp.zeros((k, h))
    return CootState(obs, action, reward, _encode(spec, params, obs, action, reward),
                     jnp.zeros((h, d)), jnp.full((h,), -1, jnp.int32),
                     jnp.zeros((spec.query_len, d)), jnp.int32(0))


def _observe(spec: CootSpec, state: CootState, obs) -> CootState:
    x = jnp.reshape(jnp.asarray(obs, jnp.float32), (spec.obs_dim,))
    return state._replace(ep_obs=state.ep_obs.at[state.t].set(x, mode="drop"),
                          window=jnp.concatenate([state.window[1:], x[None]]))


def _logits(spec: CootSpec, params, state: CootState) -> jax.Array:
    # the window after observing step t holds steps t - Lq + 1 .. t (front invalid if t < Lq - 1)
    _, valid = query_indices(state.t, spec.query_len)
    q = query_tokens(state.window, valid)[None, None]  # (1, 1, Lq, Din)
    cache = tuple(LayerKV(kv.k[None].swapaxes(-1, -2), kv.v[None])  # (1, nh, P, hd)
                  for kv in state.cache)
    return spec.model.apply(params, cache, q, True, True, method=GPT.query)[0, 0, -1]  # (A,)


def _policy(spec: CootSpec, params, key, state: CootState, obs):
    """The distribution at this step; the observation enters the state, the step counter
    advances only in :func:`_act` (which knows the action taken)."""
    del key
    state = _observe(spec, state, obs)
    return _logits(spec, params, state), state


def _act(spec: CootSpec, params, key, state: CootState, obs, greedy: bool):
    logits, state = _policy(spec, params, None, state, obs)
    action = (jnp.argmax(logits) if greedy else jax.random.categorical(key, logits)
              ).astype(jnp.int32)
    return action, state._replace(ep_action=state.ep_action.at[state.t].set(action, mode="drop"),
                                  t=state.t + 1)


def _end(spec: CootSpec, params, state: CootState, rewards) -> CootState:
    h = spec.episode_len
    steps = jnp.arange(h) < state.t  # steps this episode reached
    r = jnp.zeros((h,)) if rewards is None else jnp.asarray(rewards, jnp.float32).reshape(-1)
    r = jnp.zeros((h,)).at[: min(h, r.shape[0])].set(r[:h])
    obs = jnp.where(steps[:, None], state.ep_obs, 0.0)
    action = jnp.where(steps, state.ep_action, -1)
    reward = jnp.where(steps, r, 0.0)
    ctx_obs, ctx_action, ctx_reward = _push(spec, state, obs, action, reward)
    return CootState(ctx_obs, ctx_action, ctx_reward,
                     _encode(spec, params, ctx_obs, ctx_action, ctx_reward),
                     jnp.zeros_like(state.ep_obs), jnp.full((h,), -1, jnp.int32),
                     jnp.zeros_like(state.window), jnp.int32(0))


def _push(spec: CootSpec, state: CootState, obs, action, reward):
    """The context after a finished episode: the oldest slot out (``fifo``), or the worst
    one when the episode's return is at least its (``keep-best``; else unchanged)."""
    k = spec.num_episodes
    drop, take = jnp.int32(0), jnp.bool_(True)  # fifo: slot 0 (the oldest) out
    if spec.keep == "keep-best":
        filled = (state.ctx_action >= 0).any(-1)
        slot_return = jnp.where(filled, state.ctx_reward.sum(-1), -jnp.inf)  # (k,)
        drop = jnp.argmin(slot_return)  # empty ones first; the oldest among equals
        take = reward.sum() >= slot_return[drop]
    src = jnp.arange(k - 1) + (jnp.arange(k - 1) >= drop)  # the slots kept, in order

    def push(ctx, new):
        return jnp.where(take, jnp.concatenate([ctx[src], new[None]]), ctx)

    return (push(state.ctx_obs, obs), push(state.ctx_action, action),
            push(state.ctx_reward, reward))


def coot_agent(model: GPT, params, num_episodes: int, episode_len: int, query_len: int,
               obs_dim: int, name: str = "coot") -> Agent:
    """The Coordination Transformer with ``params``, a context of ``num_episodes`` slots of
    ``episode_len`` steps and queries of ``query_len`` observations of ``obs_dim`` values.
    ``end_episode(state, rewards)`` takes the episode's (H,) sparse rewards."""
    needed = num_episodes * episode_len + query_len
    if needed > model.cfg.max_positions:
        raise ValueError(f"a context of {num_episodes} x {episode_len} steps plus "
                         f"{query_len} query tokens needs {needed} positions; the model has "
                         f"{model.cfg.max_positions}")
    spec = CootSpec(model, num_episodes, episode_len, query_len, obs_dim)
    return Agent(params, _policy, name, "overcooked", model.cfg.num_actions, spec, _init, _end,
                 _act)


KEEPS = ("fifo", "keep-best")


def with_keep(agent: Agent, keep: str) -> Agent:
    """The same CooT (or :func:`with_context` one) whose context keeps its episodes by
    ``keep``: ``fifo`` (the paper's) or ``keep-best`` (a deployment option, not in the
    paper; see the module docstring)."""
    if keep not in KEEPS:
        raise ValueError(f"keep = {keep!r}: choose one of {KEEPS}")
    spec = agent.spec
    if isinstance(spec, _Held):
        return agent.replace(spec=spec._replace(spec=spec.spec._replace(keep=keep)))
    if not isinstance(spec, CootSpec):
        raise ValueError(f"{agent.name}: not a Coordination Transformer")
    return agent.replace(spec=spec._replace(keep=keep))


# --- contexts set from outside (the diagnosis: coplay coot diagnose) --------------------------
CONTEXT_MODES = ("fifo", "frozen")


class _Held(NamedTuple):
    spec: CootSpec
    mode: str


def _start(spec: CootSpec, ctx, cache) -> CootState:
    """A state at the start of an episode with context ``ctx`` already encoded as ``cache``."""
    h, d = spec.episode_len, spec.obs_dim
    return CootState(*ctx, cache, jnp.zeros((h, d)), jnp.full((h,), -1, jnp.int32),
                     jnp.zeros((spec.query_len, d)), jnp.int32(0))


def _held_init(spec: _Held, params, key) -> CootState:
    del key
    ctx = params["context"]
    return _start(spec.spec, ctx, _encode(spec.spec, params["model"], *ctx))


def _held_policy(spec: _Held, params, key, state, obs):
    return _policy(spec.spec, params["model"], key, state, obs)


def _held_act(spec: _Held, params, key, state, obs, greedy: bool):
    return _act(spec.spec, params["model"], key, state, obs, greedy)


def _held_end(spec: _Held, params, state: CootState, rewards) -> CootState:
    if spec.mode == "fifo":  # the given episodes, then its own ones pushed in as usual
        return _end(spec.spec, params["model"], state, rewards)
    # empty / frozen: every episode from the given context again (an all-zero one: a CooT
    # that forgets each episode), as the episode before it began: encoded once
    return _start(spec.spec, params["context"], state.cache)


def with_context(agent: Agent, obs: jax.Array, action: jax.Array, reward: jax.Array,
                 mode: str = "frozen") -> Agent:
    """A CooT agent that starts from the context ``obs`` (k, H, D), ``action`` (k, H) (-1:
    none), ``reward`` (k, H) instead of an empty one, and then starts every episode from it
    again (``frozen``; with :func:`empty_context`: a CooT that forgets each episode) or
    pushes its own episodes in as usual (``fifo``)."""
    if mode not in CONTEXT_MODES:
        raise ValueError(f"mode = {mode!r}: choose one of {CONTEXT_MODES}")
    spec: CootSpec = agent.spec
    shape = (spec.num_episodes, spec.episode_len)
    if obs.shape != shape + (spec.obs_dim,) or action.shape != shape or reward.shape != shape:
        raise ValueError(f"a context of shapes {obs.shape}, {action.shape}, {reward.shape}; "
                         f"this CooT holds {shape + (spec.obs_dim,)}, {shape}, {shape}")
    ctx = (jnp.asarray(obs, jnp.float32), jnp.asarray(action, jnp.int32),
           jnp.asarray(reward, jnp.float32))
    return Agent({"model": agent.params, "context": ctx}, _held_policy, agent.name,
                 agent.kind, agent.num_actions, _Held(spec, mode), _held_init, _held_end,
                 _held_act)


def empty_context(agent: Agent) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The all-zero context of a CooT agent (what :meth:`Agent.reset` starts from)."""
    spec: CootSpec = agent.spec
    k, h, d = spec.num_episodes, spec.episode_len, spec.obs_dim
    return jnp.zeros((k, h, d)), jnp.full((k, h), -1, jnp.int32), jnp.zeros((k, h))
