"""API-level tests: jit == eager, vmap == loop, auto-reset, params as a vmap axis, rewards."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oc_helpers import INTERACT, STAY, make_state, rule_env

from coplay.envs.overcooked import Overcooked, hsp_candidates
from coplay.envs.overcooked.state import DISH


def _rollout(env, params, key, n, step_fn):
    obs, state = env.reset(key, params)
    out = []
    for _ in range(n):
        key, k_a, k_s = jax.random.split(key, 3)
        a = jax.random.randint(k_a, (2,), 0, 6)
        obs, state, r, d, info = step_fn(k_s, state, a, params)
        out.append((obs, state, r, d, info))
    return out


def test_jit_equals_eager():
    env = Overcooked("random1_m")
    params = env.default_params(horizon=30)
    eager = _rollout(env, params, jax.random.PRNGKey(3), 35, env.step)
    jitted = _rollout(env, params, jax.random.PRNGKey(3), 35, jax.jit(env.step))
    for a, b in zip(eager, jitted, strict=True):
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_vmap_equals_loop():
    env = Overcooked("random3")
    params = env.default_params()
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    _, s0 = env.reset(keys[0], params)
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x] * 5), s0)
    step_v = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    step_1 = jax.jit(env.step)
    singles = [s0] * 5
    for t in range(60):
        acts = jax.random.randint(jax.random.PRNGKey(t), (5, 2), 0, 6)
        _, states, rv, _, _ = step_v(keys, states, acts, params)
        rs = []
        for b in range(5):
            _, singles[b], r, _, _ = step_1(keys[b], singles[b], acts[b], params)
            rs.append(r)
        np.testing.assert_array_equal(np.asarray(rv), np.stack(rs))
    for b in range(5):
        for x, y in zip(jax.tree_util.tree_leaves(singles[b]),
                        jax.tree_util.tree_leaves(states), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y[b]))


def test_auto_reset_at_horizon():
    env = Overcooked("cramped_room")
    params = env.default_params(horizon=5)
    obs0, s = env.reset(jax.random.PRNGKey(0), params)
    for t in range(5):
        obs, s, _, done, _ = env.step(jax.random.PRNGKey(t), s, jnp.array([1, 2]), params)
        assert bool(done) == (t == 4)
    assert int(s.time) == 0 and np.array_equal(obs, obs0)
    _, s_env, _, done, _ = env.step_env(jax.random.PRNGKey(0), s, jnp.array([4, 4]), params)
    assert int(s_env.time) == 1 and not bool(done)


def test_hidden_utility_rewards_and_params_vmap():
    env, p = rule_env(False)
    k_onion = env.event_names.index("pickup_onion_from_O")
    s = make_state(p, dirs=(0, 0))  # cook 1 faces the onion dispenser
    weights = np.zeros((3, 2, env.num_events), np.float32)
    weights[1, 1, k_onion] = 10.0
    weights[2, :, env.event_names.index("STAY")] = -0.1
    batch = jax.vmap(lambda w: p.replace(event_weights=w))(jnp.asarray(weights))

    def reward(params):
        return env.step_env(jax.random.PRNGKey(0), s, jnp.array([STAY, INTERACT]), params)[2]

    r = np.asarray(jax.jit(jax.vmap(reward))(batch))
    np.testing.assert_allclose(r, [[0, 0], [0, 10], [-0.1, 0]], rtol=1e-6)


def test_reward_combines_sparse_events_and_shaping():
    env, p = rule_env(False, shaping_factor=0.5, sparse_weight=np.array([1.0, 0.1]))
    s = make_state(p, dirs=(3, 0), pots={(3, 2): (3, 0, 5)})  # useful dish pickup: shaped 3
    _, _, r, _, info = env.step_env(jax.random.PRNGKey(0), s, jnp.array([INTERACT, 4]), p)
    assert int(info["events"][0, env.event_names.index("USEFUL_DISH_PICKUP")]) == 1
    np.testing.assert_allclose(np.asarray(r), [1.5, 0.0])
    s = make_state(p, dirs=(1, 0), held=(4, 0), held_soup=((3, 0), (0, 0)))
    _, _, r, _, _ = env.step_env(jax.random.PRNGKey(0), s, jnp.array([INTERACT, 4]), p)
    np.testing.assert_allclose(np.asarray(r), [20.0, 2.0])


def test_observation_channels_by_hand():
    env, p = rule_env(False, horizon=400)
    s = make_state(p, held=(DISH, 0), pots={(3, 2): (1, 1, 3)}, time=365)
    obs = np.asarray(env.get_obs(s, p))  # (2, H, W, 25)
    assert obs.shape == (2, 3, 5, 25)
    assert obs[0, 1, 1, 0] == 1 and obs[0, 1, 3, 1] == 1  # own / other location
    assert obs[1, 1, 3, 0] == 1 and obs[1, 1, 1, 1] == 1  # ego-centric for cook 1
    assert obs[0, 1, 1, 21] == 1  # the held dish at the holder's cell
    assert obs[0, 2, 3, 18] == 1 and obs[0, 2, 3, 19] == 1  # cooking ot soup
    assert obs[0, 2, 3, 20] == 10 - 3  # cook time remaining (ot cooks 10)
    assert np.all(obs[..., 24] == 1)  # 400 - 365 = 35 < 40 steps left: urgent
    calm = np.asarray(env.get_obs(s.replace(time=jnp.asarray(360)), p))
    assert np.all(calm[..., 24] == 0)  # exactly 40 left: not yet
    env255, p255 = rule_env(False, obs_scale=255.0)
    np.testing.assert_array_equal(np.asarray(env255.get_obs(s, p255)), obs * 255)


def test_hsp_candidate_counts():
    assert hsp_candidates("random0_medium")[0].shape[0] == 54
    for name in ("random1", "random3", "unident_s"):
        assert hsp_candidates(name)[0].shape[0] == 52
    for name in ("random0_m", "random1_m", "random3_m"):
        w, ws = hsp_candidates(name)
        assert w.shape == (72, 29) and np.all(ws == 1.0)
    w, ws = hsp_candidates("random1")
    assert w.shape[1] == 17 and set(np.unique(ws)) == {np.float32(0.1), np.float32(1.0)}
    assert np.all(w[:, 8:11] == [3, 5, 3])  # the fixed standard shaping slots
    with pytest.raises(KeyError):
        hsp_candidates("cramped_room")


def test_zsceval_old_obs_quirk_flag():
    """ZSC-Eval's old encoding hides placed objects of a type some cook is holding."""
    env, p = rule_env(True)
    s = make_state(p, held=(1, 0), objects={(2, 0): (1, (0, 0))}, pots={(3, 2): (3, 0, 4)})
    lossless = np.asarray(env.get_obs(s, p))
    assert lossless[0, 0, 2, 19] == 1 and lossless[0, 1, 1, 19] == 1  # counter and held onion
    quirky = np.asarray(env.get_obs(s, p.replace(zsceval_old_obs=jnp.asarray(True))))
    assert quirky[0, 0, 2, 19] == 0 and quirky[0, 1, 1, 19] == 1
    assert quirky[0, 2, 3, 15] == 3  # nobody holds a soup: the pot stays visible
    s = s.replace(held=jnp.array([4, 0]), held_soup=jnp.array([[3, 0], [0, 0]]))
    quirky = np.asarray(env.get_obs(s, p.replace(zsceval_old_obs=jnp.asarray(True))))
    assert quirky[0, 2, 3, 15] == 0 and quirky[0, 1, 1, 17] == 1  # pot soup hidden


@pytest.mark.parametrize("name", ["random1", "unident_s", "random3_m"])
def test_floor_bits_lookup_matches_the_grid(name):
    """Movement reads floor cells from packed bits: same answer as the terrain grid, and
    False off the grid (more than 32 cells, so several words, on the larger layouts)."""
    from coplay.envs.overcooked.layouts import FLOOR, get_layout
    from coplay.envs.overcooked.movement import is_floor_at

    terrain = np.asarray(get_layout(name).terrain)
    h, w = terrain.shape
    ys, xs = np.meshgrid(np.arange(-1, h + 1), np.arange(-1, w + 1), indexing="ij")
    got = np.asarray(jax.jit(is_floor_at)(jnp.asarray(terrain), jnp.asarray(xs),
                                          jnp.asarray(ys)))
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    want = np.zeros_like(inside)
    want[inside] = terrain[ys[inside], xs[inside]] == FLOOR
    np.testing.assert_array_equal(got, want)
    assert want.any()
    assert name == "random1" or h * w > 32  # the others span several 32-bit words
