"""Run folders: resolved config, atomic checkpoints, metrics, and resumption.

Every run writes one folder ``runs/<experiment>/<name>/`` holding

- ``config.json``   the resolved config (written once; a resume checks it matches),
- ``checkpoint.msgpack``  the latest train state (atomic: temp file + rename),
- ``metrics.jsonl``  one JSON object per logged step (truncated to the checkpoint on resume),
- PNG plots, ``eval.json`` and ``report.md`` written by the experiment.

and the plumbing every driver shares: atomic writes, config <-> JSON, the rich progress bar,
and :func:`drive_chunks`, the checkpoint/resume loop around a jitted train chunk. Nothing here
traces JAX code: it runs in the short Python loop around jitted train chunks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunError(RuntimeError):
    """A run folder cannot be used as asked (mismatched config, corrupt checkpoint, ...)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a kill at any moment leaves the old file or the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert configs, numpy / jax scalars and arrays into plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        arr = np.asarray(obj)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e})") from None


def use_cpu_cores(count: int | None = None) -> int:
    """Expose this machine's CPU cores as ``count`` JAX host devices (default: every core, at
    most 8), so that work split over devices (the games of
    :func:`coplay.eval.in_context.play_episodes`) runs on all of them. A single computation
    still runs on one device, but slower (×1.2–1.6 for CooT training, measured): use it for
    processes that play, not ones that train. Call it before JAX's first computation: afterwards,
    or where the user set ``jax_num_cpu_devices`` or ``XLA_FLAGS``' host device count, it
    changes nothing (nor on an accelerator, whose devices JAX uses instead). Returns the
    number of devices JAX will use."""
    count = min(os.cpu_count() or 1, 8) if count is None else count
    user_set = (jax.config.jax_num_cpu_devices != -1
                or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""))
    if not user_set and count > 1:
        with contextlib.suppress(RuntimeError):  # raised once JAX's backends are running
            jax.config.update("jax_num_cpu_devices", count)
    return jax.local_device_count()


def default_run_dir(experiment: str, name: str | None = None, root: str | Path = "runs") -> Path:
    """``runs/<experiment>/<name or timestamp>``."""
    if name is None:
        name = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / experiment / name


