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
from pathlib import Path
from typing import Literal

import jax
import numpy as np
from flax import serialization

from coplay.algos import ppo
from coplay.algos.ppo_config import PPOConfig
from coplay.algos.ppo_state import PPOState
from coplay.config import ConfigError, config_from_json
from coplay.envs.overcooked import Overcooked, hsp_candidates
from coplay.envs.overcooked.layouts import LayoutError
from coplay.eval.crossplay import (
    contrasting_pair,
    crossplay_matrix,
    evaluate_pairs,
    write_pairs_gif,
)
from coplay.eval.plots import plot_crossplay
from coplay.experiments.overcooked.ppo import ppo_chunk_counts
from coplay.experiments.populations.presets import PPO_PRESETS
from coplay.populations.hsp import (
    BIASED,
    BR,
    choose_candidates,
    describe_weights,
    population_params,
)
from coplay.populations.members import (
    load_params,
    network_of,
    snapshot_path,
    take,
    write_manifest,
)
from coplay.populations.mep import mep_params
from coplay.populations.selection import diversity_score, event_features, mid_skill
from coplay.runs import (
    RunDir,
    RunError,
    atomic_write_bytes,
    atomic_write_text,
    drive_chunks,
    read_json,
    write_json,
)

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
        run, trainer.init(jax.random.PRNGKey(cfg.seed)), has_ckpt, step=step,
        **ppo_chunk_counts(algo),
        label=f"{cfg.kind} population {Path(cfg.layout).stem} x{cfg.num_members}",
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        stop_after_chunks=stop_after_chunks)
    if not finished:
        return state
    if finish:
        finish_population(run.path, state=state, progress=progress)
    return state


def load_run(path: str | Path, raw: dict | None = None
             ) -> tuple[PopulationConfig, PPOConfig, dict]:
    """(population config, PPO config, raw config.json) of a population folder (``raw``:
    config.json when the caller has read it already)."""
    raw = read_json(Path(path) / RunDir.CONFIG) if raw is None else raw
    fields = {f.name for f in dataclasses.fields(PopulationConfig)}
    try:
        algo = config_from_json(PPOConfig, raw["resolved"], f"{path}/config.json resolved")
        cfg = config_from_json(PopulationConfig, {k: v for k, v in raw.items() if k in fields},
                               f"{path}/config.json")
    except (ConfigError, KeyError, TypeError) as e:
        raise RunError(f"{path} is not a population folder of this version of coplay: "
                       f"{e}") from None
    return cfg, algo, raw


BR_RETURN_TARGET = 40.0  # issue 5: best-response sparse return per 400 steps


def evaluate_snapshot(path: str | Path, update: int, episodes: int | None = None,
                      seed: int | None = None) -> dict:
    """Evaluate every pair of one parameter snapshot as the final evaluation does (biased
    policy with its own best response, team sparse reward, sampled actions): ``returns``
    (M,) mean sparse return per episode, ``events`` (M, 2, E) mean counts per seat."""
    path = Path(path)
    cfg, algo, _ = load_run(path)
    env = Overcooked(cfg.layout)
    params = load_params(snapshot_path(path, update))
    seed = cfg.seed if seed is None else seed
    ev = evaluate_pairs(env, algo, network_of(algo, env), params,
                        jax.random.PRNGKey(seed + 10_000), episodes or cfg.eval_envs)
    return {"update": update, "returns": ev["sparse_return"].mean(1),
            "events": ev["events"].mean(1)}


def _snapshots(path: Path) -> list[int]:
    return sorted(int(f.stem.split("_")[1]) for f in (path / "snapshots").glob("update_*.msgpack"))


