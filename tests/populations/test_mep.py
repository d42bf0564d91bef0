"""MEP stage 1: a tiny population; the population-entropy bonus is paid; CLI errors."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.algos import ppo
from coplay.cli import main
from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.state import ACTION_NAMES
from coplay.experiments.populations.presets import PPO_PRESETS
from coplay.experiments.populations.train import (
    default_ppo,
    evaluate_snapshot,
    preset_config,
    train_population,
)
from coplay.runs import RunDir

N, STAY = ACTION_NAMES.index("N"), ACTION_NAMES.index("STAY")


def hand_made_policies(params, favourite: np.ndarray):
    """Member m's policy g plays ``favourite[m, g]`` with probability 1 - 5e-9 whatever it
    sees (policy head: zero kernel, bias 20 on that action)."""
    head = params["params"]["policy"]
    logits = np.where(np.arange(6) == favourite[..., None], 20.0, 0.0)  # (M, G, 6)
    head = {"kernel": jnp.zeros_like(head["kernel"]),
            "bias": jnp.asarray(logits, jnp.float32).reshape(head["bias"].shape)}
    return {"params": {**params["params"], "policy": head}}


@pytest.mark.parametrize("share_policy, favourite", [
    # one policy per member (MEP's choice): member 0 walks north, members 1 and 2 stay
    (True, [[N], [STAY], [STAY]]),
    # a policy per seat: the population mean is taken over the same seat's policies
    (False, [[N, STAY], [STAY, N], [STAY, N]]),
])
def test_the_bonus_is_minus_log_of_the_population_mean_policy(share_policy, favourite):
    """Near-deterministic hand-made members: each member's own log-prob of its action is ~0,
    the mean of the members' log-probs ~ -13, but pi_bar (the mean over the 3 members of the
    same seat's policy) gives the action 1/3 when the member is alone in playing it (bonus
    log 3 per step) and 2/3 when two members play it (log 1.5). Pooling both seats' policies
    would give 1/2 (log 2) everywhere in the per-seat case."""
    coef = 0.5
    algo = dataclasses.replace(default_ppo("tiny", "mep"), population_entropy_coef=coef,
                               share_policy=share_policy)
    env = Overcooked("cramped_room")
    favourite = np.array(favourite)
    members = ppo.stack_params([env.default_params(horizon=algo.horizon)] * len(favourite))
    trainer = ppo.make_train(algo, env, members)
    state = trainer.init(jax.random.PRNGKey(0))
    state = state.replace(params=hand_made_policies(state.params, favourite))
    _, m = trainer.train_chunk(state)  # (M, updates, ...): each update ends one episode per env
    episodes = np.asarray(m.episodes)
    assert (episodes == algo.num_envs).all()
    assert not np.asarray(m.episode_return_sum).any()  # nothing cooked, nothing delivered
    names = env.event_names
    shaped = [names.index(e) for e in ("PLACEMENT_IN_POT", "USEFUL_DISH_PICKUP", "SOUP_PICKUP")]
    assert not np.asarray(m.episode_events_sum)[..., shaped].any()  # so no shaped reward
    bonus = np.asarray(m.episode_reward_sum) / episodes[..., None]  # (M, updates, 2 seats)
    per_seat = np.broadcast_to(favourite, (len(favourite), 2))  # action of member m in seat s
    share = (per_seat[None, :, :] == per_seat[:, None, :]).mean(1)  # pi_bar(a_{m,s}) (M, 2)
    want = coef * algo.horizon * -np.log(share)  # log 3 or log 1.5 per step
    np.testing.assert_allclose(bonus, np.broadcast_to(want[:, None, :], bonus.shape),
                               rtol=1e-3)


def test_tiny_mep_population_pays_the_entropy_bonus(tmp_path):
    """The population driver turns the bonus on and logs it in the episode rewards (near
    uniform policies here: -log pi_bar ~ log 6, which cannot tell pi_bar from a member's own
    policy; the test above does)."""
    out = tmp_path / "mep"
    algo = dataclasses.replace(default_ppo("tiny", "mep"), shaping_horizon=None,
                               population_entropy_coef=0.5)
    cfg = preset_config("tiny", kind="mep", layout="cramped_room", ppo=algo)
    train_population(cfg, out, progress=False, finish=False)
    assert algo.share_policy and json.loads((out / "config.json").read_text())["kind"] == "mep"
    ev = evaluate_snapshot(out, 8, episodes=2)  # one policy per member plays both seats
    assert ev["returns"].shape == (3,)
    names = Overcooked("cramped_room").event_names
    # per episode and seat: reward = sparse + shaped + 0.5 * sum_t -log pi_bar(a_t|s_t); the
    # policies are still near uniform, so the bonus is about 0.5 * log(6) per step
    horizon = PPO_PRESETS["tiny"].horizon
    rows = [r for r in RunDir(out).read_metrics() if min(r["episodes"]) > 0]
    assert rows
    for r in rows:
        for m in range(3):
            ev = np.array(r["events_per_episode"][m])  # (2, E)
            shaped = (3 * ev[:, names.index("PLACEMENT_IN_POT")]
                      + 3 * ev[:, names.index("USEFUL_DISH_PICKUP")]
                      + 5 * ev[:, names.index("SOUP_PICKUP")])
            bonus = np.array(r["episode_reward"][m]) - r["episode_return"][m] - shaped
            np.testing.assert_allclose(bonus, 0.5 * math.log(6) * horizon, rtol=0.03)


def test_mep_needs_a_bonus_and_two_members(tmp_path, capsys):
    base = ["populations", "train", "--kind", "mep", "--preset", "tiny", "--out",
            str(tmp_path / "x")]
    assert main(base + ["--set", "ppo.population_entropy_coef=0"]) == 2
    assert "population_entropy_coef" in capsys.readouterr().err
    assert main(base + ["--num-members", "1"]) == 2
    assert "num_members" in capsys.readouterr().err
    assert main(base + ["--kind", "xyz"]) == 2
    assert "kind" in capsys.readouterr().err
