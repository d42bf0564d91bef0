"""play_episodes (jit, vmap over games, scans over steps and episodes) equals a plain Python
loop that steps each game alone with the agents' unbatched ``act`` / ``end_episode``; the CooT
agent's context carries across the episodes of a game (a reset each episode plays otherwise)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.actor_critic import make_network
from coplay.agents.base import actor_critic_agent, stack_params
from coplay.agents.coot_agent import coot_agent
from coplay.agents.gpt import GPTConfig, init_gpt, make_gpt
from coplay.envs.overcooked import Overcooked
from coplay.eval.in_context import play_episodes

LAYOUT, STEPS, EPISODES = "random1", 15, 3
K, LQ = 2, 3  # context slots, query length of the tiny CooT
PARTNER_INDEX = np.array([0, 1, 0, 1])  # N = 4 games: 2 partners x 2 cooks
EGO_COOK = np.array([0, 0, 1, 1])
GPT_SEED, PLAY_SEED = 3, 0


def _env():
    env = Overcooked(LAYOUT)
    return env, env.default_params(horizon=STEPS)


def _coot(env, seed: int = GPT_SEED, scale: float = 10.0):
    """A tiny random-init CooT; parameters scaled up so that the (random) context visibly
    moves the logits and the greedy action's margin dwarfs float rounding."""
    d = int(np.prod(env.obs_shape))
    cfg = GPTConfig(num_layers=2, num_heads=2, width=16, dropout=0.0,
                    max_positions=K * STEPS + LQ)
    model = make_gpt(cfg)
    params = init_gpt(cfg, jax.random.PRNGKey(seed), d + cfg.num_actions + 1)
    params = jax.tree.map(lambda x: x * scale, params)
    return coot_agent(model, params, K, STEPS, LQ, d)


def _actor_critic(env, seed: int):
    net = make_network("mlp", (16,), "tanh")
    x = jnp.zeros((1, *env.obs_shape))
    params = net.init(jax.random.PRNGKey(seed), x, x)
    return net, params


def _partners(env):
    nets = [_actor_critic(env, 10 + i) for i in range(2)]
    net = nets[0][0]
    c = env.obs_shape[-1]
    stacked = stack_params([actor_critic_agent(net, p, c) for _, p in nets])
    return actor_critic_agent(net, stacked, c, name="partners")


def _loop(env, params, ego, partners, carry_context: bool = True):
    """Game by game, step by step, unbatched: per game a dict of (E, T, ...) arrays."""
    act_ego = jax.jit(lambda s, o: ego.act(jax.random.PRNGKey(0), s, o, True))
    end_ego = jax.jit(ego.end_episode)
    act_partner = jax.jit(lambda p, s, o: partners.replace(params=p).act(
        jax.random.PRNGKey(0), s, o, True))
    step = jax.jit(lambda s, a: env.step_env(jax.random.PRNGKey(0), s, a, params))
    games = []
    for n in range(len(PARTNER_INDEX)):
        cook, other = int(EGO_COOK[n]), 1 - int(EGO_COOK[n])
        p_params = jax.tree.map(lambda x, i=PARTNER_INDEX[n]: x[i], partners.params)
        ego_state = ego.reset(jax.random.PRNGKey(0))
        rec = {k: [] for k in ("obs", "action", "partner_action", "reward", "events")}
        for _ in range(EPISODES):
            obs, env_state = env.reset(jax.random.PRNGKey(0), params)
            ep = {k: [] for k in rec}
            p_state = partners.replace(params=p_params).reset(jax.random.PRNGKey(0))
            for _ in range(STEPS):
                # the recorded observation is env.get_obs of the ego's cook
                np.testing.assert_array_equal(obs, env.get_obs(env_state, params))
                a_ego, ego_state = act_ego(ego_state, obs[cook])
                a_par, p_state = act_partner(p_params, p_state, obs[other])
                actions = jnp.zeros(2, jnp.int32).at[cook].set(a_ego).at[other].set(a_par)
                ep["obs"].append(np.asarray(obs[cook]))
                ep["action"].append(int(a_ego))
                ep["partner_action"].append(int(a_par))
                obs, env_state, _, _, info = step(env_state, actions)
                ep["reward"].append(float(info["sparse_reward"]))
                ev = np.asarray(info["events"])
                ep["events"].append(np.stack([ev[cook], ev[other]]))
            rewards = jnp.asarray(ep["reward"], jnp.float32)
            ego_state = (end_ego(ego_state, rewards) if carry_context
                         else ego.reset(jax.random.PRNGKey(0)))
            for k in rec:
                rec[k].append(np.asarray(ep[k]))
        games.append({k: np.stack(v) for k, v in rec.items()})
    return games


@pytest.fixture(scope="module")
def played():
    env, params = _env()
    ego, partners = _coot(env), _partners(env)
    out = play_episodes(env, params, ego, partners, jnp.asarray(PARTNER_INDEX),
                        jnp.asarray(EGO_COOK), jax.random.PRNGKey(PLAY_SEED), EPISODES, STEPS,
                        greedy=True, record=True, partner_greedy=True)
    out = jax.tree.map(np.asarray, out)
    return env, params, ego, partners, out, _loop(env, params, ego, partners)