def _member_entry(path: Path, env: Overcooked, m: int, params, idx, w, s, returns, mean_events,
                  features, logged: dict, snaps: list[int], final_logged: list) -> dict:
    """Member m's manifest entry (its parameters written to members/mNN.msgpack);
    ``features``: (pooled (M, 2E), by cook assignment (M, 4E))."""
    features, by_order = features
    f = Path("members") / f"m{m:02d}.msgpack"
    atomic_write_bytes(path / f, serialization.to_bytes(take(params, m)))
    snap_returns = [logged[u][m] if logged[u][m] is not None else 0.0 for u in snaps]
    final = final_logged[m] if final_logged[m] is not None else 0.0
    entry = {
        "member": m,
        "candidate": int(idx[m]),
        "weights": describe_weights(env.event_names, w[m], float(s[m])),
        "event_weights": [float(x) for x in w[m]],
        "sparse_weight": float(s[m]),
        "checkpoint": str(f),
        "return": float(returns[m].mean()),
        "return_std": float(returns[m].std()),
        "training_return": final,
        "events_biased": {n: float(mean_events[m, BIASED, i])
                          for i, n in enumerate(env.event_names)},
        "events_br": {n: float(mean_events[m, BR, i]) for i, n in enumerate(env.event_names)},
        "features": [round(float(x), 6) for x in features[m]],
        "features_by_order": [round(float(x), 6) for x in by_order[m]],
        "snapshots": [{"update": u, "file": str(snapshot_path(Path("."), u)),
                       "training_return": r} for u, r in zip(snaps, snap_returns,
                                                              strict=True)],
    }
    if snaps:
        k = mid_skill(np.array(snap_returns), final)
        entry["mid_skill"] = {"update": snaps[k], "file": entry["snapshots"][k]["file"],
                              "training_return": snap_returns[k], "final_training_return":
                              final}
    return entry


def _crossplay(path: Path, cfg: PopulationConfig, env: Overcooked, algo: PPOConfig, net,
               params) -> np.ndarray:
    """Biased policy of member i with the best response of member j: crossplay.json / .png."""
    xp = crossplay_matrix(env, algo, net, params, jax.random.PRNGKey(cfg.seed + 20_000),
                          cfg.crossplay_envs)
    write_json(path / "crossplay.json", {
        "rows": "biased policy of member i", "cols": "best response of member j",
        "episodes_per_cell": cfg.crossplay_envs, "steps_per_episode": algo.horizon,
        "sparse_return": np.round(xp, 3).tolist()})
    plot_crossplay(xp, path / "crossplay.png",
                   title=f"{cfg.layout}: cross-play sparse return ({cfg.crossplay_envs} episodes)")
    return xp


def finish_population(path: str | Path, state: PPOState | None = None,
                      progress: bool = True) -> dict:
    """Evaluate a trained population folder and write manifest, cross-play, GIF, report."""
    path = Path(path)
    cfg, algo, raw = load_run(path)
    env = Overcooked(cfg.layout)
    net = network_of(algo, env)
    run = RunDir(path)
    if state is None:
        params = load_params(snapshot_path(path, _snapshots(path)[-1]))
    else:
        params = jax.tree.map(np.asarray, state.params)
    rows = run.read_metrics()
    idx, w, s = member_weights(cfg)
    M = len(idx)
    say = print if progress else (lambda *a, **k: None)

    # --- every pair on the sparse reward: returns and event counts of both seats
    key = jax.random.PRNGKey(cfg.seed + 10_000)
    ev = evaluate_pairs(env, algo, net, params, key, cfg.eval_envs)
    returns, events = ev["sparse_return"], ev["events"]  # (M, N), (M, N, 2, E)
    mean_events = events.mean(1)  # (M, 2, E)
    features = event_features(mean_events)
    # the CooT release's selection features: both seats' counts in each cook assignment
    # (play(): the first half of the episodes with the biased policy steering cook 0),
    # concatenated -> (M, 4E)
    half = events.shape[1] // 2
    by_order = event_features(np.concatenate([events[:, :half].mean(1),
                                              events[:, half:].mean(1)], axis=1))

    # --- snapshots: logged training return at each, mid-skill = closest to half the final
    logged = {r["update"]: r["episode_return"] for r in rows}
    snaps = [u for u in _snapshots(path) if u in logged]
    final_logged = rows[-1]["episode_return"] if rows else [None] * M

    members = [_member_entry(path, env, m, params, idx, w, s, returns, mean_events,
                             (features, by_order), logged, snaps, final_logged)
               for m in range(M)]

    # --- cross-play: biased policy of member i with the best response of member j
    say("cross-play ...")
    xp = _crossplay(path, cfg, env, algo, net, params)

    # --- GIF of the two most different pairs (L1 distance of their event features)
    ret_mean = returns.mean(1)
    a, b = contrasting_pair(features, ret_mean)
    say("pairs.gif ...")
    write_pairs_gif(env, algo, net, params, (a, b), path / "pairs.gif", cfg.gif_steps,
                    jax.random.PRNGKey(cfg.seed + 30_000))

    ok = ret_mean >= BR_RETURN_TARGET
    summary = {
        "members_with_br_return_ge_40": int(ok.sum()),
        "fraction_with_br_return_ge_40": float(ok.mean()),
        "diversity_score": diversity_score(features),
        "crossplay_diagonal_mean": float(np.diag(xp).mean()),
        "crossplay_off_diagonal_mean": float((xp.sum() - np.trace(xp)) / max(M * (M - 1), 1)),
        "gif_members": [int(a), int(b)],
        "train_time_s": rows[-1]["time_s"] if rows else None,
        "env_steps_per_member": rows[-1]["env_steps"] if rows else 0,
    }
    manifest = {
        "kind": f"{cfg.kind}-population",
        "layout": cfg.layout,
        "num_members": M,
        "seats": ({"0": "biased policy pi_w (hidden utility r_w)",
                   "1": "best response (sparse + annealed shaping)"} if cfg.kind == "hsp" else
                  {"0": "MEP agent (self-play)", "1": "the same agent"}),
        "event_names": list(env.event_names),
        "feature_names": [f"biased:{n}" for n in env.event_names]
                         + [f"br:{n}" for n in env.event_names],
        "eval_episodes": cfg.eval_envs,
        "steps_per_episode": algo.horizon,
        "summary": summary,
        "members": members,
    }
    write_manifest(path, manifest)
    write_report(path, cfg, manifest, xp)
    return manifest


