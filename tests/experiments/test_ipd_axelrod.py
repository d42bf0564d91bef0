"""coplay IPD agents in the Axelrod library: the exported player plays coplay's own rollout,
a memory-1 TFT table scores as the library's TitForTat, the ``coplay ipd axelrod`` command."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

axl = pytest.importorskip("axelrod")

from coplay.agents.tabular import PROBES  # noqa: E402
from coplay.algos import ppi  # noqa: E402
from coplay.algos.ipd_rollout import Opponents, rollout  # noqa: E402
from coplay.cli import main  # noqa: E402
from coplay.envs.matrix_games import MatrixGameParams, joint_rewards  # noqa: E402
from coplay.experiments.ipd import axelrod as ipd_axelrod  # noqa: E402
from coplay.experiments.ipd.axelrod import (  # noqa: E402
    AxelrodMissing,
    LearnerPlayer,
    axelrod_game,
    learner_agents,
    memory1_player,
    probe_stats,
    strategy_classes,
)
from coplay.experiments.ipd.presets import PPI_PRESETS  # noqa: E402
from coplay.experiments.run_agents import ppi_agent  # noqa: E402
from coplay.runs import RunError  # noqa: E402

ROUNDS = 20  # the tiny preset's game length


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["ipd", "train", "--preset", "tiny", "--seed", "3", "--eval-episodes", "8",
                 "--probe-every", "0", "--out", str(out)]) == 0
    return out


def _actions(match_result):
    return np.array([[a.value, b.value] for a, b in match_result], np.int32)


# same strategy, two names: the library's and coplay's memory-1 table
DETERMINISTIC = [("TitForTat", "TFT"), ("Defector", "AllD"), ("Cooperator", "AllC"),
                 ("WinStayLoseShift", "Pavlov")]


@pytest.mark.parametrize("seed", [0, 11])
def test_a_match_plays_coplays_rollout_on_the_same_draws(tiny_run, seed):
    agent = learner_agents(tiny_run, (1,))[0]
    module, params = agent.spec, agent.params
    for strategy, table in DETERMINISTIC:
        player = LearnerPlayer(agent, "learner 1")
        played = _actions(axl.Match((player, getattr(axl, strategy)()), turns=ROUNDS,
                                    seed=seed).play())
        probs = jnp.broadcast_to(jnp.asarray(PROBES[table]), (1, 1, 5))
        traj = rollout(player.rollout_key, module, jax.tree.map(lambda x: x[None], params),
                       Opponents(probs, jnp.zeros((1,), bool)), MatrixGameParams(), ROUNDS)
        np.testing.assert_array_equal(played[:, 0], np.asarray(traj.action[:, 0, 0]))
        np.testing.assert_array_equal(played[:, 1], np.asarray(traj.opponent_action[:, 0, 0]))
        again = _actions(axl.Match((LearnerPlayer(agent, "x"), getattr(axl, strategy)()),
                                   turns=ROUNDS, seed=seed).play())
        np.testing.assert_array_equal(again, played)  # Axelrod's seeding holds


def test_the_seed_decides_the_draws(tiny_run):
    agent = learner_agents(tiny_run, (0,))[0]
    plays = {tuple(_actions(axl.Match((LearnerPlayer(agent), axl.TitForTat()), turns=ROUNDS,
                                      seed=s).play())[:, 0]) for s in range(6)}
    assert len(plays) > 1


def test_a_memory1_tft_table_scores_exactly_as_titfortat():
    others = [axl.Cooperator, axl.Defector, axl.Grudger, axl.Random, axl.WinStayLoseShift,
              axl.Alternator, axl.SuspiciousTitForTat, axl.GTFT, axl.FirstByJoss]

    def play(first):
        t = axl.Tournament([first] + [s() for s in others], game=axelrod_game(), turns=30,
                           repetitions=3, seed=5)
        return t.play(processes=None, progress_bar=False)

    ours, theirs = play(memory1_player(PROBES["TFT"], "coplay TFT")), play(axl.TitForTat())
    assert ours.scores == theirs.scores
    assert ours.payoff_matrix == theirs.payoff_matrix
    assert ours.normalised_cooperation == theirs.normalised_cooperation
    assert ours.ranking == theirs.ranking
    assert ours.players[0] == "coplay TFT" and theirs.players[0] == "Tit For Tat"


def test_classifiers_say_what_the_player_is(tiny_run):
    learner = LearnerPlayer(learner_agents(tiny_run, (0,))[0])
    assert axl.Classifiers["memory_depth"](learner) == float("inf")
    assert axl.Classifiers["stochastic"](learner) is True
    assert axl.Classifiers.obey_axelrod(learner)
    tft, gtft = memory1_player(PROBES["TFT"]), memory1_player(PROBES["GTFT"])
    assert axl.Classifiers["memory_depth"](tft) == 1
    assert axl.Classifiers["stochastic"](tft) is False
    assert axl.Classifiers["stochastic"](gtft) is True
    clone = learner.clone()  # what a tournament plays
    assert clone.agent is learner.agent and repr(clone) == repr(learner)
    assert axl.Classifiers["stochastic"](clone) is True


def test_the_payoff_table_is_the_axelrod_game():
    game = axelrod_game()
    assert game.RPST() == (1.0, 0.0, -1.0, 2.0)
    for a in (0, 1):
        for b in (0, 1):
            want = joint_rewards(jnp.array([a, b]), MatrixGameParams())
            assert game.score((a, b)) == tuple(float(x) for x in want)


def test_a_ppi_learner_plays_reproducibly():
    cfg = PPI_PRESETS["tiny"]
    agent = ppi_agent(cfg, ppi.init_params(cfg, jax.random.PRNGKey(0)), "ppi")

    def play(seed):
        player = LearnerPlayer(agent, "ppi")
        return _actions(axl.Match((player, axl.TitForTat()), turns=ROUNDS, seed=seed).play())

    np.testing.assert_array_equal(play(3), play(3))


def test_probe_stats_against_a_known_sequence():
    agent = memory1_player(PROBES["TFT"]).agent  # TFT vs Alternator: C then Alternator lagged
    stats = probe_stats([agent], axl.Alternator, 10, 2, seed=0)
    np.testing.assert_allclose(stats["cooperation_curve"], [1, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(stats["coplayer_cooperation_curve"], [1, 0] * 5)
    # (C,C) = 1, then (C,D) = -1 five times and (D,C) = 2 four times on the coplay table
    assert stats["reward"] == pytest.approx((1 - 5 + 8) / 10)
    assert stats["strategy"] == "Alternator" and stats["episodes"] == 2


def test_strategy_names_and_bad_input(tmp_path, monkeypatch):
    assert strategy_classes(("TitForTat", "tit for tat", "FirstByJoss")) == [
        axl.TitForTat, axl.TitForTat, axl.FirstByJoss]
    assert len(strategy_classes(("all",))) == len(axl.strategies) > 200
    with pytest.raises(ValueError, match="TitForTatt.*closest: TitForTat"):
        strategy_classes(("TitForTatt",))
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "overcooked-ppo"}))
    with pytest.raises(RunError, match="not an IPD run folder"):
        learner_agents(tmp_path)
    with pytest.raises(ValueError, match="LearnerPlayer needs an IPD agent"):
        LearnerPlayer("not an agent")
    monkeypatch.setattr(ipd_axelrod, "axl", None)
    with pytest.raises(AxelrodMissing, match=r"pip install 'coplay\[axelrod\]'"):
        axelrod_game()


def test_the_command_writes_tournament_moran_and_probes(tiny_run, tmp_path, capsys):
    out = tmp_path / "ax"
    assert main(["ipd", "axelrod", str(tiny_run), "--learners", "0", "1", "--strategies",
                 "TitForTat", "Defector", "Cooperator", "Random", "--repetitions", "2",
                 "--moran", "Defector", "--moran-generations", "50", "--probes", "TitForTat",
                 "Defector", "--probe-episodes", "3", "--out", str(out)]) == 0
    for name in ("results.json", "summary.csv", "report.md", "boxplot.png", "payoff.png",
                 "moran.png", "within_episode.png"):
        assert (out / name).is_file(), name
    rec = json.loads((out / "results.json").read_text())
    t = rec["tournament"]
    assert t["learners"] == ["coplay A2C learner 0", "coplay A2C learner 1"]
    assert sorted(t["rank"].values()) == list(range(1, 7)) and rec["turns"] == ROUNDS
    coop, pay = np.array(t["cooperation_matrix"]), np.array(t["payoff_matrix"])
    d, c = t["players"].index("Defector"), t["players"].index("Cooperator")
    for i in range(2):  # against AllD each C scores S = -1, each D P = 0; against AllC R or T
        assert pay[i, d] == pytest.approx(-coop[i, d])
        assert pay[i, c] == pytest.approx(2 - coop[i, c])
    assert rec["moran"]["players"] == ["coplay A2C learner 0", "Defector"]
    assert rec["probes"]["Defector"]["reward"] == pytest.approx(
        -rec["probes"]["Defector"]["cooperation"])
    assert "## Ranking" in (out / "report.md").read_text()
    assert main(["ipd", "axelrod", str(tiny_run), "--strategies", "NoSuchStrategy",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "unknown Axelrod strategy 'NoSuchStrategy'" in capsys.readouterr().err


def test_an_exported_runs_learners_enter_from_the_zoo_by_its_name(tiny_run, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("COPLAY_ZOO", str(tmp_path / "zoo"))
    assert main(["zoo", "export", "--run", str(tiny_run), "--name", "ipd/tiny"]) == 0
    run_agents = learner_agents(tiny_run)
    zoo_agents = learner_agents("zoo:ipd/tiny")
    assert len(zoo_agents) == len(run_agents) >= 2
    picked = learner_agents("zoo:ipd/tiny", (1,))
    assert len(picked) == 1
    # the same learners in the same order, up to the zoo's float16 weights
    for agent, ref in zip((*zoo_agents, *picked), (*run_agents, run_agents[1]), strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4),
                     agent.params, ref.params)
    played = _actions(axl.Match((LearnerPlayer(picked[0]), axl.TitForTat()), turns=ROUNDS,
                                seed=4).play())
    assert played.shape == (ROUNDS, 2)
    with pytest.raises(ValueError, match="learner 9: zoo:ipd/tiny has learners"):
        learner_agents("zoo:ipd/tiny", (9,))
    one = "zoo:ipd/tiny/learner00"
    assert len(learner_agents(one)) == 1
    with pytest.raises(ValueError, match="a zoo entry holds one agent"):
        learner_agents(one, (0,))
