"""Memory-1 profiles of played rounds and the Press–Dyson extortion fit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coplay.agents.tabular import PROBES, zd_extortioner
from coplay.eval.zd import extortion_vector, fit_extortion, memory1_profile


@settings(max_examples=30, deadline=None)
@given(chi=st.floats(1.0, 15.0), frac=st.floats(0.05, 1.0))
def test_fit_recovers_an_exact_extortioner(chi, frac):
    phi = frac / (1 + 2 * chi)
    p = zd_extortioner(chi, phi)[1:]
    fit = fit_extortion(p, chis=np.append(np.arange(1, 20, 0.01), chi))
    assert fit["chi"] == pytest.approx(chi, abs=1e-6)
    assert fit["phi"] == pytest.approx(phi, rel=1e-4)
    assert fit["rms"] < 1e-6


def test_tft_is_the_fair_end_of_the_family():
    fit = fit_extortion(PROBES["TFT"][1:])
    assert fit["chi"] == pytest.approx(1.0)  # TFT = chi 1, phi 1/3
    assert fit["phi"] == pytest.approx(1 / 3, rel=1e-6) and fit["rms"] < 1e-9
    np.testing.assert_allclose(extortion_vector(1.0, 1 / 3), [1, 0, 1, 0], atol=1e-12)


def test_unseen_outcomes_do_not_count_and_nothing_seen_is_an_error():
    p = zd_extortioner(3.0)[1:].astype(np.float64)
    p_missing = p.copy()
    p_missing[3] = np.nan
    assert fit_extortion(p_missing, np.array([10, 10, 10, 0]))["chi"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no outcome"):
        fit_extortion(np.full(4, np.nan), np.zeros(4))


def test_profile_of_a_played_memory1_agent_recovers_its_policy():
    rng = np.random.default_rng(0)
    policy = np.array([0.5, 0.9, 0.2, 0.6, 0.1])  # P(C | start, cc, cd, dc, dd)
    n, t = 4000, 30
    tokens = np.zeros((t, n), int)
    actions = np.zeros((t, n), int)
    token = np.zeros(n, int)
    for k in range(t):
        own = (rng.random(n) >= policy[token]).astype(int)  # 0 = C, 1 = D
        other = (rng.random(n) >= 0.5).astype(int)
        tokens[k], actions[k] = token, own
        token = 1 + 2 * own + other
    p, counts = memory1_profile(tokens, actions, from_round=10)
    assert counts.sum() == 20 * n
    np.testing.assert_allclose(p, policy[1:], atol=0.02)
    p_first, counts_first = memory1_profile(tokens, actions, from_round=0)
    assert counts_first.sum() == (t - 1) * n  # round 0 sees the start token


def test_fit_of_a_profile_seen_only_after_mutual_defection_is_not_identifiable():
    # Always-Defect vs Always-Defect: every extortioner has P(C|dd) = 0, so any chi fits.
    fit = fit_extortion(np.array([np.nan, np.nan, np.nan, 0.0]), np.array([0, 0, 0, 99]))
    assert fit["chi"] is None and fit["phi"] is None
    # A little information about the other outcomes makes it identifiable again.
    p = zd_extortioner(3.0, 0.05)[1:]
    assert fit_extortion(p, np.array([5, 5, 5, 85]))["chi"] == pytest.approx(3.0, abs=0.05)
