"""DAgger for the Coordination Transformer (not in the paper): fine-tune a trained CooT on its
own play with the training partners, each state labelled by the pair's best response.

Why: a CooT trained on best responses' rollouts alone fails closed-loop (docs/notebook,
2026-12-04 and 2026-12-06): at test time its context fills with its *own* episodes, and its
own errors take the kitchen to states no best response visited, so it copies its mistakes
and falls behind BC. DAgger (Ross et al., 2011) removes that covariate shift: in each round
the current CooT plays every training pair's partner (both seats, ``repeats`` games of
``episodes`` consecutive episodes, its context carried over, exactly as at evaluation); every
state it met is labelled with the action of that pair's best response there; these episodes
join the dataset (context tokens = the CooT's own actions, query labels = the best
response's), and the CooT is fine-tuned on the aggregate from its previous parameters. No
evaluation partner is ever played: rounds use the training pool only.

The run folder ``out``:

- ``config.json`` (the :class:`DaggerConfig` and the base dataset);
- ``data-rN/``: the dataset of round N — the base dataset's shards and those of rounds < N
  (hard links, so the base is never modified), plus round N's relabelled shards
  (``rN-pairIII.npz``: observations, the CooT's actions, ``label`` = the best response's
  actions, returns, cooks), listed per pair as ``extra_shards`` in its manifest;
  :func:`coplay.experiments.coot.data.load_dataset` reads them with ``Episodes.label`` set,
  and BC never learns from them;
- ``round-N/``: an ordinary CooT run (``coplay coot train`` with ``init_from`` the previous
  round's model, a fresh optimiser and schedule), so ``round-<last>`` is the result — an
  agent for ``coplay coot eval`` and ``coplay zoo export`` like any CooT run;
- ``history.json`` (per round: the CooT's mean return with the training partners, its
  agreement with the best responses' labels, by episode of the game), ``dagger.png`` and
  ``report.md``.

Every step is resumable: shards are written atomically one pair at a time, rounds' trainings
resume from their checkpoints, and a finished round is never redone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from coplay import zoo
from coplay.agents.base import Agent
from coplay.algos.coot import CootConfig
from coplay.config import checker, config_from_json, need_positive_ints
from coplay.data.shards import ShardStore
from coplay.envs.overcooked import Overcooked
from coplay.eval.adaptation_plots import plot_dagger_rounds
from coplay.eval.in_context import play_episodes
from coplay.experiments.coot.data import MANIFEST, load_dataset, pair_from_json
from coplay.experiments.coot.train import CootRunConfig, load_coot_config, train_coot
from coplay.experiments.refs import resolve
from coplay.experiments.run_agents import MODEL
from coplay.runs import (
    RunDir,
    RunError,
    atomic_write_text,
    progress_bar,
    read_json,
    to_jsonable,
    write_json,
)

HISTORY = "history.json"


@dataclasses.dataclass(frozen=True)
class DaggerConfig:
    """DAgger rounds on top of a trained CooT (not in the paper; the paper trains once on the
    best responses' rollouts)."""

    start: str = "zoo:random1/coot-s1"
    """The CooT to start from: a finished `coplay coot train` folder or zoo:<name>. Its
    training config (model, context, augmentations) is kept for every round."""
    rounds: int = 4
    """Rounds of play, relabel, fine-tune."""
    repeats: int = 2
    """Games per training pair and seat in each round (each from an empty context)."""
    episodes: int = 6
    """Consecutive episodes per game, the context carried over (as at evaluation)."""
    label: Literal["sample", "argmax"] = "sample"
    """The best response's label at a state: a sampled action (as the dataset's own labels,
    which are the best responses' sampled actions) or its most likely one."""
    epochs_per_round: int = 3
    """Fine-tuning epochs per round (early stopping keeps the best validation epoch)."""
    learning_rate: float = 3e-4
    """Peak learning rate of each round's fine-tuning (warm-up, cosine decay)."""
    seed: int = 1
    """Seed of the rollouts, labels, split and fine-tuning (the split should be the start's:
    its held-out pair stays held out)."""
    val_pairs: int = 1
    """Training pairs held out for the validation loss (as the start's run)."""

    def validate(self) -> DaggerConfig:
        need = checker(self, "dagger")
        need_positive_ints(self, "dagger", ("rounds", "repeats", "episodes",
                                            "epochs_per_round", "val_pairs"))
        need(self.learning_rate > 0, "learning_rate", "must be > 0")
        need(self.label in ("sample", "argmax"), "label", "choose sample or argmax")
        need(bool(self.start), "start", "name the CooT to start from")
        return self


@dataclasses.dataclass(frozen=True)
class RelabelConfig:
    """Not in the paper: contexts played by someone other than the best response, with the
    best response's labels. Another agent (BC, a CooT, any reference) plays every training
    pair's partner; its states are labelled by the pair's best response and its games join
    a copy of the dataset (context tokens = the player's own actions, query labels = the
    best response's) — one DAgger round without the fine-tuning, from a cheap player, so
    that a CooT trained from scratch has seen contexts like its own first episodes."""

    player: str = ""
    """The agent that plays (run folder, zoo:<name>, any agent reference)."""
    repeats: int = 4
    """Games per training pair and seat."""
    episodes: int = 6
    """Consecutive episodes per game (a memory / context carried over)."""
    label: Literal["sample", "argmax"] = "sample"
    """The best response's sampled action (as the dataset's labels) or its most likely one."""
    seed: int = 0
    """Seed of the games and labels."""
    tag: str = "play"
    """Name of the added shards (``<tag>-pairIII``); a second relabelling of the same
    dataset needs another tag."""

    def validate(self) -> RelabelConfig:
        need = checker(self, "relabel")
        need_positive_ints(self, "relabel", ("repeats", "episodes"))
        need(self.label in ("sample", "argmax"), "label", "choose sample or argmax")
        need(bool(self.player), "player", "name the agent that plays")
        need(bool(self.tag) and self.tag.replace("-", "").replace("_", "").isalnum()
             and not (self.tag[0] == "r" and self.tag[1:].isdigit()), "tag",
             "letters, digits, - and _ only, and not rN (DAgger's rounds)")
        return self


def relabel_dataset(cfg: RelabelConfig, dataset: str | Path, out: str | Path,
                    progress: bool = True) -> Path:
    """``out``: a copy of ``dataset`` (hard links) plus ``cfg.player``'s relabelled games with
    every pair; resumable (rerun with the same ``out``). Writes ``relabel-<tag>.json`` (per
    pair: the player's return and agreement with the best response)."""
    cfg.validate()
    base, out = Path(dataset), Path(out)
    load_dataset(base)  # a finished dataset, or an error naming what is missing
    player = resolve(cfg.player)
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 2000)
    rows = collect_round(cfg, cfg.tag, key, player, base, out, progress)
    write_json(out / f"relabel-{cfg.tag}.json",
               {"relabel": to_jsonable(cfg), "dataset": str(base),
                **{k: v for k, v in _summary(0, rows).items() if k != "round"}})
    return out


