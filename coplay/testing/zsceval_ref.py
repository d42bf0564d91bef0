"""Differential runs against ZSC-Eval's own Overcooked code (events, rewards, observations).

ZSC-Eval is not pip-installable; point ``ZSCEVAL_PATH`` at a directory holding its
``zsceval/envs/overcooked/overcooked_ai_py`` (old dynamics) and
``zsceval/envs/overcooked_new/src/overcooked_ai_py`` (new dynamics) sources (with
``__init__.py`` files that do not import gym). Compared at every step: the state (as in
:mod:`difftest`), both cooks' full event vectors (17 / 29), sparse and shaped rewards, and the
lossless observations (20 / 25 channels) — with ZSC-Eval's conventions (non-orders -10, pot
placement shaped only when viable), i.e. :func:`state.make_params` defaults.
"""

from __future__ import annotations

import importlib
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.layouts import POT, Layout
from coplay.envs.overcooked.scripted import scripted_actions, snapshot_jax
from coplay.envs.overcooked.state import DIR_DELTAS, NOTHING, SOUP, State, recipe_tables
from coplay.testing.overcooked_difftest import STATE_FIELDS, make_replay, random_state

_NAMES = {1: "onion", 2: "tomato", 3: "dish", 4: "soup"}
_CODES = {v: k for k, v in _NAMES.items()}
_STANDARD = {"PLACEMENT_IN_POT_REW": 3, "DISH_PICKUP_REWARD": 3, "SOUP_PICKUP_REWARD": 5,
             "DISH_DISP_DISTANCE_REW": 0, "POT_DISTANCE_REW": 0, "SOUP_DISTANCE_REW": 0}


def zsceval_module(old_dynamics: bool):
    """Import ZSC-Eval's overcooked_mdp module (old or new flavour) from ZSCEVAL_PATH."""
    path = os.environ.get("ZSCEVAL_PATH")
    if path and path not in sys.path:
        sys.path.insert(0, path)
    name = ("zsceval.envs.overcooked.overcooked_ai_py.mdp.overcooked_mdp" if old_dynamics
            else "zsceval.envs.overcooked_new.src.overcooked_ai_py.mdp.overcooked_mdp")
    return importlib.import_module(name)


