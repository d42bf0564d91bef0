"""A study's database -> files: trajectories, answers, report.

``export_study``: one shard per agent (:class:`~coplay.data.shards.ShardStore`, the layout of
the CooT dataset shards, the human as the ego): ``obs`` (N, T, H, W, C) uint8 the human
cook's observations, ``action`` (N, T) the human's actions, ``partner_action`` the agent's,
``reward`` (N, T) team sparse rewards, ``ret`` (N,), ``ego_cook`` (N,) the human's seat, plus
``participant`` and ``episode`` (N,) (an IPD study: no ``obs``; ``reward`` the human's payoffs,
``partner_reward`` the agent's); ``answers.csv`` (one row per answer field) and
``manifest.json``. Only finished episodes are exported.

``write_report``: report.md with each agent's mean return +- s.e. (over participants), the
pairwise preference matrix (share of participants rating the row agent above the column
agent, mean of the three ratings; ties count half) and the ratings table with mean rank.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

import jax
import numpy as np

from coplay.data.shards import ShardStore
from coplay.envs.overcooked import Overcooked
from coplay.runs import atomic_write_text, write_json
from coplay.web.protocol import RATING_FIELDS
from coplay.web.runtime import state_from_dict
from coplay.web.store import Store
from coplay.web.study import StudyConfig


def _study(store: Store) -> StudyConfig:
    raw = store.get_meta("study")
    if raw is None:
        raise ValueError(f"{store.path}: not a study database (no study recorded)")
    return StudyConfig.from_json(raw)


def export_study(db: str | Path, out: Path) -> list[Path]:
    store = Store(db)
    cfg = _study(store)
    ipd = cfg.game == "ipd"
    if not ipd:
        env = Overcooked(cfg.layout)
        params = env.default_params(horizon=cfg.episode_length)
        get_obs = jax.jit(jax.vmap(lambda s: env.get_obs(s, params)))
    out.mkdir(parents=True, exist_ok=True)
    shards, written = ShardStore(out / "trajectories"), []
    by_agent = defaultdict(list)
    for e in store.episodes("done"):
        by_agent[e["agent"]].append(e)
    for agent, episodes in sorted(by_agent.items()):
        rows = defaultdict(list)
        for e in episodes:
            steps = store.steps(e["id"])
            if len(steps) != cfg.episode_length:
                continue
            if ipd:  # payoffs of both players instead of observations
                rows["partner_reward"].append([s["shaped_agent"] for s in steps])
            else:
                states = [state_from_dict(json.loads(s["state"])) for s in steps]
                stacked = jax.tree.map(lambda *x: np.stack(x), *states)
                obs = np.asarray(get_obs(stacked))[:, e["human_seat"]]  # (T, H, W, C)
                rows["obs"].append(np.rint(obs).astype(np.uint8))
            rows["action"].append([s["human_action"] for s in steps])
            rows["partner_action"].append([s["agent_action"] for s in steps])
            rows["reward"].append([s["reward"] for s in steps])
            rows["ret"].append(sum(s["reward"] for s in steps))
            rows["ego_cook"].append(e["human_seat"])
            rows["participant"].append(e["participant_id"])
            rows["episode"].append(e["episode"])
        if rows:
            dtypes = {"partner_reward": np.float32, "action": np.int32,
                      "partner_action": np.int32, "reward": np.float32, "ret": np.float32,
                      "ego_cook": np.int8, "participant": np.int64, "episode": np.int32}
            written.append(shards.write(agent, {k: np.asarray(v, dtypes.get(k))
                                                for k, v in rows.items()}))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["participant", "external_id", "kind", "slot", "agent", "question", "answer"])
    ext = {p["id"]: p["external_id"] or "" for p in store.participants()}
    for a in store.answers():
        for q, v in json.loads(a["data"]).items():
            w.writerow([a["participant_id"], ext.get(a["participant_id"], ""), a["kind"],
                        "" if a["slot"] is None else a["slot"], a["agent"] or "", q, v])
    atomic_write_text(out / "answers.csv", buf.getvalue())
    write_json(out / "manifest.json", {"study": json.loads(cfg.to_json()),
                                       "shards": [p.name for p in written]})
    return [*written, out / "answers.csv", out / "manifest.json"]


def _mean_se(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    m = float(np.mean(xs))
    if len(xs) < 2:
        return f"{m:.2f} (n=1)"
    return f"{m:.2f} ± {float(np.std(xs, ddof=1)) / math.sqrt(len(xs)):.2f} (n={len(xs)})"


def write_report(db: str | Path, out: Path) -> Path:
    store = Store(db)
    cfg = _study(store)
    names = [a.name for a in cfg.agents]
    returns: dict[str, dict[int, list[float]]] = {n: defaultdict(list) for n in names}
    for e in store.episodes("done"):
        if e["agent"] in returns:
            returns[e["agent"]][e["participant_id"]].append(e["score"] or 0.0)
    ratings: dict[int, dict[str, dict]] = defaultdict(dict)
    for a in store.answers():
        if a["kind"] == "rating" and a["agent"] in returns:
            ratings[a["participant_id"]][a["agent"]] = json.loads(a["data"])
    lines = [f"# Study {cfg.name}: {cfg.layout}, {cfg.episodes_per_agent} episodes x "
             f"{cfg.episode_length} steps per agent", "",
             f"Participants: {len(store.participants())}, with ratings: {len(ratings)}.", "",
             "## Return per agent (mean over participants of their mean episode return ± s.e.)",
             "", "| agent | return | episodes |", "|---|---|---|"]
    for n in names:
        per = [float(np.mean(v)) for v in returns[n].values()]
        lines.append(f"| {n} | {_mean_se(per)} | {sum(map(len, returns[n].values()))} |")
    score = {p: {n: float(np.mean([r[f] for f in RATING_FIELDS])) for n, r in rs.items()}
             for p, rs in ratings.items()}
    lines += ["", "## Pairwise preference (share of participants rating row above column; "
              "ties ½)", "", "| | " + " | ".join(names) + " |",
              "|---" * (len(names) + 1) + "|"]
    for a in names:
        cells = []
        for b in names:
            both = [s for s in score.values() if a in s and b in s]
            if a == b or not both:
                cells.append("–")
                continue
            wins = sum(1.0 if s[a] > s[b] else 0.5 if s[a] == s[b] else 0.0 for s in both)
            cells.append(f"{wins / len(both):.2f} (n={len(both)})")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    ranks: dict[str, list[float]] = defaultdict(list)
    for s in score.values():
        for n in s:  # rank 1 = best; ties share the mean rank
            above = sum(v > s[n] for v in s.values())
            equal = sum(v == s[n] for v in s.values())
            ranks[n].append(above + (equal + 1) / 2)
    lines += ["", "## Ratings (1-5, mean ± s.e.) and mean rank", "",
              "| agent | " + " | ".join(RATING_FIELDS) + " | mean rank |",
              "|---" * (len(RATING_FIELDS) + 2) + "|"]
    for n in names:
        cols = [_mean_se([r[n][f] for r in ratings.values() if n in r]) for f in RATING_FIELDS]
        lines.append(f"| {n} | " + " | ".join(cols) + f" | {_mean_se(ranks[n])} |")
    comments = [(n, r[n]["comment"]) for r in ratings.values() for n in names
                if n in r and r[n].get("comment")]
    if comments:
        lines += ["", "## Comments", ""] + [f"- **{n}**: {c!r}" for n, c in comments]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"
