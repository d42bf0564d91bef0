"""CooT training: the shared-context loss is the one-query-per-example loss; training learns;
bad configs are named."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.gpt import GPTConfig
from coplay.algos.coot import (
    CootConfig,
    batch_groups,
    make_trainer,
    per_example_loss,
    shared_context_loss,
    step_mask_schedule,
)
from coplay.config import ConfigError
from coplay.data.context import ContextSpec, Episodes, sample_batch

G, E, T, D = 4, 6, 12, 6


def _data(seed=0):
    # the best response's action depends on the state and on the group: the context tells
    # which group it is (its actions in the context), the query's state alone does not
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 3, (G, E, T, D)).astype(np.uint8)
    action = (obs[..., 0].astype(int) + np.arange(G)[:, None, None] * 2) % 6
    reward = (rng.random((G, E, T)) < 0.1).astype(np.float32) * 20
    return Episodes(jnp.asarray(obs), jnp.asarray(action), jnp.asarray(reward))


def _cfg(**kw):
    base = dict(gpt=GPTConfig(num_layers=2, num_heads=2, width=32, max_positions=2 * T + 4,
                              dropout=0.0),
                context=ContextSpec(num_episodes=2, episode_len=T, query_len=4,
                                    queries_per_context=8),
                contexts_per_batch=2, contexts_per_group=16, epochs=8, learning_rate=3e-3,
                val_contexts_per_group=4)
    base.update(kw)
    return CootConfig(**base)


def test_shared_context_loss_equals_one_query_per_example():
    cfg = _cfg()
    tr = make_trainer(cfg, [0, 1, 2], [3], D)
    params = tr.init(jax.random.PRNGKey(0)).params
    batch = sample_batch(jax.random.PRNGKey(1), _data(), jnp.array([0, 3, 1]), cfg.context, 0.2)
    # jitted: op by op, the per-example reference's gradient alone took ~40 s on this CPU
    shared = jax.jit(lambda p: shared_context_loss(tr.model, p, batch))(params)
    single = jax.jit(lambda p: per_example_loss(tr.model, p, batch))(params)
    np.testing.assert_allclose(shared, single, rtol=1e-5)
    g_shared = jax.jit(jax.grad(lambda p: shared_context_loss(tr.model, p, batch)[0]))(params)
    g_single = jax.jit(jax.grad(lambda p: per_example_loss(tr.model, p, batch)[0]))(params)
    for a, b in zip(jax.tree.leaves(g_shared), jax.tree.leaves(g_single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_training_learns_and_tracks_the_best_validation_epoch():
    data = _data()
    tr = make_trainer(_cfg(), [0, 1, 2], [3], D)
    state = tr.init(jax.random.PRNGKey(0))
    losses, vals = [], []
    for _ in range(8):
        state, m = tr.epoch(state, data)
        losses.append(float(m.train_loss))
        vals.append(float(m.val_loss))
    assert losses[-1] < 0.6 * losses[0], losses
    assert int(state.epoch) == 8
    assert float(state.best_val) == pytest.approx(min(vals))
    assert int(state.best_epoch) == int(np.argmin(vals)) + 1
    assert float(m.step_mask) == pytest.approx(0.2)  # grown to step_mask_max by the end


def test_same_key_same_run():
    data = _data()
    tr = make_trainer(_cfg(epochs=2), [0, 1, 2], [3], D)
    a = tr.epoch(tr.init(jax.random.PRNGKey(4)), data)[0]
    b = tr.epoch(tr.init(jax.random.PRNGKey(4)), data)[0]
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_configs_are_named():
    with pytest.raises(ConfigError, match="coot.max_grad_norm"):
        _cfg(max_grad_norm=0).validate()
    with pytest.raises(ValueError, match="needs 1006 positions; gpt.max_positions = 500"):
        CootConfig(gpt=GPTConfig(max_positions=500)).validate()
    with pytest.raises(ValueError, match="0 validation groups"):
        make_trainer(_cfg(), [0, 1], [], D)


def test_step_mask_schedules():
    prob = CootConfig(step_mask_max=0.2)
    np.testing.assert_allclose(step_mask_schedule(prob, jnp.array([0.0, 0.5, 1.0])),
                               [0.0, 0.1, 0.2])
    count = CootConfig(context=ContextSpec(step_mask_unit="count"), step_mask_count=(10, 70))
    # logarithmic: the geometric mean half way
    np.testing.assert_allclose(step_mask_schedule(count, jnp.array([0.0, 0.5, 1.0])),
                               [10.0, np.sqrt(700.0), 70.0], rtol=1e-5)
    with pytest.raises(ConfigError, match="step_mask_count"):
        CootConfig(step_mask_count=(0, 5)).validate()


def test_batches_of_one_group_the_releases_way():
    groups = jnp.array([0, 2, 5])
    mixed = np.asarray(batch_groups(_cfg(contexts_per_group=5, contexts_per_batch=2),
                                    jax.random.PRNGKey(0), groups))
    assert mixed.shape == (8, 2)  # 15 contexts in batches of 2, the last wrapping around
    assert sorted(mixed.reshape(-1)[:15]) == sorted([0, 2, 5] * 5)
    one = np.asarray(batch_groups(_cfg(contexts_per_group=5, contexts_per_batch=2,
                                       batch_from_one_group=True),
                                  jax.random.PRNGKey(0), groups))
    assert one.shape == (9, 2) and (one == one[:, :1]).all()  # every batch one group
    assert sorted(one[:, 0]) == [0, 0, 0, 2, 2, 2, 5, 5, 5]  # ceil(5 / 2) batches each
    tr = make_trainer(_cfg(batch_from_one_group=True), [0, 1, 2], [3], D)
    assert tr.steps_per_epoch == 3 * 8
