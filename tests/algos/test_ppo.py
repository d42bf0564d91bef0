"""Overcooked PPO: losses and GAE against NumPy, seat bookkeeping, jit == eager, vmap == loop,
schedules, config errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from coplay.algos import ppo
from coplay.algos.overcooked_play import by_seat
from coplay.algos.ppo import make_train, stack_params
from coplay.algos.ppo_loss import ppo_losses
from coplay.algos.returns import gae
from coplay.config import ConfigError
from coplay.envs.overcooked import Overcooked
from coplay.experiments.overcooked.presets import PPO_DEFAULT

TINY = dataclasses.replace(PPO_DEFAULT, num_envs=4, num_steps=8, total_steps=64,
                           updates_per_chunk=2, update_epochs=2, num_minibatches=2, horizon=6,
                           hidden_sizes=(8,), shaping_horizon=40, entropy_coefs=(0.1, 0.0),
                           entropy_horizons=(0.0, 1.0))


# --- losses and GAE against NumPy --------------------------------------------------------------
def np_losses(logits, value, action, old_log_prob, old_value, adv, target, eps, clip_value,
              normalize, huber=None):
    z = logits - logits.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    log_prob = log_probs[np.arange(len(action)), action]
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = np.exp(log_prob - old_log_prob)
    policy = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv))
    def loss(e):
        if huber is None:
            return 0.5 * e**2
        return np.where(np.abs(e) <= huber, 0.5 * e**2, huber * (np.abs(e) - 0.5 * huber))

    err = loss(value - target)
    if clip_value:
        err = np.maximum(err, loss(old_value + np.clip(value - old_value, -eps, eps) - target))
    entropy = -(np.exp(log_probs) * log_probs).sum(1).mean()
    return policy, err.mean(), entropy


B = 7
vec = lambda lo, hi: arrays(np.float64, B, elements=st.floats(lo, hi))  # noqa: E731


@settings(max_examples=30, deadline=None)
@given(logits=arrays(np.float64, (B, 6), elements=st.floats(-4, 4)),
       value=vec(-5, 5), old_value=vec(-5, 5), target=vec(-5, 5), adv=vec(-3, 3),
       old_log_prob=vec(-3, -0.05), action=arrays(np.int32, B, elements=st.integers(0, 5)),
       eps=st.floats(0.05, 0.5), clip_value=st.booleans(), normalize=st.booleans(),
       huber=st.one_of(st.none(), st.floats(0.5, 5)))
def test_ppo_losses_match_numpy(logits, value, old_value, target, adv, old_log_prob, action,
                                eps, clip_value, normalize, huber):
    # (near-)constant advantages: normalising divides float32 rounding noise by ~1e-8
    assume(not normalize or adv.std() > 1e-2)
    got = ppo_losses(jnp.asarray(logits, jnp.float32), jnp.asarray(value, jnp.float32),
                     jnp.asarray(action), jnp.asarray(old_log_prob, jnp.float32),
                     jnp.asarray(old_value, jnp.float32), jnp.asarray(adv, jnp.float32),
                     jnp.asarray(target, jnp.float32), eps, clip_value, normalize, huber)
    want = np_losses(logits, value, action, old_log_prob, old_value, adv, target, eps,
                     clip_value, normalize, huber)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=2e-4, atol=2e-4)


def test_gae_over_envs_and_seats_matches_a_numpy_loop():
    rng = np.random.default_rng(0)
    T, N = 9, 3
    rewards, values = rng.normal(size=(T, N, 2)), rng.normal(size=(T, N, 2))
    last = rng.normal(size=(N, 2))
    done = rng.random((T, N)) < 0.3
    dones = np.broadcast_to(done[..., None], rewards.shape)
    adv, targets = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones),
                       jnp.asarray(last), 0.9, 0.8)
    want = np.zeros_like(rewards)
    for n in range(N):
        for s in range(2):
            a, nv = 0.0, last[n, s]
            for t in reversed(range(T)):
                nd = 1.0 - done[t, n]
                a = rewards[t, n, s] + 0.9 * nv * nd - values[t, n, s] + 0.9 * 0.8 * nd * a
                want[t, n, s], nv = a, values[t, n, s]
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, want + values, rtol=1e-5, atol=1e-5)


# --- seats and policies ------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seat_axis, shape", [(1, (3, 2, 4)), (2, (5, 3, 2, 4))])
def test_policy_grouping_round_trips(shared, seat_axis, shape):
    x = jnp.arange(np.prod(shape)).reshape(shape)
    g = ppo.to_policies(x, seat_axis, shared)
    assert g.shape[0] == (1 if shared else 2)
    if not shared:
        np.testing.assert_array_equal(g[1], jnp.take(x, 1, axis=seat_axis))
    np.testing.assert_array_equal(ppo.from_policies(g, seat_axis, shared), x)


def test_by_seat_follows_the_swap():
    x = jnp.array([[[10], [11]], [[20], [21]]])  # (N=2, cooks, 1)
    cook_of_seat = jnp.array([[0, 1], [1, 0]])  # env 1 swapped
    np.testing.assert_array_equal(by_seat(x, cook_of_seat)[..., 0], [[10, 11], [21, 20]])


# --- schedules ---------------------------------------------------------------------------------
def test_entropy_and_shaping_schedules():
    cfg = dataclasses.replace(TINY, total_steps=1000, entropy_coefs=(0.2, 0.05, 0.001),
                              entropy_horizons=(0.0, 0.6, 1.0), shaping_horizon=500)
    at = lambda s: float(ppo.entropy_coef_at(cfg, s))  # noqa: E731
    assert at(0) == pytest.approx(0.2) and at(600) == pytest.approx(0.05)
    assert at(300) == pytest.approx(0.125) and at(5000) == pytest.approx(0.001)
    assert float(ppo.shaping_scale_at(cfg, 250)) == pytest.approx(0.5)
    assert float(ppo.shaping_scale_at(cfg, 900)) == 0.0
    const = dataclasses.replace(cfg, shaping_horizon=None)
    assert float(ppo.shaping_scale_at(const, 10**9)) == 1.0
    assert ppo.num_updates(TINY) == 2  # 64 steps / 32 per update, whole chunks of 2


# --- config errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("change, field", [
    (dict(num_envs=0), "num_envs"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(num_minibatches=5), "num_minibatches"),
    (dict(entropy_horizons=(0.0,)), "entropy_horizons"),
    (dict(entropy_coefs=(0.1, 0.2), entropy_horizons=(0.5, 0.2)), "entropy_horizons"),
    (dict(network="rnn"), "network"),
    (dict(gamma=1.5), "gamma"),
    (dict(hidden_sizes=()), "hidden_sizes"),
])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(ConfigError, match=f"ppo.{field}"):
        ppo.validate(dataclasses.replace(TINY, **change))


# --- the trainer -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env():
    return Overcooked("cramped_room")


def _members(env):
    """Two members with different hidden utilities: seat 0 paid per MOVEMENT / STAY."""
    names = env.event_names
    w = np.zeros((2, 2, env.num_events), np.float32)
    w[0, 0, names.index("MOVEMENT")] = 1.0
    w[1, 0, names.index("STAY")] = 1.0
    w[:, 1, names.index("STAY")] = 0.5
    return stack_params([env.default_params(event_weights=w[m], sparse_weight=0.0)
                         for m in range(2)])


def _assert_trees_close(a, b, rtol=1e-4, atol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                   rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def population(env):
    cfg = dataclasses.replace(TINY, shaping_factor=0.0)
    members = _members(env)
    trainer = make_train(cfg, env, members)
    state0 = trainer.init(jax.random.PRNGKey(0))
    state1, metrics = trainer.train_chunk(state0)
    return trainer, members, state0, state1, metrics


def test_population_state_has_member_and_policy_axes(population):
    trainer, _, state0, state1, metrics = population
    kernel = state1.params["params"]["actor"]["dense0"]["kernel"]
    assert kernel.shape == (2, 2, 4 * 5 * 20, 8)  # (members, policies, in, out)
    assert metrics.returned_return.shape == (2, TINY.updates_per_chunk)
    assert metrics.episode_events_sum.shape == (2, TINY.updates_per_chunk, 2, 17)
    np.testing.assert_array_equal(state1.update, [2, 2])
    assert not np.allclose(kernel[0], kernel[1])  # members start from different keys


def test_rewards_follow_the_seat_not_the_cook(population, env):
    _, _, _, state1, m = population
    names = env.event_names
    mv, stay = names.index("MOVEMENT"), names.index("STAY")
    ev, rew = np.asarray(m.episode_events_sum), np.asarray(m.episode_reward_sum)
    assert np.asarray(m.episodes).sum() > 0
    np.testing.assert_allclose(rew[0, :, 0], ev[0, :, 0, mv])
    np.testing.assert_allclose(rew[1, :, 0], ev[1, :, 0, stay])
    np.testing.assert_allclose(rew[:, :, 1], 0.5 * ev[:, :, 1, stay])
    assert np.asarray(state1.runner.swap).any()  # seats were drawn, not fixed


def test_vmap_over_members_equals_a_loop(population):
    trainer, members, state0, state1, metrics = population
    chunk = jax.jit(trainer.member_chunk)
    for m in range(2):
        take = lambda t: jax.tree.map(lambda x: x[m], t)  # noqa: B023, E731
        s, met = chunk(take(state0), take(members))
        _assert_trees_close(s, take(state1))
        _assert_trees_close(met, take(metrics))


def test_jit_equals_eager(env):
    # op by op is slow: 2 steps, the episode ending (auto-reset) at the second
    cfg = dataclasses.replace(TINY, updates_per_chunk=1, num_envs=2, num_steps=2, horizon=2,
                              update_epochs=1, share_policy=True, centralised_value=True,
                              value_norm=True, advantage_norm="batch", huber_delta=1.0)
    params = env.default_params()
    trainer = make_train(cfg, env, stack_params([params]))
    state = trainer.init_member(jax.random.PRNGKey(3), params)
    jitted = jax.jit(trainer.member_chunk)(state, params)
    with jax.disable_jit():
        eager = trainer.member_chunk(state, params)
    _assert_trees_close(jitted, eager)
    assert state.params["params"]["critic"]["dense0"]["kernel"].shape[1] == 4 * 5 * 40
    assert state.params["params"]["actor"]["dense0"]["kernel"].shape[0] == 1  # shared


def test_member_params_need_a_member_axis(env):
    with pytest.raises(ConfigError, match="member axis"):
        make_train(TINY, env, env.default_params())
