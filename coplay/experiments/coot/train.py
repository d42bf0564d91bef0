"""Training runs of the Coordination Transformer and its BC baseline on a CooT dataset.

:func:`train_coot` (run folder ``runs/coot/<name>``): ``config.json``; one epoch per chunk of
the checkpoint / resume loop (exact resume: parameters, optimiser, key and the best epoch so
far are the checkpoint); ``metrics.jsonl`` per epoch (train / validation loss and accuracy,
step-mask probability, learning rate, wall time); early stopping after ``patience`` epochs
without a better validation loss; then ``model.msgpack`` (the best epoch's parameters),
``curves.png`` and ``report.md``. Validation groups are both seats of ``val_pairs`` training
pairs held out by the run's seed (spec: early stopping on held-out training pairs).

:func:`train_bc_run`: the BC baseline on the same dataset and split (state only), written as
``model.msgpack`` + ``history.json`` + ``report.md``.

Their finished folders are agents by reference (:mod:`coplay.experiments.refs`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from coplay.agents.coot_agent import coot_agent
from coplay.agents.gpt import make_gpt
from coplay.algos import bc
from coplay.algos.coot import CootConfig, make_trainer
from coplay.config import ConfigError, checker, config_from_json
from coplay.data.context import ContextSpec, Episodes
from coplay.eval.adaptation_plots import plot_loss_curves
from coplay.experiments.coot.closed_loop import prepare
from coplay.experiments.coot.data import Dataset, load_dataset
from coplay.experiments.refs import resolve
from coplay.experiments.run_agents import MODEL
from coplay.runs import (
    RunDir,
    RunError,
    atomic_write_bytes,
    atomic_write_text,
    drive_chunks,
    read_json,
    write_json,
)

SELECT_BY = ("val-loss", "closed-loop")
CLOSED_LOOP_BEST = "closed_loop_best.msgpack"  # the best closed-loop epoch's parameters so far


@dataclasses.dataclass(frozen=True)
class CootRunConfig:
    """A CooT training run."""

    dataset: str
    """The dataset folder (coplay coot collect)."""
    coot: CootConfig = CootConfig()
    """The model and its training (default: the paper's; the CLI starts from a preset)."""
    preset: str = "default"
    """The preset the coot fields came from (recorded)."""
    val_pairs: int = 1
    """Training pairs held out (both seats) for the validation loss and early stopping."""
    seed: int = 0
    """Seed of the split, initialisation, sampling and dropout."""
    init_from: str = ""
    """Not in the paper ("" = random initialisation, the paper's): start from the parameters
    of this CooT (a finished run folder or zoo:<name>, same GPT shape), with a fresh optimiser
    and schedule; the fine-tuning rounds of `coplay coot dagger` use it."""
    select_by: str = "val-loss"
    """Which epoch's parameters the run keeps, and what early stopping watches: val-loss (the
    paper's) or closed-loop (not in the paper: after every epoch the CooT plays the training
    partners from an empty context, :mod:`coplay.experiments.coot.closed_loop`; the best mean
    return over their best responses' is kept)."""
    closed_loop_pairs: int = 0
    """Training pairs of the closed-loop check (their first ones; 0: all)."""
    closed_loop_episodes: int = 3
    """Consecutive episodes per training pair and seat in the check."""

    def validate(self) -> CootRunConfig:
        need = checker(self, "run")
        need(isinstance(self.val_pairs, int) and self.val_pairs >= 1, "val_pairs",
             "must be an integer >= 1")
        need(self.select_by in SELECT_BY, "select_by", f"choose one of {SELECT_BY}")
        need(isinstance(self.closed_loop_pairs, int) and self.closed_loop_pairs >= 0,
             "closed_loop_pairs", "must be an integer >= 0 (0: all training pairs)")
        need(isinstance(self.closed_loop_episodes, int) and self.closed_loop_episodes >= 1,
             "closed_loop_episodes", "must be an integer >= 1")
        self.coot.validate()
        return self


def split_pairs(num_pairs: int, val_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training pairs, held-out pairs) drawn by ``seed``."""
    if val_pairs >= num_pairs:
        raise ConfigError(f"run.val_pairs = {val_pairs}: the dataset has {num_pairs} pairs; "
                          "keep at least one for training")
    order = np.random.default_rng(seed).permutation(num_pairs)
    return np.sort(order[val_pairs:]), np.sort(order[:val_pairs])


def _groups(ds: Dataset, pairs: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(ds.group_pair, pairs))


def _check_dataset(ds: Dataset, spec: ContextSpec, where: str) -> None:
    t = ds.episodes.obs.shape[2]
    if t != spec.episode_len:
        raise ConfigError(f"{where}: episodes of {t} steps, but coot.context.episode_len = "
                          f"{spec.episode_len}")


def train_coot(cfg: CootRunConfig, out: str | Path, resume: bool = False,
               progress: bool = True, stop_after_chunks: int | None = None) -> Path:
    """Train (or resume) a CooT run in ``out``; returns the folder."""
    cfg.validate()
    ds = load_dataset(cfg.dataset)
    _check_dataset(ds, cfg.coot.context, cfg.dataset)
    train_p, val_p = split_pairs(len(ds.pairs), cfg.val_pairs, cfg.seed)
    obs_dim = int(np.prod(ds.obs_shape))
    trainer = make_trainer(cfg.coot, _groups(ds, train_p), _groups(ds, val_p), obs_dim)
    data = Episodes(*(None if x is None else jnp.asarray(x) for x in ds.episodes))
    run = RunDir(out)
    has_ckpt = run.start({"experiment": "coot", **dataclasses.asdict(cfg),
                          "layout": ds.layout, "obs_shape": list(ds.obs_shape)}, resume)
    state = trainer.init(jax.random.PRNGKey(cfg.seed))
    if cfg.init_from and not has_ckpt:
        state = trainer.init(jax.random.PRNGKey(cfg.seed),
                             initial_params(cfg.init_from, state.params))

    check = _closed_loop_check(cfg, ds, train_p, obs_dim)

    def step(state, chunk, last, elapsed):
        state, m = trainer.epoch(state, data)
        row = {"epoch": int(state.epoch), **{k: float(v) for k, v in m._asdict().items()},
               "best_epoch": int(state.best_epoch)}
        status = f"loss {m.train_loss:.3f} val {m.val_loss:.3f}"
        if check is not None:
            row["closed_loop"] = check(state.params)["ratio"]
            status += f" closed loop {row['closed_loop']:.3f}"
            before = [r["closed_loop"] for r in run.read_metrics()]  # the checkpoint's rows
            if not before or row["closed_loop"] > max(before):  # written before the checkpoint
                atomic_write_bytes(run.path / CLOSED_LOOP_BEST, serialization.msgpack_serialize(
                    jax.tree.map(np.asarray, state.params)))
        return state, {**row, "time_s": elapsed()}, status

    def stop(state):
        if check is not None:  # epochs since the best closed-loop one
            rows = run.read_metrics()
            return bool(rows) and len(rows) - 1 - _best_row(rows) >= cfg.coot.patience
        return int(state.epoch) - int(state.best_epoch) >= cfg.coot.patience

    state, finished = drive_chunks(run, state, has_ckpt, num_chunks=cfg.coot.epochs,
                                   chunks_done=lambda s: int(s.epoch), step=step,
                                   label="coot", progress=progress,
                                   stop_after_chunks=stop_after_chunks, should_stop=stop)
    if finished:
        rows = run.read_metrics()
        if check is not None:
            best = int(rows[_best_row(rows)]["epoch"])
            atomic_write_bytes(run.path / MODEL, (run.path / CLOSED_LOOP_BEST).read_bytes())
        else:
            best = int(state.best_epoch)
            atomic_write_bytes(run.path / MODEL, serialization.msgpack_serialize(
                jax.tree.map(np.asarray, state.best_params)))
        plot_loss_curves(rows, run.path / "curves.png", f"CooT {ds.layout} seed {cfg.seed}",
                         best=best)
        _report(run.path, cfg, ds, train_p, val_p, rows, best)
    return run.path


def _best_row(rows: list[dict]) -> int:
    """The row of the best closed-loop check (the first among equals)."""
    return int(np.argmax([r["closed_loop"] for r in rows]))


def _closed_loop_check(cfg: CootRunConfig, ds: Dataset, train_p: np.ndarray, obs_dim: int):
    """params -> the closed-loop score of the CooT with those parameters (None: not asked)."""
    if cfg.select_by != "closed-loop":
        return None
    pairs = [ds.pairs[i] for i in train_p]
    pairs = pairs[:cfg.closed_loop_pairs] if cfg.closed_loop_pairs else pairs
    spec = cfg.coot.context
    check = prepare(pairs, ds.layout, cfg.closed_loop_episodes, spec.episode_len,
                    br_episodes=cfg.closed_loop_episodes, seed=cfg.seed)
    model = make_gpt(cfg.coot.gpt)
    return lambda params: check.score(coot_agent(model, params, spec.num_episodes,
                                                 spec.episode_len, spec.query_len, obs_dim))


def _report(path: Path, cfg: CootRunConfig, ds: Dataset, train_p, val_p, rows, best: int):
    last = rows[-1] if rows else {}
    lines = [
        f"# Coordination Transformer — {ds.layout}, preset `{cfg.preset}`, seed {cfg.seed}", "",
        f"- dataset `{cfg.dataset}`: {len(ds.pairs)} pairs x 2 seats x "
        f"{ds.episodes.obs.shape[1]} episodes of {ds.episodes.obs.shape[2]} steps",
        f"- training pairs {', '.join(ds.pairs[i].name for i in train_p)}; held out "
        f"{', '.join(ds.pairs[i].name for i in val_p)}",
        f"- {len(rows)} epochs in {last.get('time_s', 0):.0f} s; best validation loss "
        f"{min(r['val_loss'] for r in rows):.3f}; epoch {best} kept in `{MODEL}` (by "
        f"{cfg.select_by})",
        "", "![curves](curves.png)", "",
        "| epoch | train loss | train acc | val loss | val acc | step mask | lr | closed loop |",
        "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['train_loss']:.3f} | {r['train_accuracy']:.3f} | "
              f"{r['val_loss']:.3f} | {r['val_accuracy']:.3f} | {r['step_mask']:.2f} | "
              f"{r['learning_rate']:.2e} | "
              f"{'-' if 'closed_loop' not in r else format(r['closed_loop'], '.3f')} |"
              for r in rows]
    atomic_write_text(path / "report.md", "\n".join(lines) + "\n")


def initial_params(ref: str, like: dict) -> dict:
    """The float32 GPT parameters of the CooT ``ref`` (run folder or zoo:<name>), checked
    against the tree ``like`` (a fresh initialisation of the run's model)."""
    agent = resolve(ref)
    if agent.kind != "overcooked" or not hasattr(agent.spec, "num_episodes"):
        raise RunError(f"init_from {ref!r}: not a Coordination Transformer ({agent.name})")
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), agent.params)
    got = jax.tree.map(jnp.shape, params)
    want = jax.tree.map(jnp.shape, like)
    if jax.tree.structure(got) != jax.tree.structure(want) or got != want:
        raise ConfigError(f"init_from {ref!r}: its GPT does not have the shape of this run's "
                          "coot.gpt (layers, heads, width, positions or input size differ)")
    return params


