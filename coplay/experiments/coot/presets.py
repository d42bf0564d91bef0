"""The CooT wing's presets, in one place: ``tiny`` (the tests), ``default`` (this 2-core CPU),
``paper`` (the CooT paper; ``CootConfig()`` itself holds the paper's values), ``release`` /
``release-cpu`` (with the released code's training details)."""

from __future__ import annotations

import dataclasses

from coplay.agents.gpt import GPTConfig
from coplay.algos.bc import BCConfig
from coplay.algos.coot import CootConfig
from coplay.data.context import ContextSpec
from coplay.experiments.coot.dagger import DaggerConfig
from coplay.experiments.coot.data import CollectConfig
from coplay.experiments.coot.diagnose import DiagnoseConfig
from coplay.experiments.coot.eval import EvalConfig

_RELEASE = CootConfig(
    gpt=GPTConfig(attn_dropout=0.21, obs_scale=1 / 255),
    context=ContextSpec(shuffle="chunk", shuffle_keep_first=True, step_mask_unit="count"),
    warmup_fraction=0.1)

# presets: tiny for tests; default sized for this 2-core CPU; paper = the CooT paper's values
COOT_PRESETS: dict[str, CootConfig] = {
    "tiny": CootConfig(
        gpt=GPTConfig(num_layers=1, num_heads=2, width=32, max_positions=2 * 20 + 6,
                      dropout=0.1),
        context=ContextSpec(num_episodes=2, episode_len=20, queries_per_context=8),
        contexts_per_batch=2, contexts_per_group=4, epochs=3, patience=2,
        val_contexts_per_group=2, learning_rate=1e-3),
    # learning rate 1e-3, not the paper's 5e-5: at this preset's ~9k steps 5e-5 underfits
    # (probe, docs/notebook/2026-12-03-coot-run.md: validation loss 6.56 vs 2.43 after one
    # short epoch); --coot.learning-rate 5e-5 or --preset paper restores it
    "default": CootConfig(contexts_per_group=32, epochs=12, patience=4, learning_rate=1e-3),
    "paper": CootConfig(),
    # the paper's values plus the released code's training details the paper omits
    # (bic4907/overcooked-replan's documentation of the release): attention dropout 0.21,
    # observations / 255, 10 % warm-up, step masking as a count of context steps (10 -> 70,
    # logarithmic), chunk-wise shuffling with each slot's first chunk in place
    "release": _RELEASE,
    # the same at the CPU `default` budget (contexts per group, epochs, learning rate)
    "release-cpu": dataclasses.replace(_RELEASE, contexts_per_group=32, epochs=12, patience=4,
                                       learning_rate=1e-3),
}

BC_PRESETS: dict[str, BCConfig] = {
    "tiny": BCConfig(hidden_sizes=(32,), learning_rate=3e-3, weight_decay=0.0, batch_size=64,
                     epochs=20, patience=3, eval_batch_size=256),
    "default": BCConfig(),
}

# tiny collection / evaluation sizes to go with the tiny model preset
# paper: the paper's pool from the zoo — the 21 HSP pairs that `populations select
# --features by-order --first-pick seeded` chose among 52 candidates (seed-2 population),
# 125 episodes per seat of which 15 at mid skill (paper: 220 + 30 per pair), and 15 MEP agents
# with best responses trained against them (125 per seat; paper: 200 per pair)
COLLECT_PRESETS = {"tiny": CollectConfig(episode_len=20, episodes_per_seat=4),
                   "default": CollectConfig(),
                   "paper": CollectConfig(hsp="zoo:random1/hsp52-s2", mep="zoo:random1/mep-s0",
                                          mep_responses="zoo:random1/mep-s0-br15",
                                          episodes_per_seat=125, mid_episodes_per_seat=15)}
DAGGER_PRESETS = {"tiny": DaggerConfig(rounds=2, repeats=1, episodes=2, epochs_per_round=1),
                  "default": DaggerConfig()}
EVAL_PRESETS = {"tiny": EvalConfig(episodes=3, episode_len=20, br_episodes=2),
                "default": EvalConfig(), "paper": EvalConfig(repeats=5)}
DIAGNOSE_PRESETS = {"tiny": DiagnoseConfig(episodes=2, episode_len=20, br_episodes=2,
                                           train_pairs=2),
                    "default": DiagnoseConfig()}
