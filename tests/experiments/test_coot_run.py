"""The CooT pipeline end to end on tiny populations through the CLI: collect (resumable),
train (exact resume, early stopping), BC, evaluation against held-out partners, report; bad
input named."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest

from coplay import zoo
from coplay.cli import main
from coplay.config import ConfigError
from coplay.data.shards import ShardStore
from coplay.envs.overcooked import Overcooked
from coplay.experiments.coot.data import load_dataset, play_pair
from coplay.experiments.coot.eval import read_eval
from coplay.experiments.coot.presets import COOT_PRESETS
from coplay.experiments.coot.train import CootRunConfig, split_pairs, train_coot
from coplay.experiments.refs import AgentRef, check_obs, resolve
from coplay.runs import RunError


@pytest.fixture(scope="module")
def pops(coot_stack):
    """The shared tiny stack (tests/experiments/conftest.py)."""
    return coot_stack


@pytest.fixture(scope="module")
def dataset(coot_stack):
    return coot_stack / "data"


def test_dataset_holds_every_training_pair_in_both_seats(pops, dataset):
    ds = load_dataset(dataset)
    sel = json.loads((pops / "hsp" / "selection.json").read_text())
    names = [p.name for p in ds.pairs]
    assert names == [f"hsp{m:02d}-final" for m in sel["train"]] + ["mep00", "mep01"]
    assert not set(sel["eval"]) & {p.info["member"] for p in ds.pairs if p.info["kind"] == "hsp"}
    assert ds.episodes.obs.shape == (8, 4, 20, 5 * 5 * 20)  # (pairs x seats, n, T, D)
    np.testing.assert_array_equal(ds.group_cook, [0, 1] * 4)
    np.testing.assert_allclose(ds.returns, ds.episodes.reward.sum(-1))
    man = json.loads((dataset / "manifest.json").read_text())
    assert [p["shard"] for p in man["pairs"]] == [f"pair{i:03d}" for i in range(4)]


def test_collection_resumes_and_refuses_a_cut_shard(pops, dataset, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    before = ShardStore(copy).read("pair002")
    (copy / "pair002.npz").unlink()  # as if killed before pair 2 was written
    assert main(["coot", "collect", "--preset", "tiny", "--collect.hsp", str(pops / "hsp"),
                 "--collect.mep", str(pops / "mep"), "--out", str(copy)]) == 0
    after = ShardStore(copy).read("pair002")
    for k in before:  # same seed per pair: the same rollouts
        np.testing.assert_array_equal(before[k], after[k])
    data = (copy / "pair001.npz").read_bytes()
    (copy / "pair001.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match="pair001.npz is unreadable"):
        load_dataset(copy)
    # another config into the same folder is refused
    assert main(["coot", "collect", "--preset", "tiny", "--collect.hsp", str(pops / "hsp"),
                 "--collect.mep", "None", "--out", str(copy)]) == 1


def test_noisy_context_episodes_are_stored_and_never_queries(pops, tmp_path):
    out = tmp_path / "noisy"
    assert main(["coot", "collect", "--preset", "tiny", "--collect.hsp", str(pops / "hsp"),
                 "--collect.mep", str(pops / "mep"), "--collect.context-noise", "0.5", "1.0",
                 "--collect.noisy-episodes-per-seat", "2", "--out", str(out)]) == 0
    ds = load_dataset(out)
    clean = load_dataset(pops / "data")
    # 4 clean episodes per seat, then 2 at each noise level; queries only from the clean ones
    assert ds.episodes.obs.shape[:2] == (8, 8)
    np.testing.assert_array_equal(ds.episodes.query_ok, np.tile([True] * 4 + [False] * 4, (8, 1)))
    np.testing.assert_array_equal(clean.episodes.query_ok, np.ones((8, 4), bool))
    # the clean episodes are those of a collection without noise (same keys)
    np.testing.assert_array_equal(ds.episodes.action[:, :4], clean.episodes.action)
    assert main(["coot", "collect", "--preset", "tiny", "--collect.context-noise", "1.5",
                 "--out", str(tmp_path / "bad")]) == 1


def test_the_papers_pool_mixes_mid_skill_episodes_and_trained_best_responses(
        pops, coot_stack_responses, tmp_path, monkeypatch):
    """HSP pairs with some episodes at mid skill inside the pair; MEP members with a best
    response trained against them (--kind mep-responses)."""
    resp = coot_stack_responses
    out = tmp_path / "paper"
    args = ["coot", "collect", "--preset", "tiny", "--collect.hsp", str(pops / "hsp"),
            "--collect.mep", str(pops / "mep"), "--collect.mep-responses", str(resp),
            "--collect.mid-episodes-per-seat", "1", "--out", str(out)]
    assert main(args) == 0
    ds = load_dataset(out)
    sel = json.loads((pops / "hsp" / "selection.json").read_text())
    assert [p.name for p in ds.pairs] == [f"hsp{m:02d}-final" for m in sel["train"]] + \
        ["mep00-br", "mep01-br"]
    assert ds.episodes.obs.shape[:2] == (8, 4)  # 4 per seat, mid ones among them
    hsp, mep = ds.pairs[0], ds.pairs[-1]
    m = hsp.info["member"]
    assert hsp.mid == (AgentRef(str(pops / "hsp"), m, 0, "mid"),
                       AgentRef(str(pops / "hsp"), m, 1, "mid"))
    assert mep.partner == AgentRef(str(pops / "mep"), 1) and mep.br == AgentRef(str(resp), 1)
    store = ShardStore(out)
    mid = store.read("pair000")["mid"]
    np.testing.assert_array_equal(mid, [False] * 3 + [False] * 3 + [True] * 2)
    assert not store.read("pair002")["mid"].any()  # MEP pairs: final skill only
    # the mid-skill episodes are the mid-skill pair's: the same keys give the same play
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), 0), 10_000)
    want = play_pair(Overcooked("random1"), (hsp.mid[0].load(), hsp.mid[1].load()), key, 1, 20)
    np.testing.assert_array_equal(store.read("pair000")["action"][6:], want["action"])
    bad = [a if a != "1" else "4" for a in args[:-1]] + [str(tmp_path / "bad")]
    assert main(bad) == 1  # mid episodes must leave some at final skill

    # the same pool from the zoo alone: the HSP population with its training pool's
    # mid-skill snapshots, the MEP population, the best responses and their index
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "zoo"))
    for export in (["--pop", str(pops / "hsp"), "--prefix", "t/hsp", "--mid", "train"],
                   ["--pop", str(pops / "mep"), "--prefix", "t/mep"],
                   ["--run", str(resp), "--name", "t/resp"]):
        assert main(["zoo", "export", *export]) == 0
    # an index names its population as it was given: re-point it for the zoo's MEP prefix
    index, _ = zoo.load_json("t/resp/responses")
    zoo.save_json("t/resp/responses", index | {"population": "zoo:t/mep"}, overwrite=True)
    from_zoo = tmp_path / "from-zoo"
    assert main(["coot", "collect", "--preset", "tiny", "--collect.hsp", "zoo:t/hsp",
                 "--collect.mep", "zoo:t/mep", "--collect.mep-responses", "zoo:t/resp",
                 "--collect.mid-episodes-per-seat", "1", "--out", str(from_zoo)]) == 0
    zds = load_dataset(from_zoo)
    assert [p.name for p in zds.pairs] == [p.name for p in ds.pairs]
    assert zds.pairs[0].mid == (AgentRef(f"zoo:t/hsp/member{m:02d}-biased-mid"),
                                AgentRef(f"zoo:t/hsp/member{m:02d}-br-mid"))
    assert zds.pairs[-1].br == AgentRef("zoo:t/resp/response01")
    np.testing.assert_array_equal(ShardStore(from_zoo).read("pair000")["mid"], mid)
    # float16 weights: the zoo's play is the folders' on (almost) every step
    agree = (zds.episodes.action == ds.episodes.action).mean()
    assert agree > 0.9, agree


@pytest.fixture(scope="module")
def coot_run(coot_stack):
    return coot_stack / "coot"


def test_train_resumes_exactly_and_the_agent_loads(dataset, coot_run, tmp_path):
    full = coot_run
    part = tmp_path / "part"
    cfg = CootRunConfig(str(dataset), COOT_PRESETS["tiny"], "tiny")
    train_coot(cfg, part, progress=False, stop_after_chunks=1)
    assert not (part / "model.msgpack").exists()
    assert main(["coot", "train", "--out", str(part), "--resume"]) == 0
    assert (part / "model.msgpack").read_bytes() == (full / "model.msgpack").read_bytes()
    rows = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rows_p = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in rows] == [r["val_loss"] for r in rows_p]
    assert (full / "report.md").is_file() and (full / "curves.png").stat().st_size > 0
    agent = resolve(str(full))
    assert agent.spec.num_episodes == 2 and agent.spec.episode_len == 20


def test_early_stopping_ends_the_run(dataset, tmp_path):
    out = tmp_path / "es"
    # patience 1 with a learning rate of ~0: no epoch beats the first, stop after epoch 2
    assert main(["coot", "train", "--preset", "tiny", "--dataset", str(dataset), "--out",
                 str(out), "--coot.epochs", "6", "--coot.patience", "1",
                 "--coot.learning-rate", "1e-12", "--coot.gpt.dropout", "0"]) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert 2 <= len(rows) < 6


def test_closed_loop_selection_keeps_the_best_playing_epoch_and_resumes(dataset, tmp_path,
                                                                          monkeypatch):
    import dataclasses

    from flax import serialization

    import coplay.experiments.coot.train as coot_train

    scores = [0.2, 0.5, 0.3]  # epoch 2 best
    seen = []

    class Check:
        def score(self, agent):
            seen.append(jax.tree.map(np.asarray, agent.params))
            return {"ratio": scores[len(seen) - 1]}

    monkeypatch.setattr(coot_train, "prepare", lambda *a, **kw: Check())
    coot = dataclasses.replace(COOT_PRESETS["tiny"], patience=1)
    cfg = CootRunConfig(str(dataset), coot, "tiny", select_by="closed-loop")
    whole = train_coot(cfg, tmp_path / "whole", progress=False)
    rows = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    # the validation loss is best at epoch 1 here: with patience 1 it would have stopped
    # after epoch 2 and kept epoch 1; the closed loop improved at epoch 2
    assert [r["best_epoch"] for r in rows] == [1, 1, 1]
    assert [r["closed_loop"] for r in rows] == scores
    kept = serialization.msgpack_restore((whole / "model.msgpack").read_bytes())
    jax.tree.map(np.testing.assert_array_equal, kept, seen[1])
    assert "epoch 2 kept in `model.msgpack` (by closed-loop)" in (whole / "report.md").read_text()
    # killed after epoch 2 (stashed), resumed: the same model and rows
    seen.clear()
    part = tmp_path / "part"
    train_coot(cfg, part, progress=False, stop_after_chunks=2)
    train_coot(cfg, part, resume=True, progress=False)
    assert (part / "model.msgpack").read_bytes() == (whole / "model.msgpack").read_bytes()

    def untimed(path):
        return [{k: v for k, v in json.loads(x).items() if k != "time_s"}
                for x in (path / "metrics.jsonl").read_text().splitlines()]

    assert untimed(part) == untimed(whole)


def test_closed_loop_check_plays_the_training_partners(dataset, tmp_path):
    out = tmp_path / "cl"
    assert main(["coot", "train", "--preset", "tiny", "--dataset", str(dataset), "--out",
                 str(out), "--coot.epochs", "1", "--select-by", "closed-loop",
                 "--closed-loop-pairs", "2", "--closed-loop-episodes", "2"]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 <= row["closed_loop"] < 10 and (out / "model.msgpack").is_file()
    from coplay.experiments.coot.closed_loop import prepare

    ds = load_dataset(dataset)
    train_p, _ = split_pairs(len(ds.pairs), 1, 0)
    check = prepare([ds.pairs[i] for i in train_p[:2]], "random1", 2, 20, br_episodes=2)
    got = check.score(resolve(str(out)))  # the run's check, on the kept (only) epoch
    assert got["returns"].shape == (2, 2, 2) and len(got["per_pair"]) == 2
    assert got["ratio"] == row["closed_loop"]
    assert sorted(np.concatenate([idx for _, idx in check.groups])) == [0, 1]  # once each
    with pytest.raises(SystemExit):  # tyro names the choices
        main(["coot", "train", "--preset", "tiny", "--dataset", str(dataset), "--out",
              str(tmp_path / "bad"), "--select-by", "loss"])
    with pytest.raises(ConfigError, match="run.select_by"):
        CootRunConfig(str(dataset), COOT_PRESETS["tiny"], select_by="loss").validate()


def test_an_interrupted_eval_resumes_with_the_same_numbers(pops, coot_run, tmp_path,
                                                          monkeypatch):
    import coplay.experiments.coot.eval as coot_eval

    args = ["coot", "eval", "--preset", "tiny", "--eval.partners", str(pops / "hsp"), "--agent",
            f"coot={coot_run}", f"bc={pops / 'bc'}", f"mep={pops / 'mep'}#0"]
    whole = tmp_path / "whole"
    assert main(args + ["--out", str(whole)]) == 0
    assert not (whole / coot_eval.PARTIAL).exists()  # removed once eval.json is written

    played, real = [], coot_eval.play_episodes

    def dies_at_the_bc(env, env_params, agent, *a, **kw):
        if agent.name == "bc":
            raise KeyboardInterrupt  # killed half-way
        played.append(agent.name)
        return real(env, env_params, agent, *a, **kw)

    cut = tmp_path / "cut"
    monkeypatch.setattr(coot_eval, "play_episodes", dies_at_the_bc)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(cut)])
    assert not (cut / "eval.json").exists() and (cut / coot_eval.PARTIAL).exists()
    assert played.count("coot") == 1  # the best responses and the CooT finished

    # the tiny agents score 0: mark what was kept, to see that the rerun reads it back
    doc = json.loads((cut / coot_eval.PARTIAL).read_text())
    key = f"coot={coot_run}"
    doc["agents"][key] = (np.asarray(doc["agents"][key]) + 7.0).tolist()
    (cut / coot_eval.PARTIAL).write_text(json.dumps(doc))
    played.clear()
    monkeypatch.setattr(coot_eval, "play_episodes",
                        lambda env, p, agent, *a, **kw: played.append(agent.name)
                        or real(env, p, agent, *a, **kw))
    assert main(args + ["--out", str(cut)]) == 0
    assert played[0] == "bc" and len(played) == 2  # only what was missing: BC, the MEP member
    a, b = read_eval(whole), read_eval(cut)
    np.testing.assert_array_equal(a["br_returns"], b["br_returns"])
    np.testing.assert_array_equal(a["agents"]["coot"]["returns"] + 7.0,
                                  b["agents"]["coot"]["returns"])
    for label in ("bc", "mep"):
        np.testing.assert_array_equal(a["agents"][label]["returns"],
                                      b["agents"][label]["returns"])
    # other games (another seed) never reuse what was played: all is played again
    played.clear()
    (cut / coot_eval.PARTIAL).write_text(json.dumps(
        {"games": {"seed": 99}, "br": [[1.0, 1.0]], "agents": {}}))
    assert main(args + ["--out", str(cut)]) == 0
    assert played.count("coot") == 1 and len(played) > 3  # the BRs were played again too
    np.testing.assert_array_equal(read_eval(cut)["br_returns"], a["br_returns"])


def test_a_model_of_another_layout_is_named(pops, coot_run, tmp_path, capsys):
    from coplay.envs.overcooked import Overcooked

    # its run config says random1: refused before anything plays or is written
    out = tmp_path / "ev"
    assert main(["coot", "eval", "--preset", "tiny", "--eval.layout", "cramped_room",
                 "--eval.partners", str(pops / "hsp"), "--agent", f"coot={coot_run}",
                 "--out", str(out)]) == 1
    said = capsys.readouterr().out
    assert f"agent coot={coot_run} was trained on layout 'random1'" in said
    assert "'cramped_room'" in said and not out.exists()
    # where no layout is recorded, the observations it cannot take are named
    agent = resolve(str(coot_run), name="coot")
    with pytest.raises(RunError, match=r"does not take 'cramped_room' observations"):
        check_obs(agent, Overcooked("cramped_room"), AgentRef(str(coot_run)))
    check_obs(agent, Overcooked("random1"), AgentRef(str(coot_run)))  # its own layout: fine


def test_eval_and_report(pops, dataset, coot_run, tmp_path):
    coot, bc = coot_run, pops / "bc"
    ev = tmp_path / "ev"
    assert main(["coot", "eval", "--preset", "tiny", "--eval.partners", str(pops / "hsp"),
                 "--agent", f"coot={coot}", f"bc={bc}", f"mep={pops / 'mep'}#0",
                 "--out", str(ev)]) == 0
    doc = read_eval(ev)
    sel = json.loads((pops / "hsp" / "selection.json").read_text())
    assert [p["member"] for p in doc["partners"]] == sel["eval"]
    for label in ("coot", "bc", "mep"):
        assert doc["agents"][label]["returns"].shape == (1, 2, 1, 3)  # (P, S, N, E)
    report = (ev / "report.md").read_text()
    assert "| coot | 1 |" in report and "0.51" in report  # the paper's figure beside ours
    for png in ("adaptation_10.png", "adaptation_all.png", "br_prox.png"):
        assert (ev / png).stat().st_size > 0
    assert main(["coot", "eval", "--preset", "tiny", "--eval.partners", str(pops / "hsp"),
                 "--agent", "coot", "--out", str(ev)]) == 1  # not label=REF


def test_eval_keeps_the_best_episodes_of_cootss_only_when_asked(pops, coot_run, tmp_path,
                                                               monkeypatch):
    import coplay.experiments.coot.eval as coot_eval

    seen, real = {}, coot_eval.play_episodes

    def spy(env, p, agent, *a, **kw):
        seen[agent.name] = getattr(agent.spec, "keep", None)
        return real(env, p, agent, *a, **kw)

    monkeypatch.setattr(coot_eval, "play_episodes", spy)
    args = ["coot", "eval", "--preset", "tiny", "--eval.partners", str(pops / "hsp"),
            "--agent", f"coot={coot_run}", f"bc={pops / 'bc'}"]
    assert main([*args, "--eval.coot-context", "keep-best", "--out", str(tmp_path / "k")]) == 0
    assert seen["coot"] == "keep-best" and seen["bc"] is None
    assert "CooT contexts: **keep-best**" in (tmp_path / "k" / "report.md").read_text()
    assert main([*args, "--out", str(tmp_path / "f")]) == 0
    assert seen["coot"] == "fifo" and "keep-best" not in (tmp_path / "f" / "report.md").read_text()
    assert main([*args, "--eval.coot-context", "best", "--out", str(tmp_path / "x")]) == 1


def test_diagnose_plays_every_context_variant_on_the_same_games(pops, coot_run, dataset,
                                                                 tmp_path):
    out = tmp_path / "diagnose"
    assert main(["coot", "diagnose", "--preset", "tiny", "--diagnose.coot", str(coot_run),
                 "--diagnose.partners", str(pops / "hsp"), "--diagnose.train-pool",
                 str(dataset), "--out", str(out)]) == 0
    doc = json.loads((out / "diagnose.json").read_text())
    # one held-out partner in the tiny stack: no mismatched context to give
    assert list(doc["modes"]) == ["own", "empty", "oracle", "oracle-then-own", "own-keep-best",
                                  "pool", "pool-then-own"]
    r = {m: np.asarray(v["returns"]) for m, v in doc["modes"].items()}
    assert all(x.shape == (1, 2, 2) for x in r.values())
    # the same games: variants that begin alike play their first episode alike
    np.testing.assert_array_equal(r["own"][..., 0], r["empty"][..., 0])
    np.testing.assert_array_equal(r["oracle"][..., 0], r["oracle-then-own"][..., 0])
    np.testing.assert_array_equal(r["pool"][..., 0], r["pool-then-own"][..., 0])
    # k = 2 slots, 2 episodes: keep-best only fills empty slots, in order, as FIFO does
    np.testing.assert_array_equal(r["own"], r["own-keep-best"])
    br = np.asarray(doc["br_returns"])  # BR-Prox as coot eval's: seats pooled per partner
    scored = br.mean(1) > 0
    if scored.any():
        want = (r["own"].mean((1, 2))[scored] / br.mean(1)[scored]).mean()
        np.testing.assert_allclose(doc["modes"]["own"]["br_prox"], want)
    else:  # the tiny best responses may score nothing: then BR-Prox is undefined, not 0
        assert doc["modes"]["own"]["br_prox"] is None or np.isnan(doc["modes"]["own"]["br_prox"])
    a = doc["agreement"]
    assert 0 <= a["coot_vs_br"] <= 1 and 1 / 6 <= a["br_ceiling"] <= 1
    t = doc["training"]
    assert [p["pair"] for p in t["pairs"]] == [p.name for p in load_dataset(dataset).pairs][:2]
    assert np.isfinite(t["mean_ratio"])
    report = (out / "report.md").read_text()
    assert "emptied before every episode" in report and "training partners" in report
    # a model that is not a CooT is named
    assert main(["coot", "diagnose", "--preset", "tiny", "--diagnose.coot", str(pops / "bc"),
                 "--diagnose.partners", str(pops / "hsp"), "--out", str(tmp_path / "x")]) == 1


def test_the_pool_context_takes_one_episode_of_each_training_pair_in_turn():
    from coplay.experiments.coot.diagnose import pool_context

    def episodes(pair, seat):  # (3 episodes, 4 steps, 2 features), marked pair*100+seat*10+ep
        mark = pair * 100 + seat * 10 + np.arange(3)
        return (np.broadcast_to(mark[:, None, None], (3, 4, 2)).astype(np.float32),
                np.broadcast_to(mark[:, None], (3, 4)), np.zeros((3, 4)))

    train_br = [(np.zeros(2), {s: episodes(p, s) for s in (0, 1)}) for p in range(2)]
    obs, action, reward = pool_context(train_br, 1, 3)
    assert obs.shape == (3, 4, 2) and action.shape == reward.shape == (3, 4)
    np.testing.assert_array_equal(action[:, 0], [10, 110, 11])  # pair 0, pair 1, pair 0 again
