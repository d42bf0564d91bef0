"""Overcooked self-play PPO: presets, the training driver, and the run folder it fills.

``train_run(cfg, out)`` drives the jitted PPO train chunks of :mod:`coplay.algos.ppo` from a
short Python loop: a rich progress bar, ``metrics.jsonl`` (one line per chunk), an atomic
checkpoint every ``checkpoint_every`` chunks, and at the end ``eval.json`` (the final pair
played for whole episodes in both seat arrangements), ``training.png`` and ``report.md``.
A killed run resumes from its last checkpoint (``resume=True``) and ends with exactly the
parameters of an uninterrupted run (update u of a member uses fold_in(member key, u)).

Self-play is one population member whose seats are both paid the sparse reward (plus the
annealed standard shaping); populations of hidden-utility pairs reuse the same trainer with
more members.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import jax
import numpy as np

from coplay.algos import ppo
from coplay.algos.ppo_config import PPOConfig
from coplay.algos.ppo_state import PPOState
from coplay.config import ConfigError
from coplay.envs.overcooked import Overcooked
from coplay.envs.overcooked.layouts import LayoutError
from coplay.eval.overcooked import play
from coplay.eval.plots import plot_ppo_training
from coplay.experiments.overcooked.presets import PPO_PRESETS
from coplay.runs import RunDir, atomic_write_text, drive_chunks, write_json

Preset = Literal["tiny", "default", "paper"]



@dataclasses.dataclass(frozen=True)
class OvercookedTrainConfig:
    """One self-play PPO run: a layout, an algorithm config and run-level settings."""

    layout: str = "cramped_room"
    """Layout name (coplay.envs.overcooked.layout_names()) or a path to an ASCII layout."""
    preset: Preset = "default"
    """Named PPO hyperparameters: tiny (tests), default (this CPU), paper (ZSC-Eval values)."""
    seed: int = 0
    """Seed of parameters, environments and sampling."""
    ppo: PPOConfig | None = None
    """Overrides of the preset's PPO fields (None: the preset as it is)."""
    checkpoint_every: int = 10
    """Write a checkpoint, and the metrics rows since the last one, every this many chunks
    (and after the last)."""
    eval_envs: int = 32
    """Episodes of the final evaluation (half with each seat arrangement)."""


def resolve(cfg: OvercookedTrainConfig) -> PPOConfig:
    """The PPO config this run trains with; every config error is raised here."""
    if cfg.preset not in PPO_PRESETS:
        raise ConfigError(f"preset = {cfg.preset!r}: unknown, choose one of {sorted(PPO_PRESETS)}")
    algo = cfg.ppo if cfg.ppo is not None else PPO_PRESETS[cfg.preset]
    if cfg.checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every = {cfg.checkpoint_every}: must be >= 1")
    if cfg.eval_envs < 2 or cfg.eval_envs % 2:
        raise ConfigError(f"eval_envs = {cfg.eval_envs}: must be an even number >= 2")
    ppo.validate(algo)
    try:
        Overcooked(cfg.layout)
    except (LayoutError, FileNotFoundError, OSError) as e:
        raise ConfigError(f"layout = {cfg.layout!r}: {e}") from None
    return algo