class ZscRunner:
    """Steps ZSC-Eval's gridworld for one layout and records what it reports."""

    def __init__(self, env: Overcooked):
        self.env, self.layout = env, env.layout
        self.old = env.old_dynamics
        self.m = zsceval_module(self.old)
        grid = list(self.layout.grid)
        if self.old:
            base = {"rew_shaping_params": dict(_STANDARD), "start_order_list": None}
        else:
            orders = sorted(self.layout.orders)
            base = {
                "start_all_orders": [{"ingredients": ["onion"] * o + ["tomato"] * t}
                                     for o, t in orders],
                "recipe_values": [self.layout.orders[r][0] for r in orders],
                "recipe_times": [self.layout.orders[r][1] for r in orders],
                "old_dynamics": False, "rew_shaping_params": dict(_STANDARD),
            }
        self.mdp = self.m.OvercookedGridworld.from_grid(grid, base_layout_params=base)
        self.recipe_time = recipe_tables(self.layout)[1]

    def configure(self):
        if not self.old:
            self.m.Recipe.configure(self.mdp.recipe_config)

    # --- conversions ----------------------------------------------------------------------
    def snapshot(self, state) -> dict[str, np.ndarray]:
        lay = self.layout
        snap = {f: np.zeros_like(v) for f, v in _blank(lay).items()}
        snap["pot_tick"][:] = -1
        for i, p in enumerate(state.players):
            snap["pos"][i] = p.position
            snap["dir"][i] = int(np.flatnonzero((DIR_DELTAS == p.orientation).all(1))[0])
            if p.held_object is not None:
                snap["held"][i] = _CODES[p.held_object.name]
                if p.held_object.name == "soup":
                    snap["held_soup"][i] = self._soup_counts(p.held_object)
        for (x, y), obj in state.objects.items():
            snap["obj"][y, x] = _CODES[obj.name]
            if obj.name == "soup":
                snap["soup"][y, x] = self._soup_counts(obj)
                if lay.terrain[y, x] == POT:
                    snap["pot_tick"][y, x] = self._tick(obj)
        return snap

    def _soup_counts(self, obj):
        if self.old:
            kind, n, _ = obj.state
            return (n, 0) if kind == "onion" else (0, n)
        ings = obj.ingredients
        return ings.count("onion"), ings.count("tomato")

    def _tick(self, obj) -> int:
        if self.old:  # old soups count elapsed ticks only once full; idle reads -1 here
            _, n, ct = obj.state
            return ct if n == 3 and ct > 0 else -1
        return obj._cooking_tick

    def to_state(self, state: State):
        m, s = self.m, snapshot_jax(state, self.layout)
        _, cook_time = recipe_tables(self.layout)

        def soup(pos, counts, tick):
            o, t = int(counts[0]), int(counts[1])
            if self.old:
                return m.ObjectState("soup", pos, ("onion", o, max(int(tick), 0)))
            ings = [m.ObjectState("onion", pos) for _ in range(o)]
            ings += [m.ObjectState("tomato", pos) for _ in range(t)]
            return m.SoupState(pos, ingredients=ings, cooking_tick=int(tick))

        players = []
        for i in range(2):
            pos = tuple(int(v) for v in s["pos"][i])
            code, held = int(s["held"][i]), None
            if code == SOUP:
                o, t = s["held_soup"][i]
                held = soup(pos, (o, t), cook_time[o, t])
            elif code != NOTHING:
                held = m.ObjectState(_NAMES[code], pos)
            players.append(m.PlayerState(pos, tuple(DIR_DELTAS[int(s["dir"][i])]), held))
        objects = {}
        for y, x in zip(*np.nonzero(s["obj"]), strict=True):
            pos, code = (int(x), int(y)), int(s["obj"][y, x])
            if code == SOUP:
                o, t = s["soup"][y, x]
                pot = self.layout.terrain[y, x] == POT
                objects[pos] = soup(pos, (o, t), s["pot_tick"][y, x] if pot else cook_time[o, t])
            else:
                objects[pos] = m.ObjectState(_NAMES[code], pos)
        t = int(np.asarray(state.time))
        if self.old:
            return m.OvercookedState(players, objects, order_list=None, timestep=t)
        return m.OvercookedState(players, objects, all_orders=self.mdp.start_all_orders,
                                 timestep=t)

    def obs(self, state, horizon: int) -> np.ndarray:
        enc = self.mdp.lossless_state_encoding(state, horizon=horizon)
        return np.transpose(np.stack(enc), (0, 2, 1, 3))  # (2, W, H, C) -> (2, H, W, C)

    # --- episodes -------------------------------------------------------------------------
    def record(self, start: State, n_steps: int, rng, policy: str, horizon: int,
               with_obs: bool) -> dict[str, np.ndarray]:
        act = self.m.Action
        self.configure()
        state = self.to_state(start)
        snaps, obs = [self.snapshot(state)], []
        actions, sparse, shaped, events = [], [], [], []
        names = self.env.event_names
        for _ in range(n_steps):
            if policy == "random":
                a = rng.integers(0, 6, size=2).astype(np.int32)
            else:
                a = scripted_actions(snaps[-1], self.layout, rng, 0.1, self.recipe_time)
            joint = tuple(act.INDEX_TO_ACTION[int(x)] for x in a)
            state, infos = self.mdp.get_state_transition(state, joint)
            snaps.append(self.snapshot(state))
            actions.append(a)
            sparse.append(infos["sparse_reward_by_agent"])
            shaped.append(infos["shaped_reward_by_agent"])
            events.append([[d[n] for n in names] for d in infos["shaped_info_by_agent"]])
            if with_obs:
                obs.append(self.obs(state, horizon))
        out = {f: np.stack([s[f] for s in snaps]) for f in STATE_FIELDS}
        out.update(actions=np.stack(actions), sparse=np.asarray(sparse, np.float32),
                   shaped=np.asarray(shaped, np.float32), events=np.asarray(events, np.int32))
        if with_obs:
            out["obs"] = np.stack(obs).astype(np.float32)
        return out


