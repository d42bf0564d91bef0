"""The GPT: cached-context queries equal the full causal pass; groups are independent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.gpt import (
    GPT,
    GPTConfig,
    init_gpt,
    make_gpt,
    query_indices,
    query_tokens,
    token_inputs,
)
from coplay.config import ConfigError

CFG = GPTConfig(num_layers=2, num_heads=2, width=16, max_positions=40, dropout=0.3)


@pytest.fixture(scope="module")
def model_params():
    return make_gpt(CFG), init_gpt(CFG, jax.random.PRNGKey(0), 9)


def test_query_after_cache_equals_full_causal_pass(model_params):
    model, params = model_params
    ctx = jax.random.normal(jax.random.PRNGKey(1), (3, 20, 9))
    q = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 6, 9))
    cache = model.apply(params, ctx, method=GPT.encode)
    grouped = model.apply(params, cache, q, method=GPT.query)  # (3, 4, 6, A)
    assert grouped.shape == (3, 4, 6, CFG.num_actions)
    for g in range(4):
        full = model.apply(params, jnp.concatenate([ctx, q[:, g]], axis=1))
        np.testing.assert_allclose(full[:, 20:], grouped[:, g], atol=1e-5)
        # the context's own logits are the full pass's first 20
    np.testing.assert_allclose(model.apply(params, ctx), full[:, :20], atol=1e-5)


def test_groups_do_not_see_each_other(model_params):
    model, params = model_params
    ctx = jax.random.normal(jax.random.PRNGKey(1), (1, 10, 9))
    q = jax.random.normal(jax.random.PRNGKey(2), (1, 3, 6, 9))
    cache = model.apply(params, ctx, method=GPT.encode)
    a = model.apply(params, cache, q, method=GPT.query)
    b = model.apply(params, cache, q.at[:, 1:].set(0.0), method=GPT.query)
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)
    assert not np.allclose(a[:, 1], b[:, 1])
    # causality inside a group: changing the last token leaves earlier positions alone
    c = model.apply(params, cache, q.at[:, :, -1].set(5.0), method=GPT.query)
    np.testing.assert_allclose(a[..., :-1, :], c[..., :-1, :], atol=1e-6)


def test_dropout_is_used_in_training_mode(model_params):
    model, params = model_params
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 12, 9))
    a = model.apply(params, x, False, rngs={"dropout": jax.random.PRNGKey(0)})
    b = model.apply(params, x, False, rngs={"dropout": jax.random.PRNGKey(1)})
    assert not np.allclose(a, b)
    np.testing.assert_allclose(model.apply(params, x), model.apply(params, x))


def test_every_config_field_reaches_the_model():
    cfg = GPTConfig(num_layers=3, num_heads=4, width=24, max_positions=17, num_actions=5)
    params = init_gpt(cfg, jax.random.PRNGKey(0), 7)["params"]
    assert sorted(k for k in params if k.startswith("block")) == ["block0", "block1", "block2"]
    assert params["positions"].shape == (17, 24)
    assert params["head"]["kernel"].shape == (24, 5)
    model = make_gpt(cfg)
    cache = model.apply({"params": params}, jnp.zeros((1, 5, 7)), method=GPT.encode)
    assert cache[0].k.shape == (1, 4, 5, 6)  # (B, heads, P, width / heads)


def test_too_long_a_sequence_is_a_clear_error(model_params):
    model, params = model_params
    with pytest.raises(ValueError, match="longer than the model's 40 positions"):
        model.apply(params, jnp.zeros((1, 41, 9)))
    cache = model.apply(params, jnp.zeros((1, 36, 9)), method=GPT.encode)
    with pytest.raises(ValueError, match="42 tokens"):
        model.apply(params, cache, jnp.zeros((1, 1, 6, 9)), method=GPT.query)


def test_attention_dropout_has_its_own_rate():
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 12, 9))
    for attn, varies in ((None, False), (0.5, True)):  # no other dropout: dropout = 0
        cfg = GPTConfig(num_layers=2, num_heads=2, width=16, max_positions=40, dropout=0.0,
                        attn_dropout=attn)
        model, params = make_gpt(cfg), init_gpt(cfg, jax.random.PRNGKey(0), 9)
        a = model.apply(params, x, False, rngs={"dropout": jax.random.PRNGKey(0)})
        assert (not np.allclose(a, model.apply(params, x))) == varies
    assert GPTConfig(dropout=0.3).attention_dropout == 0.3
    assert GPTConfig(dropout=0.3, attn_dropout=0.21).attention_dropout == 0.21


def test_obs_scale_multiplies_the_observation_part_only(model_params):
    model, params = model_params  # input 9 = obs 2 + one-hot 6 + reward 1
    scaled = make_gpt(GPTConfig(**{**CFG.__dict__, "obs_scale": 0.25}))
    ctx = jax.random.normal(jax.random.PRNGKey(1), (2, 10, 9))
    q = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 6, 9))
    by_hand = lambda x: x.at[..., :2].multiply(0.25)  # noqa: E731
    np.testing.assert_allclose(scaled.apply(params, ctx), model.apply(params, by_hand(ctx)),
                               atol=1e-6)
    got = scaled.apply(params, scaled.apply(params, ctx, method=GPT.encode), q,
                       method=GPT.query)
    want = model.apply(params, model.apply(params, by_hand(ctx), method=GPT.encode),
                       by_hand(q), method=GPT.query)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(scaled.apply(params, ctx), model.apply(params, ctx))


@pytest.mark.parametrize("field,value", [("width", 15), ("num_heads", 0), ("dropout", 1.0),
                                         ("attn_dropout", 1.0), ("obs_scale", 0.0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"gpt.{field}"):
        make_gpt(GPTConfig(**{field: value}))


def test_tokens():
    obs = jnp.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    t = token_inputs(obs, jnp.array([[0, 5, -1], [2, -1, 1]]), jnp.array([[0, 20.0, 0], [1, 0, 0]]))
    assert t.shape == (2, 3, 4 + 6 + 1)
    np.testing.assert_array_equal(t[0, 1, :4], obs[0, 1])
    np.testing.assert_array_equal(t[0, 1, 4:10], [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(t[0, 2, 4:10], np.zeros(6))  # -1 = no action
    assert t[0, 1, -1] == 20.0
    steps, valid = query_indices(jnp.array([0, 2, 9]), 6)
    np.testing.assert_array_equal(steps[1], [0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(valid[1], [False] * 3 + [True] * 3)
    np.testing.assert_array_equal(steps[2], [4, 5, 6, 7, 8, 9])
    q = query_tokens(jnp.ones((6, 4)), valid[0])
    np.testing.assert_array_equal(q[:5], np.zeros((5, 11)))
    np.testing.assert_array_equal(q[5], [1, 1, 1, 1] + [0] * 7)
