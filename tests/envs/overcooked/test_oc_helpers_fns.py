"""Small helpers of the transition: recipe-table lookup and the materialise compile hint."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.envs.overcooked.interaction import materialise, table_lookup


def test_table_lookup_reads_every_recipe_cell_under_vmap():
    table = np.arange(16, dtype=np.float32).reshape(4, 4) * 1.5 - 3.0
    counts = np.array([(o, t) for o in range(4) for t in range(4)], np.int32)  # (16, 2)
    got = jax.jit(jax.vmap(lambda c: table_lookup(jnp.asarray(table), c)))(counts)
    np.testing.assert_array_equal(got, table[counts[:, 0], counts[:, 1]])
    grid = counts.reshape(2, 2, 4, 2)  # a (H, W, 2) soup grid per env
    np.testing.assert_array_equal(table_lookup(jnp.asarray(table), grid),
                                  table[grid[..., 0], grid[..., 1]])


def test_materialise_is_the_identity_for_every_dtype():
    arrays = (jnp.array([[-3, 0, 7]], jnp.int32), jnp.array([True, False]),
              jnp.array([-np.inf, -1.5, 2.0], jnp.float32),
              jnp.array([np.iinfo(np.int32).min, 5], jnp.int32))
    for a, b in zip(arrays, jax.jit(materialise)(*arrays), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
