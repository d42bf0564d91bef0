"""Overcooked layouts as ASCII text: the ZSC-Eval set, user layouts, validation.

Grid legend (Overcooked-AI): ``X`` counter, ``P`` pot, ``O`` onion dispenser, ``T`` tomato
dispenser, ``D`` dish dispenser, ``S`` serving tile, ``1``/``2`` start cells of cook 0 / cook 1
(floor underneath), space = floor.

A :class:`Layout` is plain Python/numpy data (static); :func:`coplay.envs.overcooked.state.
make_params` turns it into the vmappable ``EnvParams`` pytree.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np

# Terrain codes: index into TERRAIN_CHARS.
FLOOR, COUNTER, POT, ONION_DISP, TOMATO_DISP, DISH_DISP, SERVE = range(7)
TERRAIN_CHARS = " XPOTDS"
_CHAR_TO_TERRAIN = {c: i for i, c in enumerate(TERRAIN_CHARS)}

# Recipes are (onions, tomatoes) pairs with 1..3 ingredients.
ALL_RECIPES: tuple[tuple[int, int], ...] = tuple(
    (o, t) for o in range(4) for t in range(4) if 1 <= o + t <= 3
)
OLD_ORDERS = {(3, 0): (20, 20)}  # onion soup: value 20, cook time 20
NEW_ORDERS = {  # ZSC-Eval multi-recipe: ooo, oot, ott (20 pts, 20 ticks), oo, ot (10, 10)
    (3, 0): (20, 20),
    (2, 1): (20, 20),
    (1, 2): (20, 20),
    (2, 0): (10, 10),
    (1, 1): (10, 10),
}


class LayoutError(ValueError):
    """A layout text that cannot be played; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """A parsed layout. ``terrain[y, x]`` uses the terrain codes above; ``start[i] = (x, y)``.

    ``orders`` maps a recipe (onions, tomatoes) to (value, cook_time); recipes not listed are
    worth ``invalid_order_value`` and cook for ``default_cook_time`` ticks.
    """

    name: str
    grid: tuple[str, ...]
    terrain: np.ndarray  # (H, W) int32
    start: np.ndarray  # (2, 2) int32, rows (x, y)
    old_dynamics: bool
    orders: dict[tuple[int, int], tuple[int, int]]
    invalid_order_value: float = 0.0
    default_cook_time: int = 20

    @property
    def height(self) -> int:
        return int(self.terrain.shape[0])

    @property
    def width(self) -> int:
        return int(self.terrain.shape[1])

    def text(self) -> str:
        return "\n".join(self.grid)


def _clean_rows(text: str) -> list[str]:
    """Drop blank lines at both ends and the common indentation (keeps inner spaces)."""
    rows = text.split("\n")
    while rows and not rows[0].strip():
        rows.pop(0)
    while rows and not rows[-1].strip():
        rows.pop()
    indents = [len(r) - len(r.lstrip(" ")) for r in rows if r.strip()]
    cut = min(indents) if indents else 0
    return [r[cut:].rstrip("\r") for r in rows]