def test_shapes_and_dtypes(played):
    env, _, _, _, out, _ = played
    n = len(PARTNER_INDEX)
    tr = out["trajectories"]
    assert out["returns"].shape == (EPISODES, n)
    assert out["events"].shape[:3] == (EPISODES, n, 2)
    assert tr.obs.shape == (EPISODES, n, STEPS, *env.obs_shape) and tr.obs.dtype == np.uint8
    assert tr.action.shape == tr.partner_action.shape == (EPISODES, n, STEPS)
    assert tr.action.dtype == tr.partner_action.dtype == np.int8
    assert tr.reward.shape == (EPISODES, n, STEPS)


def test_jit_vmap_equals_the_python_loop(played):
    _, _, _, _, out, games = played
    tr = out["trajectories"]
    assert len(np.unique(tr.action)) >= 3, "a degenerate ego: too few distinct actions"
    for n, g in enumerate(games):
        msg = f"game {n} (partner {PARTNER_INDEX[n]}, ego cook {EGO_COOK[n]})"
        np.testing.assert_array_equal(tr.action[:, n], g["action"], err_msg=msg)
        np.testing.assert_array_equal(tr.partner_action[:, n], g["partner_action"], err_msg=msg)
        np.testing.assert_array_equal(tr.reward[:, n], g["reward"], err_msg=msg)
        np.testing.assert_array_equal(out["returns"][:, n], g["reward"].sum(-1), err_msg=msg)
        np.testing.assert_array_equal(out["events"][:, n], g["events"].sum(1), err_msg=msg)
        # the ego's cook's observation, and uint8 loses nothing: the env's values are small
        # non-negative integers
        assert np.all(g["obs"] == np.round(g["obs"])) and g["obs"].min() >= 0
        assert g["obs"].max() <= 255
        np.testing.assert_array_equal(tr.obs[:, n].astype(np.float32), g["obs"], err_msg=msg)


def test_returns_are_the_sum_of_the_recorded_rewards(played):
    out = played[4]
    np.testing.assert_array_equal(out["returns"], out["trajectories"].reward.sum(-1))
    # the ego's seat is the one steering cook ego_cook: the two cooks' games differ
    tr = out["trajectories"]
    assert not np.array_equal(tr.obs[:, 0], tr.obs[:, 2])


def test_the_context_carries_across_episodes(played):
    env, params, ego, partners, out, games = played
    reset = _loop(env, params, ego, partners, carry_context=False)
    # with the context reset every episode (and everything greedy, the env deterministic),
    # every episode replays the first
    for g in reset:
        for e in range(1, EPISODES):
            np.testing.assert_array_equal(g["action"][e], g["action"][0])
    # the first episodes agree (empty context either way), later ones do not all
    tr = out["trajectories"]
    np.testing.assert_array_equal(tr.action[0], np.stack([g["action"][0] for g in reset]))
    later = np.stack([g["action"][1:] for g in reset], axis=1)  # (E - 1, N, T)
    assert np.any(tr.action[1:] != later), "the context did not change a single action"


_SHARDED_SCRIPT = """
import sys
import jax
from coplay.runs import use_cpu_cores
assert use_cpu_cores(2) == 2, jax.devices()
sys.path.insert(0, {tests!r})
import jax.numpy as jnp, numpy as np
import test_in_context as t
from coplay.eval.in_context import games_sharding, play_episodes
env, params = t._env()
ego, partners = t._coot(env), t._partners(env)
assert games_sharding(4) is not None and games_sharding(4, max_devices=1) is None
assert games_sharding(3) is None  # 3 games do not split over 2 devices
outs = [jax.tree.map(np.asarray, play_episodes(
    env, params, ego, partners, jnp.asarray(t.PARTNER_INDEX), jnp.asarray(t.EGO_COOK),
    jax.random.PRNGKey(t.PLAY_SEED), t.EPISODES, t.STEPS, record=True, max_devices=m))
    for m in (1, None)]
flat = [jax.tree.leaves(o) for o in outs]
assert len(flat[0]) == len(flat[1]) == 6
for a, b in zip(*flat):
    np.testing.assert_array_equal(a, b)
tr = outs[0]["trajectories"]
assert len(np.unique(tr.action)) >= 3 and tr.action.shape == (t.EPISODES, 4, t.STEPS)
assert use_cpu_cores(4) == 2  # JAX is running: too late to change, and no error
print("sharded == one device")
"""


def test_games_split_over_two_devices_give_the_same_numbers():
    """Sampled actions, recorded trajectories: the 4 games over 2 CPU host devices (GSPMD)
    play exactly as on one. JAX's device count is fixed per process: a fresh process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    script = _SHARDED_SCRIPT.format(tests=str(Path(__file__).parent))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sharded == one device" in r.stdout