class RunDir:
    """A run folder. Creating one for a fresh run refuses to overwrite an existing run."""

    CONFIG = "config.json"
    CHECKPOINT = "checkpoint.msgpack"
    CHECKPOINT_META = "checkpoint.json"
    METRICS = "metrics.jsonl"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- config -----------------------------------------------------------------------------
    def start(self, config: Any, resume: bool) -> bool:
        """Prepare the folder. Returns True when a checkpoint exists to resume from.

        A fresh run refuses a folder that already holds a run (pass ``resume``); a resume
        refuses a folder whose stored config differs from ``config``.
        """
        cfg = to_jsonable(config)
        cfg_path = self.path / self.CONFIG
        if cfg_path.exists():
            if not resume:
                raise RunError(
                    f"{self.path} already holds a run; pass --resume to continue it "
                    "or choose another --out"
                )
            stored = read_json(cfg_path)
            if stored != cfg:
                diff = sorted(
                    k for k in set(stored) | set(cfg) if stored.get(k) != cfg.get(k)
                )
                raise RunError(
                    f"cannot resume {self.path}: its config differs in {', '.join(diff)}"
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(cfg_path, cfg)
        return resume and (self.path / self.CHECKPOINT).exists()

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, state: Any, meta: dict) -> None:
        """Atomically write the state, then its metadata (step counters, metrics line count)."""
        atomic_write_bytes(self.path / self.CHECKPOINT, serialization.to_bytes(state))
        atomic_write_text(self.path / self.CHECKPOINT_META, json.dumps(to_jsonable(meta)))

    def load_checkpoint(self, template: Any) -> tuple[Any, dict]:
        ckpt = self.path / self.CHECKPOINT
        try:
            state = serialization.from_bytes(template, ckpt.read_bytes())
        except FileNotFoundError:
            raise RunError(f"no checkpoint in {self.path}") from None
        except Exception as e:  # msgpack raises many kinds on corrupt input
            raise RunError(f"checkpoint {ckpt} is corrupt or from another config: {e}") from None
        meta = read_json(self.path / self.CHECKPOINT_META)
        return state, meta

    # -- metrics ----------------------------------------------------------------------------
    def append_metrics(self, rows: list[dict]) -> None:
        with open(self.path / self.METRICS, "a") as f:
            for row in rows:
                f.write(json.dumps(to_jsonable(row)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics_line_count(self) -> int:
        p = self.path / self.METRICS
        if not p.exists():
            return 0
        with open(p) as f:
            return sum(1 for _ in f)

    def truncate_metrics(self, n_lines: int) -> None:
        """Drop metric lines written after the last checkpoint (a killed run may leave some)."""
        p = self.path / self.METRICS
        if not p.exists():
            return
        lines = p.read_text().splitlines(keepends=True)[:n_lines]
        atomic_write_text(p, "".join(lines))

    def read_metrics(self) -> list[dict]:
        p = self.path / self.METRICS
        if not p.exists():
            return []
        rows = []
        for i, line in enumerate(p.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise RunError(f"{p} line {i + 1} is not valid JSON") from None
        return rows


# --- progress -----------------------------------------------------------------------------
class _Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def update(self, text: str = "", advance: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, status=text)


@contextlib.contextmanager
def progress_bar(description: str, total: int, completed: int = 0, enabled: bool = True):
    """Yield an object with ``update(text, advance=1)``; silent when disabled."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
        # In a log file (no terminal) rich prints the finished bar only; refresh rarely.
        refresh_per_second=2 if sys.stderr.isatty() else 0.05,
    )
    with progress:
        task = progress.add_task(description, total=total, completed=completed, status="")
        yield _Bar(progress, task)


# --- the chunk loop -------------------------------------------------------------------------
ChunkStep = Callable[[Any, int, bool, Callable[[], float]], tuple[Any, dict, str]]


def drive_chunks(run: RunDir, state: Any, has_checkpoint: bool, *, num_chunks: int,
                 chunks_done: Callable[[Any], int], step: ChunkStep, label: str,
                 checkpoint_every: int = 1, progress: bool = True,
                 stop_after_chunks: int | None = None,
                 should_stop: Callable[[Any], bool] | None = None) -> tuple[Any, bool]:
    """The checkpoint / resume loop of every driver around its jitted train chunk.

    Reloads the checkpoint into ``state`` (a template) when ``has_checkpoint`` and drops
    metric rows written after it (a fresh start drops them all), then for every remaining
    chunk calls ``step(state, chunk, last, elapsed) -> (state, metrics row, status text)``
    (``elapsed()``: wall seconds of this run, those before a resume included). Rows reach
    ``metrics.jsonl`` with each checkpoint — every ``checkpoint_every`` chunks and after the
    last — so that a resumed run's metrics are exactly an uninterrupted run's. Returns
    (state, finished); ``stop_after_chunks`` ends the loop early as a kill would (tests);
    ``should_stop(state)`` ends it for good before a chunk (early stopping: the state of the
    last checkpoint already says so, so a resumed run stops at once too).
    """
    if has_checkpoint:
        state, meta = run.load_checkpoint(state)
        state = jax.tree.map(jax.numpy.asarray, state)  # msgpack restores NumPy arrays
        run.truncate_metrics(meta["metrics_lines"])
    else:
        run.truncate_metrics(0)
    done = chunks_done(state)
    rows = run.read_metrics()
    elapsed0 = rows[-1]["time_s"] if rows else 0.0
    t0 = time.perf_counter()
    elapsed = lambda: elapsed0 + time.perf_counter() - t0  # noqa: E731

    with progress_bar(label, total=num_chunks, completed=done, enabled=progress) as bar:
        pending: list[dict] = []
        for chunk in range(done, num_chunks):
            if stop_after_chunks is not None and chunk - done >= stop_after_chunks:
                return state, False
            if should_stop is not None and should_stop(state):
                if pending:
                    run.append_metrics(pending)
                    run.save_checkpoint(state, {"chunks": chunk,
                                                "metrics_lines": run.metrics_line_count()})
                return state, True
            last = chunk + 1 == num_chunks
            state, row, status = step(state, chunk, last, elapsed)
            pending.append(row)
            if (chunk + 1) % checkpoint_every == 0 or last:
                run.append_metrics(pending)
                pending = []
                run.save_checkpoint(state, {"chunks": chunk + 1,
                                            "metrics_lines": run.metrics_line_count()})
            bar.update(status)
    return state, True


def mean_text(row: dict, name: str) -> str:
    """The mean of a per-learner / per-member metric for a progress bar ('-' when absent)."""
    v = [x for x in row.get(name) or [] if x is not None]
    return f"{np.mean(v):.2f}" if v else "-"
