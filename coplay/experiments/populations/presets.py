"""The populations wing's PPO presets, in one place, built on the Overcooked wing's
(``PPOConfig()`` is the paper's; :mod:`coplay.experiments.overcooked.presets`): ``tiny`` (the
tests) and ``default`` (this 2-core CPU) for stage 1 (HSP pairs, MEP members) and for the
stage-2 adaptive agents. The run-level presets (members, checkpoints, evaluation sizes) sit
beside their configs (``PopulationConfig`` / ``AdaptiveConfig``)."""

from __future__ import annotations

import dataclasses

from coplay.algos.ppo_config import PPOConfig
from coplay.experiments.overcooked.presets import PPO_DEFAULT

_TINY = dataclasses.replace(PPO_DEFAULT, num_envs=4, num_steps=16, total_steps=512,
                            updates_per_chunk=2, update_epochs=2, num_minibatches=2,
                            horizon=16, hidden_sizes=(16,), shaping_factor=None,
                            shaping_horizon=512)
# this 2-core CPU: the PPO default (JaxMARL IPPO values, separate policies, lr 5e-4) with
# the shaping of the best response annealed over the whole run (ZSC-Eval's HSP horizon = run)
_DEFAULT = dataclasses.replace(PPO_DEFAULT, total_steps=2_000_000, shaping_factor=None,
                               shaping_horizon=2_000_000)

PPO_PRESETS: dict[str, PPOConfig] = {"tiny": _TINY, "default": _DEFAULT}

_TINY_ADAPTIVE = dataclasses.replace(PPO_PRESETS["tiny"], share_policy=True)
# this 2-core CPU: the PPO default (JaxMARL IPPO: 16 envs x 128 steps, shaping annealed over
# 2.5 M steps) for 5 M steps, one policy (the learner) trained on its seat only
_DEFAULT_ADAPTIVE = dataclasses.replace(PPO_DEFAULT, total_steps=5_000_000,
                                        shaping_factor=None, share_policy=True)
PPO_PRESETS_ADAPTIVE: dict[str, PPOConfig] = {"tiny": _TINY_ADAPTIVE,
                                              "default": _DEFAULT_ADAPTIVE}
