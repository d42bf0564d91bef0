"""MEP stage 2: one adaptive agent trained against the frozen stage-1 population.

MEP (Zhao et al., AAAI 2023; spec §2): after the maximum-entropy population (stage 1,
``coplay populations train --kind mep``) ONE new agent — a fresh PPO actor-critic — is trained
with partners drawn from the frozen population, partner i with probability

    p_i = rank(1 / R_i)^alpha / sum_j rank(1 / R_j)^alpha            (:func:`partner_probs`)

R_i the learner's running-mean sparse return with partner i. Ranks are dense and ascending in
1 / R: the partner with the highest return has rank 1, the one with the lowest return the
largest rank, so the partners the learner does worst with are drawn most; equal returns
share a rank.

Inside the jitted chunk (:class:`coplay.algos.ppo.FrozenPartner`) seat 1 of every env is
steered by partner ``runner.partner[n]``, whose parameters are gathered per env from the
stacked frozen parameters (sampled actions, no gradient: they are an argument of the chunk,
not train state). When an episode ends its return is added to its partner's sums and the env
draws its next partner from ``runner.probs``. Between chunks the Python loop folds the sums
into the running means and recomputes the probabilities (:func:`refresh_priorities`). The
learner is seat 0; seats are randomised per episode, so it steers either cook.

The run folder (:func:`train_adaptive`): ``config.json``, ``checkpoint.msgpack`` (atomic; the
running returns and probabilities are part of the state, so a resumed run equals an
uninterrupted one), ``metrics.jsonl`` (per chunk: returns, episodes, running returns and
probabilities per partner), then ``agent.msgpack``, ``eval.json``, ``training.png``,
``manifest.json`` and ``report.md`` (:mod:`coplay.populations.adaptive_report`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from coplay.agents.actor_critic import ActorCritic, critic_input
from coplay.algos import ppo
from coplay.algos.ppo import FrozenPartner, PPOConfig, PPOState, Runner
from coplay.config import ConfigError
from coplay.envs.overcooked import Overcooked
from coplay.populations.train import (
    PPO_PRESETS,
    Preset,
    chunk_row,
    drive_chunks,
    load_run,
    mep_params,
    ppo_config_from_json,
)
from coplay.runs import RunDir, RunError, read_json

ALPHA_MEP = 3.0
"""MEP's prioritisation exponent: ``ALPHA=3.0`` in the stage-2 command of the MEP authors'
released code (README of ruizhaogit/maximum_entropy_population_based_training; the config
default there is 1.0) and ZSC-Eval's ``--mep_prioritized_alpha`` default. The value printed in
the paper itself was not checked here."""

NETWORK_FIELDS = ("network", "hidden_sizes", "activation", "cnn_filters", "centralised_value")


@dataclasses.dataclass(frozen=True)
class AdaptiveConfig:
    """MEP stage 2: one PPO learner against a frozen stage-1 MEP population."""

    population: str = ""
    """Finished MEP stage-1 population folder (``coplay populations train --kind mep``); the
    layout is the population's."""
    preset: Preset = "default"
    """Named settings: tiny (seconds, the tests), default (this 2-core CPU)."""
    seed: int = 0
    """Seed of the learner's parameters, environments, partner draws and evaluation."""
    alpha: float = ALPHA_MEP
    """Exponent of the prioritised sampling p_i ∝ rank(1/R_i)^alpha (:data:`ALPHA_MEP`);
    0: uniform sampling (FCP-style)."""
    return_decay: float = 0.95
    """Running mean of each partner's return, once per chunk: R <- decay R + (1 - decay) x
    the chunk's mean return with that partner (ZSC-Eval: 0.95, per rollout); the first chunk
    with episodes sets R; partners without episodes yet count as the mean of the others."""
    partners: tuple[int, ...] | None = None
    """Members of the population to train with (None: all), e.g. its training pool."""
    ppo: PPOConfig | None = None
    """Learner's PPO hyperparameters (None: the preset's, with the population's network)."""
    checkpoint_every: int = 10
    """Chunks between checkpoints (and metrics flushes); also after the last chunk."""
    eval_envs: int = 32
    """Final evaluation episodes with each partner (half with each cook assignment)."""


_TINY_PPO = dataclasses.replace(PPO_PRESETS["tiny"], share_policy=True)
# this 2-core CPU: the PPO default (JaxMARL IPPO: 16 envs x 128 steps, shaping annealed over
# 2.5 M steps) for 5 M steps, one policy (the learner) trained on its seat only
_DEFAULT_PPO = PPOConfig(total_steps=5_000_000, shaping_factor=None, share_policy=True)
PPO_PRESETS_ADAPTIVE: dict[str, PPOConfig] = {"tiny": _TINY_PPO, "default": _DEFAULT_PPO}
PRESETS: dict[str, AdaptiveConfig] = {
    "tiny": AdaptiveConfig(preset="tiny", checkpoint_every=2, eval_envs=4),
    "default": AdaptiveConfig(preset="default"),
}