def start_coot_config(ref: str) -> CootConfig:
    """The CooT training config of ``ref`` (run folder or zoo:<name>)."""
    if zoo.is_ref(ref):
        name = zoo.check_name(zoo.ref_name(ref))
        meta = zoo.read_manifest().get("entries", {}).get(name, {}).get("meta", {})
        if meta.get("agent") != "coot" or "config" not in meta:
            raise RunError(f"{ref}: not a CooT zoo entry with its training config")
        return config_from_json(CootConfig, meta["config"]["coot"], f"{ref} config")
    cfg, _ = load_coot_config(Path(ref))
    return cfg.coot


def round_coot_config(start: CootConfig, cfg: DaggerConfig) -> CootConfig:
    return dataclasses.replace(start, epochs=cfg.epochs_per_round, patience=cfg.epochs_per_round,
                               learning_rate=cfg.learning_rate)


# --- one round's data -------------------------------------------------------------------------
def _memoryless(br: Agent, name: str) -> None:
    if jax.tree.leaves(br.reset(jax.random.PRNGKey(0))):
        raise RunError(f"{name}: the best response has a memory; relabelling needs a policy "
                       "of the current observation alone")


def relabelled_rollouts(env: Overcooked, coot: Agent, partner: Agent, br: Agent,
                        key: jax.Array, cfg: DaggerConfig | RelabelConfig,
                        episode_len: int) -> dict:
    """The CooT's games with ``partner`` (``repeats`` per seat, ``episodes`` consecutive
    episodes each), every state labelled by ``br``; the arrays of a shard, episodes ordered
    game by game, oldest first (numpy)."""
    k_play, k_label = jax.random.split(key)
    cooks = jnp.repeat(jnp.arange(2, dtype=jnp.int32), cfg.repeats)  # (N,) games
    n = cooks.shape[0]
    stacked = partner.replace(params=jax.tree.map(lambda x: jnp.asarray(x)[None],
                                                  partner.params))
    out = play_episodes(env, env.default_params(horizon=episode_len), coot, stacked,
                        jnp.zeros((n,), jnp.int32), cooks, k_play, episodes=cfg.episodes,
                        steps=episode_len, record=True)

    def games_first(x):  # (E, N, ...) -> (N * E, ...): each game's episodes together
        x = np.asarray(x)
        return np.swapaxes(x, 0, 1).reshape(n * cfg.episodes, *x.shape[2:])

    tr = jax.tree.map(games_first, out["trajectories"])
    label = best_response_labels(br, jnp.asarray(tr.obs), k_label, cfg.label == "argmax")
    return {"obs": tr.obs, "action": tr.action, "partner_action": tr.partner_action,
            "reward": tr.reward.astype(np.float32), "ret": games_first(out["returns"]),
            "ego_cook": np.repeat(np.asarray(cooks, np.int8), cfg.episodes),
            "noise": np.zeros((n * cfg.episodes,), np.float32),
            "label": np.asarray(label).astype(tr.action.dtype)}


