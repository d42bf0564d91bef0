"""``coplay overcooked render`` (episode -> GIF) and ``coplay overcooked play`` (terminal game).

    coplay overcooked render --layout random1 --policy scripted --steps 200 --out ring.gif
    coplay overcooked play --layout random1 --partner scripted

Keys in ``play``: w/a/s/d or arrows move, e or space interacts, x stays, q quits.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.render import render_ascii, render_rgb, save_gif, save_png
from coplay.envs.overcooked.scripted import scripted_action, snapshot_jax
from coplay.envs.overcooked.state import INTERACT, STAY, EnvParams, State
from coplay.runs import atomic_write_text

Policy = Literal["random", "scripted", "stay"]


def policy_action(kind: str, state: State, env: Overcooked, params: EnvParams, agent: int,
                  rng: np.random.Generator) -> int:
    """One action of a simple built-in policy (outside jit)."""
    if kind == "random":
        return int(rng.integers(6))
    if kind == "stay":
        return STAY
    snap = snapshot_jax(state, env.layout)
    return scripted_action(snap, env.layout, agent, rng, 0.05, np.asarray(params.recipe_time))


def rollout_frames(env: Overcooked, params: EnvParams, policy: str, steps: int, seed: int):
    """Run one episode of ``steps`` steps; returns (RGB frames, states, team sparse return)."""
    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    step = jax.jit(env.step_env)
    _, state = env.reset(key, params)
    frames, states, ret = [render_rgb(state, params)], [state], 0.0
    for _ in range(steps):
        a = jnp.array([policy_action(policy, state, env, params, i, rng) for i in range(2)])
        _, state, _, _, info = step(key, state, a, params)
        ret += float(info["sparse_reward"])
        frames.append(render_rgb(state, params))
        states.append(state)
    return frames, states, ret


@dataclasses.dataclass(frozen=True)
class RenderArgs:
    """Render an episode of two built-in cooks to a GIF (or a PNG of the last frame)."""

    layout: str = "random1"
    """layout name, path of a text file, or the grid itself"""
    policy: Policy = "scripted"
    """policy of both cooks"""
    steps: int = 100
    """number of steps to play"""
    out: str = "overcooked.gif"
    """output file: .gif for the episode, .png for the final frame"""
    seed: int = 0
    fps: int = 8


def render(argv: list[str], prog: str) -> int:
    args = tyro.cli(RenderArgs, args=argv, prog=prog)
    env = Overcooked(args.layout)
    params = env.default_params(horizon=max(args.steps, 1))
    frames, states, ret = rollout_frames(env, params, args.policy, args.steps, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        save_png(frames[-1], out)
    else:
        save_gif(frames, out, fps=args.fps)
    print(render_ascii(states[-1], params))
    print(f"{env.layout.name}: {args.steps} steps, sparse return {ret:g} -> {out}")
    return 0


@dataclasses.dataclass(frozen=True)
class PlayArgs:
    """Play one cook from the terminal next to a built-in partner."""

    layout: str = "random1"
    partner: Policy = "scripted"
    seat: int = 0
    """which cook you steer (0 = '1', 1 = '2')"""
    steps: int = 200
    """episode length (the CooT human study uses 200)"""
    seed: int = 0
    record: str | None = None
    """optional JSON file receiving the actions and rewards of the episode"""


_KEYS = {"w": 0, "s": 1, "d": 2, "a": 3, "x": STAY, ".": STAY, "e": INTERACT, " ": INTERACT}
_ARROWS = {"A": 0, "B": 1, "C": 2, "D": 3}


def _read_key(stream) -> str:
    ch = stream.read(1)
    if ch == "\x1b":  # arrow keys: ESC [ A..D
        if stream.read(1) == "[":
            return "arrow" + stream.read(1)
    return ch


def _key_to_action(key: str) -> int | None:
    if key.startswith("arrow"):
        return _ARROWS.get(key[-1])
    return _KEYS.get(key.lower())


def play(argv: list[str], prog: str) -> int:
    args = tyro.cli(PlayArgs, args=argv, prog=prog)
    env = Overcooked(args.layout)
    params = env.default_params(horizon=args.steps)
    rng = np.random.default_rng(args.seed)
    key = jax.random.PRNGKey(args.seed)
    step = jax.jit(env.step_env)
    _, state = env.reset(key, params)
    log: dict = {"layout": env.layout.name, "seat": args.seat, "partner": args.partner,
                 "actions": [], "sparse": []}
    stream, restore = sys.stdin, None
    if stream.isatty():
        import termios
        import tty

        fd = stream.fileno()
        old = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, old)  # noqa: E731
    ret = 0.0
    try:
        print(f"You are cook {args.seat + 1}. w/a/s/d move, e/space interact, x stay, q quit.")
        for _ in range(args.steps):
            print(render_ascii(state, params) + f"   return {ret:g}", flush=True)
            k = _read_key(stream)
            while k and k != "q" and _key_to_action(k) is None:
                k = _read_key(stream)
            if not k or k == "q":
                break
            acts = [0, 0]
            acts[args.seat] = _key_to_action(k)
            acts[1 - args.seat] = policy_action(args.partner, state, env, params,
                                                1 - args.seat, rng)
            _, state, _, _, info = step(key, state, jnp.array(acts), params)
            ret += float(info["sparse_reward"])
            log["actions"].append(acts)
            log["sparse"].append(float(info["sparse_reward"]))
    finally:
        if restore:
            restore()
    print(render_ascii(state, params))
    print(f"episode over after {len(log['actions'])} steps: sparse return {ret:g}")
    if args.record:
        atomic_write_text(Path(args.record), json.dumps(log))
    return 0
