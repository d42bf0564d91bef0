"""Hidden-utility pairs: per-seat rewards in the PPO trainer, candidate draws."""

import dataclasses

import jax
import numpy as np
import pytest

from coplay.algos.ppo import make_train
from coplay.envs.overcooked import Overcooked, hsp_candidates
from coplay.experiments.populations.presets import PPO_PRESETS
from coplay.populations.hsp import (
    BIASED,
    BR,
    choose_candidates,
    describe_weights,
    pair_params,
    population_params,
)

TINY = dataclasses.replace(PPO_PRESETS["tiny"], total_steps=64, num_steps=8, horizon=6,
                           shaping_horizon=None, hidden_sizes=(8,))


def test_pair_params_put_the_utility_on_seat_0_and_shaping_on_seat_1():
    env = Overcooked("random1")
    w, s = hsp_candidates("random1")
    p = pair_params(env, w[3], float(s[3]), horizon=50)
    np.testing.assert_array_equal(p.event_weights[BIASED], w[3])
    np.testing.assert_array_equal(p.event_weights[BR], 0)
    np.testing.assert_allclose(p.sparse_weight, [s[3], 1.0])
    np.testing.assert_array_equal(p.shaping_factor, [0.0, 1.0])
    assert int(p.horizon) == 50
    d = describe_weights(env.event_names, w[3], float(s[3]))
    assert d["delivery"] == -20 and d["pickup_onion_from_O"] == -20 and d["SOUP_PICKUP"] == 5


def test_candidate_draw_is_seeded_distinct_and_overridable():
    a = choose_candidates("random1", 16, 0)
    assert len(set(a)) == 16 and list(a) == sorted(a) and a.max() < 52
    np.testing.assert_array_equal(a, choose_candidates("random1", 16, 0))
    assert not np.array_equal(a, choose_candidates("random1", 16, 1))
    np.testing.assert_array_equal(choose_candidates("random1", 2, 0, (5, 1)), [5, 1])
    with pytest.raises(ValueError):
        choose_candidates("random1", 53, 0)


def test_each_seat_is_paid_its_own_reward_function():
    """Hand-built pair: seat 0 is paid 1 per MOVEMENT and 2 per STAY, no sparse, no shaping;
    seat 1 the sparse reward plus the standard shaping at a constant factor 0.5. The per-seat
    episode rewards the trainer records must equal those formulas applied to the per-seat
    event counts it records (seats are randomised over cooks)."""
    env = Overcooked("cramped_room")
    names = env.event_names
    w = np.zeros(env.num_events, np.float32)
    w[names.index("MOVEMENT")], w[names.index("STAY")] = 1.0, 2.0
    p = pair_params(env, w, 0.0).replace(shaping_factor=np.array([0.0, 0.5], np.float32))
    members = jax.tree.map(lambda x: x[None], p)
    trainer = make_train(TINY, env, members)
    state, m = trainer.train_chunk(trainer.init(jax.random.PRNGKey(1)))
    ev = np.asarray(m.episode_events_sum)[0]  # (updates, 2, E)
    rew = np.asarray(m.episode_reward_sum)[0]  # (updates, 2)
    sparse = np.asarray(m.episode_return_sum)[0]
    assert np.asarray(m.episodes).sum() > 0 and np.asarray(state.runner.swap).any()
    np.testing.assert_allclose(rew[:, BIASED], ev[:, 0] @ w, rtol=1e-5)
    shaped = 3 * ev[:, 1, names.index("PLACEMENT_IN_POT")] \
        + 3 * ev[:, 1, names.index("USEFUL_DISH_PICKUP")] + 5 * ev[:, 1, names.index("SOUP_PICKUP")]
    np.testing.assert_allclose(rew[:, BR], sparse + 0.5 * shaped, rtol=1e-5)
    # the annealing multiplies the per-seat factors: seat 0 stays at 0
    np.testing.assert_allclose(np.asarray(m.shaping_factor)[0, -1], [0.0, 0.5])


def test_population_params_stack_members():
    env = Overcooked("random1")
    w, s = hsp_candidates("random1")
    p = population_params(env, w[:3], s[:3], horizon=20)
    assert p.event_weights.shape == (3, 2, env.num_events)
    assert p.shaping_factor.shape == (3, 2)
