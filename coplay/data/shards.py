"""Datasets on disk as named shards of NumPy arrays, each written atomically.

A shard is one ``.npz`` file holding a dict of arrays with a shared leading (trajectory)
axis. Writes go to a temporary file that is renamed over the target, so a kill at any moment
leaves either no shard or a complete one; nothing else records which shards exist — the
caller (e.g. the PPI driver's checkpoint) decides which names belong to a finished state.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from coplay.runs import RunError, atomic_write_bytes


class ShardStore:
    """A folder of ``<name>.npz`` shards."""

    SUFFIX = ".npz"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _file(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"shard name {name!r}: must be a plain file name")
        return self.path / f"{name}{self.SUFFIX}"

    def write(self, name: str, arrays: dict[str, np.ndarray]) -> Path:
        """Atomically write ``arrays`` (same leading length) as shard ``name``."""
        lengths = {k: np.shape(v)[0] for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"shard {name!r}: arrays differ in length {lengths}")
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        path = self._file(name)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def _load(self, name: str, take):
        """``take(npz)`` of shard ``name``; a missing or damaged file is a RunError naming it."""
        path = self._file(name)
        try:
            with np.load(path) as f:
                return take(f)
        except FileNotFoundError:
            raise RunError(f"dataset shard {path} does not exist") from None
        except Exception as e:  # zip / pickle errors of a damaged file
            raise RunError(f"dataset shard {path} is unreadable: {e}") from None

    def read(self, name: str) -> dict[str, np.ndarray]:
        return self._load(name, lambda f: {k: f[k] for k in f.files})

    def length(self, name: str) -> int:
        """Trajectories in shard ``name`` (reads only one of its arrays)."""
        return self._load(name, lambda f: int(f[f.files[0]].shape[0]))

    def exists(self, name: str) -> bool:
        return self._file(name).is_file()

    def names(self) -> list[str]:
        """Shard names present on disk, sorted (temporary files are not shards)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name[: -len(self.SUFFIX)] for p in self.path.glob(f"*{self.SUFFIX}")
                      if not p.name.startswith("."))

    def read_many(self, names: list[str]) -> dict[str, np.ndarray]:
        """Concatenate shards along the trajectory axis (same keys in every shard)."""
        parts = [self.read(n) for n in names]
        if not parts:
            raise RunError("no dataset shards to read")
        keys = set(parts[0])
        for n, p in zip(names, parts, strict=True):
            if set(p) != keys:
                raise RunError(f"dataset shard {n!r} has arrays {sorted(p)}, "
                               f"expected {sorted(keys)}")
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}
