"""coplay.algos.losses against hand-computed values on a 3-sample batch."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from coplay.algos.losses import action_log_probs, categorical_entropy, clipped_surrogate_loss

# ratios r = pi / pi_old of 0.5, 1.0, 1.5 (eps 0.2: the first and last leave [0.8, 1.2])
RATIO = np.array([0.5, 1.0, 1.5])
OLD = np.log(np.array([0.4, 0.5, 0.2]))
NEW = OLD + np.log(RATIO)
f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731


def test_clip_binds_where_the_ratio_leaves_the_band_in_the_advantage_direction():
    adv = np.array([-1.0, 2.0, 1.0])
    # min(rA, clip(r)A): -0.8 (0.5 clipped up to 0.8, A < 0), 2.0, 1.2 (1.5 clipped to 1.2)
    got = clipped_surrogate_loss(f32(NEW), f32(OLD), f32(adv), 0.2)
    np.testing.assert_allclose(got, -(-0.8 + 2.0 + 1.2) / 3, rtol=1e-6)
    # without the clip: -mean(rA) = -(-0.5 + 2 + 1.5) / 3
    np.testing.assert_allclose(clipped_surrogate_loss(f32(NEW), f32(OLD), f32(adv), 0.0),
                               -1.0, rtol=1e-6)
    # the clipped samples get no gradient; the others d/dlogp = -r A / 3
    grad = jax.grad(clipped_surrogate_loss)(f32(NEW), f32(OLD), f32(adv), 0.2)
    np.testing.assert_allclose(grad, [0.0, -2.0 / 3, 0.0], atol=1e-6)


def test_clip_is_pessimistic_only():
    # outside the band but against the advantage: the unclipped term is the smaller, kept
    adv = np.array([1.0, 2.0, -1.0])  # 0.5 * 1 < 0.8 * 1; 1.5 * -1 < 1.2 * -1
    got = clipped_surrogate_loss(f32(NEW), f32(OLD), f32(adv), 0.2)
    np.testing.assert_allclose(got, -(0.5 + 2.0 - 1.5) / 3, rtol=1e-6)
    grad = jax.grad(clipped_surrogate_loss)(f32(NEW), f32(OLD), f32(adv), 0.2)
    np.testing.assert_allclose(grad, -RATIO * adv / 3, rtol=1e-6)


def test_leading_axes_are_all_averaged():
    adv = np.array([-1.0, 2.0, 1.0])
    flat = clipped_surrogate_loss(f32(NEW), f32(OLD), f32(adv), 0.2)
    stacked = clipped_surrogate_loss(f32(np.stack([NEW, NEW])), f32(np.stack([OLD, OLD])),
                                     f32(np.stack([adv, adv])), 0.2)  # (T=2, N=3)
    np.testing.assert_allclose(stacked, flat, rtol=1e-6)


def test_action_log_probs_and_entropy_by_hand():
    # probs (0.25, 0.75), (0.5, 0.5), (0.75, 0.25)
    logits = f32([[0.0, math.log(3)], [1.0, 1.0], [math.log(3), 0.0]])
    action = jnp.asarray([1, 0, 1])
    log_probs, log_prob = action_log_probs(logits, action)
    assert log_probs.shape == (3, 2) and log_prob.shape == (3,)
    np.testing.assert_allclose(log_prob, np.log([0.75, 0.5, 0.25]), rtol=1e-6)
    h = lambda p: -sum(q * math.log(q) for q in p)  # noqa: E731
    want = (h([0.25, 0.75]) + h([0.5, 0.5]) + h([0.75, 0.25])) / 3
    np.testing.assert_allclose(categorical_entropy(log_probs), want, rtol=1e-6)
