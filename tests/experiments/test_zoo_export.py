"""Population members into the zoo and back: actor-only fp16 entries whose agents give the
members' own logits (up to fp16 rounding), refs.resolve("zoo:..."), the `coplay zoo` CLI."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coplay import zoo
from coplay.agents.actor_critic import ActorOnly, actor_only
from coplay.cli import main
from coplay.envs.overcooked import Overcooked
from coplay.experiments.coot.data import hsp_pairs
from coplay.experiments.populations.train import load_run
from coplay.experiments.refs import AgentRef, resolve
from coplay.experiments.zoo.export import export_population, export_selection
from coplay.experiments.zoo_agents import actor_params, zoo_agent
from coplay.populations.members import member_policies, network_of
from coplay.runs import RunError


@pytest.fixture(scope="module")
def hsp_pop(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "hsp"
    assert main(["populations", "train", "--preset", "tiny", "--num-members", "2",
                 "--out", str(out)]) == 0
    assert main(["populations", "select", "--pop", str(out), "--eval-size", "1",
                 "--train-size", "1", "--eval-min-return", "-1",
                 "--train-min-return", "-1"]) == 0
    return out


@pytest.fixture(scope="module")
def mep_pop(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "mep"
    assert main(["populations", "train", "--kind", "mep", "--preset", "tiny",
                 "--num-members", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def hsp_zoo(hsp_pop, tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo") / "zoo"
    names = export_population(hsp_pop, "random1/hsp-s0", d)
    return d, names


def _obs(env: Overcooked, n: int = 16) -> jax.Array:
    return jax.random.bernoulli(jax.random.PRNGKey(0), 0.2, (n, *env.obs_shape)).astype(
        jnp.float32)


def _logits(agent, obs):
    return jnp.stack([agent.policy(jax.random.PRNGKey(0), agent.reset(jax.random.PRNGKey(1)),
                                   o)[0] for o in obs])


def test_export_writes_actor_only_entries_and_the_population(hsp_pop, hsp_zoo):
    d, names = hsp_zoo
    assert names == ["random1/hsp-s0/member00-biased", "random1/hsp-s0/member00-br",
                     "random1/hsp-s0/member01-biased", "random1/hsp-s0/member01-br",
                     "random1/hsp-s0/population"]
    assert set(zoo.list_entries(d)) == set(names)
    assert all(ok for _, ok, _ in zoo.verify(d))
    man = json.loads((hsp_pop / "manifest.json").read_text())
    params, meta = zoo.load_entry("random1/hsp-s0/member01-br", d)
    assert set(params["params"]) == {"actor", "policy"}  # no critic tower
    assert meta["layout"] == "random1" and meta["kind"] == "hsp-population"
    assert meta["member"] == 1 and meta["role"] == "br" and meta["seat"] == 1
    assert meta["network"] == {"kind": "mlp", "hidden_sizes": [16], "activation": "tanh",
                               "cnn_filters": [32, 64, 32], "num_actions": 6,
                               "obs_shape": list(Overcooked("random1").obs_shape)}
    m1 = man["members"][1]
    assert meta["candidate"] == m1["candidate"] and meta["weights"] == m1["weights"]
    assert meta["return"] == m1["return"] and meta["source"]["preset"] == "tiny"
    assert zoo.list_entries(d)["random1/hsp-s0/member01-br"]["dtype"] == "float16"
    doc, pmeta = zoo.load_json("random1/hsp-s0/population", d)
    assert doc["selection"] == json.loads((hsp_pop / "selection.json").read_text())
    assert doc["members"][1]["entries"] == {"biased": "random1/hsp-s0/member01-biased",
                                            "br": "random1/hsp-s0/member01-br"}
    assert pmeta["role"] == "population" and doc["num_members"] == 2
    # entries are about half the float32 actor (a quarter of the full member file)
    full = (hsp_pop / m1["checkpoint"]).stat().st_size
    assert zoo.list_entries(d)["random1/hsp-s0/member01-br"]["bytes"] < full / 3


@pytest.mark.parametrize("member, seat, role", [(0, 0, "biased"), (1, 1, "br")])
def test_zoo_agent_gives_the_members_logits_up_to_fp16(hsp_pop, hsp_zoo, member, seat, role):
    d, _ = hsp_zoo
    cfg, algo, _ = load_run(hsp_pop)
    env = Overcooked(cfg.layout)
    net = network_of(algo, env)
    full = member_policies(hsp_pop, member)[seat]
    obs = _obs(env)
    want, _ = net.apply(jax.tree.map(jnp.asarray, full), obs, obs)
    agent = zoo_agent(f"random1/hsp-s0/member{member:02d}-{role}", d)
    got = _logits(agent, obs)
    scale = float(jnp.abs(want).max())
    np.testing.assert_allclose(got, want, atol=2e-3 * scale + 1e-6)
    # exactly the full network with fp16-rounded weights: nothing but the rounding differs
    rounded = jax.tree.map(lambda x: jnp.asarray(np.asarray(x).astype(np.float16)
                                                 .astype(np.float32)), full)
    exact, _ = net.apply(rounded, obs, obs)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-7)
    # the same as the run folder's agent, and act works under jit
    ref = _logits(resolve(AgentRef(str(hsp_pop), member=member, seat=seat)), obs)
    np.testing.assert_allclose(got, ref, atol=2e-3 * scale + 1e-6)
    a, _ = jax.jit(agent.act)(jax.random.PRNGKey(3), agent.reset(jax.random.PRNGKey(0)),
                              obs[0])
    assert 0 <= int(a) < env.num_actions


def test_resolve_accepts_zoo_references(hsp_zoo, monkeypatch):
    d, _ = hsp_zoo
    monkeypatch.setenv(zoo.ZOO_ENV, str(d))
    agent = resolve("zoo:random1/hsp-s0/member00-br")
    assert agent.kind == "overcooked" and "zoo:random1/hsp-s0/member00-br" in agent.name
    np.testing.assert_allclose(
        _logits(agent, _obs(Overcooked("random1"), 3)),
        _logits(zoo_agent("random1/hsp-s0/member00-br", d), _obs(Overcooked("random1"), 3)))
    with pytest.raises(ValueError, match="one policy"):
        resolve(AgentRef("zoo:random1/hsp-s0/member00-br", seat=1))
    with pytest.raises(zoo.ZooError, match="close names"):
        resolve("zoo:random1/hsp-s0/member00-bx")


def test_mep_members_export_one_entry_each(mep_pop, tmp_path):
    names = export_population(mep_pop, "random1/mep-s0", tmp_path)
    assert names == ["random1/mep-s0/member00", "random1/mep-s0/member01",
                     "random1/mep-s0/population"]
    cfg, algo, _ = load_run(mep_pop)
    env = Overcooked(cfg.layout)
    obs = _obs(env, 8)
    full = member_policies(mep_pop, 1)[0]
    want, _ = network_of(algo, env).apply(jax.tree.map(jnp.asarray, full), obs, obs)
    agent = zoo_agent(names[1], tmp_path)
    np.testing.assert_allclose(_logits(agent, obs), want,
                               atol=2e-3 * float(jnp.abs(want).max()) + 1e-6)
    _, meta = zoo.load_entry(names[1], tmp_path)
    assert meta["role"] == "member" and meta["seat"] is None and meta["candidate"] == -1
    doc, _ = zoo.load_json("random1/mep-s0/population", tmp_path)
    assert doc["selection"] is None and doc["kind"] == "mep-population"


def test_export_refuses_what_is_not_a_population(tmp_path, hsp_pop):
    with pytest.raises(RunError, match="not a run folder"):
        export_population(tmp_path, "x", tmp_path / "zoo")
    (tmp_path / "config.json").write_text('{"experiment": "ipd"}')
    with pytest.raises(RunError, match="exports hsp-population and mep-population"):
        export_population(tmp_path, "x", tmp_path / "zoo")
    with pytest.raises(ValueError, match="zoo entry name"):
        export_population(hsp_pop, "../x", tmp_path / "zoo")
    with pytest.raises(zoo.ZooError, match="over its budget"):
        export_population(hsp_pop, "b", tmp_path / "zoo2", budget=1000)


def test_export_selection_alone_and_overwrite(hsp_pop, tmp_path):
    assert export_selection(hsp_pop, "p", tmp_path) == "p/population"
    with pytest.raises(zoo.ZooError, match="exists"):
        export_selection(hsp_pop, "p", tmp_path)
    export_selection(hsp_pop, "p", tmp_path, overwrite=True)
    doc, _ = zoo.load_json("p/population", tmp_path)
    assert doc["members"][0]["entries"]["br"] == "p/member00-br"


def test_actor_only_matches_the_actor_critic(hsp_pop):
    cfg, algo, _ = load_run(hsp_pop)
    env = Overcooked(cfg.layout)
    net = network_of(algo, env)
    full = jax.tree.map(jnp.asarray, member_policies(hsp_pop, 0)[1])
    obs = _obs(env, 4)
    logits, value = actor_only(net).apply(actor_params(full), obs)
    np.testing.assert_allclose(logits, net.apply(full, obs, obs)[0], rtol=1e-6, atol=1e-7)
    assert value.shape == (4,) and isinstance(actor_only(net), ActorOnly)
    with pytest.raises(RunError, match="actor-critic parameter tree"):
        actor_params({"params": {"critic": {}}})


def test_cli_export_list_verify(hsp_pop, tmp_path, capsys):
    d = tmp_path / "zoo"
    assert main(["zoo", "export", "--pop", str(hsp_pop), "--prefix", "random1/hsp-s0",
                 "--zoo", str(d)]) == 0
    assert "5 entries" in capsys.readouterr().out
    assert main(["zoo", "list", "--zoo", str(d), "--prefix", "random1/"]) == 0
    assert "member01-br" in capsys.readouterr().out
    assert main(["zoo", "verify", "--zoo", str(d)]) == 0
    assert "0 failed" in capsys.readouterr().out
    f = d / "random1" / "hsp-s0" / "member01-br.msgpack"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    assert main(["zoo", "verify", "--zoo", str(d)]) == 1
    err = capsys.readouterr().err
    assert "random1/hsp-s0/member01-br.msgpack is damaged" in err
    (d / "manifest.json").write_text("{")
    assert main(["zoo", "verify", "--zoo", str(d)]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert main(["zoo", "export", "--pop", str(tmp_path), "--prefix", "x",
                 "--zoo", str(d)]) == 2


def test_a_zoo_population_is_reselected_into_a_new_prefix(hsp_zoo, hsp_pop, tmp_path,
                                                         monkeypatch, capsys):
    d = tmp_path / "zoo"
    shutil.copytree(hsp_zoo[0], d)
    monkeypatch.setenv(zoo.ZOO_ENV, str(d))
    source = (d / "random1/hsp-s0/population.json").read_bytes()
    args = ["populations", "select", "--pop", "zoo:random1/hsp-s0", "--eval-size", "2",
            "--train-size", "0", "--eval-min-return", "-1", "--train-min-return", "-1"]
    assert main([*args, "--out", "zoo:random1/hsp-k2"]) == 0
    assert "zoo:random1/hsp-k2/population" in capsys.readouterr().out
    doc, meta = zoo.load_json("random1/hsp-k2/population", d)
    old, _ = zoo.load_json("random1/hsp-s0/population", d)
    assert sorted(doc["selection"]["eval"]) == [0, 1] and doc["selection"]["train"] == []
    assert doc["members"] == old["members"] and doc["selected_from"] == "zoo:random1/hsp-s0"
    assert meta["source"] == "zoo:random1/hsp-s0"
    assert (d / "random1/hsp-s0/population.json").read_bytes() == source  # never rewritten
    pairs = hsp_pairs("zoo:random1/hsp-k2", "eval", "random1")
    assert [p.partner.path for p in pairs] == [f"zoo:random1/hsp-s0/member{m:02d}-biased"
                                               for m in doc["selection"]["eval"]]
    assert [z[0] for z in zoo.verify(d)] and all(ok for _, ok, _ in zoo.verify(d))
    for out, says in ((None, "new zoo prefix"), ("zoo:random1/hsp-s0", "new prefix"),
                      ("runs/x", "new zoo prefix")):
        assert main([*args] + (["--out", out] if out else [])) == 2
        assert says in capsys.readouterr().err
    assert main(["populations", "select", "--pop", str(hsp_pop), "--out", "zoo:x"]) == 2
    assert "selection.json" in capsys.readouterr().err
