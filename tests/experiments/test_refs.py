"""The one agent-reference grammar and resolver: every reference form parses and prints back;
every run kind x every command that takes a reference gives the agent ``resolve`` gives
(same parameters, same kind); malformed references are named."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coplay import zoo
from coplay.envs.overcooked import Overcooked
from coplay.experiments.coot.data import hsp_pairs, mep_pairs
from coplay.experiments.ipd import axelrod as ipd_axelrod
from coplay.experiments.ipd.presets import A2C_PRESETS
from coplay.experiments.ipd.runs import state_template
from coplay.experiments.refs import READERS, AgentRef, check_obs, locate, parse, resolve
from coplay.runs import RunDir, RunError
from coplay.web.study import load_agents, parse_study

# --- the grammar -------------------------------------------------------------------------------
paths = st.from_regex(r"[a-z][a-z0-9_/.-]{0,20}", fullmatch=True)
picks = st.one_of(st.none(), st.integers(0, 99))


@given(paths, picks, picks, st.sampled_from(["final", "mid"]))
def test_a_reference_prints_back_to_itself(path, member, seat, which):
    if member is None and (seat is not None or which == "mid"):
        member = 0  # a seat or @mid comes after a member in the grammar
    ref = AgentRef(path, member, seat, which)
    assert parse(str(ref)) == ref
    assert AgentRef.from_json(ref.to_json()) == ref


@pytest.mark.parametrize("text, ref", [
    ("runs/pop", AgentRef("runs/pop")),
    ("runs/pop#3", AgentRef("runs/pop", 3)),
    ("runs/pop#3,1", AgentRef("runs/pop", 3, 1)),
    ("runs/pop#3,1@mid", AgentRef("runs/pop", 3, 1, "mid")),
    (" zoo:random1/coot-s0 ", AgentRef("zoo:random1/coot-s0")),
    ("scripted:0.1", AgentRef("scripted:0.1")),
    ("classic:TFT", AgentRef("classic:TFT")),
])
def test_the_grammar(text, ref):
    assert parse(text) == ref


@pytest.mark.parametrize("text, match", [
    ("", "expected PATH"),
    ("runs/pop#x", "integers"),
    ("runs/pop#1,2,3", "PATH#member or PATH#member,seat"),
    ("#1", "PATH#member or PATH#member,seat"),
    ("runs/pop#1@late", "only mid"),
    ("runs/pop@mid", "follows a member"),
])
def test_malformed_references_are_named(text, match):
    with pytest.raises(RunError, match=match):
        parse(text)


def test_options_a_kind_does_not_take_are_named(tmp_path):
    with pytest.raises(RunError, match="take no member"):
        locate("classic:TFT#1")
    with pytest.raises(ValueError, match="needs the game's layout"):
        resolve("scripted")
    with pytest.raises(ValueError, match="one policy"):
        locate("zoo:random1/coot-s0#0,1")
    with pytest.raises(zoo.ZooError, match="close names"):
        locate("zoo:random1/coot-s9")


# --- every kind x every command ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ipd_folder(tmp_path_factory):
    """An A2C IPD run folder as the driver writes it, with untrained learners (the reader
    checks shapes only)."""
    out = tmp_path_factory.mktemp("refs") / "ipd"
    algo = A2C_PRESETS["tiny"]
    run = RunDir(out)
    run.start({"experiment": "ipd", "algo": "a2c", "preset": "tiny", "resolved": algo}, False)
    run.save_checkpoint(state_template(algo), {"updates": 0})
    return out


def _study_agent(ref: str, setting: str):
    """The agent a study file with one agent, ``ref``, and ``setting`` loads."""
    cfg = parse_study(f'[study]\nname = "s"\n{setting}\n[[agents]]\nname = "a"\n'
                      f'ref = "{ref}"\ncolour = "red"\n')
    return load_agents(cfg)["a"]


def _same(a, b):
    assert a.kind == b.kind
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


OVERCOOKED = {  # run kind -> reference inside the tiny CooT stack (tests/experiments/conftest)
    "hsp-population": "{d}/hsp#1,1",
    "hsp-population@mid": "{d}/hsp#1,0@mid",
    "mep-population": "{d}/mep#1",
    "mep-adaptive": "{d}/mep2",
    "coot": "{d}/coot",
    "coot-bc": "{d}/bc",
    "zoo": "zoo:random1/self-play-s0",
    "scripted": "scripted:0.2",
}


def test_the_table_covers_every_run_kind():
    # the per-partner best responses (*-responses) resolve in test_adaptive
    assert set(READERS) == {"ipd", "overcooked-ppo", "hsp-population", "mep-population",
                            "hsp-adaptive", "mep-adaptive", "hsp-responses", "mep-responses",
                            "coot", "coot-bc", "coot-dagger"}


@pytest.mark.parametrize("command", ["coot eval", "coot collect", "study"])
@pytest.mark.parametrize("kind", sorted(OVERCOOKED))
def test_every_overcooked_kind_through_every_command(coot_stack_mep2, kind, command):
    ref = OVERCOOKED[kind].format(d=coot_stack_mep2)
    want = resolve(ref, layout="random1")
    src = locate(ref)
    assert src.kind == kind.split("@")[0]
    if command == "coot eval":  # evaluate(): located once (layout check), then resolved
        assert src.layout in (None, "random1")
        got = resolve(src, layout="random1", name="x")
        assert got.name == "x"
        check_obs(got, Overcooked("random1"), src.ref)
    elif command == "coot collect":  # a dataset's pairs keep their refs as JSON
        got = AgentRef.from_json(parse(ref).to_json()).load(layout="random1")
    else:
        got = _study_agent(ref, 'layout = "random1"')
    _same(got, want)


def test_the_pools_name_their_pairs_by_reference(coot_stack):
    pairs = hsp_pairs(str(coot_stack / "hsp"), "train", "random1") + \
        mep_pairs(str(coot_stack / "mep"), "random1")
    for p in pairs:
        for r in (p.partner, p.br):
            _same(r.load(), resolve(str(r)))


# a tournament enters classic strategies as Axelrod's own players, not through a reference
IPD_CASES = [("ipd", "ipd axelrod"), ("zoo", "ipd axelrod"),
             ("ipd", "study"), ("zoo", "study"), ("classic", "study")]


@pytest.mark.parametrize("kind, command", IPD_CASES)
def test_every_ipd_kind_through_every_command(ipd_folder, kind, command):
    ref = {"ipd": f"{ipd_folder}#1", "zoo": "zoo:ipd/a2c-default-s0/learner03",
           "classic": "classic:TFT"}[kind]
    want = resolve(ref)
    assert locate(ref).kind == kind
    if command == "ipd axelrod":
        source = (str(ipd_folder), (1,)) if kind == "ipd" else (ref,)
        got = ipd_axelrod.learner_agents(*source)[0]
    else:
        got = _study_agent(ref, 'game = "ipd"')
    _same(got, want)


def test_the_web_docs_study_example_loads_a_coot_folder_and_a_zoo_entry(coot_stack):
    """docs/web.md's study file as printed, its CooT folder (made by the two tiny commands the
    doc gives) standing at the tiny stack's CooT run."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "web.md").read_text()
    toml = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    assert 'ref = "runs/coot-tiny"' in toml and 'ref = "zoo:' in toml
    cfg = parse_study(toml.replace('"runs/coot-tiny"', f'"{coot_stack / "coot"}"'))
    agents = load_agents(cfg)
    assert set(agents) == {"coot", "hsp", "script"}
    _same(agents["coot"], resolve(str(coot_stack / "coot")))
    _same(agents["hsp"], resolve("zoo:random1/hsp-adaptive-s0"))
