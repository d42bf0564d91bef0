"""The paper's CooT pool as the zoo holds it (`coot collect --preset paper`): 21 HSP pairs of
the 52-candidate population, chosen the release's way, each with its mid-skill snapshot, and
15 MEP agents with the best responses trained against them. Reads the zoo's JSON only."""

import numpy as np

from coplay import zoo
from coplay.experiments.coot.data import training_pool
from coplay.experiments.coot.presets import COLLECT_PRESETS
from coplay.experiments.refs import AgentRef
from coplay.populations.selection import greedy_select


def test_the_paper_pool_from_the_zoo():
    cfg = COLLECT_PRESETS["paper"].validate()
    pairs = training_pool(cfg)
    hsp = [p for p in pairs if p.info["kind"] == "hsp"]
    mep = [p for p in pairs if p.info["kind"] == "mep"]
    assert len(hsp) == 21 and len(mep) == 15 and len(pairs) == 36  # the paper's 36
    doc, _ = zoo.load_population_entry("random1/hsp52-s2")
    assert doc["num_members"] == 52
    sel = doc["selection"]
    # the release's selection: by-order features, return > 0.1, greedy L1 from a seeded pick
    assert sel["args"]["features"] == "by-order" and sel["args"]["first_pick"] == "seeded"
    f = np.array([m["features_by_order"] for m in doc["members"]])
    assert sel["train"] == greedy_select(f, 21, sel["train_eligible"], first_seed=0)
    assert all(doc["members"][m]["return"] > 0.1 for m in sel["train_eligible"])
    for p in hsp:  # every HSP pair also at mid skill, from the zoo
        m = p.info["member"]
        assert p.mid == (AgentRef(f"zoo:random1/hsp52-s2/member{m:02d}-biased-mid"),
                         AgentRef(f"zoo:random1/hsp52-s2/member{m:02d}-br-mid"))
    index, _ = zoo.load_json("random1/mep-s0-br15/responses")
    assert index["population"] == "zoo:random1/mep-s0" and index["partner_members"] == \
        list(range(15))
    for k, p in enumerate(mep):  # each MEP agent with the best response trained against it
        assert p.partner != p.br and p.br == AgentRef(f"zoo:random1/mep-s0-br15/response{k:02d}")
    assert cfg.episodes_per_seat == 125 and cfg.mid_episodes_per_seat == 15