def _blank(layout: Layout) -> dict[str, np.ndarray]:
    h, w = layout.terrain.shape
    return {"pos": np.zeros((2, 2), np.int32), "dir": np.zeros(2, np.int32),
            "held": np.zeros(2, np.int32), "held_soup": np.zeros((2, 2), np.int32),
            "obj": np.zeros((h, w), np.int32), "soup": np.zeros((h, w, 2), np.int32),
            "pot_tick": np.zeros((h, w), np.int32)}


def run_zsceval_differential(env: Overcooked, n_episodes: int, n_steps: int, seed: int,
                             policy: str = "random", random_starts: bool = False,
                             with_obs: bool = False, replay=None) -> list[str]:
    """Compare ``n_episodes`` episodes with ZSC-Eval; returns mismatch descriptions."""
    runner = ZscRunner(env)
    horizon = n_steps + 1
    params = env.default_params(horizon=horizon, zsceval_old_obs=True)
    rng = np.random.default_rng(seed)
    _, s0 = env.reset(jax.random.PRNGKey(0), params)
    starts = [random_state(env.layout, rng) if random_starts else s0 for _ in range(n_episodes)]
    recs = [runner.record(s, n_steps, rng, policy, horizon, with_obs) for s in starts]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    actions = jnp.asarray(np.stack([r["actions"] for r in recs]))
    replay = replay or make_replay(env)
    states, infos = replay(batch, actions, params)
    problems = []
    obs_fn = jax.jit(jax.vmap(env.get_obs, in_axes=(0, None))) if with_obs else None
    for b, rec in enumerate(recs):
        st = jax.tree_util.tree_map(lambda x, b=b: x[b], states)
        ours = {f: [snapshot_jax(starts[b], env.layout)[f]] for f in STATE_FIELDS}
        for t in range(n_steps):
            snap = snapshot_jax(jax.tree_util.tree_map(lambda x, t=t: x[t], st), env.layout)
            for f in STATE_FIELDS:
                ours[f].append(snap[f])
        if runner.old:
            # ZSC-Eval's old soups cannot tell "3 onions, idle" from "3 onions, cooking for 0
            # ticks" (both are cook_time 0; both read tick 1 after the next step). A random
            # start may hold either, so compare that one case canonically.
            n3 = np.stack(ours["soup"]).sum(-1) == 3
            tick = np.stack(ours["pot_tick"])
            ours["pot_tick"] = list(np.where(n3 & (tick == 0), -1, tick))
        checks = {f: (np.stack(ours[f]), rec[f]) for f in STATE_FIELDS}
        checks["sparse"] = (np.asarray(infos["sparse_by_agent"][b]), rec["sparse"])
        checks["shaped"] = (np.asarray(infos["shaped_by_agent"][b]), rec["shaped"])
        checks["events"] = (np.asarray(infos["events"][b]), rec["events"])
        if with_obs:
            checks["obs"] = (np.asarray(obs_fn(st, params)), rec["obs"])
        for name, (got, ref) in checks.items():
            diff = [not np.allclose(got[t], ref[t]) for t in range(len(ref))]
            if any(diff):
                t = int(np.argmax(diff))
                where = np.argwhere(~np.isclose(got[t], ref[t]))[:3].tolist()
                problems.append(f"episode {b} index {t}: {name} differs at {where}; "
                                f"actions {rec['actions'][max(t - 1, 0)].tolist()}")
    return problems
