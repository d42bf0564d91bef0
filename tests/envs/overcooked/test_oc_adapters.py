"""JaxMARL-style adapter, rendering and the two CLI commands."""

from __future__ import annotations

import io
import json

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.render import render_ascii, render_rgb
from coplay.testing.jaxmarl import JaxMARLOvercooked


def test_jaxmarl_adapter_matches_the_env():
    wrapped = JaxMARLOvercooked("random1", action_order="jaxmarl", horizon=10)
    env, params = wrapped.env, wrapped.params
    key = jax.random.PRNGKey(0)
    obs, st = wrapped.reset(key)
    _, s = env.reset(key, params)
    assert set(obs) == {"agent_0", "agent_1"} and obs["agent_0"].shape == env.obs_shape
    assert wrapped.action_space("agent_0").n == 6
    assert wrapped.observation_space().shape == (5, 5, 20)
    step = jax.jit(wrapped.step)
    for t in range(12):
        a = np.random.default_rng(t).integers(0, 6, 2)
        obs, st, rew, dones, info = step(key, st, {"agent_0": a[0], "agent_1": a[1]})
        ours = np.array([2, 1, 3, 0, 4, 5])[a]  # JaxMARL (right, down, left, up) -> ours
        o2, s, r2, d2, _ = env.step(key, s, jnp.asarray(ours), params)
        np.testing.assert_array_equal(np.asarray(obs["agent_1"]), np.asarray(o2[1]))
        assert float(rew["agent_0"]) == float(r2[0]) and bool(dones["__all__"]) == bool(d2)
        assert set(info["shaped_reward"]) == {"agent_0", "agent_1"}
    assert bool(dones["__all__"]) is False and int(st.time) == 2  # reset after step 10


def test_render_ascii_and_rgb():
    env = Overcooked("cramped_room")
    params = env.default_params()
    _, s = env.reset(jax.random.PRNGKey(0), params)
    text = render_ascii(s, params)
    assert text.splitlines()[0] == "X   X   P   X   X"
    assert "1^" in text and "2^" in text and text.endswith("cook 1: -  cook 2: -")
    img = render_rgb(s, params, tile=16)
    assert img.shape == (4 * 16, 5 * 16, 3) and img.dtype == np.uint8


def test_cli_render_writes_a_gif(tmp_path, capsys):
    from coplay.cli import main

    out = tmp_path / "ep.gif"
    assert main(["overcooked", "render", "--layout", "cramped_room", "--steps", "12",
                 "--out", str(out)]) == 0
    with Image.open(out) as im:  # Pillow merges identical frames, so count time instead
        total = 0
        for k in range(im.n_frames):
            im.seek(k)
            total += im.info["duration"]
    assert abs(total - 13 * 125) <= 13 * 10  # GIF stores centiseconds
    assert "sparse return" in capsys.readouterr().out


def test_cli_play_reads_keys(tmp_path, monkeypatch, capsys):
    from coplay.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("ddz\x1b[Bex"))  # z is ignored
    rec = tmp_path / "play.json"
    assert main(["overcooked", "play", "--layout", "cramped_room", "--steps", "5",
                 "--partner", "stay", "--record", str(rec)]) == 0
    log = json.loads(rec.read_text())
    assert [a[0] for a in log["actions"]] == [2, 2, 1, 5, 4]
    assert all(a[1] == 4 for a in log["actions"])
    assert "episode over after 5 steps" in capsys.readouterr().out
