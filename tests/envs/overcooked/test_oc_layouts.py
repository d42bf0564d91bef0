"""Layouts: the published grids parse; user layouts are validated with named problems."""

from __future__ import annotations

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
