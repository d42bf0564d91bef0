"""MEP stage 2 and the HSP adaptive agent: one learner trained against a frozen population.

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

The run folder (:func:`train_adaptive`): ``config.json``, ``checkpoint.msgpack`` (atomic; the
running returns and probabilities are part of the state, so a resumed run equals an
uninterrupted one), ``metrics.jsonl`` (per chunk: returns, episodes, running returns and
probabilities per partner), then ``agent.msgpack``, ``eval.json``, ``training.png``,
``manifest.json`` and ``report.md`` (:func:`finish_adaptive`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay import zoo
from coplay.agents.actor_critic import actor_only
from coplay.algos import ppo
from coplay.algos.ppo_config import PPOConfig
from coplay.algos.ppo_state import PPOState
from coplay.config import ConfigError, config_from_json
from coplay.envs.overcooked import Overcooked
from coplay.eval.crossplay import evaluate_pairs
from coplay.eval.plots import plot_adaptive_training
from coplay.experiments.overcooked.ppo import ppo_chunk_counts
from coplay.experiments.overcooked.presets import PPO_DEFAULT
from coplay.experiments.populations.presets import PPO_PRESETS_ADAPTIVE
from coplay.experiments.populations.train import Preset, chunk_row, load_run
from coplay.experiments.zoo_agents import actor_params
from coplay.populations.members import load_params, member_policies, network_of, take
from coplay.populations.mep import (
    ALPHA_MEP,
    frozen_partner,
    mep_params,
    refresh_priorities,
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
class Population(NamedTuple):
    """The frozen partners of a stage-2 run, from a population run folder or a zoo prefix."""

    source: str  # the folder or ``zoo:<prefix>``, as given
    kind: str  # mep | hsp
    layout: str
    algo: PPOConfig  # the partners' network (a zoo population: its network fields only)
    members: list[int]  # members used as partners (their policy in seat 0)
    checkpoints: list[str]  # per partner: its parameter file, or its zoo entry zoo:<name>
    returns: list[float]  # per partner: its pair's (HSP) / self-play (MEP) return on record


POPULATION_NAMES = {"mep": "MEP stage-1 population", "hsp": "HSP population"}


class _Source(NamedTuple):
    kind: str
    layout: str
    algo: PPOConfig
    selection: dict | None  # selection.json of an HSP population (None: not chosen yet)
    checkpoints: list[str]  # per member
    returns: list[float]  # per member


def _wrong_kind(where: str, what: str, kind: str | None, want: str) -> ConfigError | None:
    """The error for a population of experiment ``what`` when ``kind`` (mep/hsp/None) is
    wanted, or None when it fits."""
    if what in [f"{k}-population" for k in POPULATION_NAMES] and \
            kind in (None, what.removesuffix("-population")):
        return None
    other = what.removesuffix("-population")
    hint = (f"train its adaptive agent with --kind {other}-adaptive"
            if other in POPULATION_NAMES else
            f"train one with coplay populations train --kind {kind or 'mep'}")
    return ConfigError(f"{where}: a {what} folder, not a {want} ({hint})")


def _folder_source(path: Path, where: str, kind: str | None, want: str) -> _Source:
    if not path.is_dir():
        raise ConfigError(f"{where}: no such folder")
    try:
        raw = read_json(path / RunDir.CONFIG)
    except RunError:
        raise ConfigError(f"{where}: not a population folder (no readable config.json)") from None
    err = _wrong_kind(where, raw.get("experiment", "unknown run"), kind, want)
    if err is not None:
        raise err
    pop_cfg, pop_algo, _ = load_run(path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"{where}: the population has not finished (no manifest.json); continue "
                          f"it with coplay populations train --out {path} --resume")
    man = read_json(path / "manifest.json")
    sel = path / "selection.json"
    return _Source(pop_cfg.kind, pop_cfg.layout, pop_algo,
                   read_json(sel) if sel.is_file() else None,
                   [str(path / m["checkpoint"]) for m in man["members"]],
                   [m["return"] for m in man["members"]])


def _zoo_source(name: str, where: str, kind: str | None, want: str) -> _Source:
    """A population the zoo holds (``coplay zoo export`` of a population folder): its
    ``<prefix>/population`` entry and the members' actor weights."""
    prefix = name.rstrip("/")
    try:
        doc, _ = zoo.load_population_entry(prefix)
    except RunError as e:
        raise ConfigError(f"{where}: not a zoo population ({e})") from None
    err = _wrong_kind(where, str(doc.get("kind")), kind, want)
    if err is not None:
        raise err
    role = "biased" if doc["kind"] == "hsp-population" else "member"
    entries = [m["entries"][role] for m in doc["members"]]
    net = zoo.read_manifest()["entries"][entries[0]]["meta"]["source"]
    algo = dataclasses.replace(  # the members' network (the rest: this CPU's PPO default)
        PPO_DEFAULT, network=net["network"], hidden_sizes=tuple(net["hidden_sizes"]),
        cnn_filters=tuple(net["cnn_filters"]), activation=net["activation"],
        centralised_value=bool(net["centralised_value"]))
    return _Source(doc["kind"].removesuffix("-population"), doc["layout"], algo,
                   doc.get("selection"), [zoo.ref_of(e) for e in entries],
                   [m["return"] for m in doc["members"]])


