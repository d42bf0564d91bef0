"""Lossless grid observations (Overcooked-AI / ZSC-Eval encodings), ego-centric per agent.

Shape (2, H, W, C): one (H, W, C) image per agent, rows = y. (ZSC-Eval stores the transpose,
(W, H, C); the channels are identical.) Channel order, with "own" = the observing cook:

old dynamics, C = 20:
  0 own loc, 1 other loc, 2-5 own orientation N/S/E/W, 6-9 other orientation N/S/E/W,
  10 pot, 11 counter, 12 onion dispenser, 13 dish dispenser, 14 serving tile,
  15 onions in pot (any pot soup), 16 onion cook time (ticks elapsed, 0 while idle),
  17 onion soup not in a pot (held or on a counter), 18 dishes, 19 onions.
new dynamics, C = 25:
  0-9 players as above, 10 pot, 11 counter, 12 onion disp., 13 tomato disp., 14 dish disp.,
  15 serving tile, 16 onions in (idle) pot, 17 tomatoes in (idle) pot, 18 onions in soup
  (cooking/ready pot or soup outside a pot), 19 tomatoes in soup, 20 cook time remaining,
  21 dishes, 22 onions, 23 tomatoes, 24 urgency (1 when fewer than 40 steps remain).
Held objects count at their holder's cell. Values are unscaled; ``params.obs_scale`` = 255
reproduces ZSC-Eval's scaling.

ZSC-Eval's old encoding has a quirk (its ``all_objects_by_type`` replaces, instead of extends,
the placed objects of a type by the held ones): while a cook holds an onion / dish / soup, the
onions / dishes / soups lying on counters (and, for soups, in pots) vanish from the encoding.
We encode losslessly by default; ``params.zsceval_old_obs`` = True reproduces the quirk.
"""

from __future__ import annotations

import jax.numpy as jnp

from coplay.envs.overcooked.interaction import table_lookup
from coplay.envs.overcooked.layouts import (
    COUNTER,
    DISH_DISP,
    ONION_DISP,
    POT,
    SERVE,
    TOMATO_DISP,
)
from coplay.envs.overcooked.state import DISH, ONION, SOUP, TOMATO, EnvParams, State


def num_channels(old_dynamics: bool) -> int:
    return 20 if old_dynamics else 25


def get_obs(state: State, params: EnvParams, old_dynamics: bool) -> jnp.ndarray:
    """(2, H, W, C) float32 observations, agent i's own channels first."""
    terrain = params.terrain
    h, w = terrain.shape
    ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    px, py = state.pos[:, 0], state.pos[:, 1]
    loc = (xs[None] == px[:, None, None]) & (ys[None] == py[:, None, None])  # (2, H, W)
    ori = loc[..., None] & (jnp.arange(4) == state.dir[:, None, None, None])  # (2, H, W, 4)
    # Ego-centric: row i holds cook i's channels first, then the other cook's.
    players = jnp.concatenate(
        [loc[..., None], loc[::-1, ..., None], ori, ori[::-1]], axis=-1
    ).astype(jnp.float32)  # (2, H, W, 10)

    # Objects including the held ones, placed at their holder's cell (a floor cell).
    # (cooks stand on floor, where nothing lies, so a masked sum places them)
    all_obj = state.obj + jnp.sum(jnp.where(loc, state.held[:, None, None], 0), axis=0)
    all_soup = state.soup + jnp.sum(
        jnp.where(loc[..., None], state.held_soup[:, None, None, :], 0), axis=0)
    is_pot = terrain == POT
    in_pot = is_pot & (state.obj == SOUP)
    idle = state.tick < 0
    off_pot_soup = ~is_pot & (all_obj == SOUP)
    f = lambda m: m.astype(jnp.float32)  # noqa: E731
    # Few wide pieces rather than one (H, W) layer per channel: each piece is one
    # broadcast compare / product, so XLA fuses the obs into a handful of loops.
    codes = lambda grid, cs: f(grid[..., None] == jnp.asarray(cs, jnp.int32))  # noqa: E731
    soup_f = all_soup.astype(jnp.float32)  # (H, W, 2)
    if old_dynamics:
        held_at = all_obj - state.obj  # held objects only
        hidden = lambda code: params.zsceval_old_obs & jnp.any(state.held == code)  # noqa: E731
        soup_gone = hidden(SOUP)
        in_pot = in_pot & ~soup_gone
        off_pot_soup = (~is_pot & (state.obj == SOUP) & ~soup_gone) | (held_at == SOUP)
        dishes = ((state.obj == DISH) & ~hidden(DISH)) | (held_at == DISH)
        onion_objs = ((state.obj == ONION) & ~hidden(ONION)) | (held_at == ONION)
        pot_layers = jnp.where(in_pot[..., None], jnp.stack(
            [soup_f[..., 0], jnp.maximum(state.tick, 0).astype(jnp.float32)], -1), 0.0)
        pieces = [
            codes(terrain, [POT, COUNTER, ONION_DISP, DISH_DISP, SERVE]),
            pot_layers,  # onions in pot, ticks elapsed
            f(jnp.stack([off_pot_soup, dishes, onion_objs], -1)),
        ]
    else:
        cook_time = table_lookup(params.recipe_time, state.soup)
        remaining = jnp.maximum(cook_time - state.tick, 0).astype(jnp.float32)
        in_soup = (in_pot & ~idle) | off_pot_soup
        urgent = (params.horizon - state.time) < 40
        pieces = [
            codes(terrain, [POT, COUNTER, ONION_DISP, TOMATO_DISP, DISH_DISP, SERVE]),
            jnp.where((in_pot & idle)[..., None], soup_f, 0.0),
            jnp.where(in_soup[..., None], soup_f, 0.0),
            jnp.where(in_pot & ~idle, remaining, 0.0)[..., None],
            codes(all_obj, [DISH, ONION, TOMATO]),
            jnp.full((h, w, 1), urgent, jnp.float32),
        ]
    shared = jnp.concatenate(pieces, axis=-1)  # (H, W, C - 10)
    shared = jnp.broadcast_to(shared[None], (2,) + shared.shape)
    return jnp.concatenate([players, shared], axis=-1) * params.obs_scale  # (2, H, W, C)
