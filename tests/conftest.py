"""Test-session set-up shared by every test directory.

The suite runs on two processes (`-n auto --dist loadgroup` in pyproject's addopts, through
pytest-xdist): most of its time is XLA compilation, which runs on one core. Tests that share
a module- or session-scoped fixture of the project's own (a trained tiny run, the CooT stack
of tests/experiments/conftest.py, the web tests' compiled game runtime) are put in one
``xdist_group`` — joined transitively — so that no such fixture is built twice; every other
test is handed out on its own. `python -m pytest -n 0` runs everything in one process.

Many tests compile the same programs (the tiny presets' training chunks, rollouts, agents):
JAX's persistent compilation cache, in one fresh folder per pytest run shared by its worker
processes, compiles each once per run (``COPLAY_TEST_JAX_CACHE`` names another folder; ``off``
turns it off). Nothing is kept between runs unless you name a folder.
"""

from __future__ import annotations

import os
import tempfile

import jax
import pytest

_CACHE_ENV = "COPLAY_TEST_JAX_CACHE"
if _CACHE_ENV not in os.environ:  # the controller makes the folder; xdist workers inherit it
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="coplay-jax-cache-")
if os.environ[_CACHE_ENV] != "off":
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

_SHARED_SCOPES = ("module", "package", "session")


def shared_fixtures(item: pytest.Item) -> list[str]:
    """The project's own module/package/session-scoped fixtures in the test's closure, as
    ``<where it is defined>::<name>`` (pytest's and plugins' own, e.g. tmp_path_factory, are
    cheap and left out)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    out = []
    for name, defs in info.name2fixturedefs.items():
        fd = defs[-1] if defs else None
        if fd is not None and fd.scope in _SHARED_SCOPES and fd.baseid:
            out.append(f"{fd.baseid}::{name}")
    return sorted(out)


def xdist_groups(items: list[pytest.Item]) -> dict[str, str]:
    """nodeid -> group name, for the tests that share a fixture (union-find over fixtures)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    per_item = {item.nodeid: shared_fixtures(item) for item in items}
    for fixtures in per_item.values():
        for other in fixtures[1:]:
            a, b = find(fixtures[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {nodeid: find(fixtures[0]) for nodeid, fixtures in per_item.items() if fixtures}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = xdist_groups(items)
    for item in items:
        if item.nodeid in groups:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
