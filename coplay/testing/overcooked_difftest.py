"""Differential runs: step the reference and this env on the same actions and compare.

The reference runs episode by episode in Python (actions from a random or scripted policy
that sees the reference state); the recorded actions are then replayed in JAX for a whole
batch of episodes at once (``vmap`` over episodes, ``scan`` over time) and every recorded
quantity is compared at every step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.envs.overcooked.env import Overcooked
from coplay.envs.overcooked.layouts import COUNTER, FLOOR, POT
from coplay.envs.overcooked.scripted import scripted_actions, snapshot_jax
from coplay.envs.overcooked.state import (
    DISH,
    NOTHING,
    ONION,
    SOUP,
    TOMATO,
    State,
    recipe_tables,
)
from coplay.testing.overcooked_reference import (
    configure,
    reference_events,
    reference_mdp,
    reference_params,
    snapshot_reference,
    to_reference_state,
)

STATE_FIELDS = ("pos", "dir", "held", "held_soup", "obj", "soup", "pot_tick")
REF_EVENTS = (
    "onion_pickup", "dish_pickup", "soup_pickup", "onion_drop", "dish_drop", "soup_drop",
    "tomato_drop", "soup_delivery", "useful_dish_pickup", "potting_onion", "potting_tomato",
)


class ReferenceRunner:
    """Records reference episodes for one layout."""

    def __init__(self, env: Overcooked):
        self.env = env
        self.layout = env.layout
        self.mdp = reference_mdp(self.layout)
        self.recipe_time = recipe_tables(self.layout)[1]

    def record(self, n_steps: int, rng: np.random.Generator, policy: str = "random",
               eps: float = 0.1, start: State | None = None) -> dict[str, np.ndarray]:
        """One episode of ``n_steps``: snapshots (T+1), actions (T, 2), rewards, events."""
        from overcooked.mdp.actions import Action

        configure(self.mdp)
        if start is None:
            state = self.mdp.get_standard_start_state()
        else:
            state = to_reference_state(start, self.layout, self.mdp)
        snaps = [snapshot_reference(state, self.layout)]
        actions, sparse, shaped = [], [], []
        events = {k: [] for k in REF_EVENTS}
        for _ in range(n_steps):
            if policy == "random":
                a = rng.integers(0, 6, size=2).astype(np.int32)
            else:
                a = scripted_actions(snaps[-1], self.layout, rng, eps, self.recipe_time)
            joint = tuple(Action.INDEX_TO_ACTION[int(x)] for x in a)
            state, infos = self.mdp.get_state_transition(state, joint)
            snaps.append(snapshot_reference(state, self.layout))
            actions.append(a)
            sparse.append(infos["sparse_reward_by_agent"])
            shaped.append(infos["shaped_reward_by_agent"])
            for k in REF_EVENTS:
                events[k].append(infos["event_infos"].get(k, [False, False]))
        out = {f: np.stack([s[f] for s in snaps]) for f in STATE_FIELDS}
        out["actions"] = np.stack(actions).astype(np.int32)
        out["sparse"] = np.asarray(sparse, np.float32)
        out["shaped"] = np.asarray(shaped, np.float32)
        for k in REF_EVENTS:
            out["ev_" + k] = np.asarray(events[k], bool)
        return out


def make_replay(env: Overcooked):
    """jit(vmap) replay: (start State batch, actions (B, T, 2), params) -> recorded arrays."""

    def one(start: State, actions, params):
        def body(state, a):
            _, nxt, _, _, info = env.step_env(jax.random.PRNGKey(0), state, a, params)
            return nxt, (nxt, info)

        _, (states, infos) = jax.lax.scan(body, start, actions)
        return states, infos

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def our_reference_events(env: Overcooked, events: np.ndarray, dish_from_disp: np.ndarray):
    """(T, 2, E) flags -> reference-named (T, 2) flags."""
    named = {n: events[..., k] for k, n in enumerate(env.event_names)}
    out = reference_events(named, dish_from_disp)
    place = named["PLACEMENT_IN_POT"].astype(bool)
    if "potting_onion" in named:
        out["potting_onion"] = named["potting_onion"].astype(bool)
        out["potting_tomato"] = named["potting_tomato"].astype(bool)
    else:  # old vocabulary: only onions exist on the old layouts
        out["potting_onion"] = place
        out["potting_tomato"] = np.zeros_like(place)
    return out


def compare_batch(env: Overcooked, recs: list[dict], states, infos, start_snaps) -> list[str]:
    """Mismatch descriptions (empty when everything agrees)."""
    problems: list[str] = []
    for b, rec in enumerate(recs):
        st = jax.tree_util.tree_map(lambda x, b=b: np.asarray(x[b]), states)
        T = rec["actions"].shape[0]
        ours = {f: [start_snaps[b][f]] for f in STATE_FIELDS}
        for t in range(T):
            snap = snapshot_jax(jax.tree_util.tree_map(lambda x, t=t: x[t], st), env.layout)
            for f in STATE_FIELDS:
                ours[f].append(snap[f])
        for f in STATE_FIELDS:
            got = np.stack(ours[f])
            bad = np.flatnonzero([not np.array_equal(got[t], rec[f][t]) for t in range(T + 1)])
            if bad.size:
                t = int(bad[0])
                problems.append(f"episode {b} step {t}: {f} ours={got[t].tolist()} "
                                f"ref={rec[f][t].tolist()} actions={rec['actions'][max(t-1,0)]}")
        sparse = np.asarray(infos["sparse_by_agent"][b])
        shaped = np.asarray(infos["shaped_by_agent"][b])
        pairs = (("sparse", sparse, rec["sparse"]), ("shaped", shaped, rec["shaped"]))
        for name, got, ref in pairs:
            bad = np.flatnonzero(~np.isclose(got, ref).all(axis=1))
            if bad.size:
                problems.append(f"episode {b} step {bad[0] + 1}: {name} ours={got[bad[0]]} "
                                f"ref={ref[bad[0]]}")
        events = np.asarray(infos["events"][b])  # (T, 2, E)
        prev_held = rec["held"][:-1]
        was_empty = prev_held == 0
        ev_d = env.event_names.index("pickup_dish_from_D")
        ours_ev = our_reference_events(env, events, events[..., ev_d].astype(bool) & was_empty)
        ref_useful = rec["ev_useful_dish_pickup"] & ours_ev["dish_pickup"] & (
            events[..., ev_d].astype(bool))
        rec_ev = dict(rec)
        rec_ev["ev_useful_dish_pickup"] = ref_useful
        for k in REF_EVENTS:
            bad = np.flatnonzero((ours_ev[k] != rec_ev["ev_" + k]).any(axis=1))
            if bad.size:
                problems.append(f"episode {b} step {bad[0] + 1}: event {k} ours="
                                f"{ours_ev[k][bad[0]]} ref={rec_ev['ev_' + k][bad[0]]}")
    return problems


def run_differential(env: Overcooked, n_episodes: int, n_steps: int, seed: int,
                     policy: str = "random", eps: float = 0.1, replay=None) -> list[str]:
    """Record ``n_episodes`` reference episodes and compare them with a batched replay."""
    runner = ReferenceRunner(env)
    rng = np.random.default_rng(seed)
    recs = [runner.record(n_steps, rng, policy, eps) for _ in range(n_episodes)]
    params = reference_params(env.layout, horizon=n_steps + 1)
    _, start = env.reset(jax.random.PRNGKey(0), params)
    starts = jax.tree_util.tree_map(lambda x: jnp.stack([x] * n_episodes), start)
    actions = jnp.asarray(np.stack([r["actions"] for r in recs]))
    replay = replay or make_replay(env)
    states, infos = replay(starts, actions, params)
    start_snap = snapshot_jax(start, env.layout)
    return compare_batch(env, recs, states, infos, [start_snap] * n_episodes)


def random_state(layout, rng: np.random.Generator, time: int = 0) -> State:
    """A random but valid kitchen: cooks anywhere, objects on counters, pots in any phase."""
    t = layout.terrain
    h, w = t.shape
    _, cook_time = recipe_tables(layout)
    tomatoes = not layout.old_dynamics

    def soup_counts():
        if layout.old_dynamics:
            return np.array([3, 0])
        n = int(rng.integers(1, 4))
        o = int(rng.integers(0, n + 1))
        return np.array([o, n - o])

    floor = np.argwhere(t == FLOOR)
    cells = floor[rng.choice(len(floor), size=2, replace=False)]
    pos = cells[:, ::-1].astype(np.int32)  # (y, x) -> (x, y)
    items = [NOTHING, ONION, DISH, SOUP] + ([TOMATO] if tomatoes else [])
    held = rng.choice(items, size=2).astype(np.int32)
    held_soup = np.zeros((2, 2), np.int32)
    for i in range(2):
        if held[i] == SOUP:
            held_soup[i] = soup_counts()
    obj = np.zeros((h, w), np.int32)
    soup = np.zeros((h, w, 2), np.int32)
    tick = np.full((h, w), -1, np.int32)
    for y, x in np.argwhere(t == COUNTER):
        if rng.random() < 0.15:
            obj[y, x] = rng.choice(items[1:])
            if obj[y, x] == SOUP:
                soup[y, x] = soup_counts()
    for y, x in np.argwhere(t == POT):
        if rng.random() < 0.2:
            continue
        if layout.old_dynamics:
            n = int(rng.integers(1, 4))
            c = np.array([n, 0])
        else:
            c = soup_counts()
        obj[y, x], soup[y, x] = SOUP, c
        can_cook = c.sum() == 3 or not layout.old_dynamics
        if can_cook and rng.random() < 0.6:
            tick[y, x] = int(rng.integers(0, cook_time[c[0], c[1]] + 1))
    return State(
        pos=jnp.asarray(pos), dir=jnp.asarray(rng.integers(0, 4, size=2), jnp.int32),
        held=jnp.asarray(held), held_soup=jnp.asarray(held_soup), obj=jnp.asarray(obj),
        soup=jnp.asarray(soup), tick=jnp.asarray(tick), time=jnp.asarray(time, jnp.int32),
    )


def run_differential_random_starts(env: Overcooked, n_episodes: int, n_steps: int, seed: int,
                                   policy: str = "random", replay=None) -> list[str]:
    """Like :func:`run_differential` but every episode starts from :func:`random_state`."""
    runner = ReferenceRunner(env)
    rng = np.random.default_rng(seed)
    starts = [random_state(env.layout, rng) for _ in range(n_episodes)]
    recs = [runner.record(n_steps, rng, policy, 0.2, start=s) for s in starts]
    params = reference_params(env.layout, horizon=n_steps + 1)
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    actions = jnp.asarray(np.stack([r["actions"] for r in recs]))
    replay = replay or make_replay(env)
    states, infos = replay(batch, actions, params)
    snaps = [snapshot_jax(s, env.layout) for s in starts]
    return compare_batch(env, recs, states, infos, snaps)
