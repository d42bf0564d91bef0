"""Probe checks used during training, on a learner whose behaviour is known exactly."""

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.gru import GRUAgent, dummy_input
from coplay.eval.ipd import evaluate_learners, make_probe_summary


def _always(action: int, num_learners: int = 2):
    """GRU params of learners that play ``action`` (0 = C, 1 = D) whatever they see."""
    agent = GRUAgent(8, 4, False, False)
    params = agent.init(jax.random.PRNGKey(0), agent.initial_hidden(1), dummy_input(1))
    policy = params["params"]["policy"]
    policy["kernel"] = jnp.zeros_like(policy["kernel"])
    policy["bias"] = jnp.where(jnp.arange(2) == action, 50.0, -50.0)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * num_learners), params)
    return agent, stacked


def test_always_defect_against_the_probes_earns_the_exact_payoffs():
    agent, params = _always(1)
    out = make_probe_summary(agent, 20, 16, False)(jax.random.PRNGKey(1), params)
    np.testing.assert_allclose(out["vs_AllC_reward"], [2.0, 2.0])
    np.testing.assert_allclose(out["vs_AllD_reward"], [0.0, 0.0])
    # TFT cooperates in round 1 only: (2 + 19 * 0) / 20
    np.testing.assert_allclose(out["vs_TFT_reward"], [0.1, 0.1], rtol=1e-6)
    for name in ("TFT", "AllC", "AllD"):
        assert out[f"vs_{name}_coop_2nd_half"] == [0.0, 0.0]


def test_always_cooperate_against_the_probes():
    agent, params = _always(0, num_learners=1)
    out = make_probe_summary(agent, 10, 8, False)(jax.random.PRNGKey(2), params)
    np.testing.assert_allclose(out["vs_TFT_reward"], [1.0])
    np.testing.assert_allclose(out["vs_AllD_reward"], [-1.0])
    assert out["vs_TFT_coop_2nd_half"] == [1.0]


def test_more_than_two_learners_are_evaluated_against_each_other_at_random():
    """Learners 0, 1 always cooperate, 2, 3 always defect. Paired at random, learner 0 meets
    the other cooperator a third of the time: reward (1 - 1 - 1) / 3 per round (the flip of the
    agent axis would pair it with defector 3 only: -1); a defector earns (0 + 2 + 2) / 3."""
    agent, coop = _always(0, num_learners=2)
    _, defect = _always(1, num_learners=2)
    params = jax.tree.map(lambda c, d: jnp.concatenate([c, d]), coop, defect)
    out = evaluate_learners(jax.random.PRNGKey(3), agent, params, 10, 3000, probes={})
    reward = np.asarray(out["learner_vs_learner"]["per_learner"]["reward"])
    np.testing.assert_allclose(reward, [-1 / 3, -1 / 3, 4 / 3, 4 / 3], atol=0.06)
