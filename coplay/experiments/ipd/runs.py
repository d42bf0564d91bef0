"""IPD run folders, shared by the A2C and PPI drivers, evaluation and reports.

The lowest IPD experiment module: the run-level choices (preset, ablation, stage), how a
stage resolves an algorithm config, where stage learners come from (``PATH[:INDEX]``), and how
a run folder's config and trained state are read back — for either algorithm, so that
evaluation, reports and :func:`coplay.experiments.refs.resolve` need neither driver.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
from flax import struct

from coplay.algos import a2c, ppi
from coplay.algos.a2c import A2CConfig
from coplay.algos.ipd_rollout import Opponents
from coplay.algos.ppi_config import PPIConfig
from coplay.config import ConfigError
from coplay.envs.matrix_games import MatrixGameParams
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir, RunError

Preset = Literal["tiny", "default", "paper"]
Ablation = Literal["none", "no-tabular", "opponent-id"]
Stage = Literal["mixed", "step1", "step2", "step3"]
Algo = Literal["a2c", "ppi"]


# --- stages and their learners --------------------------------------------------------------
def learner_sources(cfg) -> tuple[str, ...]:
    """Where each learner's initial parameters come from ('' = fresh), by stage."""
    need = {"step2": 1, "step3": 2}.get(cfg.stage)
    if need is not None and len(cfg.init_from) != need:
        what = "the step-1 run (the victim)" if need == 1 else "the two step-2 runs"
        raise ConfigError(f"init_from = {list(cfg.init_from)}: stage {cfg.stage} needs {what}")
    if cfg.stage == "step2":
        return ("", cfg.init_from[0])
    return tuple(cfg.init_from)


def resolve_stage(cfg, algo):
    """The pool and learners of each stage of the mechanism experiments.

    The stages train one or two learners. A population of more than two (A2C's `default`:
    8 x 128 episodes per update) hands each stage learner what one learner of a *pair* with
    the same total gets (``episodes_per_update × num_learners / 2``: 512), the batch the
    stages were measured with; one- and two-learner configs are taken as they are.
    """
    if cfg.stage == "mixed":
        return algo
    pair = algo
    if algo.num_learners > 2 and isinstance(algo, A2CConfig):  # PPI's games per learner and
        # phase do not depend on the number of learners
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
    if getattr(cfg, "checkpoint_every", 1) < 1:  # PPI checkpoints every phase
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
            split_source(source)  # the folder and index exist (checked before compiling)
    return algo


def split_source(source: str) -> tuple[Path, int]:
    """``PATH[:INDEX]`` -> (run folder, learner index); errors name the problem."""
    path, _, index = source.rpartition(":") if ":" in source else (source, "", "0")
    if not index.isdigit():
        path, index = source, "0"
    folder = Path(path)
    if not (folder / RunDir.CONFIG).is_file() or not (folder / RunDir.CHECKPOINT).is_file():
        raise RunError(f"init_from {source!r}: {folder} is not a trained IPD run folder "
                       "(needs config.json and a checkpoint)")
    return folder, int(index)


def check_source(source: str, src_algo, algo, fields: tuple[str, ...], index: int) -> None:
    """The learner ``index`` of a source run exists and has ``algo``'s architecture."""
    for field in fields:
        if getattr(src_algo, field) != getattr(algo, field):
            raise ConfigError(f"init_from {source!r}: its {field} is {getattr(src_algo, field)}"
                              f", this run's is {getattr(algo, field)}")
    if index >= src_algo.num_learners:
        raise ConfigError(f"init_from {source!r}: that run has {src_algo.num_learners} "
                          f"learner(s), no learner {index}")


# --- run folders on disk --------------------------------------------------------------------
def is_ppi(cfg: dict) -> bool:
    return cfg.get("algo") == "ppi"


class PPIState(struct.PyTreeNode):
    params: dict  # (L, ...) the models that played the last finished phase
    phase: jax.Array  # () int32, phases finished


def ppi_state_template(algo: PPIConfig) -> PPIState:
    params = ppi.init_learners(algo, jax.random.PRNGKey(0), algo.num_learners)
    return PPIState(params, jnp.zeros((), jnp.int32))


def state_template(algo: A2CConfig | PPIConfig):
    """A train state of the run's shape (what a checkpoint is restored into)."""
    if isinstance(algo, PPIConfig):
        return ppi_state_template(algo)
    init, _ = a2c.make_train(algo)
    return init(jax.random.PRNGKey(0))


def load_state(path: str | Path):
    """(config.json, algorithm config, final train state) of a trained IPD run folder."""
    cfg, algo = load_ipd_config(path)
    state, _ = RunDir(path).load_checkpoint(state_template(algo))
    return cfg, algo, state


def trained_steps(state) -> int:
    """Updates (A2C) or phases (PPI) a state has finished."""
    return int(state.phase) if isinstance(state, PPIState) else int(state.update)


@functools.lru_cache(maxsize=8)
def make_ppi_play(algo: PPIConfig):
    """Jitted games with the improved policy, in the signature of
    :func:`coplay.eval.ipd.make_evaluator`'s result; one per config, so collection, probes and
    evaluation of equal batch sizes share one compiled program."""
    env_params = MatrixGameParams()

    @jax.jit
    def play(key, params, tabular, is_learner, partner=None):
        return ppi.rollout(key, algo, params, Opponents(tabular, is_learner, partner),
                           env_params)

    return play
