"""Decentralised A2C: config checks, rollout bookkeeping, jit == eager, learning signal."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.tabular import PROBES
from coplay.algos import a2c
from coplay.algos.a2c import A2CConfig
from coplay.algos.ipd_rollout import Opponents, random_pairing, rollout, rollout_with_final_value
from coplay.config import ConfigError
from coplay.envs.matrix_games import MatrixGameParams, first_person_tokens, joint_rewards

TINY = A2CConfig(num_rounds=8, hidden_size=8, embed_dim=4, episodes_per_update=16,
                 num_updates=4, updates_per_chunk=2, scan_unroll=1)


@pytest.mark.parametrize("field, value", [
    ("num_rounds", 0), ("hidden_size", -1), ("episodes_per_update", 0),
    ("tabular_fraction", 1.5), ("learning_rate", 0.0), ("gamma", 1.2), ("gae_lambda", -0.1),
    ("entropy_coef", -1.0), ("reward_scale", 0.0), ("num_minibatches", 3),
    ("update_epochs", 4), ("num_learners", 3), ("clip_eps", -0.2),
    ("entropy_decay_start", -1), ("entropy_target", 0.8), ("entropy_adapt_rate", 0.0),
    ("frozen_learners", (2,)), ("frozen_learners", (0, 1)), ("learning_rate_final", 0.0),
    ("lookahead_sync_period", -1), ("lookahead_sync_period", 3), ("lookahead_step", 0.0),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        a2c.validate(dataclasses.replace(TINY, **{field: value}))


def _rollout(params, opponents, cfg=TINY, key=0):
    agent = a2c.make_agent(cfg)
    return rollout(jax.random.PRNGKey(key), agent, params, opponents, MatrixGameParams(),
                   cfg.num_rounds, cfg.use_opponent_id)


def test_rollout_bookkeeping():
    init, _ = a2c.make_train(TINY)
    state = init(jax.random.PRNGKey(0))
    n = TINY.episodes_per_update
    tabular = jnp.broadcast_to(jnp.asarray(PROBES["AllD"]), (2, n, 5))
    is_learner = jnp.arange(n) < n // 2
    traj = _rollout(state.params, Opponents(tabular, is_learner))
    act, opp = np.asarray(traj.action), np.asarray(traj.opponent_action)
    # learner-vs-learner episodes are one game seen from both seats
    np.testing.assert_array_equal(opp[:, 0, : n // 2], act[:, 1, : n // 2])
    np.testing.assert_array_equal(opp[:, 1, : n // 2], act[:, 0, : n // 2])
    # tabular episodes: Always-Defect always defects
    assert (opp[:, :, n // 2:] == 1).all()
    # rewards follow the payoff table; next inputs are the first-person token and reward
    joint = jnp.stack([traj.action, traj.opponent_action], -1)
    np.testing.assert_array_equal(traj.reward, joint_rewards(joint, MatrixGameParams())[..., 0])
    np.testing.assert_array_equal(traj.inputs.token[1:], first_person_tokens(joint)[:-1, ..., 0])
    np.testing.assert_array_equal(traj.inputs.prev_reward[1:], traj.reward[:-1])
    np.testing.assert_array_equal(traj.inputs.prev_action[1:], traj.action[:-1])
    assert (traj.inputs.token[0] == 0).all() and (traj.inputs.prev_action[0] == -1).all()
    # the log-probabilities are those of the actions taken
    assert (np.asarray(traj.log_prob) <= 0).all()


def test_random_pairing_is_a_perfect_matching_drawn_per_episode():
    partner = np.asarray(random_pairing(jax.random.PRNGKey(3), 6, 400))
    assert partner.shape == (6, 400)
    learners = np.arange(6)[:, None]
    assert (partner != learners).all()  # nobody plays itself
    np.testing.assert_array_equal(np.take_along_axis(partner, partner, axis=0),
                                  np.broadcast_to(learners, partner.shape))  # an involution
    # every one of the 5 other learners is met, about equally often
    counts = np.stack([(partner[0] == j).mean() for j in range(1, 6)])
    assert counts.min() > 0.12 and counts.max() < 0.28


def test_pairing_of_many_learners_in_the_rollout():
    """With 4 learners each learner episode is one game with the drawn partner, seen from
    both seats; with 2 learners the pool keeps the fixed flip (no pairing drawn)."""
    assert a2c.sample_opponents(jax.random.PRNGKey(0), TINY).partner is None
    cfg = dataclasses.replace(TINY, num_learners=4)
    init, _ = a2c.make_train(cfg)
    state = init(jax.random.PRNGKey(0))
    opponents = a2c.sample_opponents(jax.random.PRNGKey(1), cfg)
    traj = _rollout(state.params, opponents, cfg)
    act, opp = np.asarray(traj.action), np.asarray(traj.opponent_action)
    partner = np.asarray(opponents.partner)
    is_learner = np.asarray(opponents.is_learner)
    n = cfg.episodes_per_update
    for learner in range(4):
        for e in np.flatnonzero(is_learner):
            np.testing.assert_array_equal(opp[:, learner, e], act[:, partner[learner, e], e])
    assert is_learner.sum() == n // 2 and len(np.unique(partner[0, is_learner])) > 1
    joint = np.stack([act, opp], -1)
    np.testing.assert_array_equal(traj.reward, joint_rewards(joint, MatrixGameParams())[..., 0])


def test_rollout_jit_equals_eager():
    init, _ = a2c.make_train(TINY)
    state = init(jax.random.PRNGKey(0))
    opp = a2c.sample_opponents(jax.random.PRNGKey(1), TINY)
    jitted = jax.jit(lambda p: _rollout(p, opp))(state.params)
    with jax.disable_jit():
        eager = _rollout(state.params, opp)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_final_value_is_the_value_of_the_history_after_the_last_round():
    """The bootstrap value of a T-round rollout is what the critic says at round T+1 of the
    same game played one round longer (same keys: the first T rounds are identical)."""
    cfg = dataclasses.replace(TINY, critic_opponent_id=True)
    init, _ = a2c.make_train(cfg)
    state = init(jax.random.PRNGKey(0))
    opp = a2c.sample_opponents(jax.random.PRNGKey(1), cfg)
    agent, game, key = a2c.make_agent(cfg), MatrixGameParams(), jax.random.PRNGKey(2)
    traj, final_value = rollout_with_final_value(key, agent, state.params, opp, game,
                                                 cfg.num_rounds, True)
    longer = rollout(key, agent, state.params, opp, game, cfg.num_rounds + 1, True)
    assert final_value.shape == traj.value.shape[1:]
    np.testing.assert_array_equal(traj.action, longer.action[:-1])
    np.testing.assert_allclose(final_value, longer.value[-1], rtol=1e-5, atol=1e-6)


def test_bootstrap_at_horizon_trains_and_changes_the_update():
    """Both episode ends train, and the bootstrapped last advantages change the update."""
    results = []
    for flag in (False, True):
        cfg = dataclasses.replace(TINY, bootstrap_at_horizon=flag)
        init, chunk = a2c.make_train(cfg)
        state, _ = chunk(init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
        results.append(jax.tree.leaves(state.params))
    assert all(np.isfinite(leaf).all() for leaf in results[0] + results[1])
    assert any(not np.allclose(a, b) for a, b in zip(*results, strict=True))


def test_entropy_schedule_holds_then_decays():
    cfg = dataclasses.replace(TINY, num_updates=100, entropy_coef=0.2, entropy_coef_final=0.0,
                              entropy_decay_start=50, entropy_decay_updates=20)
    got = [float(a2c.entropy_schedule(cfg, jnp.asarray(u))) for u in (0, 50, 60, 70, 99)]
    np.testing.assert_allclose(got, [0.2, 0.2, 0.1, 0.0, 0.0], atol=1e-6)
    assert float(a2c.entropy_schedule(TINY, jnp.asarray(3))) == pytest.approx(TINY.entropy_coef)


def test_entropy_target_adapts_each_learner_after_the_hold():
    cfg = dataclasses.replace(TINY, entropy_coef=0.2, entropy_decay_start=10,
                              entropy_target=0.3, entropy_adapt_rate=0.5)
    coef = jnp.array([0.2, 0.2])
    entropy = jnp.array([0.6, 0.1])  # learner 0 too random, learner 1 too sure
    held = a2c.next_entropy_coef(cfg, jnp.asarray(5), coef, entropy)
    np.testing.assert_allclose(held, [0.2, 0.2])  # still in the hold: the schedule rules
    got = a2c.next_entropy_coef(cfg, jnp.asarray(10), coef, entropy)
    np.testing.assert_allclose(got, [0.2 * np.exp(0.5 * -0.3), 0.2 * np.exp(0.5 * 0.2)],
                               rtol=1e-6)
    low, high = a2c.ENTROPY_COEF_BOUNDS
    stuck = a2c.next_entropy_coef(dataclasses.replace(cfg, entropy_adapt_rate=100.0),
                                  jnp.asarray(10), coef, entropy)
    np.testing.assert_allclose(stuck, [low, high])
    # without a target, the schedule is followed and the state carries it
    np.testing.assert_allclose(a2c.next_entropy_coef(TINY, jnp.asarray(3), coef, entropy),
                               [TINY.entropy_coef] * 2)


def test_entropy_target_anneals_over_the_end_of_the_run():
    cfg = dataclasses.replace(TINY, num_updates=100, entropy_target=0.2,
                              entropy_target_final=0.04, entropy_target_anneal_updates=40)
    got = [float(a2c.entropy_target_at(cfg, jnp.asarray(u))) for u in (0, 60, 80, 100)]
    np.testing.assert_allclose(got, [0.2, 0.2, 0.12, 0.04], atol=1e-6)
    # the adaptation follows the annealed target: at entropy 0.12 it holds c_e at update 80
    coef = jnp.array([0.1, 0.1])
    np.testing.assert_allclose(
        a2c.next_entropy_coef(cfg, jnp.asarray(80), coef, jnp.array([0.12, 0.2])),
        [0.1, 0.1 * np.exp(cfg.entropy_adapt_rate * -0.08)], rtol=1e-5)
    with pytest.raises(ValueError, match="entropy_target_final"):
        a2c.validate(dataclasses.replace(TINY, entropy_target_final=0.05))  # no target


def test_adapted_entropy_coef_is_carried_in_the_train_state():
    cfg = dataclasses.replace(TINY, entropy_coef=0.2, entropy_decay_start=0,
                              entropy_target=0.05, num_updates=4, updates_per_chunk=4)
    init, train_chunk = a2c.make_train(cfg)
    state, metrics = train_chunk(init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    coefs = np.asarray(metrics.entropy_coef)  # (updates, learners): the c_e each update used
    assert coefs.shape == (4, 2)
    np.testing.assert_allclose(coefs[0], [0.2, 0.2])
    # a fresh policy's entropy (~log 2) is above the 0.05 target: c_e falls every update
    assert np.all(np.diff(coefs, axis=0) < 0)
    assert np.all(np.asarray(state.entropy_coef) < coefs[-1])


def test_learning_rate_is_held_then_decays_to_the_end():
    cfg = dataclasses.replace(TINY, num_updates=100, learning_rate=1e-3,
                              learning_rate_final=1e-4, entropy_decay_start=50,
                              update_epochs=2, clip_eps=0.2)  # 2 optimiser steps per update
    lr = a2c.learning_rate_schedule(cfg)
    got = [float(lr(jnp.asarray(2 * u))) for u in (0, 50, 75, 100, 120)]
    np.testing.assert_allclose(got, [1e-3, 1e-3, 5.5e-4, 1e-4, 1e-4], rtol=1e-5)
    constant = a2c.learning_rate_schedule(TINY)(jnp.asarray(7))
    assert float(constant) == pytest.approx(TINY.learning_rate)


def test_frozen_learner_plays_but_keeps_its_parameters():
    cfg = dataclasses.replace(TINY, frozen_learners=(1,), tabular_fraction=0.0,
                              num_updates=3, updates_per_chunk=3)
    init, train_chunk = a2c.make_train(cfg)
    state0 = init(jax.random.PRNGKey(0))
    state, _ = train_chunk(state0, jax.random.PRNGKey(1))
    moved = [not np.array_equal(a[0], b[0]) for a, b in
             zip(jax.tree.leaves(state.params), jax.tree.leaves(state0.params), strict=True)]
    assert any(moved)  # learner 0 trains
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(state0.params), strict=True):
        np.testing.assert_array_equal(a[1], b[1])  # learner 1 does not


def test_pool_composition_follows_tabular_fraction():
    for frac, expected in ((0.5, 8), (0.0, 16), (1.0, 0), (0.25, 12)):
        cfg = dataclasses.replace(TINY, tabular_fraction=frac)
        opp = a2c.sample_opponents(jax.random.PRNGKey(0), cfg)
        assert int(opp.is_learner.sum()) == expected == a2c.num_learner_episodes(cfg)


def test_chunking_does_not_change_the_result():
    """Update u uses fold_in(key, u): 2 chunks of 2 updates == 1 chunk of 4."""
    init, chunk2 = a2c.make_train(TINY)
    _, chunk4 = a2c.make_train(dataclasses.replace(TINY, updates_per_chunk=4))
    key = jax.random.PRNGKey(7)
    s = init(jax.random.PRNGKey(0))
    a, _ = chunk2(s, key)
    a, _ = chunk2(a, key)
    b, _ = chunk4(s, key)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert int(a.update) == int(b.update) == 4


def _params_after(cfg, updates, num_updates=None):
    init, chunk = a2c.make_train(dataclasses.replace(cfg, num_updates=num_updates or updates,
                                                     updates_per_chunk=updates))
    state0 = init(jax.random.PRNGKey(0))
    state, _ = chunk(state0, jax.random.PRNGKey(3))
    return state0, state


def test_lookahead_moves_half_way_to_the_fast_weights_at_each_sync():
    """k = 2, alpha = 0.5: the fast weights follow plain Adam for two updates (same data,
    same optimiser state), then both jump to p0 + alpha (fast - p0)."""
    start, plain = _params_after(TINY, 2)
    _, look = _params_after(dataclasses.replace(TINY, lookahead_sync_period=2,
                                                lookahead_step=0.5), 2)
    moved = False
    for p0, p2, got, slow in zip(jax.tree.leaves(start.params), jax.tree.leaves(plain.params),
                                 jax.tree.leaves(look.params),
                                 jax.tree.leaves(look.slow_params), strict=True):
        np.testing.assert_allclose(got, p0 + 0.5 * (p2 - p0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(slow, got, rtol=1e-6, atol=1e-7)  # synced at the end
        moved |= not np.allclose(p2, p0)
    assert moved
    # between syncs the fast weights run ahead of the slow ones (here: after 3 updates)
    _, odd = _params_after(dataclasses.replace(TINY, lookahead_sync_period=2), 3,
                           num_updates=4)
    assert any(not np.allclose(f, s) for f, s in zip(
        jax.tree.leaves(odd.params), jax.tree.leaves(odd.slow_params), strict=True))


def test_lookahead_with_full_steps_every_update_is_plain_adam():
    _, plain = _params_after(TINY, 3)
    _, look = _params_after(dataclasses.replace(TINY, lookahead_sync_period=1,
                                                lookahead_step=1.0), 3)
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(look.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_learners_have_separate_parameters_and_optimisers():
    init, chunk = a2c.make_train(TINY)
    state = init(jax.random.PRNGKey(0))
    leaves = jax.tree.leaves(state.params)
    assert all(leaf.shape[0] == 2 for leaf in leaves)
    assert any(not np.allclose(leaf[0], leaf[1]) for leaf in leaves)
    new, metrics = chunk(state, jax.random.PRNGKey(1))
    assert metrics.entropy.shape == (2, 2)  # (updates, learners)


def test_a2c_learns_to_exploit_unconditional_cooperators():
    """Against Always-Cooperate only, defecting is strictly better: the policy must move."""
    cfg = dataclasses.replace(TINY, tabular_fraction=1.0, episodes_per_update=64,
                              num_updates=60, updates_per_chunk=60, learning_rate=1e-2,
                              entropy_coef=0.0)
    init, chunk = a2c.make_train(cfg)
    state = init(jax.random.PRNGKey(0))
    allc = jnp.broadcast_to(jnp.asarray(PROBES["AllC"]), (2, 64, 5))
    opp = Opponents(allc, jnp.zeros((64,), bool))
    before = float((_rollout(state.params, opp, cfg).action == 1).mean())
    _, chunk = a2c.make_train(cfg, opponent_sampler=lambda key, c: opp)
    state, _ = chunk(state, jax.random.PRNGKey(1))
    after = float((_rollout(state.params, opp, cfg).action == 1).mean())
    assert before < 0.6 and after > 0.9, (before, after)