def preset_config(preset: str, **changes) -> AdaptiveConfig:
    """The preset's config with some fields replaced (ConfigError for an unknown preset)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset = {preset!r}: unknown, choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **changes)


# --- prioritised partner sampling (NumPy, between chunks) -------------------------------------
def dense_rank(x: np.ndarray) -> np.ndarray:
    """1 for the smallest value, +1 per larger distinct value (ties share a rank)."""
    _, inverse = np.unique(np.asarray(x), return_inverse=True)
    return inverse.reshape(-1) + 1


def partner_probs(returns: np.ndarray, alpha: float) -> np.ndarray:
    """p_i ∝ rank(1/R_i)^alpha over partners' returns R (K,); NaN = no episode yet, counted
    as the mean of the others (ZSC-Eval); none at all: uniform. The dense rank of -R orders
    the partners as the rank of 1/(R + 1e-6) of the reference code does for R >= 0 (sparse
    returns are) and stays defined for R <= 0."""
    r = np.asarray(returns, np.float64)
    seen = np.isfinite(r)
    if not seen.any():
        return np.full(len(r), 1.0 / len(r))
    r = np.where(seen, r, r[seen].mean())
    w = dense_rank(-r).astype(np.float64) ** alpha
    return w / w.sum()


def update_running(running: np.ndarray, return_sum: np.ndarray, episodes: np.ndarray,
                   decay: float) -> np.ndarray:
    """Fold one chunk's per-partner (summed return, episodes) into the running means (NaN:
    none yet; the first chunk with episodes sets the mean)."""
    running = np.asarray(running, np.float64)
    has = np.asarray(episodes) > 0
    mean = np.asarray(return_sum, np.float64) / np.maximum(episodes, 1)
    first = has & ~np.isfinite(running)
    blended = decay * running + (1.0 - decay) * mean
    return np.where(first, mean, np.where(has, blended, running))


# --- partners inside the jitted chunk ---------------------------------------------------------
class PartnerRunner(Runner):
    """The PPO runner plus the frozen partners' sampling state (N envs, K partners)."""

    partner: jax.Array  # (N,) int32 partner of each env's running episode
    probs: jax.Array  # (K,) sampling probabilities (set between chunks)
    running_return: jax.Array  # (K,) running-mean sparse return per partner (NaN: none yet)
    partner_episodes: jax.Array  # (K,) episodes finished since the last refresh
    partner_return_sum: jax.Array  # (K,) their summed sparse returns


def draw_partners(key: jax.Array, probs: jax.Array, n: int) -> jax.Array:
    """(n,) partner indices drawn independently with probabilities ``probs`` (K,)."""
    return jax.random.categorical(key, jnp.log(probs), shape=(n,)).astype(jnp.int32)


def frozen_partner(net: ActorCritic, params, centralised: bool) -> FrozenPartner:
    """Seat 1 played by partner ``runner.partner[n]`` of the stacked ``params`` (K, ...)."""

    def logits(params, runner: PartnerRunner, obs_seat: jax.Array) -> jax.Array:
        per_env = jax.tree.map(lambda x: x[runner.partner], params)  # (N, ...) gather
        cx = critic_input(obs_seat, centralised, 1)[:, 1]  # (N, H, W, C') (critic unused)

        def one(p, obs, c):  # (H, W, C) -> (A,)
            return net.apply(p, obs[None], c[None])[0][0]

        return jax.vmap(one)(per_env, obs_seat[:, 1], cx)

    def after_step(runner: PartnerRunner, done: jax.Array, ret: jax.Array,
                   key: jax.Array) -> PartnerRunner:
        d = done.astype(jnp.float32)
        nxt = draw_partners(key, runner.probs, done.shape[0])
        return runner.replace(
            partner=jnp.where(done, nxt, runner.partner),
            partner_episodes=runner.partner_episodes.at[runner.partner].add(d),
            partner_return_sum=runner.partner_return_sum.at[runner.partner].add(d * ret))

    return FrozenPartner(params, logits, after_step)


def with_partners(state: PPOState, key: jax.Array, num_partners: int) -> PPOState:
    """A fresh (M, ...) train state's runner -> :class:`PartnerRunner`: uniform probabilities,
    first partners drawn from them, no returns yet."""
    r = state.runner
    m, n = r.swap.shape
    probs = jnp.full((m, num_partners), 1.0 / num_partners, jnp.float32)
    zeros = jnp.zeros((m, num_partners), jnp.float32)
    base = {f.name: getattr(r, f.name) for f in dataclasses.fields(Runner)}
    partner = jax.vmap(draw_partners, in_axes=(0, 0, None))(jax.random.split(key, m), probs, n)
    return state.replace(runner=PartnerRunner(
        **base, partner=partner, probs=probs, running_return=jnp.full_like(zeros, jnp.nan),
        partner_episodes=zeros, partner_return_sum=zeros))


