"""The PPI sequence model: shapes and causality over the interleaved (o, r, a) stream."""

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.gru import AgentInput, dummy_input
from coplay.agents.ppi_model import PPIModel, predict_sequence
from coplay.algos.ppi_episodes import Episodes, tokenize

T, B = 6, 3


def _model_and_params(use_opponent_id=False):
    model = PPIModel(hidden_size=8, embed_dim=4, use_opponent_id=use_opponent_id)
    return model, model.init(jax.random.PRNGKey(0), model.initial_hidden(1), dummy_input(1))


def _episodes(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, (B, T)), rng.integers(0, 2, (B, T))
    return Episodes(a.astype(np.int8), b.astype(np.int8),
                    rng.normal(size=(B, T)).astype(np.float16),
                    rng.normal(size=(B, 10)).astype(np.float16))


def _predict(model, params, ep):
    inputs, actions, next_tokens, _ = tokenize(ep)
    return predict_sequence(model, params, inputs, actions, next_tokens)


def test_shapes():
    model, params = _model_and_params()
    hidden, feat = model.apply(params, model.initial_hidden(B), dummy_input(B),
                               method=PPIModel.step)
    assert hidden.shape == feat.shape == (B, 8)
    act, obs, rew = _predict(model, params, _episodes(0))
    assert act.shape == (T, B, 2) and obs.shape == (T, B, 5) and rew.shape == (T, B)


def test_future_tokens_do_not_change_past_predictions():
    model, params = _model_and_params()
    ep = _episodes(1)
    act, obs, rew = map(np.asarray, _predict(model, params, ep))
    s = 3
    # Change everything from round s on: own actions, co-player replies, rewards.
    other = _episodes(2)
    cut = Episodes(*(np.concatenate([x[:, :s], y[:, s:]], 1) if x.ndim == 2 and x.shape[1] == T
                     else x for x, y in zip(ep, other, strict=True)))
    act2, obs2, rew2 = map(np.asarray, _predict(model, params, cut))
    np.testing.assert_allclose(act2[:s], act[:s], atol=1e-6)
    np.testing.assert_allclose(obs2[:s], obs[:s], atol=1e-6)
    np.testing.assert_allclose(rew2[:s], rew[:s], atol=1e-6)
    # The prediction of a_s reads only x≤s (o_s comes from round s-1): unchanged too.
    np.testing.assert_allclose(act2[s], act[s], atol=1e-6)
    assert not np.allclose(act2[s + 1:], act[s + 1:])  # later ones do see the change


def test_within_a_round_each_head_sees_only_earlier_tokens():
    """o_{t+1} is predicted from (x≤t, a_t) and r_t from (x≤t, a_t, o_{t+1})."""
    model, params = _model_and_params()
    feat = jax.random.normal(jax.random.PRNGKey(3), (4, 8))
    obs_c = model.apply(params, feat, jnp.zeros(4, jnp.int32), method=PPIModel.obs_logits)
    obs_d = model.apply(params, feat, jnp.ones(4, jnp.int32), method=PPIModel.obs_logits)
    assert not np.allclose(obs_c, obs_d)  # the observation head reads the action taken
    r1 = model.apply(params, feat, jnp.zeros(4, jnp.int32), jnp.ones(4, jnp.int32),
                     method=PPIModel.reward)
    r2 = model.apply(params, feat, jnp.zeros(4, jnp.int32), jnp.full(4, 2, jnp.int32),
                     method=PPIModel.reward)
    assert not np.allclose(r1, r2)  # the reward head reads the next observation


def test_opponent_id_is_read_only_when_enabled():
    for flag in (False, True):
        model, params = _model_and_params(flag)
        x = dummy_input(2)
        z = x._replace(opponent_id=jnp.ones((2, 10)))
        h0 = model.initial_hidden(2)
        f1 = model.apply(params, h0, x, method=PPIModel.step)[1]
        f2 = model.apply(params, h0, AgentInput(*z), method=PPIModel.step)[1]
        assert np.allclose(f1, f2) != flag
