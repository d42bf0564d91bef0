"""A noisy scripted cook (numpy, outside jit): fetch ingredients, fill and start pots, fetch a
dish, serve. Used for differential tests (episodes that actually cook and deliver), demos and
the terminal partner. Works on the numpy snapshot dict of :func:`snapshot_jax` (the Python
reference's state maps to the same dict: :mod:`coplay.testing.overcooked_reference`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from coplay.envs.overcooked.layouts import (
    COUNTER,
    DISH_DISP,
    FLOOR,
    ONION_DISP,
    POT,
    SERVE,
    TOMATO_DISP,
    Layout,
)
from coplay.envs.overcooked.state import (
    DIR_DELTAS,
    DISH,
    INTERACT,
    NOTHING,
    ONION,
    SOUP,
    TOMATO,
    State,
)


def _bfs_action(layout: Layout, pos, direction: int, targets: np.ndarray) -> int | None:
    """First action towards facing any target cell (bool (H, W)); INTERACT when facing one."""
    terrain = layout.terrain
    h, w = terrain.shape
    start = (int(pos[0]), int(pos[1]))
    first: dict[tuple[int, int], int | None] = {start: None}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        for d, (dx, dy) in enumerate(DIR_DELTAS):
            nx, ny = x + dx, y + dy
            if not (0 <= nx < w and 0 <= ny < h):
                continue
            if targets[ny, nx]:
                if (x, y) == start:
                    return INTERACT if d == direction else d
                return first[(x, y)]
            if terrain[ny, nx] == FLOOR and (nx, ny) not in first:
                first[(nx, ny)] = d if (x, y) == start else first[(x, y)]
                queue.append((nx, ny))
    return None


def scripted_action(
    snap: dict, layout: Layout, agent: int, rng: np.random.Generator, eps: float = 0.1,
    recipe_time: np.ndarray | None = None,
) -> int:
    """One cook's action from a snapshot. ``eps``: probability of a uniformly random action."""
    if rng.random() < eps:
        return int(rng.integers(6))
    t = layout.terrain
    obj, soup, tick = snap["obj"], snap["soup"], snap["pot_tick"]
    held = int(snap["held"][agent])
    n_in = np.where(obj == SOUP, soup.sum(-1), 0)
    is_pot = t == POT
    cook_time = 20 if recipe_time is None else recipe_time[soup[..., 0], soup[..., 1]]
    ready = is_pot & (obj == SOUP) & (tick >= 0) & (tick >= cook_time)
    cooking = is_pot & (obj == SOUP) & (tick >= 0) & ~ready
    open_pot = is_pot & ((obj == NOTHING) | ((tick < 0) & (n_in < 3)))
    empty_counter = (t == COUNTER) & (obj == NOTHING)
    has_tomato = bool((t == TOMATO_DISP).any())
    if held != NOTHING and rng.random() < 0.03:
        targets = empty_counter  # occasionally put things down
    elif held == NOTHING:
        idle_pots = is_pot & (obj == SOUP) & (tick < 0) & (n_in > 0)
        if ready.any() and not (snap["held"] == DISH).any():
            targets = (t == DISH_DISP) | ((t == COUNTER) & (obj == DISH))
        elif not layout.old_dynamics and idle_pots.any() and rng.random() < 0.3:
            targets = idle_pots  # start cooking what is there
        elif rng.random() < 0.1:
            targets = (t == COUNTER) & (obj != NOTHING)
        elif has_tomato and rng.random() < 0.35:
            targets = t == TOMATO_DISP
        else:
            targets = t == ONION_DISP
    elif held in (ONION, TOMATO):
        targets = open_pot if open_pot.any() else empty_counter
    elif held == DISH:
        targets = ready if ready.any() else (cooking if cooking.any() else is_pot)
    else:  # SOUP
        targets = t == SERVE
    if not targets.any():
        return int(rng.integers(6))
    a = _bfs_action(layout, snap["pos"][agent], int(snap["dir"][agent]), targets)
    return int(rng.integers(6)) if a is None else a


def scripted_actions(snap, layout, rng, eps=0.1, recipe_time=None) -> np.ndarray:
    """Both cooks' actions (2,) int32."""
    return np.array(
        [scripted_action(snap, layout, i, rng, eps, recipe_time) for i in range(2)], np.int32
    )


def snapshot_jax(state: State, layout: Layout) -> dict[str, np.ndarray]:
    """JAX state (unbatched) -> the numpy dict the script reads (the same dict as the
    differential tests' ``snapshot_reference`` of the Python reference)."""
    is_pot = layout.terrain == POT
    tick = np.asarray(state.tick)
    has_soup = np.asarray(state.obj) == SOUP
    return {
        "pos": np.asarray(state.pos),
        "dir": np.asarray(state.dir),
        "held": np.asarray(state.held),
        "held_soup": np.asarray(state.held_soup),
        "obj": np.asarray(state.obj),
        "soup": np.asarray(state.soup),
        "pot_tick": np.where(is_pot & has_soup, tick, -1).astype(np.int32),
    }
