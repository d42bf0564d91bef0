"""INTERACT resolution, events and pot cooking (Overcooked-AI / ZSC-Eval rules).

Interacts are resolved before movement, cook 0 first then cook 1 on the updated kitchen
(as the reference does: both may touch the same cell in one step). One function handles one
cook; :func:`resolve_interacts` applies it to each index of the agent axis in turn.

Rules, for the cell the cook faces:
- counter: place the held object on an empty counter, or pick up what lies there;
- onion / tomato / dish dispenser with an empty hand: take one;
- pot, holding an ingredient, pot not full (idle with < 3 ingredients): add it;
- pot, holding a dish, soup ready: take the soup;
- pot, empty hand, new dynamics: start cooking an idle non-empty pot;
- serving tile, holding a soup: deliver it for the recipe's value (sparse reward).
Cooking (after movement): old dynamics start an idle pot holding 3 ingredients; every cooking
pot advances one tick; a soup is ready when its tick reaches the recipe's cook time.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

import coplay.envs.overcooked.events as E
from coplay.envs.overcooked.events import EventIndex
from coplay.envs.overcooked.layouts import (
    COUNTER,
    DISH_DISP,
    ONION_DISP,
    POT,
    SERVE,
    TOMATO_DISP,
)
from coplay.envs.overcooked.rewards import optimal_value_table
from coplay.envs.overcooked.state import (
    DISH,
    INTERACT,
    NOTHING,
    ONION,
    SOUP,
    STAY,
    TOMATO,
    EnvParams,
    State,
)


@struct.dataclass
class _View:
    """What one cook sees of the cell it faces (scalars), and the dishes on counters."""

    terr: jnp.ndarray
    obj: jnp.ndarray
    tick: jnp.ndarray
    soup: jnp.ndarray  # (2,)
    dishes_on_counters: jnp.ndarray


@struct.dataclass
class _Carry:
    """What the interacts of one step update, cook by cook."""

    held: jnp.ndarray  # (2,)
    held_soup: jnp.ndarray  # (2, 2)
    obj: jnp.ndarray  # (H, W)
    soup: jnp.ndarray  # (H, W, 2)
    tick: jnp.ndarray  # (H, W)
    events: jnp.ndarray  # (2, E) int32
    sparse: jnp.ndarray  # (2,) float32 sparse reward earned by each cook
    shaped: jnp.ndarray  # (2,) float32 standard shaped reward earned by each cook


def materialise(*arrays: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """The arrays themselves, each passed through a two-way max with its dtype's lowest value.

    A compile hint: XLA on CPU fuses cheap elementwise producers into every consumer, so a
    per-env value computed by a long chain and then broadcast over the grid is recomputed for
    every cell (and every channel of the obs). A reduction's result is not fused into its
    consumers, so the values are computed once. (``optimization_barrier`` is removed by
    XLA:CPU; an identity matmul also works but costs a kernel ≈ the whole obs at batch 512.)
    """
    def once(a):
        low = -jnp.inf if jnp.issubdtype(a.dtype, jnp.floating) else (
            jnp.iinfo(a.dtype).min if a.dtype != jnp.bool_ else False)
        return jnp.max(jnp.stack([a, jnp.full_like(a, low)]), axis=0)
    return tuple(once(a) for a in arrays)


def select(conds, values, default):
    """``jnp.select`` as a chain of ``where`` (first true condition wins).

    (``jnp.select`` lowers to an arg-max reduction over the stacked conditions, one more XLA
    kernel per call under vmap on CPU; a where-chain fuses with its neighbours.)
    """
    out = default
    for cond, value in zip(reversed(conds), reversed(values), strict=True):
        out = jnp.where(cond, value, out)
    return out


def table_lookup(table: jnp.ndarray, counts: jnp.ndarray) -> jnp.ndarray:
    """table (4, 4)[onions, tomatoes] at counts (..., 2) (each count in 0..3)."""
    index = counts[..., 0] * 4 + counts[..., 1]
    return jnp.take(table.reshape(16), index, mode="clip")


def pot_status(obj, soup, tick, params: EnvParams):
    """Per-cell booleans (H, W): soup present, idle, ready, cooking; and ingredient count."""
    has_soup = obj == SOUP
    n = soup[..., 0] + soup[..., 1]
    cook_time = table_lookup(params.recipe_time, soup)
    idle = tick < 0
    ready = has_soup & ~idle & (tick >= cook_time)
    cooking = has_soup & ~idle & ~ready
    return has_soup, idle, ready, cooking, n


def _interact_one(
    i: int,
    c: _Carry,
    state: State,
    actions: jnp.ndarray,
    params: EnvParams,
    n_useful_pots: jnp.ndarray,
    opt_value: jnp.ndarray,
    old_dynamics: bool,
    ev: EventIndex,
    view: _View,
):
    """Resolve cook ``i``'s action (a no-op unless INTERACT) given its view of the faced cell.

    Returns the carry (without grids) and the new (obj, soup (2,), tick) of the faced cell.
    """
    a = actions[i]
    inter = a == INTERACT
    terr, cell_obj, cell_tick, cell_soup = view.terr, view.obj, view.tick, view.soup
    dishes_on_counters = view.dishes_on_counters
    held, held_soup = c.held[i], c.held_soup[i]
    has = held != NOTHING

    # Which rule fires (mutually exclusive, Overcooked-AI's if/elif order).
    on_counter = inter & (terr == COUNTER)
    put = on_counter & has & (cell_obj == NOTHING)
    take = on_counter & ~has & (cell_obj != NOTHING)
    idle_counter = on_counter & ~put & ~take
    take_onion = inter & (terr == ONION_DISP) & ~has
    take_tomato = inter & (terr == TOMATO_DISP) & ~has
    take_dish = inter & (terr == DISH_DISP) & ~has
    at_pot = inter & (terr == POT)
    n_in_pot = jnp.where(cell_obj == SOUP, cell_soup[0] + cell_soup[1], 0)
    pot_idle = cell_tick < 0
    cook_time = table_lookup(params.recipe_time, cell_soup)
    pot_ready = (cell_obj == SOUP) & ~pot_idle & (cell_tick >= cook_time)
    start_cook = at_pot & ~has & (cell_obj == SOUP) & pot_idle & (n_in_pot > 0)
    if old_dynamics:
        start_cook = jnp.zeros_like(start_cook)
    pick_soup = at_pot & (held == DISH) & pot_ready
    is_ingredient = (held == ONION) | (held == TOMATO)
    pot_full = (cell_obj == SOUP) & (~pot_idle | (n_in_pot >= 3))
    add = at_pot & is_ingredient & ~pot_full
    deliver = inter & (terr == SERVE) & (held == SOUP)
    pot_claims = (terr == POT) & (has if old_dynamics else True)
    matched = (
        (terr == COUNTER)
        | ((terr == ONION_DISP) & ~has)
        | ((terr == TOMATO_DISP) & ~has)
        | ((terr == DISH_DISP) & ~has)
        | pot_claims
        | ((terr == SERVE) & has)
    )
    idle_other = inter & ~matched

    # Placement judgements (on the best order reachable from the pot's contents).
    ing_vec = jnp.stack([held == ONION, held == TOMATO]).astype(jnp.int32)  # (2,)
    old_c = jnp.where(cell_obj == SOUP, cell_soup, 0)
    new_c = jnp.minimum(old_c + ing_vec, 3)
    v_old, v_new = table_lookup(opt_value, old_c), table_lookup(opt_value, new_c)
    optimal, viable = v_old == v_new, v_new > 0
    catastrophic, useless = (v_old > 0) & (v_new == 0), v_old == 0

    # USEFUL_DISH_PICKUP: fewer dishes held than non-empty pots (at step start), none on counters.
    dishes_held = (c.held[0] == DISH).astype(jnp.int32) + (c.held[1] == DISH)
    useful_dish = take_dish & (dishes_on_counters == 0) & (dishes_held < n_useful_pots)

    # Every rule flag packed into one integer and computed once (see materialise): the
    # kitchen updates, events and rewards below all read them, and XLA would otherwise
    # recompute the whole chain above inside each of their kernels.
    flags = (put, take, idle_counter, take_onion, take_tomato, take_dish, pick_soup, add,
             start_cook, deliver, idle_other, useful_dish, optimal, viable, catastrophic,
             useless)
    packed = sum(flag.astype(jnp.int32) << k for k, flag in enumerate(flags))
    (packed,) = materialise(packed)
    (put, take, idle_counter, take_onion, take_tomato, take_dish, pick_soup, add, start_cook,
     deliver, idle_other, useful_dish, optimal, viable, catastrophic, useless) = (
        ((packed >> k) & 1) != 0 for k in range(len(flags)))

    # Rewards.
    value = table_lookup(params.recipe_value, held_soup)
    sparse = jnp.where(deliver, value, 0.0)
    pays_placement = add & (~params.placement_needs_viable | optimal | viable)
    shaped = (
        params.shaping[0] * pays_placement
        + params.shaping[1] * useful_dish
        + params.shaping[2] * pick_soup
    )

    # Events of this cook.
    n_held_soup = held_soup[0] + held_soup[1]
    kind = select(
        [a == STAY, a < 4, put, take, take_onion, take_tomato, take_dish, pick_soup, add,
         start_cook, deliver, idle_counter, idle_other],
        [E.K_STAY, E.K_MOVE, E.K_PUT, E.K_TAKE, E.K_TAKE_O, E.K_TAKE_T, E.K_TAKE_D,
         E.K_PICK_SOUP, E.K_ADD, E.K_COOK, E.K_DELIVER, E.K_IDLE_X, E.K_IDLE_OTHER],
        E.K_NONE,
    )
    obj_code = jnp.where(put | add, held, jnp.where(take, cell_obj, 0))
    i32 = lambda b: b.astype(jnp.int32)  # noqa: E731
    bits = (
        i32(useful_dish) * E.B_USEFUL + i32(viable) * E.B_VIABLE + i32(optimal) * E.B_OPTIMAL
        + i32(catastrophic) * E.B_CATASTROPHIC + i32(useless) * E.B_USELESS
        + i32(n_held_soup == 2) * E.B_SIZE2 + i32(n_held_soup == 3) * E.B_SIZE3
        + i32(value <= 0) * E.B_USELESS_DELIVERY
    )

    # Kitchen updates.
    new_held = select(
        [put | add | deliver, take, take_onion, take_tomato, take_dish, pick_soup],
        [NOTHING, cell_obj, ONION, TOMATO, DISH, SOUP],
        held,
    )
    new_held_soup = select(
        [put | add | deliver, take | pick_soup], [jnp.zeros(2, jnp.int32), cell_soup], held_soup
    )
    new_cell_obj = select([put, take | pick_soup, add], [held, NOTHING, SOUP], cell_obj)
    new_cell_soup = select(
        [put, take | pick_soup, add], [held_soup, jnp.zeros(2, jnp.int32), new_c], cell_soup
    )
    new_cell_tick = select([take | pick_soup, start_cook], [-1, 0], cell_tick)
    dish_delta = (put & (held == DISH)).astype(jnp.int32) - (take & (cell_obj == DISH))
    # Computed once per cook (see materialise), then spread over events and grid cells.
    (kind, obj_code, bits, new_held, new_held_soup, new_cell_obj, new_cell_soup,
     new_cell_tick) = materialise(kind, obj_code, bits, new_held, new_held_soup, new_cell_obj,
                                  new_cell_soup, new_cell_tick)
    kinds, objs, need = (jnp.asarray(t) for t in E.event_tables(old_dynamics))
    row = (
        ((jnp.left_shift(1, kind) & kinds) != 0)
        & ((objs < 0) | (obj_code == objs))
        & ((bits & need) == need)
    ).astype(jnp.int32)  # (E,)
    me = jnp.arange(2) == i  # (2,) this cook's row
    carry = c.replace(
        held=jnp.where(me, new_held, c.held),
        held_soup=jnp.where(me[:, None], new_held_soup, c.held_soup),
        events=jnp.where(me[:, None], row, c.events),
        sparse=jnp.where(me, sparse, c.sparse),
        shaped=jnp.where(me, shaped, c.shaped),
    )
    return carry, (new_cell_obj, new_cell_soup, new_cell_tick), dish_delta


def resolve_interacts(state: State, actions: jnp.ndarray, params: EnvParams, old_dynamics: bool):
    """Apply both cooks' interacts in order -> carry (kitchen, events, rewards)."""
    ev = EventIndex(old_dynamics)
    is_pot = params.terrain == POT
    # ready | cooking = a soup whose timer runs (no cook-time lookup per cell needed)
    has_soup, idle = state.obj == SOUP, state.tick < 0
    n = state.soup[..., 0] + state.soup[..., 1]
    partial = has_soup & idle & (n > 0) & (n < 3)
    n_useful_pots = jnp.sum(is_pot & ((has_soup & ~idle) | partial))
    opt_value = optimal_value_table(params.recipe_value)
    c = _Carry(
        held=state.held,
        held_soup=state.held_soup,
        obj=state.obj,
        soup=state.soup,
        tick=state.tick,
        events=jnp.zeros((2, len(ev)), jnp.int32),
        sparse=jnp.zeros((2,), jnp.float32),
        shaped=jnp.zeros((2,), jnp.float32),
    )
    d = state.dir
    fx = state.pos[:, 0] + (d == 2).astype(jnp.int32) - (d == 3)  # (2,) faced cells
    fy = state.pos[:, 1] + (d == 1).astype(jnp.int32) - (d == 0)
    h, w = params.terrain.shape
    cells = (jnp.arange(h)[None, :, None] == fy[:, None, None]) & (
        jnp.arange(w)[None, None, :] == fx[:, None, None])  # (2, H, W)
    # The faced cells are read with one row gather (two rows of the flattened grids), not a
    # masked reduction over the grid; the dishes on counters are the only grid reduction.
    grids = jnp.stack([params.terrain, state.obj, state.tick, state.soup[..., 0],
                       state.soup[..., 1]], axis=-1)
    # (always inside the grid: layouts have no floor on their border, see layouts.parse_layout)
    picked = grids.reshape(h * w, 5)[fy * w + fx]  # (2, 5)
    dishes = jnp.sum((params.terrain == COUNTER) & (state.obj == DISH), dtype=jnp.int32)
    view0 = _View(picked[0, 0], picked[0, 1], picked[0, 2], picked[0, 3:5], dishes)
    # Sequential on purpose: cook 0 acts first; cook 1 sees what cook 0 left on a shared cell.
    c, (obj0, soup0, tick0), dish_delta = _interact_one(
        0, c, state, actions, params, n_useful_pots, opt_value, old_dynamics, ev, view0)
    same = (fx[0] == fx[1]) & (fy[0] == fy[1])
    view1 = _View(
        picked[1, 0],
        jnp.where(same, obj0, picked[1, 1]),
        jnp.where(same, tick0, picked[1, 2]),
        jnp.where(same, soup0, picked[1, 3:5]),
        dishes + dish_delta,
    )
    c, (obj1, soup1, tick1), _ = _interact_one(
        1, c, state, actions, params, n_useful_pots, opt_value, old_dynamics, ev, view1)
    # Write both cells back (cook 1's values win on a shared cell: they come after cook 0's).
    c0, c1 = cells[0], cells[1]
    obj = jnp.where(c1, obj1, jnp.where(c0, obj0, state.obj))
    soup = jnp.where(c1[..., None], soup1, jnp.where(c0[..., None], soup0, state.soup))
    tick = jnp.where(c1, tick1, jnp.where(c0, tick0, state.tick))
    return c.replace(obj=obj, soup=soup, tick=tick)


def cook_pots(obj, soup, tick, params: EnvParams, old_dynamics: bool) -> jnp.ndarray:
    """Environment effects on pots: auto-start (old dynamics) then advance cooking. -> tick."""
    is_pot = params.terrain == POT
    has_soup, idle, _, _, n = pot_status(obj, soup, tick, params)
    if old_dynamics:
        tick = jnp.where(is_pot & has_soup & idle & (n == 3), 0, tick)
    cook_time = table_lookup(params.recipe_time, soup)
    cooking = is_pot & has_soup & (tick >= 0) & (tick < cook_time)
    return jnp.where(cooking, tick + 1, tick)


def idle_movement_event(events: jnp.ndarray, idle_move: jnp.ndarray, old_dynamics: bool):
    """Add the IDLE_MOVEMENT flags (2,) computed by movement to the events (2, E)."""
    ev = EventIndex(old_dynamics)
    column = jnp.arange(len(ev)) == ev["IDLE_MOVEMENT"]  # (E,)
    return events + (column[None, :] & idle_move[:, None]).astype(jnp.int32)

