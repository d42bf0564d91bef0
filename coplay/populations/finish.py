"""After training: evaluate every pair, choose mid-skill snapshots, write the manifest,
cross-play matrix, heatmap, GIF and report of a population folder."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from flax import serialization

from coplay.agents.actor_critic import make_network
from coplay.algos.ppo import PPOState
from coplay.envs.overcooked import Overcooked
from coplay.populations.crossplay import (
    contrasting_pair,
    crossplay_matrix,
    evaluate_pairs,
    plot_crossplay,
    take,
    write_pairs_gif,
)
from coplay.populations.hsp import BIASED, BR, describe_weights
from coplay.populations.selection import diversity_score, event_features, mid_skill
from coplay.populations.train import load_run, member_weights, snapshot_path, write_manifest
from coplay.runs import RunDir, RunError, atomic_write_bytes, read_json, write_json

BR_RETURN_TARGET = 40.0  # issue 5: best-response sparse return per 400 steps


def network_of(algo, env: Overcooked):
    return make_network(algo.network, algo.hidden_sizes, algo.activation, algo.cnn_filters,
                        env.num_actions)


def load_params(file: str | Path) -> dict:
    """Parameters stored with flax.serialization (no template needed)."""
    try:
        return serialization.msgpack_restore(Path(file).read_bytes())
    except FileNotFoundError:
        raise RunError(f"{file} does not exist") from None


def member_policies(path: str | Path, member: int, which: str = "final") -> tuple[dict, dict]:
    """(biased params, best-response params) of one member: ``which`` = final or mid."""
    man = read_json(Path(path) / "manifest.json")
    entry = man["members"][member]
    if which == "final":
        p = load_params(Path(path) / entry["checkpoint"])
    elif which == "mid":
        p = take(load_params(Path(path) / entry["mid_skill"]["file"]), member)
    else:
        raise ValueError(f"which = {which!r}: final or mid")
    return take(p, BIASED), take(p, min(BR, len(jax.tree.leaves(p)[0]) - 1))


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

    # --- snapshots: logged training return at each, mid-skill = closest to half the final
    logged = {r["update"]: r["episode_return"] for r in rows}
    snaps = [u for u in _snapshots(path) if u in logged]
    final_logged = rows[-1]["episode_return"] if rows else [None] * M

    members = []
    for m in range(M):
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
            "snapshots": [{"update": u, "file": str(snapshot_path(Path("."), u)),
                           "training_return": r} for u, r in zip(snaps, snap_returns,
                                                                  strict=True)],
        }
        if snaps:
            k = mid_skill(np.array(snap_returns), final)
            entry["mid_skill"] = {"update": snaps[k], "file": entry["snapshots"][k]["file"],
                                  "training_return": snap_returns[k], "final_training_return":
                                  final}
        members.append(entry)

    # --- cross-play: biased policy of member i with the best response of member j
    say("cross-play ...")
    xp = crossplay_matrix(env, algo, net, params, jax.random.PRNGKey(cfg.seed + 20_000),
                          cfg.crossplay_envs)
    write_json(path / "crossplay.json", {
        "rows": "biased policy of member i", "cols": "best response of member j",
        "episodes_per_cell": cfg.crossplay_envs, "steps_per_episode": algo.horizon,
        "sparse_return": np.round(xp, 3).tolist()})
    plot_crossplay(xp, path / "crossplay.png",
                   title=f"{cfg.layout}: cross-play sparse return ({cfg.crossplay_envs} episodes)")

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
    (path / "report.md").write_text("\n".join(lines) + "\n")
