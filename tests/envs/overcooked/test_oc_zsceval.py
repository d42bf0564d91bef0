"""Differential tests against ZSC-Eval's own Overcooked code (old and new codebases).

ZSC-Eval is not installable from a registry: set ZSCEVAL_PATH to a directory holding its
``zsceval/envs/overcooked*/.../overcooked_ai_py`` sources (see docs/overcooked.md); skipped
otherwise. Compares the state, the full 17 / 29 event vectors of both cooks, sparse and shaped
rewards and the 20 / 25-channel observations at every step.
"""

from __future__ import annotations

import os

import pytest

if not os.environ.get("ZSCEVAL_PATH"):
    pytest.skip("ZSCEVAL_PATH not set", allow_module_level=True)

from coplay.envs.overcooked import Overcooked, layout_names  # noqa: E402
from coplay.testing.overcooked_difftest import make_replay  # noqa: E402
from coplay.testing.zsceval_ref import run_zsceval_differential  # noqa: E402


@pytest.mark.parametrize("name", layout_names())
def test_matches_zsceval(name):
    env = Overcooked(name)
    replay = make_replay(env)
    problems = []
    for seed, (policy, random_starts) in enumerate(
        [("random", False), ("scripted", False), ("random", True)]
    ):
        problems += run_zsceval_differential(env, 3, 100, seed, policy, random_starts,
                                             with_obs=True, replay=replay)
    assert problems == [], "\n".join(problems[:10])