def load_coot_config(path: Path) -> tuple[CootRunConfig, dict]:
    raw = read_json(path / RunDir.CONFIG)
    if raw.get("experiment") != "coot":
        raise RunError(f"{path}: not a CooT run (experiment {raw.get('experiment')!r})")
    fields = {f.name for f in dataclasses.fields(CootRunConfig)}
    return config_from_json(CootRunConfig, {k: v for k, v in raw.items() if k in fields},
                            str(path / RunDir.CONFIG)), raw


# --- BC -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BCRunConfig:
    """The BC baseline on a CooT dataset (same split as CooT with the same seed)."""

    dataset: str
    """The dataset folder."""
    bc: bc.BCConfig = bc.BCConfig()
    preset: str = "default"
    """The preset the bc fields came from (recorded)."""
    val_pairs: int = 1
    """Training pairs held out for early stopping (as CooT's)."""
    seed: int = 0
    """Seed of the split and of training."""


def _bc_episodes(ds: Dataset, groups: np.ndarray) -> bc.Episodes:
    """The groups' episodes BC learns from: every one a query may come from (not the
    context-only ones, whose actions are not the best response's)."""
    ok = ds.episodes.query_ok[groups]  # (g, n)
    if ds.relabelled is not None:  # a CooT played those: BC learns from best responses only
        ok = ok & ~ds.relabelled[groups]
    t = ds.episodes.obs.shape[2]
    return bc.Episodes(ds.episodes.obs[groups][ok].reshape(-1, t, *ds.obs_shape),
                       ds.episodes.action[groups][ok], ds.returns[groups][ok],
                       np.repeat(groups, ok.sum(1)))


