"""Hand-made policies as :class:`~coplay.agents.base.Agent`s: IPD memory-1 strategies (the
classic probes and any table of five probabilities) and the scripted Overcooked cook.

The scripted cook (:mod:`coplay.envs.overcooked.scripted`, NumPy) plans on the full kitchen;
here it reads the kitchen back from its cook's ego-centric observation
(:func:`snapshot_from_obs`: the default observation is lossless), so it plays through the same
``act(key, state, obs)`` as a trained policy — under ``jit`` and ``vmap`` too, through a host
callback.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.base import Agent
from coplay.agents.gru import AgentInput
from coplay.agents.tabular import PROBES, memory1_act
from coplay.envs.matrix_games import COOPERATE, DEFECT
from coplay.envs.matrix_games import NUM_ACTIONS as IPD_ACTIONS
from coplay.envs.overcooked.layouts import POT, Layout, get_layout
from coplay.envs.overcooked.observation import num_channels
from coplay.envs.overcooked.scripted import scripted_action
from coplay.envs.overcooked.state import (
    DISH,
    NOTHING,
    NUM_ACTIONS,
    ONION,
    SOUP,
    TOMATO,
    recipe_tables,
)


# --- IPD memory-1 strategies ------------------------------------------------------------------
def _memory1_policy(spec, probs, key, state, obs: AgentInput):
    del spec, key
    p = jnp.asarray(probs, jnp.float32)[jnp.asarray(obs.token, jnp.int32)]
    return jnp.log(jnp.stack([p, 1.0 - p])), state  # log 0 = -inf: never drawn


def _memory1_act(spec, probs, key, state, obs: AgentInput, greedy: bool):
    del spec
    token = jnp.asarray(obs.token, jnp.int32)
    if greedy:
        p = jnp.asarray(probs, jnp.float32)[token]
        return jnp.where(p >= 0.5, COOPERATE, DEFECT).astype(jnp.int32), state
    return memory1_act(key, jnp.asarray(probs, jnp.float32), token), state  # as the rollout


def memory1_agent(probs, name: str = "memory-1") -> Agent:
    """A memory-1 strategy: ``probs`` (5,) P(cooperate | start, cc, cd, dc, dd), first-person
    tokens. Its parameters are the table, so a pool of strategies is one ``vmap``. Draws as
    :func:`coplay.agents.tabular.memory1_act` (the IPD rollout's co-players) with the same key."""
    probs = jnp.asarray(probs, jnp.float32)
    if probs.shape[-1:] != (5,):
        raise ValueError(f"memory-1 probabilities must have shape (5,), got {probs.shape}")
    return Agent(probs, _memory1_policy, name, "ipd", IPD_ACTIONS, act_fn=_memory1_act)


def classic_agent(name: str) -> Agent:
    """A classic IPD strategy by name: TFT, AllC, AllD, Pavlov, GTFT, Random, ZD-Extort."""
    if name not in PROBES:
        raise ValueError(f"unknown IPD strategy {name!r}: choose one of {sorted(PROBES)}")
    return memory1_agent(PROBES[name], name)


# --- the kitchen from one cook's observation --------------------------------------------------
def snapshot_from_obs(obs: np.ndarray, layout: Layout,
                      recipe_time: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(H, W, C) observation of one cook (lossless encoding, ``obs_scale`` 1) -> the NumPy
    kitchen snapshot of :func:`coplay.envs.overcooked.scripted.snapshot_jax`, with the
    observing cook as cook 0 and the other as cook 1.

    Not recoverable from the old (20-channel) encoding, and filled in as the only soup the
    old dynamics can make: the contents of a soup outside a pot (3 onions).
    """
    obs = np.asarray(obs)
    old = layout.old_dynamics
    if obs.shape != (layout.height, layout.width, num_channels(old)):
        raise ValueError(f"observation of shape {obs.shape}: {layout.name} needs "
                         f"{(layout.height, layout.width, num_channels(old))}")
    ch = np.rint(obs).astype(np.int32)
    is_pot = layout.terrain == POT
    if recipe_time is None:
        recipe_time = recipe_tables(layout)[1]
    pos = np.zeros((2, 2), np.int32)
    direction = np.zeros((2,), np.int32)
    for cook, (loc, orient) in enumerate(((0, 2), (1, 6))):
        y, x = np.argwhere(ch[..., loc] > 0)[0]
        pos[cook] = (x, y)
        direction[cook] = int(np.argmax(ch[y, x, orient:orient + 4]))

    obj = np.full(layout.terrain.shape, NOTHING, np.int32)
    soup = np.zeros(layout.terrain.shape + (2,), np.int32)
    tick = np.full(layout.terrain.shape, -1, np.int32)
    if old:  # 15 onions in pot, 16 ticks elapsed, 17 soup outside a pot, 18 dish, 19 onion
        for channel, kind in ((18, DISH), (19, ONION), (17, SOUP)):
            obj[ch[..., channel] > 0] = kind
        soup[(ch[..., 17] > 0) & ~is_pot] = (3, 0)
        in_pot = is_pot & (ch[..., 15] > 0)
        obj[in_pot] = SOUP
        soup[in_pot, 0] = ch[in_pot, 15]
        cooking = in_pot & (ch[..., 15] == 3)  # old dynamics start a full pot at once
        tick[cooking] = ch[cooking, 16]
    else:  # 16/17 idle pot, 18/19 soup (cooking / ready pot, or outside a pot), 20 time left
        for channel, kind in ((21, DISH), (22, ONION), (23, TOMATO)):
            obj[ch[..., channel] > 0] = kind
        in_soup = ch[..., 18] + ch[..., 19] > 0
        idle = is_pot & (ch[..., 16] + ch[..., 17] > 0)
        obj[in_soup | idle] = SOUP
        soup[idle] = ch[idle][:, 16:18]
        soup[in_soup] = ch[in_soup][:, 18:20]
        cooking = is_pot & in_soup
        cook_time = recipe_time[soup[..., 0], soup[..., 1]]
        tick[cooking] = (cook_time - ch[..., 20])[cooking]

    held = np.zeros((2,), np.int32)
    held_soup = np.zeros((2, 2), np.int32)
    for cook in range(2):
        x, y = pos[cook]
        held[cook] = obj[y, x]  # cooks stand on floor, where nothing lies: held things
        held_soup[cook] = soup[y, x]
        obj[y, x], soup[y, x] = NOTHING, 0
    return {"pos": pos, "dir": direction, "held": held, "held_soup": held_soup, "obj": obj,
            "soup": soup, "pot_tick": np.where(is_pot & (obj == SOUP), tick, -1).astype(np.int32)}


class _Kitchen:
    """The static data of a scripted cook (hashable by identity: a Layout holds arrays)."""

    def __init__(self, layout: Layout, eps: float, recipe_time: np.ndarray):
        self.layout, self.eps, self.recipe_time = layout, float(eps), recipe_time

    def logits(self, obs: np.ndarray, seed: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(np.asarray(seed, np.uint32))
        snap = snapshot_from_obs(obs, self.layout, self.recipe_time)
        action = scripted_action(snap, self.layout, 0, rng, 0.0, self.recipe_time)
        probs = np.full((NUM_ACTIONS,), self.eps / NUM_ACTIONS)
        probs[action] += 1.0 - self.eps
        with np.errstate(divide="ignore"):
            return np.log(probs).astype(np.float32)


def _scripted_policy(kitchen: _Kitchen, params, key, state, obs):
    del params
    seed = jax.random.bits(key, (2,), jnp.uint32)
    logits = jax.pure_callback(kitchen.logits, jax.ShapeDtypeStruct((NUM_ACTIONS,), jnp.float32),
                               jnp.asarray(obs, jnp.float32), seed, vmap_method="sequential")
    return logits, state


def scripted_cook(layout: str | Layout, eps: float = 0.05,
                  recipe_time: np.ndarray | None = None) -> Agent:
    """The noisy scripted cook of :mod:`coplay.envs.overcooked.scripted` on ``layout``: with
    probability ``eps`` a uniformly random action, else the script's (its own random choices
    drawn from the policy key). ``policy`` gives that mixture as logits. ``recipe_time``
    (4, 4): the env's cook times, if not the layout's."""
    if isinstance(layout, str):
        layout = get_layout(layout)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps = {eps}: must be in [0, 1]")
    times = recipe_tables(layout)[1] if recipe_time is None else np.asarray(recipe_time)
    return Agent((), _scripted_policy, f"scripted ({layout.name})", "overcooked", NUM_ACTIONS,
                 _Kitchen(layout, eps, times))
