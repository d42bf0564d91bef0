"""Evaluation of the Coordination Transformer and its baselines against held-out partners.

Every agent plays the same games: each evaluation partner (the ``eval`` set of a separate HSP
population) x both seats x ``repeats``, ``episodes`` consecutive episodes of ``episode_len``
steps with its memory carried over (:func:`coplay.eval.in_context.play_episodes`, one key for
all agents). Each partner's own best response plays ``br_episodes`` episodes per seat for the
BR-Prox denominator. ``eval.json`` keeps every return; :func:`write_report` turns it into the
tables, adaptation curves and bars (``report.md``, PNGs), with the paper's Coord. Ring figures
beside ours.

Agents are named ``label=REF``, REF any agent reference (:mod:`coplay.experiments.refs`): a
CooT or BC run folder, a ``coplay coot dagger`` folder (its last round), MEP / HSP adaptive
agents, self-play PPO, population members (``PATH#member,seat``), a zoo entry ``zoo:<name>``.
Several CooT runs (seeds) under one label are pooled as its seeds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.base import Agent
from coplay.agents.coot_agent import KEEPS, CootSpec, with_keep
from coplay.config import checker, need_positive_ints
from coplay.envs.overcooked import Overcooked
from coplay.eval.in_context import play_episodes
from coplay.experiments.coot.data import Pair, hsp_pairs
from coplay.experiments.refs import Source, check_obs, locate, resolve
from coplay.runs import RunError, progress_bar, read_json, to_jsonable, write_json

EVAL = "eval.json"
PARTIAL = "eval.partial.json"  # the games played so far; a rerun with the same games resumes


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Who plays whom, and for how long."""

    agents: tuple[str, ...] = ()
    """label=REF entries (REF: run folder, folder#member,seat, or zoo:<name>); a label given
    several times pools its REFs as seeds (CooT seeds)."""
    partners: str = "zoo:random1/hsp-s1-k10"
    """HSP population whose `eval` selection are the partners (never in the training data).
    Default: the seed-1 population's 10 k-DPP partners (the paper's K = 10 per layout);
    ``zoo:random1/hsp-s1`` holds its earlier 5-partner selection (a subset of the 10)."""
    layout: str = "random1"
    """Layout of the games."""
    episodes: int = 50
    """Consecutive episodes per partner, seat and repeat, memory carried over (paper: 50)."""
    episode_len: int = 200
    """Steps per episode (paper: 200)."""
    repeats: int = 1
    """Independent games per partner and seat (each a fresh context)."""
    br_episodes: int = 10
    """Episodes per seat of each partner with its own best response (BR-Prox denominator)."""
    greedy: bool = False
    """Argmax actions for the evaluated agents (paper: sampled); partners always sample."""
    coot_context: str = "fifo"
    """Which of its own episodes a CooT's context keeps: fifo (the paper's: the last k) or
    keep-best (not in the paper, a deployment option: the k best-return ones so far)."""
    seed: int = 0
    """Seed of the games (the same for every agent)."""

    def validate(self) -> EvalConfig:
        need = checker(self, "eval")
        need_positive_ints(self, "eval", ("episodes", "episode_len", "repeats", "br_episodes"))
        need(len(self.agents) >= 1, "agents", "name at least one agent as label=REF")
        need(self.coot_context in KEEPS, "coot_context", f"choose one of {KEEPS}")
        for a in self.agents:
            need("=" in a and a.split("=", 1)[0].strip() and a.split("=", 1)[1].strip(),
                 "agents", f"{a!r} is not label=REF")
        return self


def _stack(agents: list[Agent]) -> Agent:
    return agents[0].replace(params=jax.tree.map(lambda *xs: jnp.stack(
        [jnp.asarray(x) for x in xs]), *[a.params for a in agents]))


