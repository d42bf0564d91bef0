"""Memory-1 tabular agents and the classic probes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.tabular import (
    PROBES,
    memory1_act,
    memory1_log_policy,
    random_memory1,
    zd_extortioner,
)

START, CC, CD, DC, DD = range(5)


def test_probe_definitions_read_first_person_tokens():
    tft = PROBES["TFT"]
    # TFT copies the co-player's last move: the co-player's move is the token's second letter.
    assert tft[START] == 1 and tft[CC] == 1 and tft[DC] == 1
    assert tft[CD] == 0 and tft[DD] == 0
    assert (PROBES["AllC"] == 1).all() and (PROBES["AllD"] == 0).all()
    pavlov = PROBES["Pavlov"]  # win-stay lose-shift: cooperate after cc and dd
    assert pavlov.tolist() == [1, 1, 0, 0, 1]


def test_random_pool_is_uniform_per_parameter():
    probs = random_memory1(jax.random.PRNGKey(0), (20_000,))
    assert probs.shape == (20_000, 5)
    assert float(probs.min()) >= 0 and float(probs.max()) <= 1
    np.testing.assert_allclose(probs.mean(0), 0.5, atol=0.01)
    np.testing.assert_allclose(probs.var(0), 1 / 12, atol=0.005)


def test_memory1_act_samples_the_tabled_probability():
    probs = jnp.broadcast_to(jnp.array([0.1, 0.3, 0.5, 0.7, 0.9]), (50_000, 5))
    for token in range(5):
        acts = memory1_act(jax.random.PRNGKey(token), probs, jnp.full((50_000,), token))
        coop = float((acts == 0).mean())
        assert abs(coop - float(probs[0, token])) < 0.01


def test_log_policy_is_the_ten_number_opponent_id():
    z = memory1_log_policy(jnp.array([0.5, 1.0, 0.0, 0.25, 0.75]))
    assert z.shape == (10,)
    np.testing.assert_allclose(np.exp(z[:5]) + np.exp(z[5:]), 1.0, atol=1e-5)


def test_zd_extortioner_matches_press_dyson_formula():
    chi, phi = 3.0, 0.1
    p = zd_extortioner(chi, phi)
    np.testing.assert_allclose(p[1:], [1 - phi * (chi - 1), 1 - phi * (1 + 2 * chi),
                                       phi * (chi + 2), 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="phi"):
        zd_extortioner(3.0, 0.5)
    with pytest.raises(ValueError, match="chi"):
        zd_extortioner(0.5)
