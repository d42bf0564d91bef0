"""Session fixtures shared by the CooT tests: one tiny stack of trained things, built once
through the CLI — HSP population (3 pairs: 1 evaluation partner, 2 in the training pool), MEP
stage 1 (2 members), the CooT dataset of the pool, a CooT run, a BC run, a MEP stage-2 run.
Each is built once per pytest run and shared by the xdist workers (``built_once``):
no test writes into them."""

from __future__ import annotations

from pathlib import Path

import pytest

from coplay.cli import main


def _coot_stack(d: Path) -> None:
    d.mkdir(parents=True)
    assert main(["populations", "train", "--preset", "tiny", "--num-members", "3",
                 "--out", str(d / "hsp")]) == 0
    assert main(["populations", "select", "--pop", str(d / "hsp"), "--eval-size", "1",
                 "--train-size", "2", "--eval-min-return", "-1", "--train-min-return",
                 "-1"]) == 0
    assert main(["populations", "train", "--kind", "mep", "--preset", "tiny",
                 "--num-members", "2", "--out", str(d / "mep")]) == 0
    assert main(["coot", "collect", "--preset", "tiny", "--collect.hsp", str(d / "hsp"),
                 "--collect.mep", str(d / "mep"), "--out", str(d / "data")]) == 0
    assert main(["coot", "train", "--preset", "tiny", "--dataset", str(d / "data"),
                 "--out", str(d / "coot")]) == 0
    assert main(["coot", "bc", "--preset", "tiny", "--dataset", str(d / "data"),
                 "--out", str(d / "bc")]) == 0


@pytest.fixture(scope="session")
def coot_stack(built_once):
    return built_once("coot-stack", _coot_stack)


@pytest.fixture(scope="session")
def coot_stack_mep2(coot_stack, built_once):
    """The stack with a tiny MEP stage-2 run in ``mep2``."""
    built_once("coot-stack/mep2", lambda out: main([
        "populations", "train", "--kind", "mep-adaptive", "--pop", str(coot_stack / "mep"),
        "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 0 or pytest.fail("mep2"))
    return coot_stack


@pytest.fixture(scope="session")
def coot_stack_responses(coot_stack, built_once):
    """A tiny --kind mep-responses run: a best response to each of the stack's 2 MEP members
    (its folder)."""
    return built_once("coot-stack-responses", lambda out: main([
        "populations", "train", "--kind", "mep-responses", "--pop", str(coot_stack / "mep"),
        "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 0
        or pytest.fail("mep-responses"))


@pytest.fixture(scope="session")
def self_play_tiny(built_once):
    """A finished tiny self-play PPO run (seed 2)."""
    return built_once("self-play-tiny", lambda out: main([
        "overcooked", "train", "--preset", "tiny", "--seed", "2", "--out", str(out)]) == 0
        or pytest.fail("self-play"))
