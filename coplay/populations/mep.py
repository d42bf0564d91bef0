"""MEP (Zhao et al., AAAI 2023; spec §2) as pool logic: stage-1 members' environment
parameters, and stage 2's prioritised partner sampling — the NumPy formulas between chunks and
the frozen partners inside the jitted PPO chunk (:class:`coplay.algos.ppo.FrozenPartner`).

Partner i is drawn with probability

    p_i = rank(1 / R_i)^alpha / sum_j rank(1 / R_j)^alpha            (:func:`partner_probs`)

R_i the learner's running-mean sparse return with partner i. Ranks are dense and ascending in
1 / R: the partner with the highest return has rank 1, the one with the lowest return the
largest rank, so the partners the learner does worst with are drawn most; equal returns
share a rank.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.actor_critic import ActorCritic, critic_input
from coplay.algos import ppo
from coplay.algos.ppo_partner import FrozenPartner
from coplay.algos.ppo_state import PPOState, Runner
from coplay.envs.overcooked import Overcooked


def mep_params(env: Overcooked, num_members: int, horizon: int):
    """MEP members: both seats on the sparse reward plus the annealed standard shaping."""
    p = env.default_params(horizon=horizon, shaping_factor=np.ones(2, np.float32))
    return ppo.stack_params([p] * num_members)


ALPHA_MEP = 3.0
"""MEP's prioritisation exponent: ``ALPHA=3.0`` in the stage-2 command of the MEP authors'
released code (README of ruizhaogit/maximum_entropy_population_based_training; the config
default there is 1.0) and ZSC-Eval's ``--mep_prioritized_alpha`` default. The value printed in
the paper itself was not checked here."""


def dense_rank(x: np.ndarray) -> np.ndarray:
    """1 for the smallest value, +1 per larger distinct value (ties share a rank)."""
    _, inverse = np.unique(np.asarray(x), return_inverse=True)
    return inverse.reshape(-1) + 1


def partner_probs(returns: np.ndarray, alpha: float) -> np.ndarray:
    """p_i ∝ rank(1/R_i)^alpha over partners' returns R (K,); NaN = no episode yet, counted
    as the mean of the others (ZSC-Eval); none at all: uniform. The dense rank of -R orders
    the partners as the rank of 1/(R + 1e-6) of the reference code does for R >= 0 (sparse
    returns are) and stays defined for R <= 0."""
    r = np.asarray(returns, np.float64)
    seen = np.isfinite(r)
    if not seen.any():
        return np.full(len(r), 1.0 / len(r))
    r = np.where(seen, r, r[seen].mean())
    w = dense_rank(-r).astype(np.float64) ** alpha
    return w / w.sum()


def update_running(running: np.ndarray, return_sum: np.ndarray, episodes: np.ndarray,
                   decay: float) -> np.ndarray:
    """Fold one chunk's per-partner (summed return, episodes) into the running means (NaN:
    none yet; the first chunk with episodes sets the mean)."""
    running = np.asarray(running, np.float64)
    has = np.asarray(episodes) > 0
    mean = np.asarray(return_sum, np.float64) / np.maximum(episodes, 1)
    first = has & ~np.isfinite(running)
    blended = decay * running + (1.0 - decay) * mean
    return np.where(first, mean, np.where(has, blended, running))


# --- partners inside the jitted chunk ---------------------------------------------------------


class PartnerRunner(Runner):
    """The PPO runner plus the frozen partners' sampling state (N envs, K partners)."""

    partner: jax.Array  # (N,) int32 partner of each env's running episode
    probs: jax.Array  # (K,) sampling probabilities (set between chunks)
    running_return: jax.Array  # (K,) running-mean sparse return per partner (NaN: none yet)
    partner_episodes: jax.Array  # (K,) episodes finished since the last refresh
    partner_return_sum: jax.Array  # (K,) their summed sparse returns


def draw_partners(key: jax.Array, probs: jax.Array, n: int) -> jax.Array:
    """(n,) partner indices drawn independently with probabilities ``probs`` (K,)."""
    return jax.random.categorical(key, jnp.log(probs), shape=(n,)).astype(jnp.int32)


