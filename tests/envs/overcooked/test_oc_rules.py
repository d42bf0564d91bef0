"""Hand-built states, one per rule of the dynamics and of ZSC-Eval's events."""

from __future__ import annotations

import numpy as np
import pytest
from oc_helpers import INTERACT, STAY, E, N, S, W, events_of, make_state, rule_env, step

from coplay.envs.overcooked.state import DISH, NOTHING, ONION, SOUP, TOMATO

POT0, COUNTER_N, SERVE = (1, 0), (2, 0), (1, 2)


def cell(state, xy, field="obj"):
    x, y = xy
    return np.asarray(getattr(state, field))[y, x].tolist()


# --- dispensers ---------------------------------------------------------------------------


@pytest.mark.parametrize("old", [True, False])
def test_dish_dispenser_pickup_and_usefulness(old):
    env, p = rule_env(old)
    s = make_state(p, dirs=(3, 0))  # cook 0 faces W: dish dispenser
    s1, r, info = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == DISH
    assert events_of(env, info, 0) == {"pickup_dish_from_D"}  # no pot in use: not useful
    assert float(info["shaped_by_agent"][0]) == 0.0
    cooking = make_state(p, dirs=(3, 0), pots={(3, 2): (3, 0, 5)})
    s1, r, info = step(env, cooking, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {"pickup_dish_from_D", "USEFUL_DISH_PICKUP"}
    assert float(info["shaped_by_agent"][0]) == 3.0
    # a dish lying on a counter makes the pickup useless (anti reward-hacking rule)
    s = make_state(p, dirs=(3, 0), pots={(3, 2): (3, 0, 5)}, objects={COUNTER_N: (DISH, (0, 0))})
    _, _, info = step(env, s, (INTERACT, STAY), p)
    assert "USEFUL_DISH_PICKUP" not in events_of(env, info, 0)
    # one cooking pot and the partner already holding a dish: not useful either
    s = make_state(p, dirs=(3, 0), held=(0, DISH), pots={(3, 2): (3, 0, 5)})
    _, _, info = step(env, s, (INTERACT, STAY), p)
    assert "USEFUL_DISH_PICKUP" not in events_of(env, info, 0)


def test_onion_and_tomato_dispensers():
    env, p = rule_env(False)
    s = make_state(p, dirs=(0, 0))  # cook 1 faces N: onion dispenser
    s1, _, info = step(env, s, (STAY, INTERACT), p)
    assert int(s1.held[1]) == ONION and events_of(env, info, 1) == {"pickup_onion_from_O"}
    s = make_state(p, dirs=(0, 2))  # cook 1 faces E: tomato dispenser
    s1, _, info = step(env, s, (STAY, INTERACT), p)
    assert int(s1.held[1]) == TOMATO and events_of(env, info, 1) == {"pickup_tomato_from_T"}
    # holding something at a dispenser: nothing happens, an idle interact
    s = make_state(p, dirs=(0, 0), held=(0, DISH))
    s1, _, info = step(env, s, (STAY, INTERACT), p)
    assert int(s1.held[1]) == DISH and events_of(env, info, 1) == {"IDLE_INTERACT"}


# --- counters -----------------------------------------------------------------------------


@pytest.mark.parametrize("old", [True, False])
@pytest.mark.parametrize("item", [ONION, DISH, SOUP])
def test_counter_place_and_pick_up(old, item):
    env, p = rule_env(old)
    soup = (3, 0) if item == SOUP else (0, 0)
    s = make_state(p, pos=((2, 1), (3, 1)), held=(item, 0), held_soup=(soup, (0, 0)))
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    name = {ONION: "onion", DISH: "dish", SOUP: "soup"}[item]
    assert events_of(env, info, 0) == {f"put_{name}_on_X"}
    assert int(s1.held[0]) == NOTHING and cell(s1, COUNTER_N) == item
    assert cell(s1, COUNTER_N, "soup") == list(soup)
    s2, _, info = step(env, s1, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {f"pickup_{name}_from_X"}
    assert int(s2.held[0]) == item and cell(s2, COUNTER_N) == NOTHING
    assert np.asarray(s2.held_soup[0]).tolist() == list(soup)
    # empty hand on an empty counter: idle interact on a counter
    s3, _, info = step(env, make_state(p, pos=((2, 1), (3, 1))), (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {"IDLE_INTERACT_X" if old else "IDLE_INTERACT"}
    # full hand on an occupied counter: also idle
    s = make_state(p, pos=((2, 1), (3, 1)), held=(DISH, 0), objects={COUNTER_N: (ONION, (0, 0))})
    s4, _, info = step(env, s, (INTERACT, STAY), p)
    assert int(s4.held[0]) == DISH and cell(s4, COUNTER_N) == ONION
    assert events_of(env, info, 0) == {"IDLE_INTERACT_X" if old else "IDLE_INTERACT"}


# --- pots ---------------------------------------------------------------------------------


def test_old_dynamics_pot_fills_and_starts_by_itself():
    env, p = rule_env(True)
    s = make_state(p, held=(ONION, 0))
    for n in (1, 2, 3):
        s, _, info = step(env, s, (INTERACT, STAY), p)
        assert events_of(env, info, 0) == {"PLACEMENT_IN_POT"}
        assert float(info["shaped_by_agent"][0]) == 3.0
        assert cell(s, POT0, "soup") == [n, 0]
        assert cell(s, POT0, "tick") == (1 if n == 3 else -1)  # starts at the third onion
        s = s.replace(held=s.held.at[0].set(ONION))
    # full (cooking) pot: a fourth onion is refused
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == ONION and events_of(env, info, 0) == set()
    # empty hand on a pot: old dynamics call that an idle interact (no manual start)
    s = make_state(p, pots={POT0: (2, 0, -1)})
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    assert cell(s1, POT0, "tick") == -1 and events_of(env, info, 0) == {"IDLE_INTERACT_EMPTY"}


def test_new_dynamics_interact_starts_cooking_and_counts_down():
    env, p = rule_env(False)
    s = make_state(p, pots={POT0: (2, 0, -1)})  # oo: value 10, cook time 10
    s, _, info = step(env, s, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {"cook"} and cell(s, POT0, "tick") == 1
    for k in range(2, 11):
        s, _, _ = step(env, s, (STAY, STAY), p)
        assert cell(s, POT0, "tick") == k
    s, _, _ = step(env, s, (STAY, STAY), p)
    assert cell(s, POT0, "tick") == 10  # ready: the timer stops at the cook time
    # three ingredients do not start by themselves under the new dynamics
    s = make_state(p, held=(ONION, 0), pots={POT0: (1, 1, -1)})
    s, _, info = step(env, s, (INTERACT, STAY), p)
    assert cell(s, POT0, "soup") == [2, 1] and cell(s, POT0, "tick") == -1
    assert {"PLACEMENT_IN_POT", "potting_onion"} <= events_of(env, info, 0)
    # an empty pot cannot be started
    s = make_state(p)
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    assert cell(s1, POT0) == NOTHING and events_of(env, info, 0) == set()


def test_soup_pickup_needs_a_dish_and_a_ready_soup():
    env, p = rule_env(False)
    s = make_state(p, held=(DISH, 0), pots={POT0: (3, 0, 19)})  # not ready yet
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == DISH and events_of(env, info, 0) == set()
    s = make_state(p, held=(DISH, 0), pots={POT0: (3, 0, 20)})
    s1, _, info = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == SOUP and np.asarray(s1.held_soup[0]).tolist() == [3, 0]
    assert cell(s1, POT0) == NOTHING and cell(s1, POT0, "tick") == -1
    assert events_of(env, info, 0) == {"SOUP_PICKUP"}
    assert float(info["shaped_by_agent"][0]) == 5.0


def test_placement_judgements_zsc_eval_values():
    env, p = rule_env(False)
    s = make_state(p, held=(ONION, 0))
    _, _, info = step(env, s, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {
        "PLACEMENT_IN_POT", "potting_onion", "optimal_placement", "viable_placement"}
    # tt + t = ttt is no order: not viable, no shaping; with ZSC-Eval's -10 it is not
    # "catastrophic" either (that needs a value of exactly 0)
    s = make_state(p, held=(TOMATO, 0), pots={POT0: (0, 2, -1)})
    _, _, info = step(env, s, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {"PLACEMENT_IN_POT", "potting_tomato"}
    assert float(info["shaped_by_agent"][0]) == 0.0
    # with the reference's convention (non-orders worth 0) it is catastrophic
    env, p0 = rule_env(False, recipe_value=np.where(p.recipe_value < 0, 0.0, p.recipe_value))
    _, _, info = step(env, s, (INTERACT, STAY), p0)
    assert "catastrophic_placement" in events_of(env, info, 0)


# --- delivery -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "soup,value,extra",
    [((3, 0), 20, "three"), ((2, 1), 20, "three"), ((1, 2), 20, "three"),
     ((2, 0), 10, "two"), ((1, 1), 10, "two"), ((0, 3), -10, "three"), ((0, 2), -10, "two"),
     ((1, 0), -10, None)],
)
def test_delivery_of_each_order_new(soup, value, extra):
    env, p = rule_env(False)
    s = make_state(p, dirs=(1, 0), held=(SOUP, 0), held_soup=(soup, (0, 0)))
    s1, r, info = step(env, s, (INTERACT, STAY), p)
    assert float(info["sparse_reward"]) == value and r.tolist() == [value, value]
    assert int(s1.held[0]) == NOTHING
    want = {"delivery"} | ({f"deliver_size_{extra}_order"} if extra else set())
    if value <= 0:
        want.add("deliver_useless_order")
    assert events_of(env, info, 0) == want


def test_delivery_old_and_wrong_objects():
    env, p = rule_env(True)
    s = make_state(p, dirs=(1, 0), held=(SOUP, 0), held_soup=((3, 0), (0, 0)))
    _, r, info = step(env, s, (INTERACT, STAY), p)
    assert float(info["sparse_reward"]) == 20 and events_of(env, info, 0) == {"delivery"}
    s = make_state(p, dirs=(1, 0), held=(DISH, 0))  # a dish is not a soup
    s1, r, info = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == DISH and float(info["sparse_reward"]) == 0
    assert events_of(env, info, 0) == set()
    s = make_state(p, dirs=(1, 0))  # empty hand at the serving tile
    _, _, info = step(env, s, (INTERACT, STAY), p)
    assert events_of(env, info, 0) == {"IDLE_INTERACT_EMPTY"}


# --- movement -----------------------------------------------------------------------------


def test_blocking_and_swapping():
    env, p = rule_env(True)
    # swap attempt: both stay, both turn
    s = make_state(p, pos=((1, 1), (2, 1)))
    s1, _, info = step(env, s, (E, W), p)
    assert np.asarray(s1.pos).tolist() == [[1, 1], [2, 1]]
    assert np.asarray(s1.dir).tolist() == [2, 3]
    assert events_of(env, info, 0) == {"MOVEMENT"}
    # both into the same cell: both stay
    s = make_state(p, pos=((1, 1), (3, 1)))
    s1, _, _ = step(env, s, (E, W), p)
    assert np.asarray(s1.pos).tolist() == [[1, 1], [3, 1]]
    # into a cell the other cook leaves: allowed
    s = make_state(p, pos=((1, 1), (2, 1)))
    s1, _, _ = step(env, s, (E, E), p)
    assert np.asarray(s1.pos).tolist() == [[2, 1], [3, 1]]
    # into a cook that stays: blocked, and already facing it -> idle movement
    s = make_state(p, pos=((1, 1), (2, 1)), dirs=(2, 0))
    s1, _, info = step(env, s, (E, STAY), p)
    assert np.asarray(s1.pos).tolist() == [[1, 1], [2, 1]]
    assert events_of(env, info, 0) == {"MOVEMENT", "IDLE_MOVEMENT"}
    assert events_of(env, info, 1) == {"STAY"}
    # into a wall: turn only; facing it already -> idle movement
    s1, _, info = step(env, make_state(p), (N, S), p)
    assert np.asarray(s1.pos).tolist() == [[1, 1], [3, 1]]
    assert events_of(env, info, 0) == {"MOVEMENT", "IDLE_MOVEMENT"}
    assert events_of(env, info, 1) == {"MOVEMENT"} and int(s1.dir[1]) == 1


def test_interacts_resolve_before_movement_cook0_first():
    env, p = rule_env(False)
    # cook 0 at (2, 1) facing the N counter drops an onion; cook 1 arrives next step and takes it
    s = make_state(p, pos=((2, 1), (3, 1)), held=(ONION, 0))
    s1, _, _ = step(env, s, (INTERACT, W), p)  # cook 1 blocked? no: cook 0 does not move
    assert np.asarray(s1.pos).tolist() == [[2, 1], [3, 1]]  # (2, 1) occupied -> collision
    s2, _, _ = step(env, s1, (W, STAY), p)
    s3, _, _ = step(env, s2, (STAY, W), p)
    s4, _, _ = step(env, s3, (STAY, N), p)
    s5, _, info = step(env, s4, (STAY, INTERACT), p)
    assert int(s5.held[1]) == ONION and events_of(env, info, 1) == {"pickup_onion_from_X"}
    # interact acts on the cell faced *before* this step's move
    s = make_state(p, dirs=(3, 0))  # facing the dish dispenser
    s1, _, _ = step(env, s, (INTERACT, STAY), p)
    assert int(s1.held[0]) == DISH