def parse_layout(
    text: str,
    name: str = "custom",
    old_dynamics: bool | None = None,
    orders: dict[tuple[int, int], tuple[int, int]] | None = None,
    invalid_order_value: float | None = None,
) -> Layout:
    """Parse and validate an ASCII layout; raise :class:`LayoutError` naming the problem.

    ``old_dynamics`` defaults to True unless the grid has a tomato dispenser. ``orders``
    defaults to the onion soup (old) or ZSC-Eval's five multi-recipe orders (new);
    ``invalid_order_value`` to 0 (old) or ZSC-Eval's -10 penalty (new).
    """
    rows = _clean_rows(text)
    if not rows:
        raise LayoutError(f"layout {name!r}: empty grid")
    width = len(rows[0])
    for y, row in enumerate(rows):
        if len(row) != width:
            raise LayoutError(
                f"layout {name!r}: ragged rows: row {y} has {len(row)} characters, "
                f"row 0 has {width} (pad with 'X' or spaces)"
            )
    terrain = np.zeros((len(rows), width), np.int32)
    starts: dict[int, tuple[int, int]] = {}
    for y, row in enumerate(rows):
        for x, c in enumerate(row):
            if c in "123456789":
                if int(c) in starts:
                    raise LayoutError(f"layout {name!r}: start position '{c}' appears twice")
                starts[int(c)] = (x, y)
                terrain[y, x] = FLOOR
            elif c in _CHAR_TO_TERRAIN:
                terrain[y, x] = _CHAR_TO_TERRAIN[c]
            else:
                raise LayoutError(
                    f"layout {name!r}: unknown character {c!r} at row {y}, column {x} "
                    f"(allowed: X P O T D S 1 2 and space)"
                )
    if sorted(starts) != [1, 2]:
        raise LayoutError(
            f"layout {name!r}: need exactly two start positions '1' and '2', "
            f"found {sorted(starts) or 'none'}"
        )
    for code, what in [(POT, "pot 'P'"), (SERVE, "serving tile 'S'"), (DISH_DISP, "dish "
                       "dispenser 'D'")]:
        if not (terrain == code).any():
            raise LayoutError(f"layout {name!r}: no {what}")
    if not ((terrain == ONION_DISP) | (terrain == TOMATO_DISP)).any():
        raise LayoutError(f"layout {name!r}: no ingredient dispenser ('O' or 'T')")
    height = len(rows)
    border = np.concatenate([terrain[0], terrain[-1], terrain[:, 0], terrain[:, -1]])
    border_starts = [
        p for p in starts.values() if p[0] in (0, width - 1) or p[1] in (0, height - 1)
    ]
    if (border == FLOOR).any() or border_starts:
        raise LayoutError(f"layout {name!r}: the outer border must not contain floor cells")
    has_tomato = bool((terrain == TOMATO_DISP).any())
    if old_dynamics is None:
        old_dynamics = not has_tomato
    if orders is None:
        orders = dict(OLD_ORDERS if old_dynamics else NEW_ORDERS)
    if old_dynamics and any(o + t != 3 for o, t in orders):
        raise LayoutError(f"layout {name!r}: old dynamics accept only 3-ingredient orders")
    if invalid_order_value is None:
        invalid_order_value = 0.0 if old_dynamics else -10.0
    start = np.array([starts[1], starts[2]], np.int32)
    return Layout(
        name=name,
        grid=tuple(rows),
        terrain=terrain,
        start=start,
        old_dynamics=bool(old_dynamics),
        orders=dict(orders),
        invalid_order_value=float(invalid_order_value),
    )


# The ZSC-Eval / CooT layouts (grids as published) and cramped_room.
LAYOUT_TEXTS: dict[str, str] = {
    "cramped_room": """
XXPXX
O  2O
X1  X
XDXSX
""",
    "random0": """
XXXPX
O X1P
O2X X
D X X
XXXSX
""",
    "random0_medium": """
XXXXXXXX
X   O  P
P  X  2S
X1 X   X
XDXXXXXX
""",
    "random1": """
XXXPX
X 1 P
D2X X
O   X
XOSXX
""",
    "random3": """
XXXPPXXX
X  2   X
D XXXX S
X  1   X
XXXOOXXX
""",
    "small_corridor": """
XXXXXOXDXXXXX
X  1  X  2  X
X  XXXXXXX  X
X           X
XSXXXXXXXXPPX
""",
    "unident_s": """
XXXXXXXXX
O XSXOX S
X   P 1 X
X2  P   X
XXXDXDXXX
""",
    "random0_m": """
XXXPX
O X1P
O2X X
D T X
XXXSX
""",
    "random1_m": """
XXXPX
X 1 P
D2X X
O   X
XTSXX
""",
    "random3_m": """
XXXPPXXX
X  2   X
D XXXX S
X  1   X
XOOXXTTX
""",
}