def refresh_priorities(state: PPOState, cfg: AdaptiveConfig) -> tuple[PPOState, dict]:
    """Between chunks: running returns and probabilities from the chunk's per-partner sums
    (member 0: stage 2 trains one learner); returns the new state and a metrics dict."""
    r = state.runner
    eps, sums = np.asarray(r.partner_episodes[0]), np.asarray(r.partner_return_sum[0])
    running = update_running(np.asarray(r.running_return[0]), sums, eps, cfg.return_decay)
    probs = partner_probs(running, cfg.alpha)
    f32 = lambda x: jnp.asarray(x, jnp.float32)[None]  # noqa: E731
    state = state.replace(runner=r.replace(
        running_return=f32(running), probs=f32(probs),
        partner_episodes=jnp.zeros_like(r.partner_episodes),
        partner_return_sum=jnp.zeros_like(r.partner_return_sum)))
    chunk_mean = [round(float(s / e), 3) if e else None for s, e in zip(sums, eps, strict=True)]
    return state, {
        "partner_episodes": [int(e) for e in eps],
        "partner_return": chunk_mean,
        "running_return": [round(float(x), 3) if np.isfinite(x) else None for x in running],
        "probs": [round(float(p), 5) for p in np.asarray(state.runner.probs[0])],
    }


# --- the stage-1 population -------------------------------------------------------------------
class Population(NamedTuple):
    path: Path
    cfg: object  # PopulationConfig of stage 1
    algo: PPOConfig  # its resolved PPO config (network of the partners)
    manifest: dict
    members: list[int]  # members used as partners


def load_population(cfg: AdaptiveConfig) -> Population:
    """The finished stage-1 MEP population of ``cfg`` (ConfigError naming what is wrong)."""
    where = f"population = {cfg.population!r}"
    path = Path(cfg.population)
    if not cfg.population:
        raise ConfigError("population: give a finished MEP stage-1 population folder (--pop)")
    if not path.is_dir():
        raise ConfigError(f"{where}: no such folder")
    try:
        raw = read_json(path / RunDir.CONFIG)
    except RunError:
        raise ConfigError(f"{where}: not a population folder (no readable config.json)") from None
    if raw.get("experiment") != "mep-population":
        what = raw.get("experiment", "unknown run")
        raise ConfigError(f"{where}: a {what} folder, not a MEP stage-1 population "
                          "(train one with coplay populations train --kind mep)")
    pop_cfg, pop_algo, _ = load_run(path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"{where}: stage 1 has not finished (no manifest.json); continue "
                          f"it with coplay populations train --out {path} --resume")
    man = read_json(path / "manifest.json")
    k = man["num_members"]
    members = list(range(k)) if cfg.partners is None else [int(i) for i in cfg.partners]
    if not members or len(set(members)) != len(members) or not all(0 <= i < k for i in members):
        raise ConfigError(f"partners = {cfg.partners!r}: distinct members in [0, {k}) needed")
    for i in members:
        if not (path / man["members"][i]["checkpoint"]).is_file():
            raise ConfigError(f"{where}: member {i}'s parameters "
                              f"({man['members'][i]['checkpoint']}) are missing")
    return Population(path, pop_cfg, pop_algo, man, members)


def partner_params(pop: Population):
    """(K, ...) parameters of the partners: each member's policy 0 (its only policy: MEP
    members share one policy between the seats)."""
    from coplay.populations.crossplay import take
    from coplay.populations.finish import load_params

    ps = [take(load_params(pop.path / pop.manifest["members"][i]["checkpoint"]), 0)
          for i in pop.members]
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *ps)


def default_learner_ppo(preset: str, pop_algo: PPOConfig) -> PPOConfig:
    """The preset's learner PPO config with the population's network."""
    base = PPO_PRESETS_ADAPTIVE[preset]
    return dataclasses.replace(base, **{f: getattr(pop_algo, f) for f in NETWORK_FIELDS})


