"""coplay.algos.sgd: the epoch x minibatch scan and the optimiser step shared by the trainers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from coplay.algos.sgd import TrainCarry, optimiser_step, sgd_epochs, sgd_steps, take_samples


def record(carry, mb):
    """An update_fn that counts its steps and returns the minibatch it saw."""
    return carry + 1, mb


def test_every_epoch_is_a_fresh_permutation_cut_into_minibatches():
    key = jax.random.PRNGKey(3)
    x = jnp.arange(12) * 10
    steps, seen = sgd_epochs(key, 0, x, record, epochs=3, minibatches=4)
    assert int(steps) == 12 and seen.shape == (3, 4, 3)
    for e, k in enumerate(jax.random.split(key, 3)):
        perm = np.asarray(jax.random.permutation(k, 12))
        np.testing.assert_array_equal(seen[e].reshape(-1), perm * 10)
        assert sorted(np.asarray(seen[e]).reshape(-1).tolist()) == list(range(0, 120, 10))
    assert not np.array_equal(seen[0], seen[1])


def test_samples_on_axis_1_and_pytrees():
    batch = {"a": jnp.arange(2 * 6).reshape(2, 6), "b": jnp.arange(6)[None] * jnp.ones((3, 1))}
    rows = jnp.array([4, 0, 5])
    got = take_samples(batch, rows, batch_axis=1)
    np.testing.assert_array_equal(got["a"], np.asarray(batch["a"])[:, [4, 0, 5]])
    np.testing.assert_array_equal(got["b"], np.asarray(batch["b"])[:, [4, 0, 5]])
    _, seen = sgd_epochs(jax.random.PRNGKey(0), 0, batch, record, 2, 2, batch_axis=1)
    assert seen["a"].shape == (2, 2, 2, 3) and seen["b"].shape == (2, 2, 3, 3)


def test_full_batch_without_shuffle_sees_the_batch_as_it_is():
    x = jnp.arange(5.0)
    steps, seen = sgd_epochs(jax.random.PRNGKey(0), 0, x, record, 2, 1, shuffle_full_batch=False)
    assert int(steps) == 2
    np.testing.assert_array_equal(seen, np.broadcast_to(np.arange(5.0), (2, 1, 5)))
    _, shuffled = sgd_epochs(jax.random.PRNGKey(0), 0, x, record, 2, 1)
    assert not np.array_equal(shuffled[0, 0], np.arange(5.0))  # the default permutes


def test_sgd_steps_follows_the_given_rows():
    x = jnp.arange(6) + 100
    idx = jnp.array([[5, 1], [0, 0], [2, 3]])
    steps, seen = sgd_steps(0, x, idx, record)
    assert int(steps) == 3
    np.testing.assert_array_equal(seen, np.asarray(idx) + 100)


def quadratic(w, mb):
    """0.5 mean((w - x)^2): gradient w - mean(x)."""
    loss = 0.5 * jnp.mean(jnp.square(w - mb))
    return loss, loss


def test_optimiser_step_is_one_plain_sgd_step():
    opt = optax.sgd(0.5)
    carry = TrainCarry(jnp.asarray(1.0), opt.init(jnp.asarray(1.0)))
    new, loss = optimiser_step(opt, quadratic)(carry, jnp.array([3.0, 5.0]))
    np.testing.assert_allclose(new.params, 1.0 - 0.5 * (1.0 - 4.0))  # 2.5
    np.testing.assert_allclose(loss, 0.5 * (4.0 + 16.0) / 2)
    # grad_at: differentiate elsewhere than the carried parameters (Lookahead's fast weights)
    at_zero, _ = optimiser_step(opt, quadratic, lambda p: p - 1.0)(carry, jnp.array([3.0, 5.0]))
    np.testing.assert_allclose(at_zero.params, 1.0 - 0.5 * (0.0 - 4.0))  # 3.0


def old_epoch_loop(key, params, opt_state, batch, optimizer, epochs, minibatches):
    """PPO's hand-written loop before the refactor, as a reference."""
    n = batch.shape[0]

    def epoch(carry, key):
        perm = jax.random.permutation(key, n).reshape(minibatches, n // minibatches)

        def minibatch(carry, idx):
            params, opt_state = carry
            grads, aux = jax.grad(quadratic, has_aux=True)(params, batch[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        return jax.lax.scan(minibatch, carry, perm)

    return jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))


def test_equals_the_old_loop_and_jit_equals_eager():
    opt = optax.adam(0.1)
    w = jnp.zeros(())
    batch = jax.random.normal(jax.random.PRNGKey(1), (8,)) + 2.0
    key = jax.random.PRNGKey(7)
    (w_old, _), aux_old = old_epoch_loop(key, w, opt.init(w), batch, opt, 3, 2)

    def run(key, w):
        return sgd_epochs(key, TrainCarry(w, opt.init(w)), batch, optimiser_step(opt, quadratic),
                          3, 2)

    carry, aux = run(key, w)
    np.testing.assert_array_equal(carry.params, w_old)
    np.testing.assert_array_equal(aux, aux_old)
    jcarry, jaux = jax.jit(run)(key, w)
    np.testing.assert_allclose(jcarry.params, carry.params, rtol=1e-6)
    np.testing.assert_allclose(jaux, aux, rtol=1e-6)