PAPER_NAMES = {
    "random0": "Forced Coord.",
    "random1": "Coord. Ring",
    "random3": "Counter Circuit",
    "unident_s": "Asymm. Adv.",
    "random0_medium": "Bothway Coord.",
    "small_corridor": "Blocked Corr.",
    "random0_m": "Forced Coord. multi-recipe",
    "random1_m": "Coord. Ring multi-recipe",
    "random3_m": "Counter Circuit multi-recipe",
    "cramped_room": "Cramped Room",
}


def layout_names() -> list[str]:
    return list(LAYOUT_TEXTS)


# Fields of an Overcooked-AI `.layout` file this env honours, with the values it supports
# (old dynamics: one onion soup worth 20 that cooks 20 ticks).
_AI_FIELD_DEFAULTS = {"start_bonus_orders": [], "rew_shaping_params": None,
                      "cook_time": 20, "num_items_for_soup": 3, "delivery_reward": 20}


def parse_overcooked_ai_layout(text: str, name: str = "custom", **kwargs) -> Layout:
    """An Overcooked-AI ``.layout`` file (a Python dict literal with a ``grid`` string, read
    with ``ast.literal_eval``, never ``eval``). Its ``start_all_orders`` must be the orders
    coplay plays for the grid's dynamics, the other fields their defaults; anything else is
    refused by field name (the dynamics here cannot honour it)."""
    try:
        spec = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise LayoutError(f"layout {name!r}: not a valid Overcooked-AI .layout dict ({e})") \
            from None
    if not isinstance(spec, dict) or not isinstance(spec.get("grid"), str):
        raise LayoutError(f"layout {name!r}: an Overcooked-AI .layout needs a 'grid' string")
    grid = "\n".join(row.strip() for row in spec["grid"].strip().split("\n"))
    layout = parse_layout(grid, name=name, **kwargs)
    for field, value in spec.items():
        if field == "grid":
            continue
        if field == "start_all_orders":
            want = sorted(layout.orders)
            try:
                got = sorted((o["ingredients"].count("onion"), o["ingredients"].count("tomato"))
                             for o in value)
            except (TypeError, KeyError, AttributeError):
                got = None
            if got != want:
                raise LayoutError(
                    f"layout {name!r}: Overcooked-AI field start_all_orders = {value!r} is "
                    f"not supported: the {'old' if layout.old_dynamics else 'new'} dynamics "
                    f"play the orders (onions, tomatoes) {want}")
        elif field in _AI_FIELD_DEFAULTS:
            if value != _AI_FIELD_DEFAULTS[field]:
                raise LayoutError(f"layout {name!r}: Overcooked-AI field {field} = {value!r} "
                                  f"is not supported (only {_AI_FIELD_DEFAULTS[field]!r})")
        else:
            raise LayoutError(f"layout {name!r}: Overcooked-AI field {field!r} is not "
                              "supported by this env")
    return layout


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith((".layout", ".txt"))


def get_layout(name_or_path: str, **kwargs) -> Layout:
    """A named layout, a path to a text file holding a grid (ASCII, or an Overcooked-AI
    ``.layout`` dict), or a grid string itself."""
    if name_or_path in LAYOUT_TEXTS:
        return parse_layout(LAYOUT_TEXTS[name_or_path], name=name_or_path, **kwargs)
    if "\n" in name_or_path:
        return parse_layout(name_or_path, **kwargs)
    path = Path(name_or_path)
    if path.is_file():
        text = path.read_text()
        if text.lstrip().startswith("{"):
            return parse_overcooked_ai_layout(text, name=path.stem, **kwargs)
        return parse_layout(text, name=path.stem, **kwargs)
    if _looks_like_path(name_or_path):
        raise LayoutError(f"layout file not found: {name_or_path}")
    raise LayoutError(
        f"unknown layout {name_or_path!r}: not one of {', '.join(LAYOUT_TEXTS)} "
        "(or give the path of a layout file)"
    )
