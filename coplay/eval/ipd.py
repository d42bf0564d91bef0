"""Evaluation of IPD learners: pairings, probes, within-episode cooperation curves.

All pairings go through the same batched rollout as training, so evaluation measures exactly
the policy that was trained (actions sampled from it, not argmax).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.gru import GRUAgent
from coplay.agents.tabular import PROBES, random_memory1
from coplay.algos.ipd_rollout import Opponents, random_pairing, rollout
from coplay.envs.matrix_games import COOPERATE, MatrixGameParams
from coplay.eval.zd import fit_extortion, memory1_profile


def pairing_stats(traj) -> dict:
    """Summary of a (T, L, N) trajectory: the learners' reward / cooperation and per round."""
    coop = np.asarray(traj.action == COOPERATE, np.float32)
    opp_coop = np.asarray(traj.opponent_action == COOPERATE, np.float32)
    reward = np.asarray(traj.reward)
    tokens, actions = np.asarray(traj.inputs.token), np.asarray(traj.action)
    half = coop.shape[0] // 2
    return {
        "reward": float(reward.mean()),
        "cooperation": float(coop.mean()),
        "cooperation_second_half": float(coop[half:].mean()),
        "coplayer_cooperation": float(opp_coop.mean()),
        "per_learner": {
            "reward": reward.mean(axis=(0, 2)).tolist(),
            "cooperation": coop.mean(axis=(0, 2)).tolist(),
        },
        "cooperation_curve": coop.mean(axis=(1, 2)).round(4).tolist(),
        "coplayer_cooperation_curve": opp_coop.mean(axis=(1, 2)).round(4).tolist(),
        "memory1_second_half": [memory1_summary(tokens[:, i], actions[:, i], half)
                                for i in range(actions.shape[1])],
    } | (_coplayer_model_stats(traj) if hasattr(traj, "predicted_coplayer_coop") else {})


def _coplayer_model_stats(traj) -> dict:
    """For model-based learners (PPI): how well each learner's model predicts its co-player —
    mean |P̂(co-player C) − P(co-player C)| per learner, and the two means."""
    predicted = np.asarray(traj.predicted_coplayer_coop)
    true = np.asarray(traj.coplayer_coop_prob)
    return {"coplayer_model": {
        "abs_error": np.abs(predicted - true).mean(axis=(0, 2)).round(4).tolist(),
        "predicted_cooperation": predicted.mean(axis=(0, 2)).round(4).tolist(),
        "true_cooperation_prob": true.mean(axis=(0, 2)).round(4).tolist(),
    }}


def memory1_summary(tokens: np.ndarray, actions: np.ndarray, from_round: int) -> dict:
    """One learner's P(C | cc, cd, dc, dd) from ``from_round`` on, and its ZD extortion fit."""
    p, counts = memory1_profile(tokens, actions, from_round)
    fit = fit_extortion(p, counts) if counts.sum() > 0 else None
    return {"p": [None if np.isnan(x) else round(float(x), 4) for x in p],
            "counts": counts.astype(int).tolist(), "zd_fit": fit}


def make_evaluator(agent: GRUAgent, num_rounds: int, use_opponent_id: bool,
                   env_params: MatrixGameParams | None = None):
    """Return a jitted ``play(key, params, tabular (L, N, 5), is_learner (N,)[, partner (L, N)])
    -> trajectory`` (``partner``: the learners' pairing, default the flip of the agent axis)."""
    env_params = MatrixGameParams() if env_params is None else env_params

    @jax.jit
    def play(key, params, tabular, is_learner, partner=None):
        return rollout(key, agent, params, Opponents(tabular, is_learner, partner), env_params,
                       num_rounds, use_opponent_id)

    return play


def evaluate_learners(key: jax.Array, agent: GRUAgent, params, num_rounds: int,
                      num_episodes: int, use_opponent_id: bool = False,
                      probes: dict[str, np.ndarray] | None = None, play=None) -> dict:
    """Learner vs learner, learner vs fresh random tabular agents, learner vs each probe.

    ``params`` has a leading learner axis; with one learner, learner-vs-learner is self-play.
    ``play`` replaces the GRU agent's rollout (same signature as :func:`make_evaluator`'s
    result), e.g. PPI's improved policy.
    """
    probes = PROBES if probes is None else probes
    num_learners = jax.tree.leaves(params)[0].shape[0]
    if play is None:
        play = make_evaluator(agent, num_rounds, use_opponent_id)
    shape = (num_learners, num_episodes)
    all_learner = jnp.ones((num_episodes,), bool)
    no_learner = jnp.zeros((num_episodes,), bool)
    k_ll, k_tab_pool, k_tab, k_probe = jax.random.split(key, 4)

    dummy = jnp.full((*shape, 5), 0.5)
    if num_learners > 2:  # every learner meets the others, paired at random per episode
        partner = random_pairing(jax.random.fold_in(k_ll, 1), num_learners, num_episodes)
        traj = play(k_ll, params, dummy, all_learner, partner)
    else:
        traj = play(k_ll, params, dummy, all_learner)
    results = {"learner_vs_learner": pairing_stats(traj)}
    tabular = random_memory1(k_tab_pool, shape)
    results["learner_vs_tabular"] = pairing_stats(play(k_tab, params, tabular, no_learner))
    results["probes"] = {}
    for i, (name, probe) in enumerate(probes.items()):
        table = jnp.broadcast_to(jnp.asarray(probe, jnp.float32), (*shape, 5))
        traj = play(jax.random.fold_in(k_probe, i), params, table, no_learner)
        results["probes"][name] = pairing_stats(traj) | {"policy": np.asarray(probe).tolist()}
    return results


def make_probe_summary(agent: GRUAgent, num_rounds: int, num_episodes: int,
                       use_opponent_id: bool, probes: tuple[str, ...] = ("TFT", "AllC", "AllD"),
                       play=None):
    """A cheap probe check for use during training (one compile, reused every call).

    Returns ``summary(key, params) -> dict`` with, per probe and per learner, the reward per
    round (``vs_<probe>_reward``) and the cooperation over the second half of the episode
    (``vs_<probe>_coop_2nd_half``), as lists over learners like the training metrics.
    ``play`` replaces the GRU agent's rollout, as in :func:`evaluate_learners`.
    """
    if play is None:
        play = make_evaluator(agent, num_rounds, use_opponent_id)
    tables = {name: jnp.asarray(PROBES[name], jnp.float32) for name in probes}

    def summary(key: jax.Array, params) -> dict:
        num_learners = jax.tree.leaves(params)[0].shape[0]
        shape = (num_learners, num_episodes)
        no_learner = jnp.zeros((num_episodes,), bool)
        out = {}
        for i, (name, probe) in enumerate(tables.items()):
            traj = play(jax.random.fold_in(key, i), params, jnp.broadcast_to(probe, (*shape, 5)),
                        no_learner)
            coop = np.asarray(traj.action == COOPERATE, np.float32)  # (T, L, N)
            out[f"vs_{name}_reward"] = np.asarray(traj.reward).mean(axis=(0, 2)).round(5).tolist()
            out[f"vs_{name}_coop_2nd_half"] = (
                coop[num_rounds // 2:].mean(axis=(0, 2)).round(5).tolist())
        return out

    return summary
