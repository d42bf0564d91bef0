"""Movement with Overcooked-AI's collision rule, written once over the agent axis.

A direction action turns the cook that way and moves it one cell if that cell is floor.
If the two proposed cells coincide, or the cooks would swap cells, *both* stay where they
were (their orientations still turn). STAY and INTERACT change nothing.
"""

from __future__ import annotations

import jax.numpy as jnp

from coplay.envs.overcooked.layouts import FLOOR
from coplay.envs.overcooked.state import EnvParams


def resolve_movement(
    pos: jnp.ndarray, direction: jnp.ndarray, actions: jnp.ndarray, params: EnvParams
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """New positions (2, 2), orientations (2,) and the IDLE_MOVEMENT flag (2,) bool.

    pos: (2, 2) int32 (x, y); direction: (2,) int32; actions: (2,) int32.
    """
    is_dir = actions < 4  # (2,)
    dx = (actions == 2).astype(jnp.int32) - (actions == 3)  # DIR_DELTAS without a gather
    dy = (actions == 1).astype(jnp.int32) - (actions == 0)
    delta = jnp.stack([dx, dy], axis=-1)  # (2, 2), zero for STAY / INTERACT
    h, w = params.terrain.shape
    target = pos + delta
    at_target = (jnp.arange(h)[None, :, None] == target[:, 1, None, None]) & (
        jnp.arange(w)[None, None, :] == target[:, 0, None, None])  # (2, H, W) one-hot
    walkable = jnp.any(at_target & (params.terrain == FLOOR)[None], axis=(1, 2))  # (2,)
    proposed = jnp.where((is_dir & walkable)[:, None], target, pos)  # (2, 2)
    eq = lambda a, b: (a[0] == b[0]) & (a[1] == b[1])  # noqa: E731
    same_cell = eq(proposed[0], proposed[1])
    swap = eq(proposed[0], pos[1]) & eq(proposed[1], pos[0])
    new_pos = jnp.where(same_cell | swap, pos, proposed)
    new_dir = jnp.where(is_dir, actions, direction)
    idle_move = is_dir & (new_pos[:, 0] == pos[:, 0]) & (new_pos[:, 1] == pos[:, 1])
    idle_move = idle_move & (new_dir == direction)
    return new_pos, new_dir, idle_move
