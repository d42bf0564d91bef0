"""Pair evaluation, cross-play (every biased policy with every best response), heatmap, GIF.

Parameters of a population are stacked (M, G=2, ...): policy 0 the biased π_w, policy 1 its
best response. Evaluations use the team sparse reward (default EnvParams) and
:func:`coplay.eval.overcooked.play`, which puts policy A in each cook half of the time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from coplay.agents.actor_critic import ActorCritic
from coplay.algos.overcooked_play import pair_policy, two_seat_step
from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.render import render_rgb, save_gif
from coplay.envs.overcooked.state import EnvParams
from coplay.eval.overcooked import play
from coplay.populations.hsp import BIASED, BR
from coplay.populations.members import take
from coplay.populations.selection import l1_distances


def _seat(params, g: int):
    """(M, G, ...) -> (M, ...) policy g of every member (the only one when G = 1: shared)."""
    return jax.tree.map(lambda x: x[:, min(g, x.shape[1] - 1)], params)


def evaluate_pairs(env: Overcooked, algo, net: ActorCritic, params, key: jax.Array,
                   num_envs: int) -> dict:
    """Each member's biased policy with its own best response: ``sparse_return`` (M, N) and
    ``events`` (M, N, 2, E) per seat (biased, BR)."""
    env_params = env.default_params(horizon=algo.horizon)
    f = lambda pa, pb: play(env, env_params, net, pa, pb, key, steps=algo.horizon,  # noqa: E731
                            num_envs=num_envs, centralised=algo.centralised_value)
    out = jax.vmap(f)(_seat(params, BIASED), _seat(params, BR))
    return {"sparse_return": np.asarray(out["sparse_return"]),
            "events": np.asarray(out["events"])}


def crossplay_matrix(env: Overcooked, algo, net: ActorCritic, params, key: jax.Array,
                     num_envs: int) -> np.ndarray:
    """(M, M) mean sparse return of member i's biased policy with member j's best response.
    One row per call (a vmap over best responses), so memory stays M x num_envs envs."""
    env_params = env.default_params(horizon=algo.horizon)
    f = lambda pa, pb: play(env, env_params, net, pa, pb, key, steps=algo.horizon,  # noqa: E731
                            num_envs=num_envs, centralised=algo.centralised_value)
    row = jax.jit(jax.vmap(f, in_axes=(None, 0)))
    biased, br = _seat(params, BIASED), _seat(params, BR)
    m = len(jax.tree.leaves(params)[0])
    return np.stack([np.asarray(row(take(biased, i), br)["sparse_return"])
                     .mean(-1) for i in range(m)])


def contrasting_pair(features: np.ndarray, returns: np.ndarray, min_return: float = 10.0):
    """The two members whose event features are farthest apart in L1, among members with
    return >= min_return when at least two qualify (else among all)."""
    ok = np.flatnonzero(np.asarray(returns) >= min_return)
    cand = ok if len(ok) >= 2 else np.arange(len(features))
    if len(cand) < 2:
        return int(cand[0]), int(cand[0])
    d = l1_distances(np.asarray(features)[cand])
    i, j = np.unravel_index(np.argmax(d), d.shape)
    return int(cand[min(i, j)]), int(cand[max(i, j)])


@partial(jax.jit, static_argnames=("env", "net", "steps", "centralised"))
def episode_states(env: Overcooked, env_params: EnvParams, net: ActorCritic, params_a,
                   params_b, key: jax.Array, steps: int, centralised: bool = False):
    """One episode, A steering cook 0 and B cook 1 (sampled actions): the states (steps+1, ...)
    and the per-step team sparse reward (steps,)."""
    _, state = env.reset(key, env_params)
    one = lambda x: x[None]  # noqa: E731  a batch of one env, A's seat on cook 0
    cook_of_seat = jnp.array([[0, 1]])

    def body(state, key):
        k_a, k_b, k_env = jax.random.split(key, 3)
        policy = pair_policy(net, params_a, params_b, k_a, k_b, centralised)
        s = two_seat_step(env, env_params, k_env, jax.tree.map(one, state),
                          one(env.get_obs(state, env_params)), cook_of_seat, policy,
                          auto_reset=False)
        new_state = jax.tree.map(lambda x: x[0], s.env_state)
        return new_state, (new_state, s.sparse[0])

    _, (states, sparse) = jax.lax.scan(body, state, jax.random.split(key, steps))
    states = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s]), state, states)
    return states, sparse


def write_pairs_gif(env: Overcooked, algo, net: ActorCritic, params, members: tuple[int, int],
                    path: Path, steps: int, key: jax.Array, fps: int = 8) -> None:
    """Side-by-side GIF: each listed member's biased policy (cook 1) with its best response."""
    env_params = env.default_params(horizon=max(steps, 1))
    panels = []
    for m in members:
        p = take(params, m)
        g = len(jax.tree.leaves(p)[0])  # policies: 2, or 1 shared by both seats
        states, sparse = episode_states(env, env_params, net, take(p, BIASED),
                                        take(p, min(BR, g - 1)),
                                        key, steps, algo.centralised_value)
        ret = np.concatenate([[0.0], np.cumsum(np.asarray(sparse))])
        frames = []
        for t in range(steps + 1):
            img = render_rgb(take(states, t), env_params)
            head = Image.new("RGB", (img.shape[1], 18), (255, 255, 255))
            ImageDraw.Draw(head).text((3, 3), f"member {m}  t {t}  return {ret[t]:g}",
                                      fill=(0, 0, 0))
            frames.append(np.concatenate([np.asarray(head), img], axis=0))
        panels.append(frames)
    gap = np.full((panels[0][0].shape[0], 8, 3), 255, np.uint8)
    frames = [np.concatenate([panels[0][t], gap, panels[-1][t]], axis=1)
              for t in range(steps + 1)]
    save_gif(frames, path, fps=fps)
