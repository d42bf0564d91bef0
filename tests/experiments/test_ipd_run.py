"""IPD runs end to end: the CLI, run folders, config errors, kill + resume."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay.agents.tabular import PROBES, zd_extortioner
from coplay.algos import a2c
from coplay.algos.a2c import A2CState
from coplay.cli import main
from coplay.config import ConfigError
from coplay.envs.matrix_games import MatrixGameParams
from coplay.eval import memory1
from coplay.experiments.ipd.presets import A2C_PRESETS as PRESETS
from coplay.experiments.ipd.runs import load_state, resolve_stage
from coplay.experiments.ipd.train import IPDTrainConfig, resolve, train_run
from coplay.runs import RunDir, RunError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["ipd", "train", "--preset", "tiny", "--seed", "3", "--out", str(out),
                 "--probe-every", "1"]) == 0
    return out


def test_tiny_run_writes_the_whole_folder(tiny_run):
    for name in ("config.json", "checkpoint.msgpack", "metrics.jsonl", "eval.json",
                 "report.md", "training.png", "within_episode.png"):
        assert (tiny_run / name).is_file(), name
    ev = json.loads((tiny_run / "eval.json").read_text())
    for pairing in ("learner_vs_learner", "learner_vs_tabular"):
        assert set(ev[pairing]) >= {"reward", "cooperation"}
    for probe in ("TFT", "AllC", "AllD"):
        assert set(ev["probes"][probe]) >= {"reward", "cooperation"}
    memory1 = ev["learner_vs_learner"]["memory1_second_half"]  # per learner, with a ZD fit
    assert len(memory1) == 2 and all(set(m["zd_fit"]) >= {"chi", "phi", "rms"} for m in memory1)
    assert "ZD fit" in (tiny_run / "report.md").read_text()
    assert ev["update"] == PRESETS["tiny"].num_updates
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [2, 4, 6]
    for r in rows:  # the periodic probe checks, one value per learner
        for name in ("TFT", "AllC", "AllD"):
            assert len(r[f"vs_{name}_reward"]) == 2
            assert all(0.0 <= c <= 1.0 for c in r[f"vs_{name}_coop_2nd_half"])


# --- eval.json checked against the payoff table, the seats and the probes' rules -------------
def _pairings(ev):
    return [("learner_vs_learner", ev["learner_vs_learner"]),
            ("learner_vs_tabular", ev["learner_vs_tabular"]), *ev["probes"].items()]


def _payoff_line():
    """(P, S - P, T - P): with T + S = R + P (true of the spec's table) the reward per round
    is P + (S - P) own_coop + (T - P) coplayer_coop, whatever the joint distribution."""
    (r, s), (t, p) = np.asarray(MatrixGameParams().payoff, np.float64)
    assert t + s == r + p
    return p, s - p, t - p


def test_eval_numbers_agree_with_the_payoff_table_and_the_seats(tiny_run):
    """Identities every eval.json must satisfy, whatever the learners learnt: a reward taken
    from the wrong seat, a co-player reading the wrong token, a probe that is not what it says
    or memory-1 counts from the wrong rounds all break one of them."""
    ev = json.loads((tiny_run / "eval.json").read_text())
    p0, own, other = _payoff_line()
    rounds = PRESETS["tiny"].num_rounds
    late = rounds - rounds // 2  # rounds in the "second half" (from round T // 2 on)
    for name, s in _pairings(ev):
        assert s["reward"] == pytest.approx(
            p0 + own * s["cooperation"] + other * s["coplayer_cooperation"], abs=1e-5), name
        curve = np.array(s["cooperation_curve"])
        co_curve = np.array(s["coplayer_cooperation_curve"])
        assert len(curve) == len(co_curve) == rounds
        assert curve.mean() == pytest.approx(s["cooperation"], abs=1e-4), name
        assert curve[rounds // 2:].mean() == pytest.approx(s["cooperation_second_half"],
                                                           abs=1e-4), name
        assert co_curve.mean() == pytest.approx(s["coplayer_cooperation"], abs=1e-4), name
        for m in s["memory1_second_half"]:  # every late round counted once, by its outcome
            counts = np.array(m["counts"])
            assert counts.sum() == late * ev["episodes"], name
            p = np.array([np.nan if x is None else x for x in m["p"]])
            assert np.isnan(p).tolist() == (counts == 0).tolist(), name
        # P(C | outcome) weighted by the outcomes' counts, summed over the learners, is the
        # cooperation of the second half
        coop_late = sum(np.nansum(np.array([np.nan if x is None else x for x in m["p"]])
                                  * np.array(m["counts"]))
                        for m in s["memory1_second_half"])
        n_late = sum(sum(m["counts"]) for m in s["memory1_second_half"])
        assert coop_late / n_late == pytest.approx(s["cooperation_second_half"], abs=2e-4), name
    # two learners playing each other: learner 0's co-player is learner 1, so its reward is
    # set by learner 1's cooperation, and the same games seen from the other seat swap cd / dc
    ll = ev["learner_vs_learner"]
    coop, reward = ll["per_learner"]["cooperation"], ll["per_learner"]["reward"]
    for i in (0, 1):
        assert reward[i] == pytest.approx(p0 + own * coop[i] + other * coop[1 - i], abs=1e-5)
    c0, c1 = (m["counts"] for m in ll["memory1_second_half"])
    assert c0 == [c1[0], c1[2], c1[1], c1[3]]
    assert ll["coplayer_cooperation_curve"] == ll["cooperation_curve"]
    # the probes do what their tables say
    probes = ev["probes"]
    assert probes["AllC"]["coplayer_cooperation_curve"] == [1.0] * rounds
    assert probes["AllD"]["coplayer_cooperation_curve"] == [0.0] * rounds
    tft = probes["TFT"]  # cooperates first, then copies the learner's previous move
    assert tft["coplayer_cooperation_curve"] == [1.0] + tft["cooperation_curve"][:-1]
    for m in probes["AllC"]["memory1_second_half"]:  # first-person: the co-player's move last
        assert m["counts"][1] == m["counts"][3] == 0  # never cd, dd
    for m in probes["AllD"]["memory1_second_half"]:
        assert m["counts"][0] == m["counts"][2] == 0  # never cc, dc


def memory1_gru(params, probs):
    """GRU parameters (learner axis kept) whose policy is the memory-1 table ``probs`` (5,):
    the token's one-hot goes through the embedding into the GRU's candidate state (update
    gate shut, no recurrence), so the hidden state is +-tanh(5) per token, and the policy
    head reads P(C | token) off it; every other input is ignored."""
    p = jax.tree.map(lambda x: np.zeros(np.shape(x), np.float32), params)["params"]
    for k in range(5):
        p["embed_obs"]["kernel"][:, k, k] = 1.0
        p["gru"]["in"]["kernel"][:, k, k] = 10.0
        p["gru"]["in"]["bias"][:, k] = -5.0
    p["gru"]["iz"]["bias"][:] = -30.0  # z = 0: the new hidden state is the candidate alone
    swish = lambda x: x / (1.0 + np.exp(-x))  # noqa: E731
    hi, lo = swish(np.tanh(5.0)), swish(-np.tanh(5.0))
    q = np.clip(np.asarray(probs, np.float64), 1e-6, 1 - 1e-6)
    w = (np.log(q) - np.log1p(-q)) / (hi - lo)  # logit of C minus logit of D, per token
    p["policy"]["kernel"][:, :5, 0] = w
    p["policy"]["bias"][:, 0] = -lo * w.sum()
    return {"params": p}


def test_eval_of_a_hand_made_extortioner(tiny_run, tmp_path):
    """Both learners replaced by a Press-Dyson extortioner (chi 3): `ipd eval` must recover
    its table and chi from the played rounds, and every pairing's reward and per-round
    cooperation must match the exact Markov chain of the two memory-1 policies."""
    run = tmp_path / "zd"
    shutil.copytree(tiny_run, run)
    chi = 3.0
    table = zd_extortioner(chi, 0.8 / (1 + 2 * chi))  # P(C | start, cc, cd, dc, dd)
    _, _, state = load_state(run)
    _, meta = RunDir(run).load_checkpoint(state)
    RunDir(run).save_checkpoint(state.replace(params=memory1_gru(state.params, table)), meta)
    episodes = 1024
    assert main(["ipd", "eval", str(run), "--episodes", str(episodes)]) == 0
    ev = json.loads((run / "eval.json").read_text())
    # vs random memory-1 co-players and vs Random every outcome is seen often
    for name in ("learner_vs_tabular", "Random"):
        stats = ev[name] if name in ev else ev["probes"][name]
        for m in stats["memory1_second_half"]:
            counts, p = np.array(m["counts"]), np.array(m["p"], np.float64)
            assert counts.min() > 1000, (name, counts)
            se = np.sqrt(table[1:] * (1 - table[1:]) / counts)
            np.testing.assert_array_less(np.abs(p - table[1:]), 4 * se + 1e-3)
            assert m["zd_fit"]["chi"] == pytest.approx(chi, abs=0.6), (name, m["zd_fit"])
            assert m["zd_fit"]["rms"] < 0.03
    # exact expectations of the chain vs the sampled eval (2 x 1024 episodes: <= 4.5 sigma)
    rounds = PRESETS["tiny"].num_rounds
    opponents = {"learner_vs_learner": table, **{k: PROBES[k] for k in ev["probes"]}}
    for name, co in opponents.items():
        stats = ev[name] if name in ev else ev["probes"][name]
        x, y = jnp.asarray(table), jnp.asarray(co, jnp.float32)
        want = float(memory1.finite_horizon_returns(x, y, MatrixGameParams(), rounds)[0]) / rounds
        assert stats["reward"] == pytest.approx(want, abs=0.05), name
        coop = np.asarray(memory1.cooperation_per_round(x, y, rounds))  # (T, 2)
        np.testing.assert_allclose(stats["cooperation_curve"], coop[:, 0], atol=0.05,
                                   err_msg=name)
        np.testing.assert_allclose(stats["coplayer_cooperation_curve"], coop[:, 1], atol=0.05,
                                   err_msg=name)


def test_eval_and_report_commands(tiny_run, tmp_path):
    assert main(["ipd", "eval", str(tiny_run), "--episodes", "16"]) == 0
    assert json.loads((tiny_run / "eval.json").read_text())["episodes"] == 16
    assert main(["ipd", "report", str(tiny_run), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "seed 3" in text and (tmp_path / "rep" / "training.png").is_file()


def test_report_keeps_runs_that_share_a_seed_apart(tiny_run, tmp_path):
    """Two experiments' seed-3 runs in one report: both rows, each with its own figures."""
    import shutil

    copies = [tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "other"]
    for i, c in enumerate(copies):
        shutil.copytree(tiny_run, c)
        ev = json.loads((c / "eval.json").read_text())
        ev["learner_vs_learner"]["cooperation"] = 0.111 * (i + 1)
        (c / "eval.json").write_text(json.dumps(ev))
    assert main(["ipd", "report", *map(str, copies), "--out", str(tmp_path / "rep")]) == 0
    rows = [line for line in (tmp_path / "rep" / "report.md").read_text().splitlines()
            if line.startswith("| seed 3")]
    assert len(rows) == 3
    assert [r.split(" | ")[4] for r in rows] == ["0.111", "0.222", "0.333"]
    assert len({r.split(" | ")[0] for r in rows}) == 3  # three distinct labels
    assert "[other]" in rows[2] and str(copies[0]) in rows[0]


def test_report_counts_claims_over_mixed_pool_runs_and_checks_the_ablation(tiny_run, tmp_path):
    """A no-tabular run is not a failed seed: the mixed-pool claims count plain runs only, and
    each ablation gets its own check (cooperation <= 0.3)."""
    import shutil

    plain, notab, oid = tmp_path / "plain", tmp_path / "notab", tmp_path / "oid"
    for run, coop, ablation in ((plain, 0.9, "none"), (notab, 0.25, "no-tabular"),
                                (oid, 0.5, "opponent-id")):
        shutil.copytree(tiny_run, run)
        ev = json.loads((run / "eval.json").read_text())
        ev["learner_vs_learner"]["cooperation"] = coop
        (run / "eval.json").write_text(json.dumps(ev))
        cfg = json.loads((run / "config.json").read_text())
        cfg["ablation"] = ablation
        (run / "config.json").write_text(json.dumps(cfg))
    assert main(["ipd", "report", str(plain), str(notab), str(oid),
                 "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    claim = next(line for line in text.splitlines() if line.startswith("| learner vs learner coop"))
    assert claim.endswith("| 1/1 |") and "0.250" not in claim
    assert "mean 0.900, min 0.900, max 0.900 (n = 1)" in text
    assert ("`no-tabular` (no-tabular seed 3): learner vs learner cooperation <= 0.3: "
            "0.250 ✓") in text
    assert ("`opponent-id` (opponent-id seed 3): learner vs learner cooperation <= 0.3: "
            "0.500 ✗") in text


def test_fresh_run_refuses_to_overwrite(tiny_run, capsys):
    assert main(["ipd", "train", "--preset", "tiny", "--out", str(tiny_run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_with_another_config_is_refused(tiny_run, capsys):
    code = main(["ipd", "train", "--preset", "tiny", "--seed", "4", "--out", str(tiny_run),
                 "--resume"])
    assert code == 2
    assert "seed" in capsys.readouterr().err


@pytest.mark.parametrize("args, field", [
    (["--set", "learning_rate=-1"], "learning_rate"),
    (["--set", "hidden_sise=3"], "hidden_sise"),
    (["--set", "tabular_fraction=abc"], "tabular_fraction"),
    (["--set", "num_minibatches=5"], "num_minibatches"),
    (["--eval-episodes", "0"], "eval_episodes"),
])
def test_bad_config_fails_before_compiling_and_names_the_field(args, field, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["ipd", "train", "--preset", "tiny", "--out", str(out), *args]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_unknown_preset_and_ablation_are_refused():
    with pytest.raises(ConfigError, match="preset"):
        resolve(IPDTrainConfig(preset="huge"))
    with pytest.raises(ConfigError, match="ablation"):
        resolve(IPDTrainConfig(preset="tiny", ablation="no-learning"))


def test_ablations_change_the_resolved_config():
    assert resolve(IPDTrainConfig(preset="tiny", ablation="no-tabular")).tabular_fraction == 0
    assert resolve(IPDTrainConfig(preset="tiny", ablation="opponent-id")).use_opponent_id


def test_stages_of_the_population_default_train_as_its_pair_would():
    """`default` trains 8 learners x 128 episodes; its mechanism stages keep the batch they
    were measured with (512 per learner), a two-learner config's stages keep their own."""
    default = PRESETS["default"]
    assert (default.num_learners, default.episodes_per_update) == (8, 128)
    assert resolve(IPDTrainConfig()).num_learners == 8
    want = {"step1": (1, 1.0), "step2": (2, 0.0), "step3": (2, 0.0)}
    for stage, (learners, tabular) in want.items():
        for base, episodes in ((default, 512), (PRESETS["paper"], 4096)):
            algo = resolve_stage(IPDTrainConfig(stage=stage), base)
            assert (algo.num_learners, algo.episodes_per_update, algo.tabular_fraction) == (
                learners, episodes, tabular), (stage, base.num_learners)


def test_lookahead_run_killed_between_syncs_resumes_exactly(tmp_path):
    """Lookahead every 4 updates, chunks of 2: the kill falls between two syncs, so the
    checkpoint must carry the slow weights apart from the fast ones."""
    look = dataclasses.replace(PRESETS["tiny"], num_updates=8, lookahead_sync_period=4)
    cfg = IPDTrainConfig(preset="tiny", seed=5, a2c=look)
    straight = train_run(cfg, tmp_path / "straight", progress=False, evaluate_at_end=False)
    killed = train_run(cfg, tmp_path / "killed", stop_after_chunks=3, progress=False,
                       evaluate_at_end=False)
    assert any(not np.array_equal(f, s) for f, s in zip(
        jax.tree.leaves(killed.params), jax.tree.leaves(killed.slow_params), strict=True))
    resumed = train_run(cfg, tmp_path / "killed", resume=True, progress=False,
                        evaluate_at_end=False)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    for f, s in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(resumed.slow_params),
                    strict=True):
        np.testing.assert_allclose(f, s, rtol=1e-6, atol=1e-9)  # the run ends on a sync


def test_killed_and_resumed_run_ends_with_the_same_parameters(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=11)
    straight = train_run(cfg, tmp_path / "straight", progress=False, evaluate_at_end=False)
    # "kill" after the first chunk, leaving a stray metrics line past the checkpoint
    train_run(cfg, tmp_path / "killed", stop_after_chunks=1, progress=False,
              evaluate_at_end=False)
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as f:
        f.write('{"update": 999, "partial": true}\n')
    resumed = train_run(cfg, tmp_path / "killed", resume=True, progress=False,
                        evaluate_at_end=False)
    assert int(resumed.update) == int(straight.update) == PRESETS["tiny"].num_updates
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    updates = [r["update"] for r in RunDir(tmp_path / "killed").read_metrics()]
    assert updates == [2, 4, 6]


def test_corrupt_checkpoint_gives_a_clear_error_and_is_left_in_place(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=1)
    train_run(cfg, tmp_path / "r", stop_after_chunks=1, progress=False, evaluate_at_end=False)
    ckpt = tmp_path / "r" / "checkpoint.msgpack"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="corrupt"):
        train_run(cfg, tmp_path / "r", resume=True, progress=False, evaluate_at_end=False)
    assert ckpt.read_bytes() == b"not a checkpoint"


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    assert main(["ipd", "eval", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_state_round_trips_through_a_checkpoint(tmp_path):
    cfg = IPDTrainConfig(preset="tiny")
    state = train_run(cfg, tmp_path / "r", stop_after_chunks=1, progress=False,
                      evaluate_at_end=False)
    assert isinstance(state, A2CState)
    init, _ = a2c.make_train(dataclasses.replace(PRESETS["tiny"]))
    loaded, meta = RunDir(tmp_path / "r").load_checkpoint(init(jax.random.PRNGKey(5)))
    assert meta["chunks"] == 1 and int(loaded.update) == 2  # 2 updates per chunk
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)



def test_probe_checks_do_not_change_training(tmp_path):
    cfg = IPDTrainConfig(preset="tiny", seed=5)
    with_probes = train_run(dataclasses.replace(cfg, probe_every=1), tmp_path / "a",
                            progress=False, evaluate_at_end=False)
    without = train_run(dataclasses.replace(cfg, probe_every=0), tmp_path / "b",
                        progress=False, evaluate_at_end=False)
    for x, y in zip(jax.tree.leaves(with_probes.params), jax.tree.leaves(without.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    rows = RunDir(tmp_path / "b").read_metrics()
    assert not any("vs_TFT_reward" in r for r in rows)