@jax.jit
def _labels(br: Agent, obs: jax.Array, key: jax.Array, greedy: jax.Array) -> jax.Array:
    flat = obs.reshape(-1, *obs.shape[2:])
    keys = jax.random.split(key, flat.shape[0])
    state = br.reset(jax.random.PRNGKey(0))
    logits = jax.vmap(lambda o: br.policy(key, state, o)[0])(flat)
    action = jnp.where(greedy, jnp.argmax(logits, -1),
                       jax.vmap(jax.random.categorical)(keys, logits))
    return action.reshape(obs.shape[:2])


def best_response_labels(br: Agent, obs: jax.Array, key: jax.Array, greedy: bool) -> jax.Array:
    """(episodes, T) the best response's action at each observation (episodes, T, H, W, C):
    sampled from its policy, or its argmax when ``greedy``."""
    return _labels(br.replace(name="br"), obs, key, jnp.asarray(greedy))


def _link_dataset(src: Path, dst: Path) -> None:
    """``dst``: a copy of dataset ``src`` whose shards are hard links (copies where the file
    system has none); written under a temporary name, then renamed."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for f in src.glob(f"*{ShardStore.SUFFIX}"):
        if f.name.startswith("."):
            continue
        try:
            os.link(f, tmp / f.name)
        except OSError:
            shutil.copy2(f, tmp / f.name)
    shutil.copy2(src / MANIFEST, tmp / MANIFEST)
    try:
        tmp.rename(dst)  # over an empty folder too
    except OSError:
        raise RunError(f"{dst} exists without a {MANIFEST} and is not empty: not a dataset "
                       "this run wrote; move it away") from None


def collect_round(cfg: DaggerConfig | RelabelConfig, tag: str, key: jax.Array, coot: Agent,
                  prev_data: Path, data: Path, progress: bool = True) -> list[dict]:
    """Write (or finish) the dataset ``data``: ``prev_data`` plus, per pair, the games of
    ``coot`` (any agent) with the pair's partner, labelled by its best response, as shard
    ``<tag>-pairIII``; returns per pair: name, the player's mean return and agreement with
    the labels."""
    if not (data / MANIFEST).is_file():
        _link_dataset(prev_data, data)
    man = read_json(data / MANIFEST)
    store = ShardStore(data)
    env = Overcooked(man["layout"])
    episode_len = int(store.read(man["pairs"][0]["shard"])["action"].shape[1])
    name_of = [f"{tag}-pair{i:03d}" for i in range(len(man["pairs"]))]
    todo = [i for i, p in enumerate(man["pairs"])
            if name_of[i] not in p.get("extra_shards", []) or not store.exists(name_of[i])]
    with progress_bar(f"{tag}: play and relabel", total=len(man["pairs"]),
                      completed=len(man["pairs"]) - len(todo), enabled=progress) as bar:
        for i in todo:
            pair = pair_from_json(man["pairs"][i])
            partner, br = pair.partner.load(), pair.br.load()
            _memoryless(br, pair.br.label())
            arrays = relabelled_rollouts(env, coot, partner, br, jax.random.fold_in(key, i),
                                         cfg, episode_len)
            store.write(name_of[i], arrays)
            extra = [s for s in man["pairs"][i].get("extra_shards", []) if s != name_of[i]]
            man["pairs"][i]["extra_shards"] = [*extra, name_of[i]]
            write_json(data / MANIFEST, man)
            bar.update(f"{pair.name}: return {arrays['ret'].mean():.1f}")
    rows = []
    for i, p in enumerate(man["pairs"]):
        s = store.read(name_of[i])
        agree = (s["action"] == s["label"]).mean(-1).reshape(2 * cfg.repeats, cfg.episodes)
        rows.append({"pair": p["name"], "return": float(s["ret"].mean()),
                     "agreement": float(agree.mean()),
                     "return_by_episode": s["ret"].reshape(-1, cfg.episodes).mean(0).tolist()})
    return rows


# --- the rounds -------------------------------------------------------------------------------
def run_dagger(cfg: DaggerConfig, dataset: str | Path, out: str | Path,
               progress: bool = True, stop_after_rounds: int | None = None) -> Path:
    """Run (or resume) the DAgger rounds in ``out`` on top of the base ``dataset``; returns
    ``out``. ``stop_after_rounds``: return after that many rounds are done (tests)."""
    cfg.validate()
    out = Path(out)
    base = Path(dataset)
    ds = load_dataset(base)  # a finished base dataset, or an error naming what is missing
    start_cfg = start_coot_config(cfg.start)
    t = ds.episodes.obs.shape[2]
    if start_cfg.context.episode_len != t:
        raise RunError(f"{cfg.start}: a CooT of {start_cfg.context.episode_len}-step "
                       f"episodes, the dataset {base} has {t}-step ones")
    run = RunDir(out)
    run.start({"experiment": "coot-dagger", "dagger": to_jsonable(cfg),
               "dataset": str(base), "layout": ds.layout}, resume=(out / RunDir.CONFIG).exists())
    hist_path = out / HISTORY
    history = read_json(hist_path) if hist_path.is_file() else []
    coot_cfg = round_coot_config(start_cfg, cfg)
    prev_model, prev_data = cfg.start, base
    for r in range(cfg.rounds):
        data, train_dir = out / f"data-r{r}", out / f"round-{r}"
        if not (train_dir / MODEL).is_file():
            if stop_after_rounds is not None and r >= stop_after_rounds:
                break
            key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 1000 + r)
            rows = collect_round(cfg, f"r{r}", key, resolve(prev_model), prev_data, data,
                                 progress)
            history = [h for h in history if h["round"] != r] + [_summary(r, rows)]
            write_json(hist_path, history)
            run_cfg = CootRunConfig(str(data), coot_cfg, "dagger", cfg.val_pairs, cfg.seed,
                                    init_from=prev_model)
            train_coot(run_cfg, train_dir, resume=(train_dir / RunDir.CONFIG).exists(),
                       progress=progress)
            _add_training(history, r, train_dir)
            write_json(hist_path, history)
        prev_model, prev_data = str(train_dir), data
    write_dagger_report(out)
    return out


def _summary(r: int, rows: list[dict]) -> dict:
    by_ep = np.mean([x["return_by_episode"] for x in rows], axis=0)
    return {"round": r, "return": float(np.mean([x["return"] for x in rows])),
            "agreement": float(np.mean([x["agreement"] for x in rows])),
            "return_by_episode": by_ep.tolist(), "pairs": rows}


def _add_training(history: list[dict], r: int, train_dir: Path) -> None:
    rows = RunDir(train_dir).read_metrics()
    best = min(rows, key=lambda x: x["val_loss"])
    for h in history:
        if h["round"] == r:
            h.update(epochs=len(rows), best_epoch=int(best["epoch"]),
                     val_loss=float(best["val_loss"]), val_accuracy=float(best["val_accuracy"]),
                     time_s=float(rows[-1]["time_s"]))


def write_dagger_report(out: Path) -> Path:
    """``dagger.png`` + ``report.md`` of a DAgger folder from its history."""
    raw = read_json(out / RunDir.CONFIG)
    history = (sorted(read_json(out / HISTORY), key=lambda h: h["round"])
               if (out / HISTORY).is_file() else [])
    plot_dagger_rounds(history, out / "dagger.png", f"CooT DAgger from {raw['dagger']['start']}")
    lines = [f"# CooT DAgger (not in the paper) — {raw['layout']}", "",
             f"- start `{raw['dagger']['start']}`, base dataset `{raw['dataset']}`",
             f"- per round: {raw['dagger']['repeats']} games x 2 seats x "
             f"{raw['dagger']['episodes']} consecutive episodes with every training pair, "
             f"labels = the best response's {raw['dagger']['label']} action; then "
             f"{raw['dagger']['epochs_per_round']} epochs of fine-tuning at lr "
             f"{raw['dagger']['learning_rate']:g}",
             "- the returns are those of the model *before* the round's fine-tuning, with "
             "the training partners (never the evaluation partners)", "",
             "![dagger](dagger.png)", "",
             "| round | played by | return | agreement with BR | ep. 1 | last ep. | "
             "fine-tune epochs | best val loss | val acc | time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for h in history:
        by = "start" if h["round"] == 0 else f"round-{h['round'] - 1}"
        lines.append(
            f"| {h['round']} | {by} | {h['return']:.1f} | {h['agreement']:.3f} | "
            f"{h['return_by_episode'][0]:.1f} | {h['return_by_episode'][-1]:.1f} | "
            f"{h.get('epochs', '-')} | {h.get('val_loss', float('nan')):.3f} | "
            f"{h.get('val_accuracy', float('nan')):.3f} | {h.get('time_s', 0):.0f} |")
    done = [h["round"] for h in history if "val_loss" in h]
    if done:
        lines += ["", f"Result: `{out / f'round-{max(done)}'}` (a CooT run folder: "
                  "`coplay coot eval --agent coot-dagger=...`)."]
    return _write(out / "report.md", lines)


def _write(path: Path, lines: list[str]) -> Path:
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
