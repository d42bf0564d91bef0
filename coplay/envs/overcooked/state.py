"""State and parameter pytrees of the Overcooked env, and the constants they use.

Everything one might vmap over (layout masks, recipe table, reward weights, horizon) lives in
:class:`EnvParams`; the grid shape and the dynamics flavour (old / new, which fixes the event
vocabulary and observation channels) are static and live on the env object.

Coordinates are (x, y) with x the column, as in Overcooked-AI; grids are indexed [y, x].
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from coplay.envs.overcooked.events import event_names
from coplay.envs.overcooked.layouts import ALL_RECIPES, Layout

NUM_AGENTS = 2
NUM_ACTIONS = 6
# Actions, in Overcooked-AI's index order.
NORTH, SOUTH, EAST, WEST, STAY, INTERACT = range(6)
ACTION_NAMES = ("N", "S", "E", "W", "STAY", "INTERACT")
# (dx, dy) of the four directions; orientation codes are the same 0..3.
DIR_DELTAS = np.array([[0, -1], [0, 1], [1, 0], [-1, 0]], np.int32)

# Objects (held by a cook or lying on a cell).
NOTHING, ONION, TOMATO, DISH, SOUP = range(5)
OBJECT_NAMES = ("nothing", "onion", "tomato", "dish", "soup")

# Standard shaped rewards: placement in pot, useful dish pickup, soup pickup.
STANDARD_SHAPING = (3.0, 3.0, 5.0)


@struct.dataclass
class EnvParams:
    """Vmappable environment data. Shapes: H, W grid; E events of the dynamics' vocabulary."""

    terrain: jnp.ndarray  # (H, W) int32 terrain codes (layouts.FLOOR ...)
    start_pos: jnp.ndarray  # (2, 2) int32, rows (x, y)
    start_dir: jnp.ndarray  # (2,) int32 orientation codes
    horizon: jnp.ndarray  # () int32, episode length
    recipe_value: jnp.ndarray  # (4, 4) float32 [onions, tomatoes] -> delivered value
    recipe_time: jnp.ndarray  # (4, 4) int32 [onions, tomatoes] -> cook time
    shaping: jnp.ndarray  # (3,) float32 placement / useful dish pickup / soup pickup
    placement_needs_viable: jnp.ndarray  # () bool, ZSC-Eval new: shaping only if viable
    shaping_factor: jnp.ndarray  # () float32, weight of the shaped reward in `reward`
    event_weights: jnp.ndarray  # (2, E) float32, hidden-utility weights per agent
    sparse_weight: jnp.ndarray  # (2,) float32, weight of the team sparse reward per agent
    obs_scale: jnp.ndarray  # () float32, 1 (default) or 255 (ZSC-Eval)
    zsceval_old_obs: jnp.ndarray  # () bool, reproduce ZSC-Eval's old-encoding quirk (see obs)


@struct.dataclass
class State:
    """Minimal dynamic state: cooks, objects on cells, pot contents and timers, time."""

    pos: jnp.ndarray  # (2, 2) int32, (x, y) per agent
    dir: jnp.ndarray  # (2,) int32 orientation per agent
    held: jnp.ndarray  # (2,) int32 held object per agent
    held_soup: jnp.ndarray  # (2, 2) int32 (onions, tomatoes) of a held soup, else 0
    obj: jnp.ndarray  # (H, W) int32 object lying on each cell (counters; SOUP in pots)
    soup: jnp.ndarray  # (H, W, 2) int32 (onions, tomatoes) of the soup on each cell
    tick: jnp.ndarray  # (H, W) int32 cooking tick of each cell's soup, -1 = idle / none
    time: jnp.ndarray  # () int32 steps taken this episode


def recipe_tables(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(value, cook_time) tables of shape (4, 4) indexed [onions, tomatoes]."""
    value = np.zeros((4, 4), np.float32)
    time = np.full((4, 4), layout.default_cook_time, np.int32)
    for o, t in ALL_RECIPES:
        v, ct = layout.orders.get((o, t), (layout.invalid_order_value, layout.default_cook_time))
        value[o, t], time[o, t] = v, ct
    return value, time


def make_params(
    layout: Layout,
    horizon: int = 400,
    shaping_factor: float = 0.0,
    event_weights: np.ndarray | None = None,
    sparse_weight: float | np.ndarray = 1.0,
    obs_scale: float = 1.0,
    placement_needs_viable: bool | None = None,
    recipe_value: np.ndarray | None = None,
    zsceval_old_obs: bool = False,
) -> EnvParams:
    """EnvParams for a layout. ``event_weights`` is (E,) (both agents) or (2, E).

    ``placement_needs_viable`` defaults to ZSC-Eval's rule: True for the new dynamics (the pot
    placement shaping is paid only when the placement is optimal or viable), False for old.
    """
    n_events = len(event_names(layout.old_dynamics))
    value, time = recipe_tables(layout)
    if recipe_value is not None:
        value = np.asarray(recipe_value, np.float32)
    w = np.zeros((NUM_AGENTS, n_events), np.float32)
    if event_weights is not None:
        w = np.broadcast_to(np.asarray(event_weights, np.float32), w.shape).copy()
    if placement_needs_viable is None:
        placement_needs_viable = not layout.old_dynamics
    return EnvParams(
        terrain=jnp.asarray(layout.terrain, jnp.int32),
        start_pos=jnp.asarray(layout.start, jnp.int32),
        start_dir=jnp.full((NUM_AGENTS,), NORTH, jnp.int32),
        horizon=jnp.asarray(horizon, jnp.int32),
        recipe_value=jnp.asarray(value),
        recipe_time=jnp.asarray(time),
        shaping=jnp.asarray(STANDARD_SHAPING, jnp.float32),
        placement_needs_viable=jnp.asarray(bool(placement_needs_viable)),
        shaping_factor=jnp.asarray(shaping_factor, jnp.float32),
        event_weights=jnp.asarray(w),
        sparse_weight=jnp.broadcast_to(jnp.asarray(sparse_weight, jnp.float32), (NUM_AGENTS,)),
        obs_scale=jnp.asarray(obs_scale, jnp.float32),
        zsceval_old_obs=jnp.asarray(bool(zsceval_old_obs)),
    )


def initial_state(params: EnvParams) -> State:
    """The standard start state: cooks on their start cells facing north, empty kitchen."""
    h, w = params.terrain.shape
    return State(
        pos=params.start_pos,
        dir=params.start_dir,
        held=jnp.zeros((NUM_AGENTS,), jnp.int32),
        held_soup=jnp.zeros((NUM_AGENTS, 2), jnp.int32),
        obj=jnp.zeros((h, w), jnp.int32),
        soup=jnp.zeros((h, w, 2), jnp.int32),
        tick=jnp.full((h, w), -1, jnp.int32),
        time=jnp.zeros((), jnp.int32),
    )