def games(num_partners: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """(partner index, ego cook) of the P x 2 x R games, in that order."""
    p, s, _ = np.meshgrid(np.arange(num_partners), np.arange(2), np.arange(repeats),
                          indexing="ij")
    return p.reshape(-1).astype(np.int32), s.reshape(-1).astype(np.int32)


def _games_config(cfg: EvalConfig) -> dict:
    """What decides the games an agent plays (everything but the agents)."""
    return to_jsonable(dataclasses.replace(cfg, agents=()))


def _read_partial(path: Path, games: dict) -> dict:
    """The results of an earlier, interrupted evaluation of the same games: {"br": ...,
    "agents": {"label=ref": returns}}; empty if there is none, it is of other games, or it is
    unreadable (it is rewritten then: it only ever holds results this run can replay)."""
    try:
        doc = read_json(path)
    except RunError:
        return {"agents": {}}
    if not isinstance(doc, dict) or doc.get("games") != games:
        return {"agents": {}}
    return {"br": doc.get("br"), "agents": dict(doc.get("agents", {}))}


def evaluate(cfg: EvalConfig, out: str | Path, progress: bool = True) -> Path:
    """Play every agent and the best responses; write ``out/eval.json``. Each finished agent
    is kept in ``out/eval.partial.json`` at once, so a rerun after an interruption plays only
    what is missing (the same numbers: every agent plays the same games from the same key)."""
    cfg.validate()
    env = Overcooked(cfg.layout)
    labels: dict[str, list[str]] = {}
    sources: dict[str, Source] = {}
    for a in cfg.agents:
        label, ref = (x.strip() for x in a.split("=", 1))
        labels.setdefault(label, []).append(ref)
        sources[ref] = src = locate(ref)  # config read once, checked before anything plays
        layout = src.layout
        if layout is not None and layout != cfg.layout:
            raise RunError(f"agent {label}={ref} was trained on layout {layout!r}; the games "
                           f"are on {cfg.layout!r} (--eval.layout)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env_params = env.default_params(horizon=cfg.episode_len)
    pairs: list[Pair] = hsp_pairs(cfg.partners, "eval", cfg.layout)
    partners = [p.partner.load() for p in pairs]
    stack = _stack(partners)
    key = jax.random.PRNGKey(cfg.seed)
    n_p = len(pairs)
    games_cfg = _games_config(cfg)
    partial = _read_partial(out / PARTIAL, games_cfg)

    def save_partial():
        write_json(out / PARTIAL, {"games": games_cfg, **partial})

    with progress_bar("eval", total=n_p + sum(len(v) for v in labels.values()),
                      enabled=progress) as bar:
        if partial.get("br") is not None:
            br = np.asarray(partial["br"], float).reshape(n_p, 2)
            bar.update(f"best responses: kept from {PARTIAL}", n_p)
        else:
            br = np.zeros((n_p, 2))
            for i, pair in enumerate(pairs):
                pi, cook = games(1, cfg.br_episodes)
                r = play_episodes(env, env_params, pair.br.load(), _stack([partners[i]]),
                                  jnp.asarray(pi), jnp.asarray(cook),
                                  jax.random.fold_in(key, 10_000 + i), episodes=1,
                                  steps=cfg.episode_len)
                br[i] = np.asarray(r["returns"][0]).reshape(2, cfg.br_episodes).mean(1)
                bar.update(f"BR of {pair.name}: {br[i].mean():.1f}")
            partial["br"] = br
            save_partial()
        pi, cook = games(n_p, cfg.repeats)
        shape = (n_p, 2, cfg.repeats, cfg.episodes)
        results = {}
        for label, refs in labels.items():
            per_seed = []
            for ref in refs:
                done = partial["agents"].get(f"{label}={ref}")
                if done is not None and np.shape(done) == shape:
                    ret = np.asarray(done, float)
                    bar.update(f"{label}: {ret.mean():.1f} (kept from {PARTIAL})")
                else:
                    agent = resolve(sources[ref], layout=cfg.layout, name=label)
                    check_obs(agent, env, sources[ref].ref)
                    if isinstance(agent.spec, CootSpec):
                        agent = with_keep(agent, cfg.coot_context)
                    r = play_episodes(env, env_params, agent, stack, jnp.asarray(pi),
                                      jnp.asarray(cook), key, episodes=cfg.episodes,
                                      steps=cfg.episode_len, greedy=cfg.greedy)
                    ret = np.asarray(r["returns"]).T.reshape(shape)
                    partial["agents"][f"{label}={ref}"] = ret
                    save_partial()
                    bar.update(f"{label}: {ret.mean():.1f}")
                per_seed.append(ret)
            results[label] = {"refs": refs,
                              "returns": np.concatenate(per_seed, axis=2)}  # (P, S, N, E)
    write_json(out / EVAL, {"config": to_jsonable(cfg),
                            "partners": [{"name": p.name, "partner": p.partner.label(),
                                          "br": p.br.label(), **p.info} for p in pairs],
                            "br_returns": br, "agents": results})
    (out / PARTIAL).unlink(missing_ok=True)
    return out


def read_eval(path: str | Path) -> dict:
    """eval.json with its arrays as numpy."""
    doc = read_json(Path(path) / EVAL)
    doc["br_returns"] = np.asarray(doc["br_returns"], float)
    for v in doc["agents"].values():
        v["returns"] = np.asarray(v["returns"], float)
    return doc
