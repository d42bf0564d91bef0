"""coplay.algos.bc: top-fraction selection by hand, learning a deterministic labelling, early
stopping returns the best epoch, seeds, the agent wrapper, config errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.base import Player
from coplay.algos import bc
from coplay.algos.bc import (
    BCConfig,
    Episodes,
    bc_agent,
    fit,
    flatten_steps,
    make_evaluate,
    make_model,
    top_fraction_mask,
    train_bc,
)
from coplay.config import ConfigError
from coplay.experiments.coot.presets import BC_PRESETS

TINY = BC_PRESETS["tiny"]
H, W, C = 3, 4, 6


def synthetic(rng: np.random.Generator, episodes: int, steps: int, groups: int = 2,
              random_labels: bool = False) -> Episodes:
    """Label = argmax over channels of the channel sums (a deterministic function of the obs)."""
    obs = rng.integers(0, 3, (episodes, steps, H, W, C), dtype=np.uint8)
    action = obs.astype(np.int64).sum((2, 3)).argmax(-1)  # (E, T) in 0..5
    if random_labels:
        action = rng.integers(0, 6, (episodes, steps))
    return Episodes(obs, action, rng.normal(size=episodes),
                    np.arange(episodes) % groups)


# --- data -----------------------------------------------------------------------------------
def test_top_fraction_mask_by_hand():
    ret = np.array([5.0, 1.0, 5.0, 3.0, 9.0, 0.0, 2.0, 2.0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # group 0: 5 (0), 5 (2), 3, 1 -> the tie at 5 goes to the lower index
    np.testing.assert_array_equal(top_fraction_mask(ret, group, 0.25),
                                  [1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(top_fraction_mask(ret, group, 0.5),
                                  [1, 0, 1, 0, 1, 0, 1, 0])  # group 1: 9, then 2 (6) before 2 (7)
    np.testing.assert_array_equal(top_fraction_mask(ret, group, 0.75),
                                  [1, 0, 1, 1, 1, 0, 1, 1])
    assert top_fraction_mask(ret, group, 1.0).all()
    # a tiny fraction keeps one per group; ceil rounds up (0.3 x 4 = 1.2 -> 2)
    tiny = top_fraction_mask(ret, group, 1e-6)
    assert [tiny[group == g].sum() for g in (0, 1)] == [1, 1]
    assert top_fraction_mask(ret, group, 0.3).sum() == 4
    # float noise does not add an episode: 0.3 x 10 = 3.0000000000000004 -> 3
    assert top_fraction_mask(np.arange(10.0), np.zeros(10, int), 0.3).sum() == 3
    # groups need not be contiguous or sorted
    np.testing.assert_array_equal(top_fraction_mask(np.array([1.0, 7.0, 3.0, 2.0]),
                                                    np.array([4, 2, 4, 2]), 0.5), [0, 1, 1, 0])
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_mask(ret, group, 0.0)


def test_flatten_steps_keeps_episode_order_and_grid_shape():
    rng = np.random.default_rng(0)
    ep = synthetic(rng, 3, 4)
    x, y = flatten_steps(ep.obs, ep.action)
    assert x.shape == (12, H, W, C) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(x[5], ep.obs[1, 1])
    assert y[5] == ep.action[1, 1]
    x, y = flatten_steps(ep.obs, ep.action, np.array([False, True, True]))
    assert x.shape == (8, H, W, C)
    np.testing.assert_array_equal(x[0], ep.obs[1, 0])
    with pytest.raises(ValueError, match="disagree"):
        flatten_steps(ep.obs, ep.action[:, :2])


# --- training -------------------------------------------------------------------------------
def test_tiny_preset_learns_a_deterministic_labelling():
    rng = np.random.default_rng(1)
    train = synthetic(rng, 16, 64)  # 1024 steps
    cfg = dataclasses.replace(TINY, epochs=15)
    params, history = train_bc(cfg, train)
    x, y = flatten_steps(train.obs, train.action)
    _, accuracy = make_evaluate(make_model(cfg), 256)(params, jnp.asarray(x), jnp.asarray(y))
    assert float(accuracy) > 0.9, history[-1]
    assert len(history) == 15 and history[-1]["val_loss"] is None
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_early_stopping_returns_the_best_epochs_params():
    rng = np.random.default_rng(2)
    train = synthetic(rng, 4, 32, random_labels=True)  # 128 steps to memorise
    val = synthetic(rng, 4, 32, random_labels=True)
    cfg = dataclasses.replace(TINY, hidden_sizes=(128,), learning_rate=1e-2, batch_size=32,
                              epochs=60, patience=1)
    params, history = train_bc(cfg, train, val)
    losses = [h["val_loss"] for h in history]
    assert len(history) < cfg.epochs  # stopped early
    assert losses[-1] >= min(losses[:-1])  # patience 1: the last epoch did not improve
    x, y = flatten_steps(val.obs, val.action)
    loss, acc = make_evaluate(make_model(cfg), 64)(params, jnp.asarray(x), jnp.asarray(y))
    best = history[int(np.argmin(losses))]
    np.testing.assert_allclose(float(loss), best["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(float(acc), best["val_accuracy"], rtol=1e-5)

    # longer patience runs further; patience None runs every epoch
    _, longer = train_bc(dataclasses.replace(cfg, patience=3, epochs=len(history) + 3),
                         train, val)
    assert len(longer) > len(history)
    _, every = train_bc(dataclasses.replace(cfg, patience=None, epochs=8), train, val)
    assert len(every) == 8


def test_top_fraction_reaches_training(monkeypatch):
    rng = np.random.default_rng(3)
    ep = synthetic(rng, 8, 16, groups=2)
    seen = []
    cfg = dataclasses.replace(TINY, epochs=1, batch_size=16, top_fraction=0.25)
    orig = bc.fit

    def spy(key, cfg, x, y, *rest):
        seen.append(len(x))
        return orig(key, cfg, x, y, *rest)

    monkeypatch.setattr(bc, "fit", spy)
    train_bc(cfg, ep)
    assert seen == [2 * 16]  # one episode of four per group


def test_same_key_same_params_different_key_different():
    rng = np.random.default_rng(4)
    x, y = flatten_steps(*synthetic(rng, 2, 32)[:2])
    cfg = dataclasses.replace(TINY, epochs=2)
    a, ha = fit(jax.random.PRNGKey(0), cfg, x, y)
    b, hb = fit(jax.random.PRNGKey(0), cfg, x, y)
    c, _ = fit(jax.random.PRNGKey(1), cfg, x, y)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert ha == hb
    assert not all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(c),
                                                         strict=True))
    # the config's seed is the default key
    d, _ = train_bc(dataclasses.replace(cfg, seed=1),
                    Episodes(x.reshape(2, 32, H, W, C), y.reshape(2, 32), np.zeros(2),
                             np.arange(2)))
    jax.tree.map(np.testing.assert_array_equal, c, d)


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_bc_agent_logits_equal_the_modules_apply(network):
    cfg = dataclasses.replace(TINY, network=network, cnn_filters=(4,), epochs=1)
    rng = np.random.default_rng(5)
    ep = synthetic(rng, 2, 8)
    params, _ = train_bc(cfg, ep)
    model = make_model(cfg)
    assert ("conv0" in params["params"]["torso"]) == (network == "cnn")
    obs = ep.obs[0, 3]  # (H, W, C) uint8
    want = model.apply(params, obs[None].astype(np.float32))[0]
    for agent in (bc_agent(cfg, params), bc_agent(model, params, name="bc-top10")):
        assert agent.kind == "overcooked" and agent.num_actions == 6 and agent.reset(None) == ()
        logits, state = jax.jit(agent.policy)(jax.random.PRNGKey(0), (), obs)
        np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)
        assert state == ()
    player = Player(bc_agent(cfg, params), greedy=True)
    assert player.step(obs) == int(np.argmax(want))


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [
    ("network", "gru"), ("hidden_sizes", ()), ("hidden_sizes", (0,)), ("activation", "gelu"),
    ("learning_rate", 0.0), ("weight_decay", -1.0), ("batch_size", 0), ("epochs", 1.5),
    ("max_grad_norm", 0.0), ("patience", 0), ("top_fraction", 0.0), ("top_fraction", 1.5),
    ("eval_batch_size", 0), ("cnn_filters", ()),
])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"bc\.{field} ="):
        bc.validate(dataclasses.replace(BCConfig(), **{field: value}))


def test_presets_are_valid():
    for cfg in BC_PRESETS.values():
        bc.validate(cfg)
    assert BC_PRESETS["default"] == BCConfig()
