"""Test-session set-up shared by every test directory.

The suite runs on every core (`-n auto --dist loadfile` in pyproject's addopts, through
pytest-xdist): each test file goes whole to one worker, so a module-scoped fixture (a trained
tiny run) is built once. A trained folder that several files share (the CooT stack of
tests/experiments/conftest.py) is built once per run for all workers: the ``built_once``
fixture.
`python -m pytest -n 0` runs everything in one process.

Why not ``--dist loadgroup`` with ``xdist_group`` marks: with pytest 9.2 and pytest-xdist 3.8
the group suffix xdist writes into ``item._nodeid`` no longer reaches ``item.nodeid``, so the
groups are silently ignored (every test then scheduled on its own; measured 2026-12-07).

Many tests compile the same programs (the tiny presets' training chunks, rollouts, agents):
JAX's persistent compilation cache, in one fresh folder per pytest run shared by its worker
processes, compiles each once per run (``COPLAY_TEST_JAX_CACHE`` names another folder; ``off``
turns it off). Nothing is kept between runs unless you name a folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

_CACHE_ENV = "COPLAY_TEST_JAX_CACHE"
if _CACHE_ENV not in os.environ:  # the controller makes the folder; xdist workers inherit it
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="coplay-jax-cache-")
_CACHE = {"JAX_COMPILATION_CACHE_DIR": os.environ[_CACHE_ENV],
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
if os.environ[_CACHE_ENV] != "off":
    # as environment variables too, so that the processes tests start (a study server, a
    # two-device evaluation, a benchmark) share the cache
    os.environ.update(_CACHE)

import jax  # noqa: E402 (after the cache's environment)
import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

if os.environ[_CACHE_ENV] != "off":
    jax.config.update("jax_compilation_cache_dir", _CACHE["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(scope="session")
def built_once(tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str, Callable[[Path], None]], Path]:
    """``built_once(name, build)``: see :func:`build_once`."""
    return lambda name, build: build_once(tmp_path_factory, name, build)


def build_once(factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], None]) -> Path:
    """The folder ``name`` made by ``build(folder)`` once per pytest run, shared by its xdist
    workers (the first to ask builds it under a file lock, the others wait and reuse it). A
    build that failed left no mark: the next to ask builds it again."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # workers have <run>/popen-gwN: share <run>
        root = root.parent
    folder, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder
