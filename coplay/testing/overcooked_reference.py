"""Bridge to the Python reference (PyPI ``overcooked``, Overcooked-AI) for differential tests.

Imports ``overcooked`` lazily (a dev dependency). Provides:
- :func:`reference_mdp`: the reference gridworld of a layout (``from_grid``, ``old_dynamics``,
  orders with ZSC-Eval's values and cook times);
- :func:`reference_params`: our EnvParams set to the reference's conventions where ZSC-Eval
  deliberately differs (non-orders worth 0 instead of -10; pot placement always shaped);
- :func:`snapshot_reference`: the reference state as the numpy dict that
  :func:`coplay.envs.overcooked.scripted.snapshot_jax` makes of ours;
- :func:`to_reference_state`: a JAX state rebuilt as a reference state (hand-built starts);
- :func:`reference_events`: our event flags mapped onto the reference's ``event_infos`` names.
"""

from __future__ import annotations

import numpy as np

from coplay.envs.overcooked.layouts import POT, Layout
from coplay.envs.overcooked.scripted import snapshot_jax
from coplay.envs.overcooked.state import (
    DIR_DELTAS,
    DISH,
    NOTHING,
    ONION,
    SOUP,
    TOMATO,
    EnvParams,
    State,
    make_params,
    recipe_tables,
)

_NAME_TO_OBJ = {"onion": ONION, "tomato": TOMATO, "dish": DISH, "soup": SOUP}
_OBJ_TO_NAME = {v: k for k, v in _NAME_TO_OBJ.items()}


def _dir_index(d) -> int:
    return int(np.flatnonzero((DIR_DELTAS == np.array(d)).all(axis=1))[0])


def reference_mdp(layout: Layout):
    """An ``overcooked`` OvercookedGridworld equivalent to ``layout``."""
    from overcooked.mdp.overcooked_mdp import OvercookedGridworld

    orders = sorted(layout.orders)
    order_dicts = [{"ingredients": ["onion"] * o + ["tomato"] * t} for o, t in orders]
    overwrite: dict = {"old_dynamics": layout.old_dynamics, "start_all_orders": order_dicts}
    if not layout.old_dynamics:
        overwrite["recipe_values"] = [layout.orders[r][0] for r in orders]
        overwrite["recipe_times"] = [layout.orders[r][1] for r in orders]
    grid = [row for row in layout.grid]
    return OvercookedGridworld.from_grid(grid, params_to_overwrite=overwrite)


def configure(mdp) -> None:
    """Re-apply ``mdp``'s recipe config (the reference keeps it in a class-level global)."""
    from overcooked.mdp.overcooked_mdp import Recipe

    Recipe.configure(mdp.recipe_config)


def reference_params(layout: Layout, **kwargs) -> EnvParams:
    """EnvParams matching the reference: non-orders worth 0, placement shaping unconditional."""
    value, _ = recipe_tables(layout)
    value = value.copy()
    value[value < 0] = 0.0
    kwargs.setdefault("placement_needs_viable", False)
    return make_params(layout, recipe_value=value, **kwargs)


def _empty_snapshot(h: int, w: int) -> dict[str, np.ndarray]:
    return {
        "pos": np.zeros((2, 2), np.int32),
        "dir": np.zeros((2,), np.int32),
        "held": np.zeros((2,), np.int32),
        "held_soup": np.zeros((2, 2), np.int32),
        "obj": np.zeros((h, w), np.int32),
        "soup": np.zeros((h, w, 2), np.int32),
        "pot_tick": np.full((h, w), -1, np.int32),
    }


def _soup_counts(obj) -> tuple[int, int]:
    ings = obj.ingredients
    return ings.count("onion"), ings.count("tomato")


def snapshot_reference(state, layout: Layout) -> dict[str, np.ndarray]:
    """Reference state -> numpy dict (pot ticks only on pot cells, -1 when idle / empty)."""
    snap = _empty_snapshot(layout.height, layout.width)
    for i, p in enumerate(state.players):
        snap["pos"][i] = p.position
        snap["dir"][i] = _dir_index(p.orientation)
        if p.held_object is not None:
            snap["held"][i] = _NAME_TO_OBJ[p.held_object.name]
            if p.held_object.name == "soup":
                snap["held_soup"][i] = _soup_counts(p.held_object)
    for (x, y), obj in state.objects.items():
        snap["obj"][y, x] = _NAME_TO_OBJ[obj.name]
        if obj.name == "soup":
            snap["soup"][y, x] = _soup_counts(obj)
            if layout.terrain[y, x] == POT:
                snap["pot_tick"][y, x] = obj._cooking_tick
    return snap


def _make_soup(pos, counts, tick):
    from overcooked.mdp.overcooked_mdp import ObjectState, SoupState

    ings = [ObjectState("onion", pos) for _ in range(counts[0])]
    ings += [ObjectState("tomato", pos) for _ in range(counts[1])]
    return SoupState(pos, ingredients=ings, cooking_tick=int(tick))


def to_reference_state(state: State, layout: Layout, mdp):
    """Rebuild an (unbatched) JAX state as a reference OvercookedState.

    Soups outside pots are ready soups: they get ``cooking_tick`` = their cook time.
    """
    from overcooked.mdp.actions import Direction
    from overcooked.mdp.overcooked_mdp import ObjectState, OvercookedState, PlayerState

    _, cook_time = recipe_tables(layout)
    s = snapshot_jax(state, layout)
    players = []
    for i in range(2):
        pos = tuple(int(v) for v in s["pos"][i])
        held = None
        if s["held"][i] == SOUP:
            o, t = s["held_soup"][i]
            held = _make_soup(pos, (o, t), cook_time[o, t])
        elif s["held"][i] != NOTHING:
            held = ObjectState(_OBJ_TO_NAME[int(s["held"][i])], pos)
        players.append(PlayerState(pos, Direction.INDEX_TO_DIRECTION[int(s["dir"][i])], held))
    objects = {}
    for y, x in zip(*np.nonzero(s["obj"]), strict=True):
        pos = (int(x), int(y))
        code = int(s["obj"][y, x])
        if code == SOUP:
            o, t = s["soup"][y, x]
            tick = s["pot_tick"][y, x] if layout.terrain[y, x] == POT else cook_time[o, t]
            objects[pos] = _make_soup(pos, (o, t), tick)
        else:
            objects[pos] = ObjectState(_OBJ_TO_NAME[code], pos)
    return OvercookedState(
        players,
        objects,
        all_orders=mdp.start_all_orders,
        timestep=int(np.asarray(state.time)),
    )


# Reference event name -> function of our (per-agent) named flags.
def reference_events(ours: dict[str, np.ndarray], from_dispenser_dish: np.ndarray):
    """Our events -> the reference ``event_infos`` keys we can reproduce exactly.

    ``ours``: name -> (2,) flags (missing names count as 0). ``from_dispenser_dish``: (2,)
    the dish came from the dispenser (the reference also judges counter dish pickups).
    """
    g = lambda n: np.asarray(ours.get(n, np.zeros(2, np.int32)), bool)  # noqa: E731
    out = {
        "onion_pickup": g("pickup_onion_from_X") | g("pickup_onion_from_O"),
        "dish_pickup": g("pickup_dish_from_X") | g("pickup_dish_from_D"),
        "soup_pickup": g("pickup_soup_from_X") | g("SOUP_PICKUP"),
        "onion_drop": g("put_onion_on_X"),
        "dish_drop": g("put_dish_on_X"),
        "soup_drop": g("put_soup_on_X"),
        "tomato_drop": g("put_tomato_on_X"),
        "soup_delivery": g("delivery"),
    }
    out["useful_dish_pickup"] = g("USEFUL_DISH_PICKUP") & from_dispenser_dish
    return out
