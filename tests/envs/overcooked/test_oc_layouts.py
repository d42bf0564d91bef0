"""Layouts: the published grids parse; user layouts are validated with named problems."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from coplay.envs.overcooked import LayoutError, Overcooked, get_layout, layout_names, parse_layout
from coplay.envs.overcooked.layouts import COUNTER, FLOOR, POT


def test_all_named_layouts_parse_with_their_dynamics():
    names = layout_names()
    assert len(names) == 10
    for name in names:
        lay = get_layout(name)
        assert lay.old_dynamics == (not name.endswith("_m"))
    r1 = get_layout("random1")
    assert r1.terrain.shape == (5, 5) and r1.start.tolist() == [[2, 1], [1, 2]]
    assert r1.terrain[0, 3] == POT and r1.terrain[1, 2] == FLOOR and r1.terrain[2, 2] == COUNTER
    assert set(get_layout("random3_m").orders) == {(3, 0), (2, 1), (1, 2), (2, 0), (1, 1)}


def test_user_layout_from_string_and_file(tmp_path):
    text = "XXPXX\nO 1 D\nX 2 S\nXXXXX\n"
    lay = parse_layout(text, name="mine")
    assert lay.old_dynamics and lay.start.tolist() == [[2, 1], [2, 2]]
    f = tmp_path / "kitchen.txt"
    f.write_text("\n    " + text.replace("\n", "\n    "))  # indented text is fine
    env = Overcooked(str(f))
    assert env.layout.name == "kitchen" and env.obs_shape == (4, 5, 20)
    assert Overcooked(get_layout(text, old_dynamics=False)).obs_shape == (4, 5, 25)


@pytest.mark.parametrize(
    "grid,message",
    [
        ("XXPXX\nO 1?D\nX 2 S\nXXXXX", "unknown character '?'"),
        ("XXPXX\nO 1 D\nX   S\nXXXXX", "exactly two start positions"),
        ("XXPXX\nO1 2D\nX 3 S\nXXXXX", "exactly two start positions"),
        ("XXPXX\nO 1 D\nX 1 S\nXXXXX", "appears twice"),
        ("XXXXX\nO 1 D\nX 2 S\nXXXXX", "no pot"),
        ("XXPXX\nO 1 D\nX 2 X\nXXXXX", "no serving tile"),
        ("XXPXX\nO 1 X\nX 2 S\nXXXXX", "no dish dispenser"),
        ("XXPXX\nX 1 D\nX 2 S\nXXXXX", "no ingredient dispenser"),
        ("XXPXX\nO 1 D\nX 2 SX\nXXXXX", "ragged rows: row 2 has 6"),
        ("XXPXX\n  1 D\nO 2 S\nXXXXX", "border"),
        ("", "empty grid"),
    ],
)
def test_invalid_layouts_name_the_problem(grid, message):
    with pytest.raises(LayoutError, match=message.replace("?", r"\?")):
        parse_layout(grid)


def test_unknown_name():
    with pytest.raises(LayoutError, match="unknown layout 'nope'"):
        get_layout("nope")


def test_old_dynamics_reject_two_ingredient_orders():
    with pytest.raises(LayoutError, match="3-ingredient"):
        parse_layout(get_layout("random1").text(), old_dynamics=True, orders={(2, 0): (10, 10)})
    assert np.asarray(get_layout("random1_m").terrain).max() <= 6


# --- files as users have them (issue 19) -------------------------------------------------------
def _ai_layouts():
    overcooked = pytest.importorskip("overcooked")  # the reference package (dev extra)
    return Path(os.path.dirname(overcooked.__file__)) / "data" / "layouts"


def test_an_overcooked_ai_layout_file_loads_as_the_built_in_grid():
    got = get_layout(str(_ai_layouts() / "cramped_room.layout"))
    want = get_layout("cramped_room")
    assert got.grid == want.grid and got.orders == want.orders and got.old_dynamics
    np.testing.assert_array_equal(got.terrain, want.terrain)


def test_overcooked_ai_fields_that_cannot_be_honoured_are_refused_by_name(tmp_path):
    with pytest.raises(LayoutError, match="start_bonus_orders"):
        get_layout(str(_ai_layouts() / "counter_circuit.layout"))
    f = tmp_path / "slow.layout"
    f.write_text('{"grid": """XXPXX\n O  2O\n X1  X\n XDXSX""", "cook_time": 5}')
    with pytest.raises(LayoutError, match="cook_time = 5"):
        get_layout(str(f))
    f.write_text('{"grid": "XXPXX", "__import__": 1}')
    with pytest.raises(LayoutError):
        get_layout(str(f))
    f.write_text('{"grid": __import__("os").system("echo no")}')  # never evaluated
    with pytest.raises(LayoutError, match="not a valid Overcooked-AI .layout"):
        get_layout(str(f))


def test_a_missing_file_says_so_and_an_unknown_name_lists_the_names():
    with pytest.raises(LayoutError, match="layout file not found: runs/nope.layout"):
        get_layout("runs/nope.layout")
    with pytest.raises(LayoutError, match="not one of cramped_room"):
        get_layout("nope")
