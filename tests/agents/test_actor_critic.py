"""Actor-critic networks for Overcooked PPO: shapes, separate towers, critic input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.actor_critic import critic_input, make_network


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_shapes_and_parameter_layout(kind):
    net = make_network(kind, (16, 8), "relu", cnn_filters=(4, 6, 4))
    obs = jnp.ones((3, 4, 5, 20))
    params = net.init(jax.random.PRNGKey(0), obs[:1], jnp.ones((1, 4, 5, 40)))
    logits, value = net.apply(params, obs, jnp.ones((3, 4, 5, 40)))
    assert logits.shape == (3, 6) and value.shape == (3,)
    p = params["params"]
    assert set(p) == {"actor", "critic", "policy", "value"}
    assert p["actor"]["dense0"]["kernel"].shape[1] == 16
    assert p["actor"]["dense1"]["kernel"].shape == (16, 8)
    if kind == "cnn":
        # ZSC-Eval's encoder: 3x3 convolutions, SAME padding, given filters
        assert [p["actor"][f"conv{i}"]["kernel"].shape for i in range(3)] == [
            (3, 3, 20, 4), (3, 3, 4, 6), (3, 3, 6, 4)]
        assert [p["critic"][f"conv{i}"]["kernel"].shape[2] for i in range(3)] == [40, 4, 6]
        assert p["actor"]["dense0"]["kernel"].shape[0] == 4 * 5 * 4
    else:
        assert "conv0" not in p["actor"]
        assert p["actor"]["dense0"]["kernel"].shape[0] == 4 * 5 * 20
        assert p["critic"]["dense0"]["kernel"].shape[0] == 4 * 5 * 40


def test_actor_and_critic_share_no_parameters():
    net = make_network("mlp", (8,), "tanh")
    obs = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 3, 5))
    params = net.init(jax.random.PRNGKey(0), obs, obs)
    g_value = jax.grad(lambda p: net.apply(p, obs, obs)[1].sum())(params)["params"]
    g_policy = jax.grad(lambda p: net.apply(p, obs, obs)[0].sum())(params)["params"]
    for leaf in jax.tree.leaves(g_value["actor"]) + jax.tree.leaves(g_value["policy"]):
        assert not np.any(leaf)
    for leaf in jax.tree.leaves(g_policy["critic"]) + jax.tree.leaves(g_policy["value"]):
        assert not np.any(leaf)


def test_centralised_critic_input_appends_the_partners_obs():
    obs = jnp.arange(2 * 2 * 3 * 1 * 2, dtype=jnp.float32).reshape(2, 2, 3, 1, 2)  # (N, 2, ...)
    assert critic_input(obs, False, 1) is obs
    c = critic_input(obs, True, 1)
    assert c.shape == (2, 2, 3, 1, 4)
    np.testing.assert_array_equal(c[:, 0, ..., :2], obs[:, 0])
    np.testing.assert_array_equal(c[:, 0, ..., 2:], obs[:, 1])
    np.testing.assert_array_equal(c[:, 1, ..., 2:], obs[:, 0])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="transformer"):
        make_network("transformer", (8,), "tanh")
