"""Differential tests against the Python reference (PyPI ``overcooked``, Overcooked-AI).

Per layout: random-action episodes, scripted (cooking, serving) episodes and episodes from
random kitchens, compared at every step (positions, orientations, held objects, objects on
counters, pot contents, cooking timers, sparse and shaped rewards, reference events).
The long run (>= 1,000 full episodes per layout) is scripts/overcooked_differential.py.
"""

from __future__ import annotations

from collections import Counter

import jax
import numpy as np
import pytest

pytest.importorskip("overcooked")

from coplay.envs.overcooked import Overcooked, layout_names  # noqa: E402
from coplay.testing.overcooked_difftest import (  # noqa: E402
    make_replay,
    random_state,
    run_differential,
    run_differential_random_starts,
)
from coplay.testing.overcooked_reference import (  # noqa: E402
    configure,
    reference_mdp,
    reference_params,
    to_reference_state,
)

EPISODES, STEPS = 4, 100  # x 3 kinds = 1,200 compared steps per layout


@pytest.mark.parametrize("name", layout_names())
def test_episodes_match_reference(name):
    env = Overcooked(name)
    replay = make_replay(env)
    problems = run_differential(env, EPISODES, STEPS, seed=1, policy="random", replay=replay)
    problems += run_differential(env, EPISODES, STEPS, seed=2, policy="scripted", replay=replay)
    problems += run_differential_random_starts(env, EPISODES, STEPS, seed=3, replay=replay)
    assert problems == [], "\n".join(problems[:10])


def _zsc_old_encoding(mdp, state) -> np.ndarray:
    """ZSC-Eval's 20-channel old-dynamics encoding, ported from its source, (2, W, H, 20)."""
    shape = mdp.shape  # (W, H)
    out = []
    pots = set(mdp.get_pot_locations())
    for me in range(2):
        order = [me, 1 - me]
        layers = np.zeros((20,) + shape)
        for k, i in enumerate(order):
            p = state.players[i]
            layers[k][p.position] = 1
            d = [(0, -1), (0, 1), (1, 0), (-1, 0)].index(tuple(p.orientation))
            layers[2 + 4 * k + d][p.position] = 1
        locs = [mdp.get_pot_locations(), mdp.get_counter_locations(),
                mdp.get_onion_dispenser_locations(), mdp.get_dish_dispenser_locations(),
                mdp.get_serving_locations()]
        for c, cells in enumerate(locs):
            for pos in cells:
                layers[10 + c][pos] = 1
        for obj in state.all_objects_list:
            if obj.name == "soup":
                if obj.position in pots:
                    layers[15][obj.position] += len(obj.ingredients)
                    layers[16][obj.position] += max(obj._cooking_tick, 0)
                else:
                    layers[17][obj.position] += 1
            elif obj.name == "dish":
                layers[18][obj.position] += 1
            elif obj.name == "onion":
                layers[19][obj.position] += 1
        out.append(np.moveaxis(layers, 0, -1))
    return np.stack(out)


@pytest.mark.parametrize("name", layout_names())
def test_observations_match_reference_encoding(name):
    env = Overcooked(name)
    layout = env.layout
    params = reference_params(layout, horizon=400)
    mdp = reference_mdp(layout)
    configure(mdp)
    rng = np.random.default_rng(7)
    get_obs = jax.jit(env.get_obs)
    for _ in range(40):
        s = random_state(layout, rng, time=int(rng.integers(0, 400)))
        ours = np.asarray(get_obs(s, params))  # (2, H, W, C)
        ref_state = to_reference_state(s, layout, mdp)
        if layout.old_dynamics:
            ref = _zsc_old_encoding(mdp, ref_state)
        else:
            ref = np.stack(mdp.lossless_state_encoding(ref_state, horizon=400))
            ref = np.delete(ref, 21, axis=-1)  # the reference's extra "soup_done" channel
        ref = np.transpose(ref, (0, 2, 1, 3))  # (2, W, H, C) -> (2, H, W, C)
        assert ours.shape == ref.shape == (2, *env.obs_shape)
        bad = np.argwhere(ours != ref)
        assert bad.size == 0, f"first mismatch (agent, y, x, channel): {bad[:5].tolist()}"


def test_differential_catches_a_planted_bug(monkeypatch):
    """The comparison is not vacuous: a wrong delivery value is reported."""
    env = Overcooked("random1")
    import coplay.testing.overcooked_difftest as difftest

    def wrong_params(layout, **kw):
        p = reference_params(layout, **kw)
        return p.replace(recipe_value=p.recipe_value.at[3, 0].set(21.0))

    monkeypatch.setattr(difftest, "reference_params", wrong_params)
    problems = run_differential(env, 2, 400, seed=4, policy="scripted")
    kinds = Counter(p.split(": ")[1].split(" ")[0] for p in problems)
    assert kinds["sparse"] >= 1, problems


@pytest.mark.parametrize("held", [(1, 0), (0, 1), (3, 0), (1, 1)])
def test_two_cooks_on_one_counter_in_one_step(held):
    """Interacts are sequential (cook 0 first), so a hand-over can happen within one step."""
    from overcooked.mdp.actions import Action

    from coplay.envs.overcooked.scripted import snapshot_jax
    from coplay.envs.overcooked.state import State
    from coplay.testing.overcooked_reference import snapshot_reference

    env = Overcooked("random1")  # counter (2, 2) is faced from (1, 2) (E) and (3, 2) (W)
    params = reference_params(env.layout)
    mdp = reference_mdp(env.layout)
    configure(mdp)
    base = random_state(env.layout, np.random.default_rng(0))
    s = State(pos=np.array([[1, 2], [3, 2]]), dir=np.array([2, 3]), held=np.array(held),
              held_soup=np.zeros((2, 2), np.int32), obj=base.obj.at[2, 2].set(0),
              soup=base.soup, tick=base.tick, time=base.time)
    s = jax.tree_util.tree_map(jax.numpy.asarray, s)
    ref_next, _ = mdp.get_state_transition(
        to_reference_state(s, env.layout, mdp), (Action.INTERACT, Action.INTERACT))
    _, ours, _, _, _ = env.step_env(jax.random.PRNGKey(0), s, np.array([5, 5]), params)
    a, b = snapshot_jax(ours, env.layout), snapshot_reference(ref_next, env.layout)
    for f in a:
        assert np.array_equal(a[f], b[f]), f
    if held == (1, 0):  # cook 0 puts the onion down, cook 1 picks it up in the same step
        assert np.asarray(ours.held).tolist() == [0, 1]
