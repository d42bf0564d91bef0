"""Pictures of a state: ASCII (terminals, tests, docs), RGB frames (PNG) and episode GIFs.

Everything here runs outside jit on one (unbatched) state.

ASCII cells are 4 characters wide: ``X o`` counter with an onion, ``O``/``T``/``D``/``S``
dispensers and serving tile, ``Poo`` idle pot with two onions, ``P12`` cooking pot with 12
ticks left, ``P!!`` ready soup, ``1>d`` cook 1 facing east holding a dish. Objects: o onion,
t tomato, d dish, s soup.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from coplay.envs.overcooked.layouts import (
    COUNTER,
    DISH_DISP,
    FLOOR,
    ONION_DISP,
    POT,
    SERVE,
    TOMATO_DISP,
)
from coplay.envs.overcooked.state import SOUP, EnvParams, State

_OBJ_CHAR = {0: " ", 1: "o", 2: "t", 3: "d", 4: "s"}
_DIR_CHAR = "^v><"


def _np_state(state: State) -> dict[str, np.ndarray]:
    return {k: np.asarray(getattr(state, k)) for k in State.__dataclass_fields__}


def _pot_label(s, params_time, y, x) -> str:
    if s["obj"][y, x] != SOUP:
        return "P  "
    o, t = s["soup"][y, x]
    tick = int(s["tick"][y, x])
    if tick < 0:
        return ("P" + "o" * o + "t" * t).ljust(3)[:4]
    left = int(params_time[o, t]) - tick
    return "P!!" if left <= 0 else f"P{left:02d}"[:3]


def render_ascii(state: State, params: EnvParams) -> str:
    """A text picture of the kitchen plus one status line."""
    s = _np_state(state)
    terrain = np.asarray(params.terrain)
    rtime = np.asarray(params.recipe_time)
    h, w = terrain.shape
    who = {(int(s["pos"][i, 0]), int(s["pos"][i, 1])): i for i in range(2)}
    lines = []
    for y in range(h):
        row = []
        for x in range(w):
            code = terrain[y, x]
            if (x, y) in who:
                i = who[(x, y)]
                cell = f"{i + 1}{_DIR_CHAR[s['dir'][i]]}{_OBJ_CHAR[int(s['held'][i])]}"
            elif code == FLOOR:
                cell = "   "
            elif code == COUNTER:
                cell = "X" + _OBJ_CHAR[int(s["obj"][y, x])] + " "
            elif code == POT:
                cell = _pot_label(s, rtime, y, x)
            else:
                cell = " XPOTDS"[code] + "  "
            row.append(cell.ljust(4))
        lines.append("".join(row).rstrip())
    held = []
    for i in range(2):
        item = _OBJ_CHAR[int(s["held"][i])].strip() or "-"
        if s["held"][i] == SOUP:
            item += "(" + "o" * s["held_soup"][i][0] + "t" * s["held_soup"][i][1] + ")"
        held.append(f"cook {i + 1}: {item}")
    lines.append(f"t={int(s['time'])}  " + "  ".join(held))
    return "\n".join(lines)


# --- RGB ----------------------------------------------------------------------------------
_TERRAIN_RGB = {
    FLOOR: (236, 232, 222),
    COUNTER: (176, 132, 88),
    POT: (70, 70, 78),
    ONION_DISP: (232, 196, 70),
    TOMATO_DISP: (214, 64, 52),
    DISH_DISP: (240, 240, 245),
    SERVE: (96, 178, 96),
}
_OBJ_RGB = {1: (245, 205, 60), 2: (220, 60, 50), 3: (250, 250, 250), 4: (250, 250, 250)}
_COOK_RGB = [(52, 108, 220), (236, 132, 36)]


def _draw_object(d: ImageDraw.ImageDraw, code: int, soup, cx: float, cy: float, r: float):
    if code == 0:
        return
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_OBJ_RGB[code], outline=(40, 40, 40))
    if code == SOUP:
        o, t = int(soup[0]), int(soup[1])
        fill = (245, 205, 60) if t == 0 else (220, 60, 50) if o == 0 else (236, 132, 36)
        d.ellipse([cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6], fill=fill)


def render_rgb(state: State, params: EnvParams, tile: int = 32) -> np.ndarray:
    """(H * tile, W * tile, 3) uint8 picture of the state."""
    s = _np_state(state)
    terrain = np.asarray(params.terrain)
    rtime = np.asarray(params.recipe_time)
    h, w = terrain.shape
    img = Image.new("RGB", (w * tile, h * tile), (0, 0, 0))
    d = ImageDraw.Draw(img)
    for y in range(h):
        for x in range(w):
            code = int(terrain[y, x])
            x0, y0 = x * tile, y * tile
            d.rectangle([x0, y0, x0 + tile - 1, y0 + tile - 1], fill=_TERRAIN_RGB[code],
                        outline=(120, 110, 100) if code != FLOOR else None)
            cx, cy = x0 + tile / 2, y0 + tile / 2
            if code == POT and s["obj"][y, x] == SOUP:
                o, t = (int(v) for v in s["soup"][y, x])
                colours = [(245, 205, 60)] * o + [(220, 60, 50)] * t
                for k, col in enumerate(colours):
                    px = x0 + tile * (0.25 + 0.25 * k)
                    d.ellipse([px - tile * 0.1, y0 + tile * 0.15, px + tile * 0.1,
                               y0 + tile * 0.35], fill=col)
                tick = int(s["tick"][y, x])
                if tick >= 0:
                    left = max(int(rtime[o, t]) - tick, 0)
                    d.text((x0 + 4, y0 + tile * 0.5), "ok" if left == 0 else str(left),
                           fill=(255, 255, 255))
            elif code == COUNTER:
                _draw_object(d, int(s["obj"][y, x]), s["soup"][y, x], cx, cy, tile * 0.25)
    for i in range(2):
        x, y = (int(v) for v in s["pos"][i])
        cx, cy = x * tile + tile / 2, y * tile + tile / 2
        r = tile * 0.36
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_COOK_RGB[i], outline=(20, 20, 20))
        dx, dy = [(0, -1), (0, 1), (1, 0), (-1, 0)][int(s["dir"][i])]
        tip = (cx + dx * r * 1.25, cy + dy * r * 1.25)
        side = (-dy * r * 0.5, dx * r * 0.5)
        base = (cx + dx * r * 0.6, cy + dy * r * 0.6)
        d.polygon([tip, (base[0] + side[0], base[1] + side[1]),
                   (base[0] - side[0], base[1] - side[1])], fill=(20, 20, 20))
        _draw_object(d, int(s["held"][i]), s["held_soup"][i], cx, cy, tile * 0.16)
    return np.asarray(img)


def save_png(frame: np.ndarray, path: str | Path) -> None:
    Image.fromarray(frame).save(path)


def save_gif(frames: list[np.ndarray], path: str | Path, fps: int = 8) -> None:
    """Write RGB frames as a looping GIF (Pillow only)."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
