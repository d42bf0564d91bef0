"""Movement with Overcooked-AI's collision rule, written once over the agent axis.

A direction action turns the cook that way and moves it one cell if that cell is floor.
If the two proposed cells coincide, or the cooks would swap cells, *both* stay where they
were (their orientations still turn). STAY and INTERACT change nothing.
"""

from __future__ import annotations

import jax.numpy as jnp

from coplay.envs.overcooked.layouts import FLOOR
from coplay.envs.overcooked.state import EnvParams


def floor_bits(terrain: jnp.ndarray) -> jnp.ndarray:
    """The floor cells of an (H, W) terrain as bits of ceil(H*W / 32) uint32 words, row-major.

    Depends on the params only, so in a rollout XLA computes it once outside the loop; each
    step then reads a cell with a shift instead of a masked reduction over the grid.
    """
    flat = (terrain == FLOOR).reshape(-1).astype(jnp.uint32)
    n_words = -(-flat.shape[0] // 32)
    flat = jnp.pad(flat, (0, 32 * n_words - flat.shape[0])).reshape(n_words, 32)
    return jnp.sum(flat << jnp.arange(32, dtype=jnp.uint32), axis=1, dtype=jnp.uint32)


def is_floor_at(terrain: jnp.ndarray, x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """Whether cell (x, y) is floor (False outside the grid); x, y int arrays of one shape."""
    h, w = terrain.shape
    words = floor_bits(terrain)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    idx = jnp.clip(y * w + x, 0, h * w - 1).astype(jnp.uint32)
    word = words[0]
    for k in range(1, words.shape[0]):  # a where-chain over the few words (not timed vs a gather)
        word = jnp.where(idx // 32 == k, words[k], word)
    return inside & (((word >> (idx % 32)) & 1) != 0)


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
    target = pos + delta
    walkable = is_floor_at(params.terrain, target[:, 0], target[:, 1])  # (2,)
    proposed = jnp.where((is_dir & walkable)[:, None], target, pos)  # (2, 2)
    eq = lambda a, b: (a[0] == b[0]) & (a[1] == b[1])  # noqa: E731
    same_cell = eq(proposed[0], proposed[1])
    swap = eq(proposed[0], pos[1]) & eq(proposed[1], pos[0])
    new_pos = jnp.where(same_cell | swap, pos, proposed)
    new_dir = jnp.where(is_dir, actions, direction)
    idle_move = is_dir & (new_pos[:, 0] == pos[:, 0]) & (new_pos[:, 1] == pos[:, 1])
    idle_move = idle_move & (new_dir == direction)
    return new_pos, new_dir, idle_move
