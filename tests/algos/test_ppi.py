"""PPI pieces: tokenisation, the improved policy against NumPy, planning jit == eager,
D0 games, and rollouts."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.ppi_model import predict_sequence
from coplay.algos import ppi
from coplay.algos.ipd_rollout import Opponents
from coplay.envs.matrix_games import MatrixGameParams

CFG = ppi.PPIConfig(num_rounds=6, hidden_size=8, embed_dim=4, planning_horizon=3,
                    num_rollouts=2, collect_batch=4, trajectories_per_phase=4,
                    d0_trajectories=8, batch_size=4)


def test_tokenize_hand_made_episode():
    # own C, D, D; co-player C, C, D  -> rewards 1, 2, 0
    ep = ppi.Episodes(np.array([[0, 1, 1]], np.int8), np.array([[0, 0, 1]], np.int8),
                      np.array([[1, 2, 0]], np.float16), np.zeros((1, 10), np.float16))
    inputs, actions, next_tokens, rewards = ppi.tokenize(ep)
    assert inputs.token[:, 0].tolist() == [0, 1, 3]  # start, cc, dc
    assert inputs.prev_action[:, 0].tolist() == [-1, 0, 1]
    assert inputs.prev_reward[:, 0].tolist() == [0, 1, 2]
    assert actions[:, 0].tolist() == [0, 1, 1]
    assert next_tokens[:, 0].tolist() == [1, 3, 4]  # cc, dc, dd
    assert rewards[:, 0].tolist() == [1, 2, 0]


def _numpy_improved(prior_logits, q, beta):
    p = np.exp(prior_logits - prior_logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    w = p * np.exp(beta * (q - q.max(-1, keepdims=True)))
    return w / w.sum(-1, keepdims=True)


def test_improved_policy_matches_numpy_and_its_limits():
    prior = np.array([[0.3, -0.2], [2.0, 0.0], [-1.0, 1.0]], np.float32)
    q = np.array([[1.5, 0.5], [-1.0, 3.0], [4.0, 4.5]], np.float32)
    for beta in (0.01, 0.5, 2.0):
        got = np.exp(np.asarray(ppi.improved_logits(jnp.asarray(prior), jnp.asarray(q), beta)))
        np.testing.assert_allclose(got, _numpy_improved(prior, q, beta), rtol=1e-5, atol=1e-6)
    prior_p = _numpy_improved(prior, np.zeros_like(q), 0.0)
    np.testing.assert_allclose(np.exp(ppi.improved_logits(prior, q, 1e-7)), prior_p, atol=1e-5)
    greedy = np.exp(np.asarray(ppi.improved_logits(prior, q, 1e3)))
    np.testing.assert_array_equal(greedy.argmax(-1), q.argmax(-1))
    assert greedy.max(-1).min() > 0.999


def _learner_params(cfg, n=2):
    return ppi.init_learners(cfg, jax.random.PRNGKey(1), n)


def test_planning_jit_equals_eager():
    params = ppi.init_params(CFG, jax.random.PRNGKey(0))
    hidden = jax.random.normal(jax.random.PRNGKey(2), (2, CFG.hidden_size))
    feat = jax.nn.swish(hidden)
    z = jnp.zeros((2, 10))
    cfg = dataclasses.replace(CFG, planning_horizon=2)  # eager is slow: keep it short
    plan = lambda p, h, f, t, k: ppi.plan_q(cfg, p, h, f, z, t, k)  # noqa: E731
    args = (params, hidden, feat, jnp.asarray(1), jax.random.PRNGKey(4))
    with jax.disable_jit():
        eager = np.asarray(plan(*args))
    jitted = np.asarray(jax.jit(plan)(*args))
    assert eager.shape == (2, 2)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)


def test_plan_q_counts_only_the_remaining_rounds_exactly():
    """A model whose reward head is a constant c: Q = c x min(horizon, rounds left), or
    c x horizon everywhere with `plan_past_episode_end`."""
    params = ppi.init_params(CFG, jax.random.PRNGKey(0))

    def constant_reward(path, x):
        name = jax.tree_util.keystr(path)
        if "reward_head" not in name:
            return x
        return jnp.full_like(x, 0.5) if "bias" in name else jnp.zeros_like(x)

    params = jax.tree_util.tree_map_with_path(constant_reward, params)
    hidden = jnp.zeros((2, CFG.hidden_size))
    z = jnp.zeros((2, 10))
    for past_end in (False, True):
        cfg = dataclasses.replace(CFG, plan_past_episode_end=past_end)
        plan = jax.jit(lambda t, cfg=cfg: ppi.plan_q(cfg, params, hidden, hidden, z, t,
                                                      jax.random.PRNGKey(0)))
        for t, left in ((0, 3), (CFG.num_rounds - 2, 2), (CFG.num_rounds - 1, 1)):
            want = 0.5 * (CFG.planning_horizon if past_end else left)
            np.testing.assert_allclose(plan(jnp.asarray(t)), want, rtol=1e-6)


def test_random_pairs_are_one_game_seen_from_both_seats():
    eps = ppi.make_random_pairs(CFG.num_rounds)(jax.random.PRNGKey(0), 5)
    assert eps.action.shape == (10, CFG.num_rounds)
    np.testing.assert_array_equal(eps.opponent_action[:5], eps.action[5:])
    np.testing.assert_array_equal(eps.opponent_action[5:], eps.action[:5])
    payoff = np.asarray(MatrixGameParams().payoff)
    np.testing.assert_array_equal(eps.reward, payoff[eps.action, eps.opponent_action])


def test_rollout_beta_zero_plays_the_prior_and_learner_games_are_shared():
    params = _learner_params(CFG)
    n = 4
    opp = Opponents(jnp.full((2, n, 5), 0.5), jnp.arange(n) < 2)
    play = jax.jit(lambda beta: ppi.rollout(jax.random.PRNGKey(0), CFG, params, opp,
                                            MatrixGameParams(), beta=beta))
    traj = play(0.0)
    assert traj.action.shape == (CFG.num_rounds, 2, n) and traj.q.shape == (6, 2, n, 2)
    np.testing.assert_allclose(traj.coop_prob, traj.prior_coop, atol=1e-6)
    # learner games: each learner's co-player action is the other learner's action
    np.testing.assert_array_equal(traj.opponent_action[:, 0, :2], traj.action[:, 1, :2])
    tilted = play(5.0)
    expect = jax.nn.sigmoid(jnp.log(tilted.prior_coop / (1 - tilted.prior_coop))
                            + 5.0 * (tilted.q[..., 0] - tilted.q[..., 1]))
    np.testing.assert_allclose(tilted.coop_prob, expect, atol=1e-4)


def test_rollout_records_the_models_coplayer_prediction_and_the_truth():
    params = _learner_params(CFG)
    n = 6
    tabular = jax.random.uniform(jax.random.PRNGKey(3), (2, n, 5))
    is_learner = jnp.arange(n) < 2
    traj = jax.jit(lambda: ppi.rollout(jax.random.PRNGKey(4), CFG, params,
                                       Opponents(tabular, is_learner), MatrixGameParams()))()
    # the truth: the other learner's π(C | x) in learner games ...
    np.testing.assert_allclose(traj.coplayer_coop_prob[:, 0, :2], traj.coop_prob[:, 1, :2])
    np.testing.assert_allclose(traj.coplayer_coop_prob[:, 1, :2], traj.coop_prob[:, 0, :2])
    # ... and the tabular agent's memory-1 entry for its own view of the last round
    own, other = np.asarray(traj.action), np.asarray(traj.opponent_action)
    tab_token = np.concatenate([np.zeros((1, 2, n), int), 1 + 2 * other[:-1] + own[:-1]], 0)
    expect = np.take_along_axis(np.asarray(tabular)[None], tab_token[..., None], -1)[..., 0]
    np.testing.assert_allclose(traj.coplayer_coop_prob[:, :, 2:], expect[:, :, 2:])
    # the prediction: what the model, teacher-forced over the recorded game, says of round t
    model = ppi.make_model(CFG)
    for i in range(2):
        p_i = jax.tree.map(lambda x, i=i: x[i], params)
        next_tokens = 1 + 2 * own[:, i] + other[:, i]
        _, obs, _ = predict_sequence(model, p_i, jax.tree.map(lambda x, i=i: x[:, i], traj.inputs),
                                     jnp.asarray(own[:, i]), jnp.asarray(next_tokens))
        np.testing.assert_allclose(traj.predicted_coplayer_coop[:, i],
                                   ppi.predicted_coplayer_coop(obs, jnp.asarray(own[:, i])),
                                   atol=1e-5)
    # and that is the tokens' masked softmax by hand
    logits = np.asarray(obs)
    mass = np.exp(logits - logits.max(-1, keepdims=True))
    a = own[:, 1]
    hand = (np.take_along_axis(mass, (1 + 2 * a)[..., None], -1)[..., 0]
            / (np.take_along_axis(mass, (1 + 2 * a)[..., None], -1)[..., 0]
               + np.take_along_axis(mass, (2 + 2 * a)[..., None], -1)[..., 0]))
    np.testing.assert_allclose(traj.predicted_coplayer_coop[:, 1], hand, atol=1e-5)


def test_a_population_plays_the_drawn_partner():
    """Four learners: each learner game is against the partner drawn for it (an involution),
    and the co-player's true P(C) is that partner's π."""
    cfg = dataclasses.replace(CFG, num_learners=4)
    ppi.validate(cfg)
    n = 8
    opp = ppi.sample_opponents(jax.random.PRNGKey(2), cfg, n)
    partner = np.asarray(opp.partner)
    assert partner.shape == (4, n)
    np.testing.assert_array_equal(np.take_along_axis(partner, partner, 0), np.tile(
        np.arange(4)[:, None], (1, n)))
    assert (partner != np.arange(4)[:, None]).all()
    params = _learner_params(cfg, 4)
    traj = jax.jit(lambda: ppi.rollout(jax.random.PRNGKey(4), cfg, params, opp,
                                       MatrixGameParams()))()
    learner = np.asarray(opp.is_learner)
    assert learner.any() and not learner.all()
    own, other = np.asarray(traj.action), np.asarray(traj.opponent_action)
    want = np.take_along_axis(own, np.broadcast_to(partner, own.shape), 1)
    np.testing.assert_array_equal(other[:, :, learner], want[:, :, learner])
    prob = np.take_along_axis(np.asarray(traj.coop_prob), np.broadcast_to(partner, own.shape), 1)
    np.testing.assert_allclose(np.asarray(traj.coplayer_coop_prob)[:, :, learner],
                               prob[:, :, learner])


def test_episode_planning_noise_reuses_the_rollout_draws_at_every_decision():
    """A model whose GRU is switched off (all its weights zero keep the state at 0) is in the
    same state at every round, so its Q̂ differs between rounds only through the rollouts'
    random numbers: equal at every decision of a game with `planning_noise="episode"`,
    different with fresh draws per decision, and different between games either way."""
    cfg = dataclasses.replace(CFG, plan_past_episode_end=True, num_rounds=5)
    params = _learner_params(cfg)
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if "gru" in jax.tree_util.keystr(path) else x, params)
    n = 4
    opp = Opponents(jnp.full((2, n, 5), 0.5), jnp.arange(n) < 2)

    def q(noise):
        c = dataclasses.replace(cfg, planning_noise=noise)
        return np.asarray(jax.jit(lambda: ppi.rollout(jax.random.PRNGKey(0), c, params, opp,
                                                      MatrixGameParams()).q)())

    episode, decision = q("episode"), q("decision")  # (T, L, N, 2)
    np.testing.assert_array_equal(episode, np.broadcast_to(episode[:1], episode.shape))
    assert not np.allclose(decision, decision[:1])
    assert not np.allclose(episode[:, :, :1], episode[:, :, 1:2])  # games differ


def test_training_steps_lower_the_loss():
    cfg = dataclasses.replace(CFG, learning_rate=3e-3)
    data = ppi.make_random_pairs(cfg.num_rounds)(jax.random.PRNGKey(0), 32)
    stacked = jax.tree.map(lambda x: jnp.asarray(x)[None], data)
    params = _learner_params(cfg, 1)
    train_steps, optimizer = ppi.make_train_steps(cfg)
    opt_state = jax.vmap(optimizer.init)(params)
    idx = jnp.asarray(ppi.batch_indices(np.random.default_rng(0), 64, 60, 16))[None]
    losses = []
    ones = jnp.ones((1, 32))
    for c in range(3):
        params, opt_state, parts = train_steps(params, opt_state, stacked,
                                               idx[:, 20 * c:20 * (c + 1)], ones)
        losses.append(float(parts.total[0]))
    assert losses[2] < losses[0], losses


def test_action_weights_drop_trajectories_from_the_action_loss_only():
    """With weights (1, 1, 0, 0) the own-action term is that of the first two trajectories
    alone, the other terms still average all four; weights of ones give the plain mean."""
    data = ppi.make_random_pairs(CFG.num_rounds)(jax.random.PRNGKey(3), 2)  # 4 trajectories
    params = ppi.init_params(CFG, jax.random.PRNGKey(4))
    full = ppi.model_loss(CFG, params, data)
    first = ppi.model_loss(CFG, params, jax.tree.map(lambda x: x[:2], data))
    weighted = ppi.model_loss(CFG, params, data, jnp.array([1.0, 1.0, 0.0, 0.0]))
    ones = ppi.model_loss(CFG, params, data, jnp.ones(4))
    np.testing.assert_allclose(weighted.action, first.action, rtol=1e-5)
    np.testing.assert_allclose(weighted.obs, full.obs, rtol=1e-6)
    np.testing.assert_allclose(weighted.reward, full.reward, rtol=1e-6)
    assert not np.isclose(full.action, first.action)  # the check can fail
    for a, b in zip(ones, full, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    none = ppi.model_loss(CFG, params, data, jnp.zeros(4))
    assert float(none.action) == 0.0


@pytest.mark.parametrize("field, value", [("beta", -1.0), ("collect_batch", 3), ("num_learners", 3),
                                          ("d0_trajectories", 7), ("action_loss_weight", 0.0),
                                          ("dataset_window", -1), ("prior_window", -2),
                                          ("planning_noise", "round")])
def test_validate_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ppi.validate(dataclasses.replace(CFG, **{field: value}))


def test_numpy_opponent_ids_use_the_one_formula_in_float64():
    from coplay.algos.ipd_rollout import Opponents
    from coplay.algos.ppi import _opponent_ids_np

    tab = np.array([[[0.0, 1.0, 0.5, 0.25, 1e-9], [0.3, 0.7, 0.9, 0.1, 1.0]]])  # (L=1, N=2, 5)
    opp = Opponents(jnp.asarray(tab, jnp.float32), jnp.asarray([False, True]))
    p = np.clip(np.asarray(opp.tabular[0], np.float64), 1e-6, 1 - 1e-6)
    want = np.concatenate([np.log(p), np.log1p(-p)], -1)
    want[1] = 0.0  # a learner co-player
    np.testing.assert_array_equal(_opponent_ids_np(opp, 0), want.astype(np.float16))
