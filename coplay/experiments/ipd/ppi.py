"""IPD experiments with PPI: presets, the phase driver, and the run folder it fills.

``train_run(cfg, out)`` runs the phases of :mod:`coplay.algos.ppi` from a Python loop. The
run folder is the A2C one (``config.json``, ``checkpoint.msgpack``, ``metrics.jsonl`` with one
row per phase, ``eval.json``, PNGs, ``report.md``) plus ``data/``: the cumulative dataset as
shards — ``d0`` (random tabular pairs, shared), ``base-learner<l>`` (a dataset inherited from
an earlier run, step 3) and ``phase<k>-learner<l>`` (the games learner l played in phase k).
Shards are written atomically; the checkpoint, written after a phase's shards, names the last
finished phase. A killed run resumes at the next phase and redoes it exactly (phase k always
uses keys folded from (seed, k)), overwriting any shard the interrupted attempt left.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from coplay.algos import ppi
from coplay.algos.ppi_config import PPIConfig
from coplay.algos.ppi_episodes import Episodes
from coplay.config import ConfigError
from coplay.data.shards import ShardStore
from coplay.envs.matrix_games import COOPERATE
from coplay.eval.ipd import make_probe_summary
from coplay.experiments.ipd.eval import evaluate_run
from coplay.experiments.ipd.presets import PPI_PRESETS
from coplay.experiments.ipd.runs import (
    Ablation,
    PPIState,
    Preset,
    Stage,
    check_source,
    learner_sources,
    make_ppi_play,
    ppi_state_template,
    resolve_algo,
    split_source,
)
from coplay.experiments.run_agents import load_ipd_config
from coplay.runs import RunDir, drive_chunks, mean_text


@dataclasses.dataclass(frozen=True)
class PPITrainConfig:
    """One PPI training run: a PPI config plus run-level settings (as IPDTrainConfig)."""

    preset: Preset = "default"
    """Named hyperparameter set: tiny (tests), default (this CPU), paper (the paper's values)."""
    seed: int = 0
    """Seed of parameters, data and planning."""
    ablation: Ablation = "none"
    """`no-tabular`: learners only play each other; `opponent-id`: the model reads the tabular
    co-player's log-policy."""
    ppi: PPIConfig | None = None
    """Overrides of the preset's PPI fields (None: the preset as it is)."""
    eval_episodes: int = 512
    """Games per pairing in the final evaluation (each decision plans: costly)."""
    probe_every: int = 1
    """Every this many phases, play TFT / AllC / AllD with the improved policy and log reward
    and 2nd-half cooperation in metrics.jsonl (0: never)."""
    probe_episodes: int = 128
    """Games per probe for those checks."""
    stage: Stage = "mixed"
    """mixed (the paper's mixed pool) | step1 (one learner, tabular co-players only) | step2
    (a fresh learner vs the frozen step-1 agent of `init_from`) | step3 (the two step-2
    learners of `init_from` against each other, each continuing from its dataset)."""
    init_from: tuple[str, ...] = ()
    """PPI run folders whose learners start this run, `PATH` or `PATH:INDEX`: a learner taken
    from a run plays its first phase with that run's final model and inherits its dataset."""


def resolve(cfg: PPITrainConfig) -> PPIConfig:
    """The PPI config this run trains with: preset, overrides, stage, ablation."""
    return resolve_algo(cfg, PPI_PRESETS, cfg.ppi, ppi.validate)


def load_learner(source: str, algo: PPIConfig):
    """(params without learner axis, run folder, index) of learner INDEX of a PPI run."""
    folder, index = split_source(source)
    _, src = load_ipd_config(folder)
    if not isinstance(src, PPIConfig):
        raise ConfigError(f"init_from {source!r}: an A2C run; a PPI run needs PPI learners")
    check_source(source, src, algo, ("hidden_size", "embed_dim", "use_opponent_id",
                                     "num_rounds"), index)
    state, _ = RunDir(folder).load_checkpoint(ppi_state_template(src))
    return jax.tree.map(lambda x: jnp.asarray(x[index]), state.params), folder, index


def learner_shards(store: ShardStore, learner: int, phases_done: int,
                   window: int = 0) -> list[str]:
    """The shards of learner l's dataset D_{phases_done}: base data, then its phases (only the
    last ``window`` of them if ``window`` ≥ 1)."""
    base = f"base-learner{learner}"
    names = [base] if store.exists(base) else ["d0"]
    first = 1 if window == 0 else max(1, phases_done - window + 1)
    return names + [f"phase{k:03d}-learner{learner}" for k in range(first, phases_done + 1)]


def prior_weights(names: list[str], sizes: list[int], phases_done: int,
                  prior_window: int) -> np.ndarray:
    """Own-action loss weight of every trajectory of the shards ``names`` (in order, with
    ``sizes`` trajectories each): all ones with ``prior_window`` 0; else 1 for the games of
    phases after ``phases_done − prior_window`` and 0 for older ones and the base data — the
    base data keeps weight 1 while no phase is in the window (phase 1)."""
    if prior_window == 0:
        return np.ones(sum(sizes), np.float32)
    first = phases_done - prior_window + 1
    recent = [n.startswith("phase") and int(n[5:8]) >= first for n in names]
    if not any(recent):
        recent = [not n.startswith("phase") for n in names]
    return np.concatenate([np.full(k, float(r), np.float32)
                           for k, r in zip(sizes, recent, strict=True)])


def dataset_shards(store: ShardStore, learner: int) -> list[str]:
    """Every shard of a finished run's learner (what a later stage inherits)."""
    return learner_shards(store, learner, 0) + sorted(
        n for n in store.names() if n.startswith("phase") and n.endswith(f"-learner{learner}"))


def _pairing_metrics(traj: ppi.PPITrajectory, is_learner: np.ndarray) -> dict:
    """Per learner reward / cooperation by pairing type (None where a pairing is absent)."""
    coop = np.asarray(traj.action == COOPERATE, np.float32)  # (T, L, N)
    reward = np.asarray(traj.reward)
    model_error = np.abs(np.asarray(traj.predicted_coplayer_coop)
                         - np.asarray(traj.coplayer_coop_prob))
    out = {}
    for name, mask in (("learner", is_learner), ("tabular", ~is_learner)):
        for kind, x in (("reward", reward), ("coop", coop),
                        ("coplayer_model_error", model_error)):
            out[f"{kind}_vs_{name}"] = (
                [round(float(v), 5) for v in x[:, :, mask].mean(axis=(0, 2))]
                if mask.any() else [None] * x.shape[1])
    out["prior_coop"] = [round(float(v), 5) for v in
                         np.asarray(traj.prior_coop).mean(axis=(0, 2))]
    gap = np.asarray(traj.q[..., 0] - traj.q[..., 1])
    out["q_gap_c_minus_d"] = [round(float(v), 4) for v in gap.mean(axis=(0, 2))]
    return out


@functools.lru_cache(maxsize=8)
def make_train_steps(algo: PPIConfig):
    return ppi.make_train_steps(algo)


def train_run(cfg: PPITrainConfig, out: str | Path, resume: bool = False,
              stop_after_phases: int | None = None, progress: bool = True,
              evaluate_at_end: bool = True) -> PPIState:
    """Train (or resume) the PPI run in ``out``; returns the final state."""
    algo = resolve(cfg)
    run = RunDir(out)
    has_ckpt = run.start({"experiment": "ipd", "algo": "ppi", **dataclasses.asdict(cfg),
                          "resolved": algo}, resume)
    store = ShardStore(run.path / "data")
    key = jax.random.PRNGKey(cfg.seed)
    state = ppi_state_template(algo)
    sources = learner_sources(cfg)
    loaded = [i < len(sources) and bool(sources[i]) for i in range(algo.num_learners)]
    if not has_ckpt:
        for i, source in enumerate(sources):
            if not source:
                continue
            params, folder, index = load_learner(source, algo)
            state = state.replace(params=jax.tree.map(lambda a, b, i=i: a.at[i].set(b),
                                                      state.params, params))
            if cfg.stage == "step3":  # a step-2 agent goes on from its whole dataset
                src_store = ShardStore(folder / "data")
                store.write(f"base-learner{i}",
                            src_store.read_many(dataset_shards(src_store, index)))
    if not store.exists("d0"):  # deterministic: a resumed run regenerates the same D0
        d0 = ppi.make_random_pairs(algo.num_rounds)(jax.random.fold_in(key, 1_000_003),
                                                      algo.d0_trajectories // 2)
        store.write("d0", d0._asdict())

    phase_runner = PhaseRunner(algo, store)
    probe_summary = None
    if cfg.probe_every:
        probe_summary = make_probe_summary(None, algo.num_rounds, cfg.probe_episodes,
                                           algo.use_opponent_id, play=make_ppi_play(algo))
        k_probe = jax.random.fold_in(key, 20_000_003)

    def step(state, chunk, last, elapsed):
        phase = chunk + 1
        k_phase = jax.random.fold_in(key, phase)
        use_loaded = [phase == 1 and loaded[i] for i in range(algo.num_learners)]
        params, row = phase_runner.run_phase(k_phase, phase, state.params, use_loaded)
        state = PPIState(params, jnp.asarray(phase, jnp.int32))
        row = {"update": phase, "time_s": round(elapsed(), 3), **row}
        if probe_summary is not None and phase % cfg.probe_every == 0:
            row |= probe_summary(jax.random.fold_in(k_probe, phase), state.params)
        return state, row, (f"coop L-L {mean_text(row, 'coop_vs_learner')}  "
                            f"R L-L {mean_text(row, 'reward_vs_learner')}  "
                            f"R L-tab {mean_text(row, 'reward_vs_tabular')}  "
                            f"prior C {mean_text(row, 'prior_coop')}")

    state, finished = drive_chunks(
        run, state, has_ckpt, num_chunks=algo.num_phases, chunks_done=lambda s: int(s.phase),
        step=step, label=f"ipd ppi seed {cfg.seed}", progress=progress,
        stop_after_chunks=stop_after_phases)
    if finished and evaluate_at_end:
        evaluate_run(run.path, state=state)
    return state


def trainable(algo: PPIConfig) -> list[int]:
    return [i for i in range(algo.num_learners) if i not in algo.frozen_learners]


class PhaseRunner:
    """One phase: fresh (or warm) models trained on D_{k-1}, then games with π, then shards."""

    def __init__(self, algo: PPIConfig, store: ShardStore):
        self.algo, self.store = algo, store
        self.train_steps, optimizer = make_train_steps(algo)
        self.init_opt = jax.jit(jax.vmap(optimizer.init))
        self.play = make_ppi_play(algo)
        self.learners = trainable(algo)

    def _dataset(self, phases_done: int) -> tuple[Episodes, np.ndarray, list[int]]:
        """Stacked datasets of the trainable learners, zero-padded to one capacity that is
        the same in every phase (so the training step compiles once per run), with each
        trajectory's own-action loss weight (L, cap): :func:`prior_weights`."""
        window = self.algo.dataset_window
        names = [learner_shards(self.store, i, phases_done, window) for i in self.learners]
        parts = [self.store.read_many(n) for n in names]
        sizes = [len(p["action"]) for p in parts]
        base = [len(self.store.read_many(learner_shards(self.store, i, 0))["action"])
                for i in self.learners]
        phases_kept = min(window or self.algo.num_phases, self.algo.num_phases - 1)
        cap = max(base) + phases_kept * self.algo.trajectories_per_phase
        pad = lambda x: np.concatenate(  # noqa: E731
            [x, np.zeros((cap - len(x), *x.shape[1:]), x.dtype)])
        stacked = {k: np.stack([pad(p[k]) for p in parts]) for k in Episodes._fields}
        weights = np.stack([pad(prior_weights(n, [self.store.length(x) for x in n], phases_done,
                                              self.algo.prior_window)) for n in names])
        return Episodes(**stacked), weights, sizes

    def run_phase(self, key, phase: int, params, use_loaded: list[bool]):
        algo = self.algo
        k_init, k_train, k_collect = jax.random.split(key, 3)
        t0 = time.perf_counter()
        sel = jnp.asarray(self.learners)
        keep = jnp.asarray([use_loaded[i] for i in self.learners])  # learners taken as loaded
        train_params = _take(params, sel)
        if algo.reinit_model or phase == 1:
            fresh = ppi.init_learners(algo, k_init, len(self.learners))
            train_params = _blend(keep, fresh, train_params)
        row: dict = {}
        if not all(use_loaded[i] for i in self.learners):
            data, action_weight, sizes = self._dataset(phase - 1)
            data = jax.tree.map(jnp.asarray, data)
            action_weight = jnp.asarray(action_weight)
            steps = ppi.steps_per_phase(algo, max(sizes), phase)
            rng = np.random.default_rng(np.asarray(jax.random.key_data(k_train)).ravel())
            idx = np.stack([ppi.batch_indices(rng, size, steps, algo.batch_size)
                            for size in sizes])
            opt_state = self.init_opt(train_params)
            chunk = algo.train_chunk_steps
            new_params = train_params
            for c in range(steps // chunk):
                new_params, opt_state, parts = self.train_steps(
                    new_params, opt_state, data, jnp.asarray(idx[:, c * chunk:(c + 1) * chunk]),
                    action_weight)
            train_params = _blend(keep, new_params, train_params)
            row |= {"dataset_size": sizes, "train_steps": steps,
                    **{f"loss_{k}": [round(float(v), 5) for v in np.asarray(x)]
                       for k, x in parts._asdict().items()}}
        params = _put(params, sel, train_params)
        t1 = time.perf_counter()
        trajs = []
        for b in range(algo.trajectories_per_phase // algo.collect_batch):
            k_opp, k_play = jax.random.split(jax.random.fold_in(k_collect, b))
            opponents = ppi.sample_opponents(k_opp, algo, algo.collect_batch)
            traj = self.play(k_play, params, opponents.tabular, opponents.is_learner,
                             opponents.partner)
            trajs.append((jax.device_get(traj), jax.device_get(opponents)))
        for i in self.learners:
            eps = [ppi.episodes_of(t, o, i) for t, o in trajs]
            self.store.write(f"phase{phase:03d}-learner{i}",
                             {k: np.concatenate([getattr(e, k) for e in eps])
                              for k in Episodes._fields})
        t2 = time.perf_counter()
        metrics = [_pairing_metrics(t, np.asarray(o.is_learner)) for t, o in trajs]
        for name in metrics[0]:
            vals = np.array([[np.nan if v is None else v for v in m[name]] for m in metrics])
            row[name] = [None if np.isnan(v) else round(float(v), 5)
                         for v in vals.mean(axis=0)]
        row |= {"train_s": round(t1 - t0, 2), "collect_s": round(t2 - t1, 2)}
        return params, row


@jax.jit
def _take(params, sel):
    return jax.tree.map(lambda x: x[sel], params)


@jax.jit
def _put(params, sel, sub):
    return jax.tree.map(lambda x, y: x.at[sel].set(y), params, sub)


@jax.jit
def _blend(keep, new, old):
    """Per learner: ``old`` where ``keep``, else ``new``."""
    return jax.tree.map(lambda n, o: jnp.where(keep.reshape((-1,) + (1,) * (n.ndim - 1)), o, n),
                        new, old)