def resolve(cfg: AdaptiveConfig) -> tuple[PPOConfig, Population]:
    """Validate everything (before compiling): the learner's PPO config and the population."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"preset = {cfg.preset!r}: unknown, choose one of {sorted(PRESETS)}")
    if not cfg.alpha >= 0:
        raise ConfigError(f"alpha = {cfg.alpha!r}: must be >= 0 (0: uniform sampling)")
    if not 0.0 <= cfg.return_decay < 1.0:
        raise ConfigError(f"return_decay = {cfg.return_decay!r}: must be in [0, 1)")
    if not isinstance(cfg.checkpoint_every, int) or cfg.checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every = {cfg.checkpoint_every!r}: must be an integer >= 1")
    if not isinstance(cfg.eval_envs, int) or cfg.eval_envs < 2 or cfg.eval_envs % 2:
        raise ConfigError(f"eval_envs = {cfg.eval_envs!r}: must be an even integer >= 2")
    pop = load_population(cfg)
    algo = cfg.ppo if cfg.ppo is not None else default_learner_ppo(cfg.preset, pop.algo)
    for f in NETWORK_FIELDS:
        if getattr(algo, f) != getattr(pop.algo, f):
            raise ConfigError(f"ppo.{f} = {getattr(algo, f)!r}: must be the population's "
                              f"({getattr(pop.algo, f)!r}; learner and partners are evaluated "
                              "through one network)")
    if algo.population_entropy_coef != 0:
        raise ConfigError(f"ppo.population_entropy_coef = {algo.population_entropy_coef!r}: "
                          "stage 2 has no population bonus (must be 0)")
    if algo.shaping_factor is not None:
        raise ConfigError(f"ppo.shaping_factor = {algo.shaping_factor!r}: must be None (the "
                          "learner's shaping lives in its EnvParams, annealed)")
    ppo.validate(algo)
    ppo.validate_with_partner(algo)
    return algo, pop


def run_config(cfg: AdaptiveConfig, algo: PPOConfig, pop: Population) -> dict:
    return {"experiment": "mep-adaptive", **dataclasses.asdict(cfg), "resolved": algo,
            "layout": pop.cfg.layout, "partner_members": pop.members}


def load_config(path: str | Path) -> AdaptiveConfig:
    """The config a stage-2 run folder was started with."""
    raw = read_json(Path(path) / RunDir.CONFIG)
    if raw.get("experiment") != "mep-adaptive":
        raise RunError(f"{path} is not a MEP stage-2 run (experiment "
                       f"{raw.get('experiment')!r})")
    fields = {f.name for f in dataclasses.fields(AdaptiveConfig)}
    kw = {k: v for k, v in raw.items() if k in fields}
    if kw.get("partners") is not None:
        kw["partners"] = tuple(kw["partners"])
    if kw.get("ppo") is not None:
        kw["ppo"] = ppo_config_from_json(kw["ppo"])
    return AdaptiveConfig(**kw)


# --- training ---------------------------------------------------------------------------------
def make_trainer(algo: PPOConfig, pop: Population) -> tuple[ppo.Trainer, Overcooked, object]:
    """(trainer of one learner with the frozen partners, env, partner params (K, ...))."""
    from coplay.populations.finish import network_of

    env = Overcooked(pop.cfg.layout)
    params = partner_params(pop)
    partner = frozen_partner(network_of(pop.algo, env), params, pop.algo.centralised_value)
    return ppo.make_train(algo, env, mep_params(env, 1, algo.horizon), partner), env, params


def init_state(trainer: ppo.Trainer, seed: int, num_partners: int) -> PPOState:
    key = jax.random.PRNGKey(seed)
    return with_partners(trainer.init(key), jax.random.fold_in(key, 1), num_partners)


def train_adaptive(cfg: AdaptiveConfig, out: str | Path, resume: bool = False,
                   stop_after_chunks: int | None = None, progress: bool = True,
                   finish: bool = True) -> PPOState:
    """Train (or resume) the stage-2 learner in ``out``; returns the final train state."""
    algo, pop = resolve(cfg)
    run = RunDir(out)
    has_ckpt = run.start(run_config(cfg, algo, pop), resume)
    t0 = time.perf_counter()
    trainer, _, _ = make_trainer(algo, pop)

    def step(state: PPOState, chunk: int, last: bool, elapsed):
        state, metrics = trainer.train_chunk(state)
        state, partners = refresh_priorities(state, cfg)
        row = chunk_row(metrics, int(state.update[0]), algo, elapsed()) | partners
        ret = row["episode_return"][0]
        worst = int(np.argmax(partners["probs"]))
        return state, row, (f"return {ret if ret is not None else float('nan'):.1f}  "
                            f"most drawn: member {pop.members[worst]}")

    state, finished = drive_chunks(
        run, init_state(trainer, cfg.seed, len(pop.members)), has_ckpt, algo, step, t0,
        label=f"MEP stage 2 {pop.cfg.layout} x{len(pop.members)} partners",
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        stop_after_chunks=stop_after_chunks)
    if finished and finish:
        from coplay.populations.adaptive_report import finish_adaptive

        finish_adaptive(run.path, state=state)
    return state