def load_population(cfg: AdaptiveConfig, kind: str | None = None) -> Population:
    """The finished population of ``cfg`` — a run folder or ``zoo:<prefix>`` (ConfigError
    naming what is wrong); ``kind`` (mep or hsp): refuse the other kind."""
    where = f"population = {cfg.population!r}"
    want = POPULATION_NAMES.get(kind, "MEP stage-1 or HSP population")
    if not cfg.population:
        raise ConfigError(f"population: give a finished {want} folder or zoo:<prefix> (--pop)")
    src = (_zoo_source(zoo.ref_name(cfg.population), where, kind, want)
           if zoo.is_ref(cfg.population)
           else _folder_source(Path(cfg.population), where, kind, want))
    k = len(src.checkpoints)
    if cfg.pool != "train" and (src.kind == "mep" or cfg.partners is not None):
        raise ConfigError(f"pool = {cfg.pool!r}: for HSP populations without partners (a MEP "
                          "population has no selection; partners names the members itself)")
    members = (list(range(k)) if src.kind == "mep" else selected_members(cfg, src.selection))\
        if cfg.partners is None else [int(i) for i in cfg.partners]
    if src.kind == "hsp" and src.selection is not None:
        held_out = set(members) & set(src.selection["eval"])
        if held_out:
            raise ConfigError(f"partners = {cfg.partners!r}: members {sorted(held_out)} are "
                              "evaluation partners (selection.json eval); they never train")
    if not members or len(set(members)) != len(members) or not all(0 <= i < k for i in members):
        raise ConfigError(f"partners = {cfg.partners!r}: distinct members in [0, {k}) needed")
    for i in members:
        if not zoo.is_ref(src.checkpoints[i]) and not Path(src.checkpoints[i]).is_file():
            raise ConfigError(f"{where}: member {i}'s parameters ({src.checkpoints[i]}) are "
                              "missing")
    return Population(cfg.population, src.kind, src.layout, src.algo, members,
                      [src.checkpoints[i] for i in members], [src.returns[i] for i in members])


def selected_members(cfg: AdaptiveConfig, selection: dict | None) -> list[int]:
    """An HSP population's partners from its selection (``selection.json``; ``cfg.pool``)."""
    if cfg.pool not in ("train", "all-eligible"):
        raise ConfigError(f"pool = {cfg.pool!r}: train or all-eligible")
    if selection is None:
        raise ConfigError(f"population = {cfg.population!r}: no selection.json; choose the "
                          f"training pool first with coplay populations select --pop "
                          f"{cfg.population} (or name the members: partners=0,3,5)")
    key = "train" if cfg.pool == "train" else "train_eligible"
    members = [int(i) for i in selection[key]]
    if not members:
        raise ConfigError(f"{cfg.population}: selection {key} is empty (no pair's return is "
                          "above the selection's train_min_return)")
    return members


def partner_params(pop: Population):
    """(K, ...) actor parameters of the partners: each member's policy in seat 0 — an HSP
    member's biased policy (:data:`~coplay.populations.hsp.BIASED`), a MEP member's only
    policy (it plays both seats); from the zoo, its stored (float16-rounded) actor."""
    if zoo.is_ref(pop.source):
        ps = [zoo.load_entry(zoo.ref_name(c))[0] for c in pop.checkpoints]
    else:
        ps = [actor_params(member_policies(pop.source, i)[0]) for i in pop.members]
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *ps)


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


def experiment_of(pop: Population) -> str:
    """``mep-adaptive`` or ``hsp-adaptive``: the kind of the population."""
    return f"{pop.kind}-adaptive"


KINDS = ("mep-adaptive", "hsp-adaptive")
TITLES = {"mep-adaptive": "MEP stage 2", "hsp-adaptive": "HSP adaptive agent"}


def sampling_text(alpha: float) -> str:
    return "uniform" if alpha == 0 else f"prioritised, p ∝ rank(1/return)^{alpha:g}"


def run_config(cfg: AdaptiveConfig, algo: PPOConfig, pop: Population) -> dict:
    alpha = sampling_alpha(cfg, pop)
    return {"experiment": experiment_of(pop), **dataclasses.asdict(cfg), "resolved": algo,
            "layout": pop.layout, "partner_members": pop.members,
            "sampling_alpha": alpha, "partner_sampling": sampling_text(alpha)}