def frozen_partner(net: ActorCritic, params, centralised: bool) -> FrozenPartner:
    """Seat 1 played by partner ``runner.partner[n]`` of the stacked ``params`` (K, ...)."""

    def logits(params, runner: PartnerRunner, obs_seat: jax.Array) -> jax.Array:
        per_env = jax.tree.map(lambda x: x[runner.partner], params)  # (N, ...) gather
        cx = critic_input(obs_seat, centralised, 1)[:, 1]  # (N, H, W, C') (critic unused)

        def one(p, obs, c):  # (H, W, C) -> (A,)
            return net.apply(p, obs[None], c[None])[0][0]

        return jax.vmap(one)(per_env, obs_seat[:, 1], cx)

    def after_step(runner: PartnerRunner, done: jax.Array, ret: jax.Array,
                   key: jax.Array) -> PartnerRunner:
        d = done.astype(jnp.float32)
        nxt = draw_partners(key, runner.probs, done.shape[0])
        return runner.replace(
            partner=jnp.where(done, nxt, runner.partner),
            partner_episodes=runner.partner_episodes.at[runner.partner].add(d),
            partner_return_sum=runner.partner_return_sum.at[runner.partner].add(d * ret))

    return FrozenPartner(params, logits, after_step)


def with_partners(state: PPOState, key: jax.Array, num_partners: int) -> PPOState:
    """A fresh (M, ...) train state's runner -> :class:`PartnerRunner`: uniform probabilities,
    first partners drawn from them, no returns yet."""
    r = state.runner
    m, n = r.swap.shape
    probs = jnp.full((m, num_partners), 1.0 / num_partners, jnp.float32)
    zeros = jnp.zeros((m, num_partners), jnp.float32)
    base = {f.name: getattr(r, f.name) for f in dataclasses.fields(Runner)}
    partner = jax.vmap(draw_partners, in_axes=(0, 0, None))(jax.random.split(key, m), probs, n)
    return state.replace(runner=PartnerRunner(
        **base, partner=partner, probs=probs, running_return=jnp.full_like(zeros, jnp.nan),
        partner_episodes=zeros, partner_return_sum=zeros))


def refresh_priorities(state: PPOState, alpha: float,
                       return_decay: float) -> tuple[PPOState, dict]:
    """Between chunks: running returns and probabilities from the chunk's per-partner sums
    (member 0: stage 2 trains one learner); returns the new state and a metrics dict."""
    r = state.runner
    eps, sums = np.asarray(r.partner_episodes[0]), np.asarray(r.partner_return_sum[0])
    running = update_running(np.asarray(r.running_return[0]), sums, eps, return_decay)
    probs = partner_probs(running, alpha)
    f32 = lambda x: jnp.asarray(x, jnp.float32)[None]  # noqa: E731
    state = state.replace(runner=r.replace(
        running_return=f32(running), probs=f32(probs),
        partner_episodes=jnp.zeros_like(r.partner_episodes),
        partner_return_sum=jnp.zeros_like(r.partner_return_sum)))
    chunk_mean = [round(float(s / e), 3) if e else None for s, e in zip(sums, eps, strict=True)]
    return state, {
        "partner_episodes": [int(e) for e in eps],
        "partner_return": chunk_mean,
        "running_return": [round(float(x), 3) if np.isfinite(x) else None for x in running],
        "probs": [round(float(p), 5) for p in np.asarray(state.runner.probs[0])],
    }


def refresh_running(state: PPOState, return_decay: float) -> tuple[PPOState, dict]:
    """Between chunks of per-partner learners (member k: one partner, its own): each member's
    running return from its chunk sums; returns the new state and a metrics dict (per
    member)."""
    r = state.runner
    eps = np.asarray(r.partner_episodes[:, 0])
    sums = np.asarray(r.partner_return_sum[:, 0])
    running = update_running(np.asarray(r.running_return[:, 0]), sums, eps, return_decay)
    state = state.replace(runner=r.replace(
        running_return=jnp.asarray(running, jnp.float32)[:, None],
        partner_episodes=jnp.zeros_like(r.partner_episodes),
        partner_return_sum=jnp.zeros_like(r.partner_return_sum)))
    return state, {
        "partner_episodes": [int(e) for e in eps],
        "partner_return": [round(float(x / e), 3) if e else None for x, e in zip(sums, eps,
                                                                                  strict=True)],
        "running_return": [round(float(x), 3) if np.isfinite(x) else None for x in running],
    }


# --- the stage-1 population -------------------------------------------------------------------
