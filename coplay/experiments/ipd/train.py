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
from pathlib import Path

import jax
import numpy as np

from coplay.algos import a2c
from coplay.algos.a2c import A2CConfig, A2CState
from coplay.config import ConfigError
from coplay.eval.ipd import make_probe_summary
from coplay.experiments.ipd.eval import evaluate_run
from coplay.experiments.ipd.presets import A2C_PRESETS
from coplay.experiments.ipd.runs import (
    Ablation,
    Preset,
    Stage,
    check_source,
    learner_sources,
    resolve_algo,
    split_source,
)
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir, drive_chunks, mean_text


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


def resolve(cfg: IPDTrainConfig) -> A2CConfig:
    """The A2C config this run trains with: preset, then overrides, then the ablation."""
    return resolve_algo(cfg, A2C_PRESETS, cfg.a2c, a2c.validate)


def load_learner(source: str, algo: A2CConfig):
    """Parameters (no learner axis) of learner INDEX of the run in PATH, checked against the
    architecture of ``algo``."""
    folder, index = split_source(source)
    _, src_algo = load_ipd_config(folder)
    if not isinstance(src_algo, A2CConfig):
        raise ConfigError(f"init_from {source!r}: a PPI run; an A2C run needs A2C learners")
    check_source(source, src_algo, algo,
                 ("hidden_size", "embed_dim", "use_opponent_id", "critic_opponent_id"), index)
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
    probe_summary = None
    if cfg.probe_every:
        probe_summary = make_probe_summary(a2c.make_agent(algo), algo.num_rounds,
                                           cfg.probe_episodes, algo.use_opponent_id)
        k_probe = jax.random.fold_in(key, 20_000_003)  # never a training key

    def step(state, chunk, last, elapsed):
        state, metrics = train_chunk(state, k_train)
        row = chunk_metrics_row(metrics, int(state.update), elapsed())
        if probe_summary is not None and (chunk + 1) % cfg.probe_every == 0:
            row |= probe_summary(jax.random.fold_in(k_probe, int(state.update)), state.params)
        return state, row, (f"coop L-L {mean_text(row, 'coop_vs_learner')}  "
                            f"R L-L {mean_text(row, 'reward_vs_learner')}  "
                            f"R L-tab {mean_text(row, 'reward_vs_tabular')}  "
                            f"H {mean_text(row, 'entropy')}")

    state, finished = drive_chunks(
        run, state, has_ckpt, num_chunks=math.ceil(algo.num_updates / algo.updates_per_chunk),
        chunks_done=lambda s: int(s.update) // algo.updates_per_chunk, step=step,
        label=f"ipd a2c seed {cfg.seed}", checkpoint_every=cfg.checkpoint_every,
        progress=progress, stop_after_chunks=stop_after_chunks)
    if finished and evaluate_at_end:
        evaluate_run(run.path, state=state)
    return state