def train_bc_run(cfg: BCRunConfig, out: str | Path, progress: bool = True) -> Path:
    ds = load_dataset(cfg.dataset)
    train_p, val_p = split_pairs(len(ds.pairs), cfg.val_pairs, cfg.seed)
    run = RunDir(out)
    run.start({"experiment": "coot-bc", **dataclasses.asdict(cfg), "layout": ds.layout,
               "obs_shape": list(ds.obs_shape)}, resume=False)
    bc_cfg = dataclasses.replace(cfg.bc, seed=cfg.seed)
    params, history = bc.train_bc(bc_cfg, _bc_episodes(ds, _groups(ds, train_p)),
                                  _bc_episodes(ds, _groups(ds, val_p)))
    atomic_write_bytes(run.path / MODEL, serialization.msgpack_serialize(
        jax.tree.map(np.asarray, params)))
    write_json(run.path / "history.json", history)
    best = min((h for h in history if h.get("val_loss") is not None),
               key=lambda h: h["val_loss"], default=history[-1])
    atomic_write_text(run.path / "report.md", "\n".join([
        f"# BC baseline — {ds.layout}, top {cfg.bc.top_fraction:.0%} per pair, seed {cfg.seed}",
        "", f"- dataset `{cfg.dataset}`, {len(history)} epochs, best epoch {best['epoch']}: "
        f"val loss {best.get('val_loss')}, val accuracy {best.get('val_accuracy')}", ""]))
    return run.path
