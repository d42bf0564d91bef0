"""The three-step mechanism runs (step1 -> step2 -> step3) chained through run folders."""

import dataclasses

import jax
import numpy as np
import pytest

from coplay.cli import main
from coplay.config import ConfigError
from coplay.experiments.ipd.train import IPDTrainConfig, load_learner, resolve, train_run
from coplay.runs import RunError


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("mech")
    step1 = root / "step1"
    assert main(["ipd", "train", "--preset", "tiny", "--stage", "step1", "--out", str(step1),
                 "--eval-episodes", "8", "--probe-every", "0"]) == 0
    step2 = [root / f"step2-{s}" for s in (0, 1)]
    for s, out in enumerate(step2):
        assert main(["ipd", "train", "--preset", "tiny", "--stage", "step2", "--seed", str(s),
                     "--init-from", str(step1), "--out", str(out), "--eval-episodes", "8",
                     "--probe-every", "0"]) == 0
    return step1, step2


def test_step1_trains_one_learner_on_tabular_agents_only():
    algo = resolve(IPDTrainConfig(preset="tiny", stage="step1"))
    assert algo.num_learners == 1 and algo.tabular_fraction == 1.0


def test_step2_victim_is_the_frozen_step1_agent(chain):
    step1, step2 = chain
    algo = resolve(IPDTrainConfig(preset="tiny", stage="step2", init_from=(str(step1),)))
    victim = load_learner(str(step1), algo)
    after = load_learner(f"{step2[0]}:1", algo)
    for a, b in zip(_leaves(victim), _leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)  # played every update, never changed
    extorter = load_learner(f"{step2[0]}:0", algo)
    assert any(not np.array_equal(a, b) for a, b in
               zip(_leaves(victim), _leaves(extorter), strict=True))


def test_step3_starts_from_the_two_extorters(chain, tmp_path):
    _, step2 = chain
    cfg = IPDTrainConfig(preset="tiny", stage="step3", init_from=(str(step2[0]), str(step2[1])))
    algo = resolve(cfg)
    state = train_run(cfg, tmp_path / "step3", stop_after_chunks=0, progress=False)
    for i, source in enumerate(cfg.init_from):
        for a, b in zip(_leaves(jax.tree.map(lambda x, i=i: x[i], state.params)),
                        _leaves(load_learner(source, algo)), strict=True):
            np.testing.assert_array_equal(a, b)


def test_stage_errors_name_the_problem(chain, tmp_path):
    step1, _ = chain
    with pytest.raises(ConfigError, match="init_from"):
        resolve(IPDTrainConfig(preset="tiny", stage="step2"))
    with pytest.raises(ConfigError, match="init_from"):
        resolve(IPDTrainConfig(preset="tiny", stage="step3", init_from=(str(step1),)))
    with pytest.raises(RunError, match="not a trained IPD run"):
        resolve(IPDTrainConfig(preset="tiny", stage="step2", init_from=(str(tmp_path),)))
    bigger = IPDTrainConfig(preset="tiny", stage="step2", init_from=(str(step1),))
    algo = dataclasses.replace(resolve(bigger), hidden_size=32)
    with pytest.raises(ConfigError, match="hidden_size"):
        load_learner(str(step1), algo)
    with pytest.raises(ConfigError, match="no learner 3"):
        load_learner(f"{step1}:3", resolve(bigger))