def load_config(path: str | Path) -> AdaptiveConfig:
    """The config a stage-2 run folder (mep-adaptive or hsp-adaptive) was started with."""
    raw = read_json(Path(path) / RunDir.CONFIG)
    if raw.get("experiment") not in KINDS:
        raise RunError(f"{path} is not a MEP stage-2 or HSP adaptive run (experiment "
                       f"{raw.get('experiment')!r})")
    fields = {f.name for f in dataclasses.fields(AdaptiveConfig)}
    try:
        return config_from_json(AdaptiveConfig, {k: v for k, v in raw.items() if k in fields},
                                f"{path}/config.json")
    except (ConfigError, TypeError) as e:
        raise RunError(f"{path}: config.json does not match this version of coplay: {e}") \
            from None


# --- training ---------------------------------------------------------------------------------
def make_trainer(algo: PPOConfig, pop: Population) -> tuple[ppo.Trainer, Overcooked, object]:
    """(trainer of one learner with the frozen partners, env, partner params (K, ...))."""
    env = Overcooked(pop.layout)
    params = partner_params(pop)
    # the partners act through their actor tower alone (a zoo entry ships without critic)
    partner = frozen_partner(actor_only(network_of(pop.algo, env)), params,
                             pop.algo.centralised_value)
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
    trainer, _, _ = make_trainer(algo, pop)
    alpha = sampling_alpha(cfg, pop)

    def step(state: PPOState, chunk: int, last: bool, elapsed):
        state, metrics = trainer.train_chunk(state)
        state, partners = refresh_priorities(state, alpha, cfg.return_decay)
        row = chunk_row(metrics, int(state.update[0]), algo, elapsed()) | partners
        ret = row["episode_return"][0]
        worst = int(np.argmax(partners["probs"]))
        return state, row, (f"return {ret if ret is not None else float('nan'):.1f}  "
                            f"most drawn: member {pop.members[worst]}")

    state, finished = drive_chunks(
        run, init_state(trainer, cfg.seed, len(pop.members)), has_ckpt, step=step,
        **ppo_chunk_counts(algo),
        label=f"{TITLES[experiment_of(pop)]} {pop.layout} x{len(pop.members)} partners",
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
    _, env, partners = make_trainer(algo, pop)
    params = (load_params(path / RunDir.CHECKPOINT)["params"] if state is None
              else jax.tree.map(np.asarray, state.params))
    agent = take(params, 0)  # (G = 1, ...): the learner, as a population member's file
    atomic_write_bytes(path / AGENT_FILE, serialization.to_bytes(agent))

    # --- the learner (seat 0) with each partner (seat 1), each cook half the episodes
    learner = actor_params(take(agent, 0))  # the partners' tree: actor towers
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
    kind, alpha = experiment_of(pop), sampling_alpha(cfg, pop)
    seat1 = "a frozen stage-1 member" if kind == "mep-adaptive" else \
        "a frozen member's biased policy"
    manifest = {"kind": kind, "layout": pop.layout, "population": pop.source,
                "agent": AGENT_FILE, "seats": {"0": f"the {TITLES[kind]} learner", "1": seat1},
                "alpha": alpha, "partner_sampling": sampling_text(alpha),
                "partner_members": pop.members, "summary": summary}
    write_json(path / "manifest.json", manifest)
    plot_adaptive_training(rows, pop.members, path / "training.png",
                  title=f"{TITLES[kind]}, {pop.layout}: {sampling_text(alpha)}")
    write_report(path, cfg, manifest, partners_out)
    return manifest


def write_report(path: Path, cfg, manifest: dict, partners: list[dict]) -> None:
    s = manifest["summary"]
    hsp = manifest["kind"] == "hsp-adaptive"
    own = "+ its best response" if hsp else "self-play"
    lines = [
        f"# {TITLES[manifest['kind']]} — {manifest['layout']}, preset `{cfg.preset}`, "
        f"seed {cfg.seed}",
        "",
        f"- one PPO learner, {s['env_steps']:,} env steps, trained in "
        f"{s['train_time_s'] or 0:.0f} s (wall clock, compile included), against "
        f"{len(partners)} frozen {'biased policies of members' if hsp else 'members'} of "
        f"`{manifest['population']}`",
        f"- partners drawn per episode: {manifest['partner_sampling']} (p ∝ rank(1/return)^α, "
        f"α = {manifest['alpha']:g}), running mean decay {cfg.return_decay:g} per chunk",
        f"- evaluation ({cfg.eval_envs} episodes per partner, sampled actions, team sparse "
        f"return): mean {s['mean_return']:.1f}, worst partner {s['worst_partner_return']:.1f}, "
        f"best {s['best_partner_return']:.1f}",
        "",
        "![training](training.png)",
        "",
        f"| member | learner + partner return | partner {own} return | final running return "
        "| final p |",
        "|---|---|---|---|---|",
    ]
    for p in partners:
        run = "-" if p["running_return"] is None else f"{p['running_return']:.1f}"
        prob = "-" if p["final_prob"] is None else f"{p['final_prob']:.3f}"
        lines.append(f"| {p['member']} | {p['return']:.1f} ± {p['return_std']:.1f} | "
                     f"{p['partner_self_play_return']:.1f} | {run} | {prob} |")
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