def ppo_chunk_counts(algo: PPOConfig) -> dict:
    """``drive_chunks``' chunk counting for PPO train states (update counter per member)."""
    return {"num_chunks": ppo.num_updates(algo) // algo.updates_per_chunk,
            "chunks_done": lambda s: int(s.update[0]) // algo.updates_per_chunk}


def self_play_params(env: Overcooked, algo: PPOConfig):
    """One member: both seats paid the team sparse reward (plus annealed shaping)."""
    return ppo.stack_params([env.default_params(horizon=algo.horizon)])


def chunk_row(metrics: ppo.UpdateMetrics, update: int, algo: PPOConfig, elapsed: float,
              event_names: tuple[str, ...]) -> dict:
    """One JSON row per chunk for member 0 (self-play has one member)."""
    m = jax.tree.map(lambda x: np.asarray(x)[0], metrics)  # (updates, ...)
    eps = float(m.episodes.sum())
    per_ep = lambda x: (x.sum(0) / eps) if eps else None  # noqa: E731
    events = per_ep(m.episode_events_sum.astype(np.float64))
    row = {
        "update": update,
        "env_steps": update * ppo.steps_per_update(algo),
        "time_s": round(elapsed, 3),
        "returned_return": [round(float(x), 3) for x in m.returned_return],
        "episodes": int(eps),
        "episode_return": None if not eps else round(float(m.episode_return_sum.sum()) / eps, 3),
        "episode_reward": None if not eps else [round(float(x), 3)
                                                for x in per_ep(m.episode_reward_sum)],
        "entropy": [round(float(x), 4) for x in m.entropy.mean(0)],
        "value_loss": [round(float(x), 4) for x in m.value_loss.mean(0)],
        "policy_loss": [round(float(x), 5) for x in m.policy_loss.mean(0)],
        "entropy_coef": round(float(m.entropy_coef[-1]), 5),
        "shaping_factor": round(float(m.shaping_factor[-1]), 4),
        "learning_rate": float(m.learning_rate[-1]),
    }
    if events is not None:
        row["events_per_episode"] = {name: [round(float(events[0, i]), 3),
                                            round(float(events[1, i]), 3)]
                                     for i, name in enumerate(event_names)}
    return row


def train_run(cfg: OvercookedTrainConfig, out: str | Path, resume: bool = False,
              stop_after_chunks: int | None = None, progress: bool = True,
              evaluate_at_end: bool = True) -> PPOState:
    """Train (or resume) the run in ``out``; returns the final train state.

    ``stop_after_chunks`` ends the loop early as a kill would (used to test resumption).
    """
    algo = resolve(cfg)
    env = Overcooked(cfg.layout)
    run = RunDir(out)
    has_ckpt = run.start({"experiment": "overcooked-ppo", **dataclasses.asdict(cfg),
                          "resolved": algo}, resume)
    members = self_play_params(env, algo)
    trainer = ppo.make_train(algo, env, members)

    def step(state, chunk, last, elapsed):
        state, metrics = trainer.train_chunk(state)
        row = chunk_row(metrics, int(state.update[0]), algo, elapsed(), env.event_names)
        return state, row, (f"return {row['returned_return'][-1]:.1f}  "
                            f"H {np.mean(row['entropy']):.2f}  "
                            f"shaping {row['shaping_factor']:.2f}")

    state, finished = drive_chunks(
        run, trainer.init(jax.random.PRNGKey(cfg.seed)), has_ckpt, step=step,
        **ppo_chunk_counts(algo),
        label=f"overcooked ppo {Path(cfg.layout).stem} seed {cfg.seed}",
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        stop_after_chunks=stop_after_chunks)
    if not finished:
        return state
    if evaluate_at_end:
        evaluate_run(run.path, cfg, algo, env, trainer, state)
    return state


def evaluate_run(path: Path, cfg: OvercookedTrainConfig, algo: PPOConfig, env: Overcooked,
                 trainer: ppo.Trainer, state: PPOState) -> dict:
    """eval.json, training.png and report.md of a finished run."""
    params = jax.tree.map(lambda x: x[0], state.params)  # member 0: (G, ...)
    seat = lambda g: jax.tree.map(lambda x: x[min(g, x.shape[0] - 1)], params)  # noqa: E731
    env_params = env.default_params(horizon=algo.horizon)
    out = play(env, env_params, trainer.network, seat(0), seat(1),
               jax.random.PRNGKey(cfg.seed + 10_000), steps=algo.horizon,
               num_envs=cfg.eval_envs, centralised=algo.centralised_value)
    ret = np.asarray(out["sparse_return"])
    events = np.asarray(out["events"]).mean(0)  # (2, E) per seat
    a_cook = np.asarray(out["a_cook"])
    ev = {
        "update": int(state.update[0]),
        "env_steps": int(state.update[0]) * ppo.steps_per_update(algo),
        "episodes": int(len(ret)),
        "steps_per_episode": algo.horizon,
        "sparse_return_mean": float(ret.mean()),
        "sparse_return_std": float(ret.std()),
        "sparse_return_seat0_on_cook0": float(ret[a_cook == 0].mean()),
        "sparse_return_seat0_on_cook1": float(ret[a_cook == 1].mean()),
        "events_per_episode": {n: [float(events[0, i]), float(events[1, i])]
                               for i, n in enumerate(env.event_names)},
    }
    write_json(Path(path) / "eval.json", ev)
    rows = RunDir(path).read_metrics()
    plot_ppo_training(rows, Path(path) / "training.png", title=f"{cfg.layout} seed {cfg.seed}")
    write_report(Path(path), cfg, algo, rows, ev)
    return ev


def time_to(rows: list[dict], threshold: float) -> tuple[int, float] | None:
    """(env steps, wall s at the end of that chunk) when the logged return first reaches
    ``threshold`` (per update, as JaxMARL's logged returned_episode_returns)."""
    for r in rows:
        per_update = r["returned_return"]
        for i, x in enumerate(per_update):
            if x >= threshold:
                steps_per_update = r["env_steps"] // r["update"]
                update = r["update"] - len(per_update) + i + 1
                return update * steps_per_update, r["time_s"]
    return None


def write_report(path: Path, cfg: OvercookedTrainConfig, algo: PPOConfig, rows: list[dict],
                 ev: dict) -> None:
    hit = time_to(rows, 150.0)
    last = rows[-1] if rows else {}
    diff = {f.name: getattr(algo, f.name) for f in dataclasses.fields(PPOConfig)
            if getattr(algo, f.name) != getattr(PPOConfig(), f.name)}
    lines = [
        f"# Overcooked self-play PPO — {cfg.layout}, preset `{cfg.preset}`, seed {cfg.seed}",
        "",
        f"- env steps: {last.get('env_steps', 0):,} in {last.get('time_s', 0):.0f} s "
        "(wall clock, compile included)",
        f"- logged sparse return at the end: {np.mean(last.get('returned_return', [0])):.1f} "
        f"per {algo.horizon}-step episode",
        "- first reached 150: " + (f"{hit[0]:,} env steps, {hit[1]:.0f} s" if hit else "never"),
        f"- evaluation ({ev['episodes']} episodes, sampled actions): "
        f"{ev['sparse_return_mean']:.1f} ± {ev['sparse_return_std']:.1f} sparse return "
        f"(seat 0 on cook 0: {ev['sparse_return_seat0_on_cook0']:.1f}, "
        f"on cook 1: {ev['sparse_return_seat0_on_cook1']:.1f})",
        "",
        "![training](training.png)",
        "",
        "## Config",
        "",
        f"PPO fields that differ from the paper's (`PPOConfig()`): `{diff}`" if diff
        else "PPO config: the paper's (`PPOConfig()`).",
        "",
        "## Events per episode in the evaluation (seat 0, seat 1)",
        "",
        "| event | seat 0 | seat 1 |",
        "|---|---|---|",
    ]
    for name, (a, b) in ev["events_per_episode"].items():
        if a or b:
            lines.append(f"| {name} | {a:.1f} | {b:.1f} |")
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
