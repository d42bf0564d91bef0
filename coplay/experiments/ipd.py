"""IPD experiments: presets, the training driver, and the run folder it fills.

``train_run(cfg, out)`` drives jitted A2C train chunks from a short Python loop: a rich progress
bar, ``metrics.jsonl`` (one line per chunk, averaged over its updates), an atomic checkpoint
after every ``checkpoint_every`` chunks, and at the end ``eval.json``, PNG plots and
``report.md``. A killed run resumes from its last checkpoint with ``resume=True`` and ends with
exactly the parameters of an uninterrupted run (update u always uses key fold_in(seed, u)).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Literal

import jax
import numpy as np

from coplay.algos import a2c
from coplay.algos.a2c import A2CConfig, A2CState, ConfigError
from coplay.runs import RunDir, RunError

Preset = Literal["tiny", "default", "paper"]
Ablation = Literal["none", "no-tabular", "opponent-id"]
Stage = Literal["mixed", "step1", "step2", "step3"]

# Why the default preset differs from the paper (see docs/ipd.md for the measurements):
# the paper's A2C needs ~60-80k updates x 4096 episodes before cooperation appears, far beyond
# 30 minutes on 2 CPU cores. The default keeps the paper's game, pool and objective, and changes
# only optimisation knobs, each a named A2CConfig field with the paper's value one flag away.
PRESETS: dict[str, A2CConfig] = {
    "tiny": A2CConfig(
        num_rounds=20, hidden_size=16, embed_dim=8, episodes_per_update=32,
        num_updates=6, updates_per_chunk=2, scan_unroll=1,
    ),
    # Entropy 0.2 held for 1,000 updates, then each learner's bonus adapted to keep its policy
    # entropy near a target of 0.2 nats, annealed to 0.02 over the last 1,000 updates, while
    # the learning rate decays 3e-3 -> 3e-4. Eight learners paired at random in every episode
    # (128 episodes each per update: the cost of the paper's pair at 512 each), so no learner
    # co-adapts to a single other one (docs/ipd.md).
    "default": A2CConfig(
        hidden_size=32, num_learners=8, episodes_per_update=128, num_updates=4000,
        updates_per_chunk=25,
        learning_rate=3e-3, learning_rate_final=3e-4, gae_lambda=0.95, critic_opponent_id=True,
        entropy_coef=0.2, entropy_decay_start=1000, entropy_target=0.2,
        entropy_target_final=0.02, entropy_target_anneal_updates=1000, scan_unroll=1,
    ),
    "paper": A2CConfig(),
}


@dataclasses.dataclass(frozen=True)
class IPDTrainConfig:
    """One IPD training run: an algorithm config plus run-level settings."""

    preset: Preset = "default"
    """Named hyperparameter set: tiny (tests), default (this CPU), paper (the paper's values)."""
    seed: int = 0
    """Seed of parameters, pools and sampling."""
    ablation: Ablation = "none"
    """`no-tabular`: learners only play each other; `opponent-id`: tabular co-players reveal
    their log-policy to the agent."""
    a2c: A2CConfig | None = None
    """Overrides of the preset's A2C fields (None: the preset as it is)."""
    eval_episodes: int = 1024
    """Episodes per pairing in the final evaluation."""
    checkpoint_every: int = 1
    """Write a checkpoint every this many chunks."""
    probe_every: int = 4
    """Every this many chunks, play the TFT / AllC / AllD probes and log each learner's reward
    and second-half cooperation in metrics.jsonl (0: never). Does not touch training."""
    probe_episodes: int = 256
    """Episodes per probe for those checks."""
    stage: Stage = "mixed"
    """mixed: the paper's mixed pool (Fig. 1). The paper's three-step mechanism: step1, one
    learner against random tabular agents only (in-context best response); step2, a fresh
    learner against the frozen step-1 agent named in `init_from` (extortion); step3, the two
    step-2 learners named in `init_from` trained against each other (cooperation)."""
    init_from: tuple[str, ...] = ()
    """Run folders whose trained learners start this run, `PATH` or `PATH:INDEX` (learner
    INDEX of that run, default 0): step2 takes the victim, step3 the two extorters; mixed and
    step1 may warm-start their learners (one entry each, '' = fresh)."""


def learner_sources(cfg: IPDTrainConfig) -> tuple[str, ...]:
    """Where each learner's initial parameters come from ('' = fresh), by stage."""
    need = {"step2": 1, "step3": 2}.get(cfg.stage)
    if need is not None and len(cfg.init_from) != need:
        what = "the step-1 run (the victim)" if need == 1 else "the two step-2 runs"
        raise ConfigError(f"init_from = {list(cfg.init_from)}: stage {cfg.stage} needs {what}")
    if cfg.stage == "step2":
        return ("", cfg.init_from[0])
    return tuple(cfg.init_from)


def resolve_stage(cfg: IPDTrainConfig, algo: A2CConfig) -> A2CConfig:
    """The pool and learners of each stage of the mechanism experiments.

    The stages train one or two learners. A population of more than two (A2C's `default`:
    8 x 128 episodes per update) hands each stage learner what one learner of a *pair* with
    the same total gets (``episodes_per_update × num_learners / 2``: 512), the batch the
    stages were measured with; one- and two-learner configs are taken as they are.
    """
    if cfg.stage == "mixed":
        return algo
    pair = algo
    if algo.num_learners > 2 and hasattr(algo, "episodes_per_update"):  # A2C; PPI's games
        # per learner and phase do not depend on the number of learners
        pair = dataclasses.replace(
            algo, episodes_per_update=algo.episodes_per_update * algo.num_learners // 2)
    if cfg.stage == "step1":
        return dataclasses.replace(pair, num_learners=1, tabular_fraction=1.0)
    if cfg.stage == "step2":  # learner 1 is the frozen victim
        return dataclasses.replace(pair, num_learners=2, tabular_fraction=0.0,
                                   frozen_learners=(1,))
    if cfg.stage == "step3":
        return dataclasses.replace(pair, num_learners=2, tabular_fraction=0.0)
    raise ConfigError(f"stage = {cfg.stage!r}: unknown, choose mixed, step1, step2 or step3")


def resolve(cfg: IPDTrainConfig) -> A2CConfig:
    """The A2C config this run trains with: preset, then overrides, then the ablation."""
    return resolve_algo(cfg, PRESETS, cfg.a2c, a2c.validate)


def resolve_algo(cfg, presets: dict, override, validate_algo):
    """Preset (or the `override` config), stage, ablation, the run's own fields, then the
    algorithm's validation: shared by A2C and PPI runs (both configs have `num_learners`,
    `tabular_fraction`, `frozen_learners`, `use_opponent_id`)."""
    if cfg.preset not in presets:
        raise ConfigError(f"preset = {cfg.preset!r}: unknown, choose one of {sorted(presets)}")
    algo = resolve_stage(cfg, override if override is not None else presets[cfg.preset])
    if cfg.ablation == "no-tabular":
        algo = dataclasses.replace(algo, tabular_fraction=0.0)
    elif cfg.ablation == "opponent-id":
        algo = dataclasses.replace(algo, use_opponent_id=True)
    elif cfg.ablation != "none":
        raise ConfigError(
            f"ablation = {cfg.ablation!r}: unknown, choose none, no-tabular or opponent-id"
        )
    if cfg.eval_episodes < 1:
        raise ConfigError(f"eval_episodes = {cfg.eval_episodes}: must be >= 1")
    if getattr(cfg, "checkpoint_every", 1) < 1:
        raise ConfigError(f"checkpoint_every = {cfg.checkpoint_every}: must be >= 1")
    if cfg.probe_every < 0:
        raise ConfigError(f"probe_every = {cfg.probe_every}: must be >= 0 (0 disables)")
    if cfg.probe_episodes < 1:
        raise ConfigError(f"probe_episodes = {cfg.probe_episodes}: must be >= 1")
    validate_algo(algo)
    sources = learner_sources(cfg)
    if len(sources) > algo.num_learners:
        raise ConfigError(f"init_from = {list(cfg.init_from)}: more runs than the "
                          f"{algo.num_learners} learner(s) of stage {cfg.stage}")
    for source in sources:
        if source:
            _split_source(source)  # the folder and index exist (checked before compiling)
    return algo


def _split_source(source: str) -> tuple[Path, int]:
    """``PATH[:INDEX]`` -> (run folder, learner index); errors name the problem."""
    path, _, index = source.rpartition(":") if ":" in source else (source, "", "0")
    if not index.isdigit():
        path, index = source, "0"
    folder = Path(path)
    if not (folder / RunDir.CONFIG).is_file() or not (folder / RunDir.CHECKPOINT).is_file():
        raise RunError(f"init_from {source!r}: {folder} is not a trained IPD run folder "
                       "(needs config.json and a checkpoint)")
    return folder, int(index)


def load_learner(source: str, algo: A2CConfig):
    """Parameters (no learner axis) of learner INDEX of the run in PATH, checked against the
    architecture of ``algo``."""
    from coplay.experiments.ipd_eval import load_run_config

    folder, index = _split_source(source)
    _, src_algo = load_run_config(folder)
    for field in ("hidden_size", "embed_dim", "use_opponent_id", "critic_opponent_id"):
        if getattr(src_algo, field) != getattr(algo, field):
            raise ConfigError(f"init_from {source!r}: its {field} is {getattr(src_algo, field)}"
                              f", this run's is {getattr(algo, field)}")
    if index >= src_algo.num_learners:
        raise ConfigError(f"init_from {source!r}: that run has {src_algo.num_learners} "
                          f"learner(s), no learner {index}")
    init, _ = a2c.make_train(src_algo)
    state, _ = RunDir(folder).load_checkpoint(init(jax.random.PRNGKey(0)))
    return jax.tree.map(lambda x: x[index], state.params)


def chunk_metrics_row(metrics: a2c.UpdateMetrics, update: int, elapsed: float) -> dict:
    """Average a chunk's per-update metrics (updates, L) into one JSON row per chunk."""
    row: dict = {"update": update, "time_s": round(elapsed, 3)}
    for name, value in metrics._asdict().items():
        v = np.asarray(value)
        if v.ndim == 2:  # (updates, learners)
            per_learner = np.nanmean(v, axis=0) if np.isfinite(v).any() else v[0]
            row[name] = [None if not math.isfinite(x) else round(float(x), 5)
                         for x in per_learner]
        else:
            row[name] = round(float(np.mean(v)), 6)
    return row


def train_run(cfg: IPDTrainConfig, out: str | Path, resume: bool = False,
              stop_after_chunks: int | None = None, progress: bool = True,
              evaluate_at_end: bool = True) -> A2CState:
    """Train (or resume) the run in ``out``; returns the final train state.

    ``stop_after_chunks`` ends the loop early as a kill would (used to test resumption).
    """
    algo = resolve(cfg)
    run = RunDir(out)
    has_ckpt = run.start({"experiment": "ipd", **dataclasses.asdict(cfg), "resolved": algo},
                         resume)
    init, train_chunk = a2c.make_train(algo)
    key = jax.random.PRNGKey(cfg.seed)
    k_init, k_train = jax.random.split(key)
    state = init(k_init)
    if not has_ckpt:  # a fresh start: learners may come from earlier runs (mechanism steps)
        for i, source in enumerate(learner_sources(cfg)):
            if source:
                loaded = load_learner(source, algo)
                put = lambda a, b, i=i: a.at[i].set(b)  # noqa: E731
                state = state.replace(params=jax.tree.map(put, state.params, loaded))
                if state.slow_params is not None:  # Lookahead starts synced
                    state = state.replace(slow_params=jax.tree.map(put, state.slow_params,
                                                                   loaded))
    if has_ckpt:
        state, meta = run.load_checkpoint(state)
        run.truncate_metrics(meta["metrics_lines"])
    num_chunks = math.ceil(algo.num_updates / algo.updates_per_chunk)
    probe_summary = None
    if cfg.probe_every:
        from coplay.eval.ipd import make_probe_summary

        probe_summary = make_probe_summary(a2c.make_agent(algo), algo.num_rounds,
                                           cfg.probe_episodes, algo.use_opponent_id)
        k_probe = jax.random.fold_in(key, 20_000_003)  # never a training key
    done_chunks = int(state.update) // algo.updates_per_chunk

    from coplay.experiments.progress import progress_bar

    elapsed0 = 0.0
    rows = run.read_metrics()
    if rows:
        elapsed0 = rows[-1]["time_s"]
    t0 = time.perf_counter()
    with progress_bar(f"ipd a2c seed {cfg.seed}", total=num_chunks, completed=done_chunks,
                      enabled=progress) as bar:
        for chunk in range(done_chunks, num_chunks):
            if stop_after_chunks is not None and chunk - done_chunks >= stop_after_chunks:
                return state
            state, metrics = train_chunk(state, k_train)
            row = chunk_metrics_row(metrics, int(state.update),
                                    elapsed0 + time.perf_counter() - t0)
            if probe_summary is not None and (chunk + 1) % cfg.probe_every == 0:
                row |= probe_summary(jax.random.fold_in(k_probe, int(state.update)),
                                     state.params)
            run.append_metrics([row])
            if (chunk + 1) % cfg.checkpoint_every == 0 or chunk + 1 == num_chunks:
                run.save_checkpoint(state, {"update": int(state.update),
                                            "metrics_lines": run.metrics_line_count()})
            bar.update(_bar_text(row))
    if evaluate_at_end:
        from coplay.experiments.ipd_eval import evaluate_run

        evaluate_run(run.path, state=state)
    return state


def _bar_text(row: dict) -> str:
    def fmt(name):
        v = [x for x in row.get(name, []) if x is not None]
        return f"{np.mean(v):.2f}" if v else "-"

    return (f"coop L-L {fmt('coop_vs_learner')}  R L-L {fmt('reward_vs_learner')}  "
            f"R L-tab {fmt('reward_vs_tabular')}  H {fmt('entropy')}")
