"""Movement with Overcooked-AI's collision rule, written once over the agent axis.

A direction action turns the cook that way and moves it one cell if that cell is floor.
If the two proposed cells coincide, or the cooks would swap cells, *both* stay where they
were (their orientations still turn). STAY and INTERACT change nothing.
"""

from __future__ import annotations

import jax.numpy as jnp

from coplay.envs.overcooked.layouts import FLOOR
from coplay.envs.overcooked.state import DIR_DELTAS, EnvParams


def resolve_movement(
    pos: jnp.ndarray, direction: jnp.ndarray, actions: jnp.ndarray, params: EnvParams
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """New positions (2, 2), orientations (2,) and the IDLE_MOVEMENT flag (2,) bool.

    pos: (2, 2) int32 (x, y); direction: (2,) int32; actions: (2,) int32.
    """
    is_dir = actions < 4  # (2,)
    delta = jnp.asarray(DIR_DELTAS)[jnp.clip(actions, 0, 3)] * is_dir[:, None]  # (2, 2)
    h, w = params.terrain.shape
    target = pos + delta
    at_target = (jnp.arange(h)[None, :, None] == target[:, 1, None, None]) & (
        jnp.arange(w)[None, None, :] == target[:, 0, None, None])  # (2, H, W) one-hot
    walkable = jnp.any(at_target & (params.terrain == FLOOR)[None], axis=(1, 2))  # (2,)
    proposed = jnp.where((is_dir & walkable)[:, None], target, pos)  # (2, 2)
    same_cell = jnp.all(proposed[0] == proposed[1])
    swap = jnp.all(proposed[0] == pos[1]) & jnp.all(proposed[1] == pos[0])
    new_pos = jnp.where(same_cell | swap, pos, proposed)
    new_dir = jnp.where(is_dir, actions, direction)
    idle_move = is_dir & jnp.all(new_pos == pos, axis=-1) & (new_dir == direction)
    return new_pos, new_dir, idle_move
