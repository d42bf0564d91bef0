"""Shared helpers of the Overcooked tests: a small rule-test kitchen and a state builder.

Rule-test kitchen (x to the right, y down):

    XPXOX      cook 0 starts at (1, 1): N pot (1, 0), W dish disp. (0, 1), S serving (1, 2)
    D1 2T      cook 1 starts at (3, 1): N onion disp. (3, 0), E tomato disp. (4, 1),
    XSXPX      S pot (3, 2); from (2, 1): N counter (2, 0), S counter (2, 2)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.envs.overcooked import Overcooked, parse_layout
from coplay.envs.overcooked.state import NORTH, State, initial_state

RULE_GRID = """
XPXOX
D1 2T
XSXPX
"""
N, S, E, W, STAY, INTERACT = range(6)
KEY = jax.random.PRNGKey(0)


def rule_env(old_dynamics: bool = False, **param_kwargs):
    env = Overcooked(parse_layout(RULE_GRID, name="rules", old_dynamics=old_dynamics))
    return env, env.default_params(**param_kwargs)


def make_state(params, pos=((1, 1), (3, 1)), dirs=(NORTH, NORTH), held=(0, 0),
               held_soup=((0, 0), (0, 0)), objects=None, pots=None, time=0) -> State:
    """objects: {(x, y): (code, (onions, tomatoes))}; pots: {(x, y): (onions, tomatoes, tick)}."""
    s = initial_state(params)
    obj, soup, tick = np.array(s.obj), np.array(s.soup), np.array(s.tick)
    for (x, y), (code, counts) in (objects or {}).items():
        obj[y, x], soup[y, x] = code, counts
    for (x, y), (o, t, k) in (pots or {}).items():
        obj[y, x], soup[y, x], tick[y, x] = 4, (o, t), k
    return State(
        pos=jnp.asarray(pos, jnp.int32), dir=jnp.asarray(dirs, jnp.int32),
        held=jnp.asarray(held, jnp.int32), held_soup=jnp.asarray(held_soup, jnp.int32),
        obj=jnp.asarray(obj), soup=jnp.asarray(soup), tick=jnp.asarray(tick),
        time=jnp.asarray(time, jnp.int32),
    )


def step(env, state, actions, params):
    """One step without auto-reset; returns (state, reward, info)."""
    _, s, r, _, info = env.step_env(KEY, state, jnp.asarray(actions, jnp.int32), params)
    return s, r, info


def events_of(env, info, agent: int) -> set[str]:
    ev = np.asarray(info["events"][agent])
    return {n for n, v in zip(env.event_names, ev, strict=True) if v}
