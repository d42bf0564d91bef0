"""The GRU agent: whole-sequence pass == step by step, config fields reach the network."""

import jax
import numpy as np
import pytest

from coplay.agents.gru import AgentInput, GRUAgent, dummy_input, sequence


def random_inputs(key, T, B):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return AgentInput(
        token=jax.random.randint(k1, (T, B), 0, 5),
        prev_action=jax.random.randint(k2, (T, B), -1, 2),
        prev_reward=jax.random.normal(k3, (T, B)),
        opponent_id=jax.random.normal(k4, (T, B, 10)),
    )


@pytest.mark.parametrize("use_opponent_id", [False, True])
def test_sequence_equals_stepping(use_opponent_id):
    agent = GRUAgent(hidden_size=16, embed_dim=8, use_opponent_id=use_opponent_id)
    params = agent.init(jax.random.PRNGKey(0), agent.initial_hidden(3), dummy_input(3))
    xs = random_inputs(jax.random.PRNGKey(1), 7, 3)
    logits, values = sequence(agent, params, xs)
    h = agent.initial_hidden(3)
    for t in range(7):
        h, (lg, v) = agent.apply(params, h, jax.tree.map(lambda a, t=t: a[t], xs))
        np.testing.assert_allclose(logits[t], lg, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values[t], v, rtol=1e-5, atol=1e-6)
    assert logits.shape == (7, 3, 2) and values.shape == (7, 3)


def test_config_fields_reach_the_network():
    agent = GRUAgent(hidden_size=12, embed_dim=7, use_opponent_id=True)
    params = agent.init(jax.random.PRNGKey(0), agent.initial_hidden(2), dummy_input(2))["params"]
    assert params["gru"]["hn"]["kernel"].shape == (12, 12)
    assert params["embed_obs"]["kernel"].shape == (5, 7)
    assert params["embed_opponent_id"]["kernel"].shape == (10, 7)
    plain = GRUAgent(hidden_size=12, embed_dim=7).init(
        jax.random.PRNGKey(0), agent.initial_hidden(2), dummy_input(2))["params"]
    assert "embed_opponent_id" not in plain


def test_opponent_id_changes_the_output_only_when_enabled():
    xs = random_inputs(jax.random.PRNGKey(1), 4, 2)
    xs_other = xs._replace(opponent_id=xs.opponent_id + 1.0)
    for use, should_differ in ((True, True), (False, False)):
        agent = GRUAgent(hidden_size=8, embed_dim=4, use_opponent_id=use)
        params = agent.init(jax.random.PRNGKey(0), agent.initial_hidden(2), dummy_input(2))
        a = sequence(agent, params, xs)[1]
        b = sequence(agent, params, xs_other)[1]
        assert (not np.allclose(a, b)) == should_differ


def test_privileged_critic_sees_z_and_the_policy_does_not():
    agent = GRUAgent(hidden_size=8, embed_dim=4, critic_opponent_id=True)
    params = agent.init(jax.random.PRNGKey(0), agent.initial_hidden(2), dummy_input(2))
    xs = random_inputs(jax.random.PRNGKey(1), 4, 2)
    xs_other = xs._replace(opponent_id=xs.opponent_id + 1.0)
    logits_a, values_a = sequence(agent, params, xs)
    logits_b, values_b = sequence(agent, params, xs_other)
    np.testing.assert_array_equal(logits_a, logits_b)
    assert not np.allclose(values_a, values_b)
