"""MEP stage 2 and the HSP adaptive agent: one learner trained against a frozen population;
best responses: one learner per frozen partner.

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

HSP (Yu et al., ICLR 2023; spec §2) trains its adaptive agent the same way against the
*biased* policies (seat 0, :data:`~coplay.populations.hsp.BIASED`) of an HSP population's
training pool — the members ``coplay populations select`` wrote to ``selection.json``
``"train"`` (``pool = "all-eligible"``: its ``"train_eligible"``; or explicit ``partners``),
sampled **uniformly** by default (alpha = 0: every rank^0 = 1), as HSP's own stage 2 does.
The run's experiment is ``hsp-adaptive`` (``mep-adaptive`` for a MEP population): the kind is
the population's.

Best responses (``learners = "per-partner"``, ``--kind mep-responses`` / ``hsp-responses``):
the same trainer with one learner per partner on the member axis, learner k steered against
partner k alone (the partner parameters are vmapped with the learners); no sampling. The CooT
release pairs each MEP agent with such a best response, trained against it frozen.

The run folder (:func:`train_adaptive`): ``config.json``, ``checkpoint.msgpack`` (atomic; the
running returns and probabilities are part of the state, so a resumed run equals an
uninterrupted one), ``metrics.jsonl`` (per chunk: returns, episodes, running returns and
probabilities per partner), then ``agent.msgpack``, ``eval.json``, ``training.png``,
``manifest.json`` and ``report.md`` (:func:`finish_adaptive`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay.agents.actor_critic import actor_only
from coplay.algos import ppo
from coplay.algos.ppo_config import PPOConfig
from coplay.algos.ppo_state import PPOState
from coplay.config import ConfigError, config_from_json
from coplay.envs.overcooked import Overcooked
from coplay.eval.crossplay import evaluate_pairs
from coplay.eval.plots import plot_adaptive_training
from coplay.experiments.overcooked.ppo import ppo_chunk_counts
from coplay.experiments.populations.frozen import (  # noqa: F401 (re-exported)
    POPULATION_NAMES,
    Population,
    load_population,
    partner_params,
    selected_members,
)
from coplay.experiments.populations.presets import PPO_PRESETS_ADAPTIVE
from coplay.experiments.populations.train import Preset, chunk_row
from coplay.experiments.zoo_agents import actor_params
from coplay.populations.members import load_params, network_of, take
from coplay.populations.mep import (
    ALPHA_MEP,
    frozen_partner,
    mep_params,
    refresh_priorities,
    refresh_running,
    with_partners,
)
from coplay.runs import (
    RunDir,
    RunError,
    atomic_write_bytes,
    atomic_write_text,
    drive_chunks,
    read_json,
    write_json,
)

NETWORK_FIELDS = ("network", "hidden_sizes", "activation", "cnn_filters", "centralised_value")


@dataclasses.dataclass(frozen=True)
class AdaptiveConfig:
    """One PPO learner against a frozen population: MEP stage 2 (a MEP stage-1 population) or
    the HSP adaptive agent (an HSP population with a selection)."""

    population: str = ""
    """Finished MEP stage-1 (``coplay populations train --kind mep``) or HSP population folder
    (``--kind hsp``, then ``coplay populations select``), or ``zoo:<prefix>`` of one that
    ``coplay zoo export`` stored (its members' float16 actor towers and selection); the
    layout is the population's."""
    preset: Preset = "default"
    """Named settings: tiny (seconds, the tests), default (this 2-core CPU)."""
    seed: int = 0
    """Seed of the learner's parameters, environments, partner draws and evaluation."""
    alpha: float | None = None
    """Exponent of the prioritised sampling p_i ∝ rank(1/R_i)^alpha; 0: uniform sampling.
    None: the population's default (:func:`sampling_alpha`): :data:`ALPHA_MEP` for MEP, 0 for
    HSP (HSP's stage 2 draws its partners uniformly)."""
    return_decay: float = 0.95
    """Running mean of each partner's return, once per chunk: R <- decay R + (1 - decay) x
    the chunk's mean return with that partner (ZSC-Eval: 0.95, per rollout); the first chunk
    with episodes sets R; partners without episodes yet count as the mean of the others."""
    partners: tuple[int, ...] | None = None
    """Members of the population to train with (None: MEP all, HSP the ``pool``)."""
    pool: Literal["train", "all-eligible"] = "train"
    """HSP, when ``partners`` is None: the members of the population's ``selection.json``
    ``"train"`` (the training pool: greedy max-L1) or ``"train_eligible"`` (every pair with
    return above the selection's train_min_return, evaluation partners excluded)."""
    ppo: PPOConfig | None = None
    """Learner's PPO hyperparameters (None: the preset's, with the population's network)."""
    checkpoint_every: int = 10
    """Chunks between checkpoints (and metrics flushes); also after the last chunk."""
    eval_envs: int = 32
    """Final evaluation episodes with each partner (half with each cook assignment)."""
    learners: Literal["one", "per-partner"] = "one"
    """one: one learner against all partners (MEP stage 2, the HSP adaptive agent);
    per-partner: a best response to each partner alone, one learner per partner, vmapped
    (``--kind mep-responses`` / ``hsp-responses``: the CooT release's best responses to frozen
    MEP agents); alpha is then moot."""


PRESETS: dict[str, AdaptiveConfig] = {
    "tiny": AdaptiveConfig(preset="tiny", checkpoint_every=2, eval_envs=4),
    "default": AdaptiveConfig(preset="default"),
}


def preset_config(preset: str, **changes) -> AdaptiveConfig:
    """The preset's config with some fields replaced (ConfigError for an unknown preset)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset = {preset!r}: unknown, choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **changes)


# --- the run's config (its frozen partners: frozen.py) ----------------------------------------
def default_learner_ppo(preset: str, pop_algo: PPOConfig) -> PPOConfig:
    """The preset's learner PPO config with the population's network."""
    base = PPO_PRESETS_ADAPTIVE[preset]
    return dataclasses.replace(base, **{f: getattr(pop_algo, f) for f in NETWORK_FIELDS})


def resolve(cfg: AdaptiveConfig) -> tuple[PPOConfig, Population]:
    """Validate everything (before compiling): the learner's PPO config and the population."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"preset = {cfg.preset!r}: unknown, choose one of {sorted(PRESETS)}")
    if cfg.alpha is not None and not cfg.alpha >= 0:
        raise ConfigError(f"alpha = {cfg.alpha!r}: must be >= 0 (0: uniform sampling)")
    if not 0.0 <= cfg.return_decay < 1.0:
        raise ConfigError(f"return_decay = {cfg.return_decay!r}: must be in [0, 1)")
    if not isinstance(cfg.checkpoint_every, int) or cfg.checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every = {cfg.checkpoint_every!r}: must be an integer >= 1")
    if not isinstance(cfg.eval_envs, int) or cfg.eval_envs < 2 or cfg.eval_envs % 2:
        raise ConfigError(f"eval_envs = {cfg.eval_envs!r}: must be an even integer >= 2")
    if cfg.learners not in ("one", "per-partner"):
        raise ConfigError(f"learners = {cfg.learners!r}: one or per-partner")
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


def sampling_alpha(cfg: AdaptiveConfig, pop: Population) -> float:
    """The sampling exponent: ``cfg.alpha``, else MEP's :data:`ALPHA_MEP` or HSP's 0
    (uniform)."""
    if cfg.alpha is not None:
        return float(cfg.alpha)
    return ALPHA_MEP if pop.kind == "mep" else 0.0


def experiment_of(pop: Population, cfg: AdaptiveConfig) -> str:
    """``mep-adaptive`` / ``hsp-adaptive``, or ``mep-responses`` / ``hsp-responses`` (one
    learner per partner): the kind of the population and of the learners."""
    return f"{pop.kind}-{'responses' if cfg.learners == 'per-partner' else 'adaptive'}"


ADAPTIVE_KINDS = ("mep-adaptive", "hsp-adaptive")
RESPONSE_KINDS = ("mep-responses", "hsp-responses")
KINDS = ADAPTIVE_KINDS + RESPONSE_KINDS
TITLES = {"mep-adaptive": "MEP stage 2", "hsp-adaptive": "HSP adaptive agent",
          "mep-responses": "best responses to MEP members",
          "hsp-responses": "best responses to HSP biased policies"}


def sampling_text(alpha: float) -> str:
    return "uniform" if alpha == 0 else f"prioritised, p ∝ rank(1/return)^{alpha:g}"


def run_config(cfg: AdaptiveConfig, algo: PPOConfig, pop: Population) -> dict:
    alpha = sampling_alpha(cfg, pop)
    return {"experiment": experiment_of(pop, cfg), **dataclasses.asdict(cfg), "resolved": algo,
            "layout": pop.layout, "partner_members": pop.members,
            "sampling_alpha": alpha, "partner_sampling": sampling_text(alpha)}


def load_config(path: str | Path) -> AdaptiveConfig:
    """The config a stage-2 run folder (mep-adaptive or hsp-adaptive) was started with."""
    raw = read_json(Path(path) / RunDir.CONFIG)
    if raw.get("experiment") not in KINDS:
        raise RunError(f"{path} is not a MEP stage-2, HSP adaptive or best-response run "
                       f"(experiment {raw.get('experiment')!r})")
    fields = {f.name for f in dataclasses.fields(AdaptiveConfig)}
    try:
        return config_from_json(AdaptiveConfig, {k: v for k, v in raw.items() if k in fields},
                                f"{path}/config.json")
    except (ConfigError, TypeError) as e:
        raise RunError(f"{path}: config.json does not match this version of coplay: {e}") \
            from None


# --- training ---------------------------------------------------------------------------------
def make_trainer(algo: PPOConfig, pop: Population, per_partner: bool = False
                 ) -> tuple[ppo.Trainer, Overcooked, object]:
    """(trainer, env, partner params (K, ...)): one learner with the K frozen partners, or
    (``per_partner``) K learners, learner k with partner k alone."""
    env = Overcooked(pop.layout)
    params = partner_params(pop)
    # the partners act through their actor tower alone (a zoo entry ships without critic)
    net = actor_only(network_of(pop.algo, env))
    if per_partner:  # member k's own population of one: (K, 1, ...)
        partner = frozen_partner(net, jax.tree.map(lambda x: x[:, None], params),
                                 pop.algo.centralised_value)._replace(per_member=True)
        learners = len(pop.members)
    else:
        partner, learners = frozen_partner(net, params, pop.algo.centralised_value), 1
    return (ppo.make_train(algo, env, mep_params(env, learners, algo.horizon), partner), env,
            params)


def init_state(trainer: ppo.Trainer, seed: int, num_partners: int) -> PPOState:
    """A fresh state with ``num_partners`` partners per learner (1 for per-partner runs)."""
    key = jax.random.PRNGKey(seed)
    return with_partners(trainer.init(key), jax.random.fold_in(key, 1), num_partners)


def train_adaptive(cfg: AdaptiveConfig, out: str | Path, resume: bool = False,
                   stop_after_chunks: int | None = None, progress: bool = True,
                   finish: bool = True) -> PPOState:
    """Train (or resume) the stage-2 learner in ``out``; returns the final train state."""
    algo, pop = resolve(cfg)
    run = RunDir(out)
    has_ckpt = run.start(run_config(cfg, algo, pop), resume)
    each = cfg.learners == "per-partner"
    trainer, _, _ = make_trainer(algo, pop, each)
    alpha = sampling_alpha(cfg, pop)

    def step(state: PPOState, chunk: int, last: bool, elapsed):
        state, metrics = trainer.train_chunk(state)
        row = chunk_row(metrics, int(state.update[0]), algo, elapsed())
        if each:
            state, running = refresh_running(state, cfg.return_decay)
            rets = [r for r in running["running_return"] if r is not None]
            return state, row | running, (f"running return: mean "
                                          f"{np.mean(rets) if rets else float('nan'):.1f}, "
                                          f"worst {min(rets) if rets else float('nan'):.1f}")
        state, partners = refresh_priorities(state, alpha, cfg.return_decay)
        ret = row["episode_return"][0]
        worst = int(np.argmax(partners["probs"]))
        return state, row | partners, (f"return {ret if ret is not None else float('nan'):.1f}  "
                                       f"most drawn: member {pop.members[worst]}")

    state, finished = drive_chunks(
        run, init_state(trainer, cfg.seed, 1 if each else len(pop.members)), has_ckpt,
        step=step, **ppo_chunk_counts(algo),
        label=f"{TITLES[experiment_of(pop, cfg)]} {pop.layout} x{len(pop.members)} partners",
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        stop_after_chunks=stop_after_chunks)
    if finished and finish:
        finish_adaptive(run.path, state=state)
    return state


AGENT_FILE = "agent.msgpack"


def finish_adaptive(path: str | Path, state: PPOState | None = None) -> dict:
    """Evaluate a trained stage-2 folder and write its agent, evaluation, plot and report."""
    path = Path(path)
    cfg = load_config(path)
    algo, pop = resolve(cfg)
    each = cfg.learners == "per-partner"
    _, env, partners = make_trainer(algo, pop, each)
    params = (load_params(path / RunDir.CHECKPOINT)["params"] if state is None
              else jax.tree.map(np.asarray, state.params))
    # one learner: (G = 1, ...), as a population member's file; per partner: (K, G = 1, ...)
    agent = params if each else take(params, 0)
    atomic_write_bytes(path / AGENT_FILE, serialization.to_bytes(agent))

    # --- the learner(s) (seat 0) with each partner (seat 1), each cook half the episodes;
    # learners and partners as actor towers (the partners' tree)
    learner = (actor_params(jax.tree.map(lambda x: x[:, 0], agent)) if each
               else actor_params(take(agent, 0)))
    pairs = jax.tree.map(lambda a, p: jnp.stack([jnp.broadcast_to(a, p.shape), p], axis=1),
                         learner, partners)  # (K, 2, ...)
    ev = evaluate_pairs(env, algo, actor_only(network_of(algo, env)), pairs,
                        jax.random.PRNGKey(cfg.seed + 10_000), cfg.eval_envs)
    returns = ev["sparse_return"]  # (K, N)
    rows = RunDir(path).read_metrics()
    last = rows[-1] if rows else {}
    partners_out = []
    for k, m in enumerate(pop.members):
        partners_out.append({
            "partner": k, "member": m,
            "checkpoint": pop.checkpoints[k],
            "return": float(returns[k].mean()), "return_std": float(returns[k].std()),
            "partner_self_play_return": pop.returns[k],
            "running_return": (last.get("running_return") or [None] * len(pop.members))[k],
            "final_prob": (last.get("probs") or [None] * len(pop.members))[k],
        })
    summary = {
        "mean_return": float(returns.mean()),
        "worst_partner_return": float(returns.mean(1).min()),
        "best_partner_return": float(returns.mean(1).max()),
        "env_steps": last.get("env_steps", 0),
        "train_time_s": last.get("time_s"),
    }
    write_json(path / "eval.json", {"episodes_per_partner": cfg.eval_envs,
                                    "steps_per_episode": algo.horizon, "partners": partners_out,
                                    "summary": summary})
    kind, alpha = experiment_of(pop, cfg), sampling_alpha(cfg, pop)
    seat1 = "a frozen stage-1 member" if pop.kind == "mep" else \
        "a frozen member's biased policy"
    seat0 = "learner k, the best response to partner k" if each else \
        f"the {TITLES[kind]} learner"
    manifest = {"kind": kind, "layout": pop.layout, "population": pop.source,
                "agent": AGENT_FILE, "learners": len(pop.members) if each else 1,
                "seats": {"0": seat0, "1": seat1},
                "alpha": alpha, "partner_sampling": sampling_text(alpha),
                "partner_members": pop.members, "summary": summary}
    write_json(path / "manifest.json", manifest)
    plot_adaptive_training(rows, pop.members, path / "training.png",
                  title=f"{TITLES[kind]}, {pop.layout}: {sampling_text(alpha)}")
    write_report(path, cfg, manifest, partners_out)
    return manifest


def write_report(path: Path, cfg, manifest: dict, partners: list[dict]) -> None:
    s = manifest["summary"]
    hsp = manifest["kind"].startswith("hsp")
    each = manifest.get("learners", 1) > 1 or manifest["kind"] in RESPONSE_KINDS
    own = "+ its best response" if hsp else "self-play"
    whom = f"{len(partners)} frozen {'biased policies of members' if hsp else 'members'} of " \
        f"`{manifest['population']}`"
    lines = [
        f"# {TITLES[manifest['kind']]} — {manifest['layout']}, preset `{cfg.preset}`, "
        f"seed {cfg.seed}",
        "",
        (f"- one PPO learner per partner ({len(partners)}, vmapped), each trained against its "
         f"partner alone, {s['env_steps']:,} env steps each, in {s['train_time_s'] or 0:.0f} s "
         f"(wall clock, compile included); partners: {whom}" if each else
         f"- one PPO learner, {s['env_steps']:,} env steps, trained in "
         f"{s['train_time_s'] or 0:.0f} s (wall clock, compile included), against {whom}"),
        *([] if each else [
            f"- partners drawn per episode: {manifest['partner_sampling']} (p ∝ "
            f"rank(1/return)^α, α = {manifest['alpha']:g}), running mean decay "
            f"{cfg.return_decay:g} per chunk"]),
        f"- evaluation ({cfg.eval_envs} episodes per partner, sampled actions, team sparse "
        f"return): mean {s['mean_return']:.1f}, worst partner {s['worst_partner_return']:.1f}, "
        f"best {s['best_partner_return']:.1f}",
        "",
        "![training](training.png)",
        "",
        f"| member | {'its best response' if each else 'learner'} + partner return | partner "
        f"{own} return | final running return | final p |",
        "|---|---|---|---|---|",
    ]
    for p in partners:
        run = "-" if p["running_return"] is None else f"{p['running_return']:.1f}"
        prob = "-" if p["final_prob"] is None else f"{p['final_prob']:.3f}"
        lines.append(f"| {p['member']} | {p['return']:.1f} ± {p['return_std']:.1f} | "
                     f"{p['partner_self_play_return']:.1f} | {run} | {prob} |")
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
