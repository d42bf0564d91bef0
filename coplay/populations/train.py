"""Train a population of hidden-utility pairs into a population folder.

``train_population(cfg, out)`` trains every pair (biased π_w in seat 0, its best response in
seat 1; :mod:`coplay.populations.hsp`) as ONE jitted PPO program vmapped over members, from a
short Python loop that writes

- ``config.json`` (resolved), ``checkpoint.msgpack`` + ``checkpoint.json`` (atomic, every
  ``checkpoint_every`` chunks and at the end), ``metrics.jsonl`` (one row per chunk, every
  member);
- ``snapshots/update_<U>.msgpack``: the parameters of all members every ``snapshot_every``
  chunks (atomic), from which the mid-skill checkpoints are chosen;

and then (:func:`finish_population`) evaluates every pair, writes each member's final
parameters to ``members/m<i>.msgpack``, picks its mid-skill snapshot (logged return closest to
half the final), and writes ``manifest.json``, ``crossplay.json`` / ``crossplay.png``,
``pairs.gif`` and ``report.md``. A killed run resumes from its last checkpoint and ends with
the parameters of an uninterrupted one (update u of a member uses fold_in(member key, u)).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal

import jax
import numpy as np
from flax import serialization

from coplay.algos import ppo
from coplay.algos.ppo import PPOConfig, PPOState
from coplay.config import ConfigError
from coplay.envs.overcooked import Overcooked, hsp_candidates
from coplay.envs.overcooked.layouts import LayoutError
from coplay.populations.hsp import choose_candidates, population_params
from coplay.runs import RunDir, atomic_write_bytes, read_json, write_json

Preset = Literal["tiny", "default"]
Kind = Literal["hsp", "mep"]


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
    """A population on one layout: hidden-utility pairs trained jointly per pair (hsp), or
    MEP stage 1 (self-play agents with the population-entropy bonus)."""

    kind: Kind = "hsp"
    """hsp: biased policy + best response per member; mep: self-play members rewarded with
    the population-entropy bonus (ppo.population_entropy_coef)."""
    layout: str = "random1"
    """Layout with an HSP weight grid (random0, random0_medium, small_corridor, random1,
    random3, unident_s, *_m)."""
    preset: Preset = "default"
    """Named settings: tiny (seconds, the tests), default (16 pairs on this 2-core CPU)."""
    seed: int = 0
    """Seed of the candidate draw, parameters, environments and evaluation."""
    num_members: int = 16
    """Members to train (hsp: drawn without replacement from the layout's HSP candidates)."""
    candidates: tuple[int, ...] | None = None
    """Indices into hsp_candidates(layout) to train instead of a seeded draw (length must
    equal num_members)."""
    ppo: PPOConfig | None = None
    """PPO hyperparameters (None: :func:`default_ppo` of preset and kind). shaping_factor must
    be None: the per-seat shaping factors (hsp: biased 0, best response 1) live in the
    members' EnvParams."""
    checkpoint_every: int = 10
    """Chunks between checkpoints (and metrics flushes); also after the last chunk."""
    snapshot_every: int = 10
    """Chunks between parameter snapshots (mid-skill candidates); also after the last."""
    eval_envs: int = 32
    """Episodes per pair in the final evaluation (half with each cook assignment)."""
    crossplay_envs: int = 16
    """Episodes per (biased, best response) cell of the cross-play matrix."""
    gif_steps: int = 200
    """Steps of each pair's episode in pairs.gif."""


_TINY_PPO = PPOConfig(num_envs=4, num_steps=16, total_steps=512, updates_per_chunk=2,
                      update_epochs=2, num_minibatches=2, horizon=16, hidden_sizes=(16,),
                      shaping_factor=None, shaping_horizon=512)
# this 2-core CPU: the PPO default (JaxMARL IPPO values, separate policies, lr 5e-4) with
# the shaping of the best response annealed over the whole run (ZSC-Eval's HSP horizon = run)
_DEFAULT_PPO = PPOConfig(total_steps=2_000_000, shaping_factor=None,
                         shaping_horizon=2_000_000)

PPO_PRESETS: dict[str, PPOConfig] = {"tiny": _TINY_PPO, "default": _DEFAULT_PPO}
PRESETS: dict[str, PopulationConfig] = {
    "tiny": PopulationConfig(preset="tiny", num_members=3, checkpoint_every=2,
                             snapshot_every=2, eval_envs=4, crossplay_envs=2, gif_steps=6),
    "default": PopulationConfig(preset="default"),
}


def default_ppo(preset: str, kind: str) -> PPOConfig:
    """The PPO config of a preset; for MEP with the spec's bonus 0.01 and one policy per
    member shared by both seats (MEP trains self-play agents)."""
    algo = PPO_PRESETS[preset]
    if kind == "mep":
        algo = dataclasses.replace(algo, population_entropy_coef=0.01, share_policy=True)
    return algo


def preset_config(preset: str, **changes) -> PopulationConfig:
    """The preset's config with some fields replaced (ConfigError for an unknown preset)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset = {preset!r}: unknown, choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **changes)


def resolve(cfg: PopulationConfig) -> PPOConfig:
    """Validate everything (before compiling) and return the PPO config of the run."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"preset = {cfg.preset!r}: unknown, choose one of {sorted(PRESETS)}")
    if cfg.kind not in ("hsp", "mep"):
        raise ConfigError(f"kind = {cfg.kind!r}: choose hsp or mep")
    algo = cfg.ppo if cfg.ppo is not None else default_ppo(cfg.preset, cfg.kind)
    for f in ("num_members", "checkpoint_every", "snapshot_every", "gif_steps"):
        v = getattr(cfg, f)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{f} = {v!r}: must be an integer >= 1")
    for f in ("eval_envs", "crossplay_envs"):
        v = getattr(cfg, f)
        if not isinstance(v, int) or v < 2 or v % 2:
            raise ConfigError(f"{f} = {v!r}: must be an even integer >= 2")
    try:
        Overcooked(cfg.layout)
        w, _ = hsp_candidates(cfg.layout) if cfg.kind == "hsp" else (None, None)
    except (LayoutError, FileNotFoundError, OSError, KeyError) as e:
        raise ConfigError(f"layout = {cfg.layout!r}: {e}") from None
    if cfg.kind == "mep":
        if cfg.candidates is not None:
            raise ConfigError("candidates: only for kind = hsp")
        if algo.population_entropy_coef <= 0:
            raise ConfigError("ppo.population_entropy_coef = "
                              f"{algo.population_entropy_coef!r}: MEP needs a bonus > 0")
        if cfg.num_members < 2:
            raise ConfigError(f"num_members = {cfg.num_members}: MEP needs >= 2 members")
    elif cfg.candidates is not None:
        if len(cfg.candidates) != cfg.num_members:
            raise ConfigError(f"candidates = {cfg.candidates!r}: needs num_members = "
                              f"{cfg.num_members} indices")
        if len(set(cfg.candidates)) != len(cfg.candidates) or \
                not all(0 <= c < len(w) for c in cfg.candidates):
            raise ConfigError(f"candidates = {cfg.candidates!r}: distinct indices in "
                              f"[0, {len(w)}) needed")
    elif cfg.num_members > len(w):
        raise ConfigError(f"num_members = {cfg.num_members}: {cfg.layout} has only {len(w)} "
                          "HSP candidates")
    if algo.shaping_factor is not None:
        raise ConfigError(f"ppo.shaping_factor = {algo.shaping_factor!r}: must be None "
                          "(per-seat factors live in the members' EnvParams)")
    if algo.share_policy and cfg.kind == "hsp":
        raise ConfigError("ppo.share_policy = True: a biased policy and its best response need "
                          "separate parameters")
    ppo.validate(algo)
    return algo


def ppo_config_from_json(d: dict) -> PPOConfig:
    """Rebuild a PPOConfig from its JSON form (lists back to tuples)."""
    return PPOConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def member_weights(cfg: PopulationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate indices (M,), event weights (M, E), sparse weights (M,)); MEP: index -1,
    no event weights, sparse 1."""
    if cfg.kind == "mep":
        n_events = Overcooked(cfg.layout).num_events
        return (np.full(cfg.num_members, -1), np.zeros((cfg.num_members, n_events), np.float32),
                np.ones(cfg.num_members, np.float32))
    idx = choose_candidates(cfg.layout, cfg.num_members, cfg.seed, cfg.candidates)
    w, s = hsp_candidates(cfg.layout)
    return idx, w[idx], s[idx]


def _run_config(cfg: PopulationConfig, algo: PPOConfig, idx: np.ndarray) -> dict:
    return {"experiment": f"{cfg.kind}-population", **dataclasses.asdict(cfg), "resolved": algo,
            "candidate_indices": [int(i) for i in idx]}


def chunk_row(metrics: ppo.UpdateMetrics, update: int, algo: PPOConfig, elapsed: float) -> dict:
    """One JSON row per chunk: per member (first axis) episode returns, rewards per seat."""
    m = jax.tree.map(np.asarray, metrics)  # (M, updates, ...)
    eps = m.episodes.sum(1)  # (M,)
    ret = m.episode_return_sum.sum(1) / np.maximum(eps, 1)
    rew = m.episode_reward_sum.sum(1) / np.maximum(eps, 1)[:, None]
    ev = m.episode_events_sum.sum(1) / np.maximum(eps, 1)[:, None, None]  # (M, 2, E)
    return {
        "update": update,
        "env_steps": update * ppo.steps_per_update(algo),
        "time_s": round(elapsed, 3),
        "episodes": [int(x) for x in eps],
        "episode_return": [round(float(x), 3) if e else None for x, e in zip(ret, eps,
                                                                             strict=True)],
        "returned_return": [round(float(x), 3) for x in m.returned_return.mean(1)],
        "episode_reward": [[round(float(a), 3) for a in r] for r in rew],
        "events_per_episode": np.round(ev, 3).tolist(),
        "entropy": np.round(m.entropy.mean(1), 4).tolist(),
        "shaping_factor": np.round(np.reshape(m.shaping_factor[0, -1], -1), 4).tolist(),
        "entropy_coef": round(float(m.entropy_coef[0, -1]), 5),
    }


def mep_params(env: Overcooked, num_members: int, horizon: int):
    """MEP members: both seats on the sparse reward plus the annealed standard shaping."""
    p = env.default_params(horizon=horizon, shaping_factor=np.ones(2, np.float32))
    return ppo.stack_params([p] * num_members)


def snapshot_path(path: Path, update: int) -> Path:
    return Path(path) / "snapshots" / f"update_{update:07d}.msgpack"


def drive_chunks(run: RunDir, state: PPOState, has_ckpt: bool, algo: PPOConfig, step,
                 t0: float, label: str, checkpoint_every: int, progress: bool = True,
                 stop_after_chunks: int | None = None) -> tuple[PPOState, bool]:
    """The chunk loop of a run folder (populations, MEP stage 2). Reloads the checkpoint into
    ``state`` (a template) when ``has_ckpt``, then for every remaining chunk calls
    ``step(state, chunk, last, elapsed) -> (state, metrics row, status text)`` (``elapsed()``:
    seconds since ``t0`` plus the time of the runs before a resume) and appends the rows and
    checkpoints every ``checkpoint_every`` chunks and after the last. Returns (state,
    finished); ``stop_after_chunks`` ends the loop early as a kill would (tests)."""
    if has_ckpt:
        state, meta = run.load_checkpoint(state)
        run.truncate_metrics(meta["metrics_lines"])
    else:
        run.truncate_metrics(0)
    num_chunks = ppo.num_updates(algo) // algo.updates_per_chunk
    done = int(state.update[0]) // algo.updates_per_chunk
    rows = run.read_metrics()
    elapsed0 = rows[-1]["time_s"] if rows else 0.0

    from coplay.experiments.progress import progress_bar

    with progress_bar(label, total=num_chunks, completed=done, enabled=progress) as bar:
        pending: list[dict] = []
        for chunk in range(done, num_chunks):
            if stop_after_chunks is not None and chunk - done >= stop_after_chunks:
                return state, False
            last = chunk + 1 == num_chunks
            state, row, status = step(state, chunk, last,
                                      lambda: elapsed0 + time.perf_counter() - t0)
            pending.append(row)
            if (chunk + 1) % checkpoint_every == 0 or last:
                run.append_metrics(pending)
                pending = []
                run.save_checkpoint(state, {"update": int(state.update[0]),
                                            "metrics_lines": run.metrics_line_count()})
            bar.update(status)
    return state, True


def train_population(cfg: PopulationConfig, out: str | Path, resume: bool = False,
                     stop_after_chunks: int | None = None, progress: bool = True,
                     finish: bool = True) -> PPOState:
    """Train (or resume) the population in ``out``; returns the final train state.

    ``stop_after_chunks`` ends the loop early as a kill would (tests of resumption)."""
    algo = resolve(cfg)
    env = Overcooked(cfg.layout)
    idx, w, s = member_weights(cfg)
    run = RunDir(out)
    has_ckpt = run.start(_run_config(cfg, algo, idx), resume)
    t0 = time.perf_counter()
    members = (mep_params(env, cfg.num_members, algo.horizon) if cfg.kind == "mep"
               else population_params(env, w, s, algo.horizon))
    trainer = ppo.make_train(algo, env, members)

    def step(state: PPOState, chunk: int, last: bool, elapsed):
        state, metrics = trainer.train_chunk(state)
        update = int(state.update[0])
        row = chunk_row(metrics, update, algo, elapsed())
        if (chunk + 1) % cfg.snapshot_every == 0 or last:
            atomic_write_bytes(snapshot_path(run.path, update),
                               serialization.to_bytes(state.params))
        r = np.array([x for x in row["episode_return"] if x is not None] or [0.0])
        return state, row, f"return mean {r.mean():.1f}  >=40: {(r >= 40).sum()}/{len(r)}"

    state, finished = drive_chunks(
        run, trainer.init(jax.random.PRNGKey(cfg.seed)), has_ckpt, algo, step, t0,
        label=f"{cfg.kind} population {Path(cfg.layout).stem} x{cfg.num_members}",
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        stop_after_chunks=stop_after_chunks)
    if not finished:
        return state
    if finish:
        from coplay.populations.finish import finish_population

        finish_population(run.path, state=state, progress=progress)
    return state


def load_run(path: str | Path) -> tuple[PopulationConfig, PPOConfig, dict]:
    """(population config, PPO config, raw config.json) of a population folder."""
    raw = read_json(Path(path) / RunDir.CONFIG)
    algo = ppo_config_from_json(raw["resolved"])
    fields = {f.name for f in dataclasses.fields(PopulationConfig)}
    kw = {k: v for k, v in raw.items() if k in fields and k != "ppo"}
    if kw.get("candidates") is not None:
        kw["candidates"] = tuple(kw["candidates"])
    stored = raw.get("ppo")  # None when the run used its preset's PPO config
    ppo_cfg = None if stored is None else ppo_config_from_json(stored)
    return PopulationConfig(**kw, ppo=ppo_cfg), algo, raw


def write_manifest(path: str | Path, manifest: dict) -> None:
    write_json(Path(path) / "manifest.json", manifest)