def write_report(path: Path, cfg, manifest: dict, xp: np.ndarray) -> None:
    s = manifest["summary"]
    kind = "Hidden-utility" if cfg.kind == "hsp" else "MEP (stage 1)"
    lines = [
        f"# {kind} population — {cfg.layout}, preset `{cfg.preset}`, seed {cfg.seed}",
        "",
        f"- {manifest['num_members']} pairs, {s['env_steps_per_member']:,} env steps each, "
        f"trained in {s['train_time_s'] or 0:.0f} s (wall clock, compile included)",
        f"- best-response sparse return >= {BR_RETURN_TARGET:g} per "
        f"{manifest['steps_per_episode']} steps: {s['members_with_br_return_ge_40']} of "
        f"{manifest['num_members']} pairs ({100 * s['fraction_with_br_return_ge_40']:.0f} %), "
        f"{manifest['eval_episodes']} evaluation episodes each, sampled actions",
        f"- diversity score (mean pairwise L1 of normalised event features): "
        f"{s['diversity_score']:.2f}",
        f"- cross-play: own best response {s['crossplay_diagonal_mean']:.1f}, "
        f"other members' best responses {s['crossplay_off_diagonal_mean']:.1f}",
        "",
        "![cross-play](crossplay.png)",
        "",
        f"![pairs](pairs.gif) members {s['gif_members'][0]} and {s['gif_members'][1]}",
        "",
        "| member | candidate | hidden utility (non-zero, sparse) | return | mid-skill update |",
        "|---|---|---|---|---|",
    ]
    fixed = {"USEFUL_DISH_PICKUP", "SOUP_PICKUP", "PLACEMENT_IN_POT"}
    for e in manifest["members"]:
        wt = ", ".join(f"{k} {v:g}" for k, v in e["weights"].items() if k not in fixed)
        mid = e.get("mid_skill", {}).get("update", "-")
        lines.append(f"| {e['member']} | {e['candidate']} | {wt} | "
                     f"{e['return']:.1f} ± {e['return_std']:.1f} | {mid} |")
    sel = path / "selection.json"
    if sel.exists():
        d = read_json(sel)
        lines += ["", f"Selection: evaluation partners {d['eval']}, training pool {d['train']}."]
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")
