"""The SGD loop of every trainer, written once: epochs x minibatches of gradient steps.

``update_fn(carry, minibatch) -> (carry, aux)`` is one optimiser step (the carry holds the
parameters and optimiser state, whatever their shape); the batch is any pytree whose leaves
share a sample axis ``batch_axis`` (0 for flat PPO samples, 1 for time-major (T, N) IPD
episodes). :func:`sgd_epochs` draws a fresh permutation per epoch and scans its minibatches
(purejaxrl's ``_update_epoch`` / ``_update_minbatch``); :func:`sgd_steps` scans given rows of
sample indices (PPI draws its own on the host).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainCarry", "optimiser_step", "take_samples", "sgd_steps", "sgd_epochs"]

UpdateFn = Callable[[Any, Any], tuple[Any, Any]]


class TrainCarry(NamedTuple):
    """What the optimiser steps carry: parameters and optimiser state."""

    params: Any
    opt_state: optax.OptState


def optimiser_step(optimizer: optax.GradientTransformation, loss_fn: Callable,
                   grad_at: Callable = lambda params: params) -> UpdateFn:
    """The ``update_fn`` of one gradient step: ``loss_fn(params, minibatch) -> (loss, aux)``
    differentiated at ``grad_at(carry.params)`` (Lookahead's fast weights, say), the update
    of ``optimizer`` applied to the carry's parameters."""

    def update(carry: TrainCarry, minibatch) -> tuple[TrainCarry, Any]:
        grads, aux = jax.grad(loss_fn, has_aux=True)(grad_at(carry.params), minibatch)
        updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
        return TrainCarry(optax.apply_updates(carry.params, updates), opt_state), aux

    return update


def take_samples(batch: Any, rows: jax.Array, batch_axis: int = 0) -> Any:
    """The samples ``rows`` (B,) of every leaf along ``batch_axis``: ``x[rows]`` for axis 0,
    ``x[:, rows]`` for axis 1."""
    index = (slice(None),) * batch_axis + (rows,)
    return jax.tree.map(lambda x: x[index], batch)


def sgd_steps(carry: Any, batch: Any, idx: jax.Array, update_fn: UpdateFn,
              batch_axis: int = 0) -> tuple[Any, Any]:
    """One ``update_fn`` step per row of ``idx`` (S, B) on those samples, as a ``lax.scan``.
    Returns the final carry and the steps' aux stacked (S, ...)."""

    def step(carry, rows):
        return update_fn(carry, take_samples(batch, rows, batch_axis))

    return jax.lax.scan(step, carry, idx)


def sgd_epochs(key: jax.Array, carry: Any, batch: Any, update_fn: UpdateFn, epochs: int,
               minibatches: int, batch_axis: int = 0,
               shuffle_full_batch: bool = True) -> tuple[Any, Any]:
    """``epochs`` passes over ``batch``, each a fresh permutation (key ``split(key, epochs)[e]``)
    cut into ``minibatches`` equal minibatches (``minibatches`` must divide the samples).
    Returns the final carry and aux stacked (epochs, minibatches, ...).

    ``shuffle_full_batch=False``: with one minibatch nothing is drawn and every step sees the
    batch as it is (A2C's full-batch step); with more it makes no difference.
    """
    n = jax.tree.leaves(batch)[0].shape[batch_axis]
    size = n // minibatches
    shuffle = minibatches > 1 or shuffle_full_batch

    def epoch(carry, key):
        if shuffle:
            perm = jax.random.permutation(key, n).reshape(minibatches, size)
            return sgd_steps(carry, batch, perm, update_fn, batch_axis)
        return jax.lax.scan(lambda c, _: update_fn(c, batch), carry,
                            jnp.arange(n).reshape(1, n))

    return jax.lax.scan(epoch, carry, jax.random.split(key, epochs))
